//! Just enough of a GGUF reader for basalt's own encoder (`encoder`): scalar
//! metadata and the tensor directory; tensor data is read where it lies in
//! the file. Arrays (the tokenizer's vocabulary) are skipped, not kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// ggml tensor types this reader sizes.
pub(crate) const F32: u32 = 0;
pub(crate) const F16: u32 = 1;
pub(crate) const Q8_0: u32 = 8;

/// A scalar metadata value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// An array, not kept.
    Array,
}

/// One tensor: its dimensions (innermost first, as ggml counts them), type
/// and where its data starts in the file.
#[derive(Debug, Clone)]
pub(crate) struct TensorInfo {
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
}

impl TensorInfo {
    /// Values in the tensor (`u64::MAX` if that overflows: no file holds it).
    pub(crate) fn elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Bytes of data, for the types this reader knows.
    pub(crate) fn bytes(&self) -> Option<u64> {
        let n = self.elements();
        match self.ggml_type {
            F32 => n.checked_mul(4),
            F16 => n.checked_mul(2),
            Q8_0 if n.is_multiple_of(32) => (n / 32).checked_mul(34),
            _ => None,
        }
    }
}

pub(crate) struct Gguf {
    file: File,
    /// The file's length when it was opened.
    len: u64,
    pub kv: HashMap<String, Value>,
    pub tensors: HashMap<String, TensorInfo>,
}

/// No header field may claim more than this many items or bytes (a corrupt
/// length would otherwise ask for gigabytes).
const LIMIT: u64 = 1 << 28;
/// Deepest nesting of arrays in a metadata value.
const MAX_DEPTH: u32 = 4;

struct Header<R> {
    r: R,
}

