//! The local inference engine on llama.cpp: loads a GGUF model, renders chat
//! prompts, counts tokens, and runs a scheduler thread that decodes many requests
//! together (continuous batching) with a KV prefix cache.
//!
//! Async code talks to the engine through bounded channels only: [`Engine::submit`]
//! never blocks, and answers [`EngineError::QueueFull`] when the admission queue is
//! full.

mod embed;
mod encoder;
mod gguf;
mod half;
mod output_head;
mod q8;
mod sampler;
mod scheduler;
mod static_embed;
mod stop;
mod team;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use basalt_types::{ChatRequest, Role, StreamEvent};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
pub use llama_cpp_2::token::LlamaToken;

pub use embed::{
    dot, normalize, EmbedResult, EmbedStats, Embedder, EmbedderConfig, KERNEL_INPUT_TOKENS,
};
pub use half::{dot_f16, f16_to_f32, f32_to_f16};
pub use sampler::SamplingParams;
pub use static_embed::StaticEmbeddings;

/// How to run one model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Path of the GGUF file.
    pub model_path: PathBuf,
    /// A llama.cpp built-in template name (`gemma`, `chatml`, `llama3`, …) or a
    /// template string; `None` uses the template stored in the GGUF.
    pub chat_template: Option<String>,
    /// Longest prompt + completion one request may use, in tokens. Each of the
    /// `parallel` sequences gets a KV cache of this size, which also keeps its
    /// last prompt and answer for prefix reuse.
    pub context_window: u32,
    /// CPU threads for decoding.
    pub threads: u32,
    /// Sequences decoded together in one batch.
    pub parallel: u32,
    /// Requests that may wait for a free sequence before new ones are throttled.
    pub max_queue: u32,
    /// Most tokens evaluated in one decode step (prompt chunks + one per sequence).
    pub batch_tokens: u32,
    /// Top-k used when a request sets a temperature but no top-k.
    pub default_top_k: u32,
    /// Compute the output projection (hidden state × vocabulary) with
    /// basalt's AVX-512 kernel where the CPU and model allow it, instead of
    /// llama.cpp's (see `output_head`). Off: always llama.cpp's.
    pub output_kernel: bool,
    /// Testing aid: also run llama.cpp's projection after the kernel's and
    /// count disagreements in [`EngineStats::output_kernel_disagreements`].
    pub verify_output_kernel: bool,
}

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the llama.cpp backend could not start: {0}")]
    Backend(String),
    #[error("model file {path} could not be loaded: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("the model has no chat template and the catalog names none")]
    NoTemplate,
    #[error("the chat template could not be applied: {0}")]
    Template(String),
    #[error("too many requests are waiting for this model (queue of {0} is full)")]
    QueueFull(u32),
    #[error("the engine has stopped")]
    Stopped,
    #[error("decoding failed: {0}")]
    Decode(String),
}

impl From<EngineError> for basalt_types::Error {
    fn from(e: EngineError) -> Self {
        use basalt_types::Error;
        match e {
            EngineError::QueueFull(_) => Error::throttling(e),
            EngineError::Template(_) | EngineError::NoTemplate => Error::validation(e),
            EngineError::Backend(_) | EngineError::Load { .. } | EngineError::Stopped => {
                Error::unavailable(e)
            }
            EngineError::Decode(_) => Error::internal(e),
        }
    }
}

/// Live counters of one engine, read by `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub queue_depth: AtomicI64,
    pub active_sequences: AtomicI64,
    pub prefix_cache_hits: AtomicU64,
    pub prefix_cache_hit_tokens: AtomicU64,
    pub prompt_tokens_evaluated: AtomicU64,
    pub tokens_generated: AtomicU64,
    pub decode_steps: AtomicU64,
    /// Decode steps whose logits came from the output kernel (`output_head`).
    pub output_kernel_steps: AtomicU64,
    /// With `verify_output_kernel`: sampled positions where the kernel's and
    /// llama.cpp's logits choose different greedy tokens.
    pub output_kernel_disagreements: AtomicU64,
}

/// A request ready for the scheduler: tokens in, events out.
pub struct Job {
    pub prompt: Vec<LlamaToken>,
    pub max_tokens: u32,
    pub sampling: SamplingParams,
    pub stop_sequences: Vec<String>,
    /// Where the scheduler sends events; dropping the receiver cancels the job.
    pub events: tokio::sync::mpsc::Sender<Result<StreamEvent, basalt_types::Error>>,
    /// Set for a scoring job: instead of generating, the scheduler evaluates
    /// the prompt and answers the log-probabilities of these next tokens.
    pub score: Option<Score>,
}

/// What a scoring job wants back: `logprobs[i]` is the log-probability, under
/// the full vocabulary, that `candidates[i]` follows the prompt.
pub struct Score {
    pub candidates: Vec<LlamaToken>,
    pub reply: tokio::sync::oneshot::Sender<Vec<f32>>,
}