impl<R: Read> Header<R> {
    fn bytes<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn len(&mut self) -> std::io::Result<u64> {
        let n = self.u64()?;
        if n > LIMIT {
            return Err(invalid(format!("a length of {n}")));
        }
        Ok(n)
    }
    fn string(&mut self) -> std::io::Result<String> {
        let n = self.len()?;
        // Grows as the bytes arrive: a corrupt length reserves nothing.
        let mut s = Vec::with_capacity(n.min(4096) as usize);
        (&mut self.r).take(n).read_to_end(&mut s)?;
        if s.len() as u64 != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        String::from_utf8(s).map_err(|_| invalid("a string that is not UTF-8".into()))
    }
    fn value(&mut self, ty: u32, depth: u32) -> std::io::Result<Value> {
        Ok(match ty {
            0 => Value::Int(i64::from(self.bytes::<1>()?[0])),
            1 => Value::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => Value::Int(i64::from(u16::from_le_bytes(self.bytes()?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            4 => Value::Int(i64::from(self.u32()?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(invalid("arrays nested too deep".into()));
                }
                let elem = self.u32()?;
                let n = self.len()?;
                for _ in 0..n {
                    self.value(elem, depth + 1)?;
                }
                Value::Array
            }
            10 => Value::Int(i64::try_from(self.u64()?).unwrap_or(i64::MAX)),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            other => return Err(invalid(format!("metadata type {other}"))),
        })
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("not a GGUF file this reader knows: {what}"),
    )
}

impl Gguf {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let mut h = Header {
            r: BufReader::new(file.try_clone()?),
        };
        if &h.bytes::<4>()? != b"GGUF" {
            return Err(invalid("no GGUF magic".into()));
        }
        let version = h.u32()?;
        if !(2..=3).contains(&version) {
            return Err(invalid(format!("version {version}")));
        }
        let n_tensors = h.len()?;
        let n_kv = h.len()?;
        let mut kv = HashMap::new();
        for _ in 0..n_kv {
            let key = h.string()?;
            let ty = h.u32()?;
            kv.insert(key, h.value(ty, 0)?);
        }
        let mut infos = Vec::new();
        for _ in 0..n_tensors {
            let name = h.string()?;
            let n_dims = h.u32()?;
            if n_dims > 4 {
                return Err(invalid(format!("{name} has {n_dims} dimensions")));
            }
            let dims = (0..n_dims)
                .map(|_| h.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let ggml_type = h.u32()?;
            let offset = h.u64()?;
            infos.push((
                name,
                TensorInfo {
                    dims,
                    ggml_type,
                    offset,
                },
            ));
        }
        let alignment = match kv.get("general.alignment") {
            Some(Value::Int(a)) if (1..=1 << 16).contains(a) => *a as u64,
            Some(Value::Int(a)) => return Err(invalid(format!("alignment {a}"))),
            _ => 32,
        };
        let at = h.r.stream_position()?;
        let data = at.div_ceil(alignment) * alignment;
        let tensors = infos
            .into_iter()
            .map(|(name, mut t)| {
                t.offset = t
                    .offset
                    .checked_add(data)
                    .ok_or_else(|| invalid(format!("{name}'s offset")))?;
                Ok((name, t))
            })
            .collect::<std::io::Result<_>>()?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            len,
            kv,
            tensors,
        })
    }

    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.kv.get(key)? {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub(crate) fn float(&self, key: &str) -> Option<f64> {
        match self.kv.get(key)? {
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.kv.get(key)? {
            Value::Str(v) => Some(v),
            _ => None,
        }
    }

    /// `len` bytes of the file from `offset` (an error, not an allocation,
    /// if the file is shorter).
    pub(crate) fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(invalid(format!(
                "{len} bytes at {offset}, past the end of the file"
            )));
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// A whole tensor's data.
    pub(crate) fn data(&self, t: &TensorInfo) -> std::io::Result<Vec<u8>> {
        let len = t
            .bytes()
            .ok_or_else(|| invalid(format!("tensor type {}", t.ggml_type)))?;
        self.read_at(
            t.offset,
            usize::try_from(len).map_err(|_| invalid("size".into()))?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }

    /// A GGUF with one u32, one string array and one 2×32 F32 tensor.
    fn file(tag: &str, edit: impl FnOnce(&mut Vec<u8>)) -> std::io::Result<Gguf> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // tensors
        b.extend(2u64.to_le_bytes()); // metadata
        string(&mut b, "bert.block_count");
        b.extend(4u32.to_le_bytes());
        b.extend(6u32.to_le_bytes());
        string(&mut b, "tokenizer.ggml.tokens");
        b.extend(9u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        string(&mut b, "[CLS]");
        string(&mut b, "hello");
        string(&mut b, "w");
        b.extend(2u32.to_le_bytes());
        b.extend(32u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(F32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.resize(b.len().div_ceil(32) * 32, 0);
        b.extend((0..64).flat_map(|i| (i as f32).to_le_bytes()));
        edit(&mut b);
        let path = std::env::temp_dir().join(format!("basalt-gguf-{tag}-{}", std::process::id()));
        std::fs::write(&path, &b)?;
        let g = Gguf::open(&path);
        let _ = std::fs::remove_file(&path);
        g
    }

    #[test]
    fn reads_metadata_and_tensor_data() {
        let g = file("ok", |_| {}).unwrap();
        assert_eq!(g.int("bert.block_count"), Some(6));
        assert_eq!(g.kv["tokenizer.ggml.tokens"], Value::Array);
        let t = &g.tensors["w"];
        assert_eq!(
            (t.dims.as_slice(), t.elements(), t.bytes()),
            (&[32, 2][..], 64, Some(256))
        );
        let data = g.data(t).unwrap();
        assert_eq!(f32::from_le_bytes(data[252..].try_into().unwrap()), 63.0);
    }

    #[test]
    fn malformed_files_are_errors_not_panics_or_huge_allocations() {
        // Not GGUF.
        assert!(file("magic", |b| b[0] = b'X').is_err());
        // Cut short inside the metadata.
        assert!(file("short", |b| b.truncate(40)).is_err());
        // A string claiming 2^60 bytes.
        assert!(file("len", |b| b[24..32]
            .copy_from_slice(&(1u64 << 60).to_le_bytes()))
        .is_err());
        // Tensor data past the end of the file: opens, but reading it fails.
        let g = file("data", |b| {
            let n = b.len();
            b.truncate(n - 8);
        })
        .unwrap();
        assert!(g.data(&g.tensors["w"]).is_err());
        // Dimensions whose product overflows.
        let g = file("dims", |b| {
            let at = b.windows(8).position(|w| w == 32u64.to_le_bytes()).unwrap();
            b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        })
        .unwrap();
        assert_eq!(g.tensors["w"].bytes(), None);
        assert!(g.data(&g.tensors["w"]).is_err());
    }

    #[test]
    fn arrays_nested_too_deep_are_refused() {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        string(&mut b, "deep");
        b.extend(9u32.to_le_bytes());
        for _ in 0..100_000 {
            b.extend(9u32.to_le_bytes());
            b.extend(1u64.to_le_bytes());
        }
        let path = std::env::temp_dir().join(format!("basalt-gguf-deep-{}", std::process::id()));
        std::fs::write(&path, &b).unwrap();
        let g = Gguf::open(&path);
        let _ = std::fs::remove_file(&path);
        assert!(g.is_err());
    }
}