/// Log-probabilities (log-softmax over all `logits`) of the `candidates`.
#[must_use]
pub fn candidate_logprobs(logits: &[f32], candidates: &[LlamaToken]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_z = max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
    candidates
        .iter()
        .map(|t| {
            usize::try_from(t.0)
                .ok()
                .and_then(|i| logits.get(i))
                .map_or(f32::NEG_INFINITY, |&l| l - log_z)
        })
        .collect()
}

/// A loaded model with its scheduler thread.
pub struct Engine {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    jobs: SyncSender<Job>,
    stats: Arc<EngineStats>,
    config: EngineConfig,
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            if std::env::var_os("BASALT_LLAMA_LOGS").is_none() {
                backend.void_logs();
            }
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

/// Loads a GGUF file (chat or embedding model). Blocking.
pub(crate) fn load_model(path: &std::path::Path) -> Result<LlamaModel, EngineError> {
    let backend = backend()?;
    let load_err = |reason: String| EngineError::Load {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(load_err("no such file".into()));
    }
    LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| load_err(e.to_string()))
}

impl Engine {
    /// Loads the model and starts its scheduler thread. Blocking: call it from a
    /// blocking context.
    pub fn load(config: EngineConfig) -> Result<Self, EngineError> {
        let backend = backend()?;
        let model = load_model(&config.model_path)?;
        let template = match &config.chat_template {
            Some(t) => {
                LlamaChatTemplate::new(t).map_err(|e| EngineError::Template(e.to_string()))?
            }
            None => model
                .chat_template(None)
                .map_err(|_| EngineError::NoTemplate)?,
        };
        let model = Arc::new(model);
        let stats = Arc::new(EngineStats::default());
        let (jobs, rx) = sync_channel::<Job>(config.max_queue.max(1) as usize);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_model = Arc::clone(&model);
        let thread_stats = Arc::clone(&stats);
        let thread_config = config.clone();
        std::thread::Builder::new()
            .name("basalt-engine".into())
            .spawn(move || {
                scheduler::run(
                    backend,
                    &thread_model,
                    &thread_config,
                    &thread_stats,
                    &rx,
                    &ready_tx,
                );
            })
            .map_err(|e| EngineError::Backend(e.to_string()))?;
        ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        let engine = Self {
            model,
            template,
            jobs,
            stats,
            config,
        };
        // Fail at load time, not on the first request, if the template is unusable.
        engine.render_messages(&[], &[basalt_types::Message::text(Role::User, "hi")])?;
        Ok(engine)
    }

    #[must_use]
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The model's training context length.
    #[must_use]
    pub fn n_ctx_train(&self) -> u32 {
        self.model.n_ctx_train()
    }

    fn render_messages(
        &self,
        system: &[String],
        messages: &[basalt_types::Message],
    ) -> Result<String, EngineError> {
        let mut chat = Vec::with_capacity(messages.len() + 1);
        let template_err = |e: &dyn std::fmt::Display| EngineError::Template(e.to_string());
        if !system.is_empty() {
            chat.push(
                LlamaChatMessage::new("system".into(), system.join("\n"))
                    .map_err(|e| template_err(&e))?,
            );
        }
        for m in messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            chat.push(
                LlamaChatMessage::new(role.into(), m.joined_text())
                    .map_err(|e| template_err(&e))?,
            );
        }
        self.model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| template_err(&e))
    }

    /// The exact prompt text the model sees for a request.
    pub fn render(&self, request: &ChatRequest) -> Result<String, EngineError> {
        match &request.raw_prompt {
            Some(p) => Ok(p.clone()),
            None => self.render_messages(&request.system, &request.messages),
        }
    }

    /// Tokenizes prompt text with the model's own tokenizer, adding BOS when the
    /// model wants one and the text does not already start with it.
    #[must_use]
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let bos_text = vocab.token_to_piece(vocab.bos(), true, None);
        let has_bos = !bos_text.is_empty() && text.as_bytes().starts_with(&bos_text);
        vocab.tokenize(text.as_bytes(), !has_bos, true)
    }

    /// Renders and tokenizes a request: the prompt the scheduler would run.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<LlamaToken>, EngineError> {
        Ok(self.tokenize(&self.render(request)?))
    }

    /// The single tokens that spell each of `words` (with and without a leading
    /// space), for scoring; words that take more than one token are skipped.
    #[must_use]
    pub fn word_tokens(&self, words: &[&str]) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let mut out: Vec<LlamaToken> = Vec::new();
        for w in words {
            for text in [w.to_string(), format!(" {w}")] {
                if let [t] = vocab.tokenize(text.as_bytes(), false, false)[..] {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// The text of one token.
    #[must_use]
    pub fn token_text(&self, token: LlamaToken) -> String {
        String::from_utf8_lossy(&self.model.vocab().token_to_piece(token, false, None)).into_owned()
    }

    /// Queues a job. Never blocks: a full queue is an error at once.
    pub fn submit(&self, job: Job) -> Result<(), EngineError> {
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => EngineError::QueueFull(self.config.max_queue),
                    TrySendError::Disconnected(_) => EngineError::Stopped,
                })
            }
        }
    }
}

pub(crate) fn non_zero(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}
