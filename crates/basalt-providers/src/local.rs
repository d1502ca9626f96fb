//! The local provider: a GGUF model on the basalt engine, with the catalog's
//! limits (context window, default max tokens) checked before any work.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_engine::{Engine, EngineConfig, EngineStats, Job, SamplingParams};
use basalt_types::{ChatRequest, Error, Result};

use crate::{EventStream, Provider};

/// Catalog settings the local provider needs beyond the engine's.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub engine: EngineConfig,
    /// Completion length when a request sets none.
    pub default_max_tokens: u32,
}

/// A local model: loaded, or failed to load (then every call answers
/// ServiceUnavailable with the reason).
pub struct LocalModel {
    state: std::result::Result<Arc<Engine>, String>,
    settings: LocalSettings,
}

impl LocalModel {
    /// Loads the model. Blocking; never fails: a load failure is kept and
    /// reported on use, so one bad model does not stop the server.
    #[must_use]
    pub fn load(settings: LocalSettings) -> Self {
        let state = Engine::load(settings.engine.clone())
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if let Err(e) = &state {
            tracing::error!(model = %settings.engine.model_path.display(), error = %e, "model failed to load");
        }
        Self { state, settings }
    }

    /// Why the model is unavailable, if it is.
    #[must_use]
    pub fn load_error(&self) -> Option<&str> {
        self.state.as_ref().err().map(String::as_str)
    }

    fn engine(&self) -> Result<&Arc<Engine>> {
        self.state.as_ref().map_err(|e| {
            Error::unavailable(format!(
                "The model is not available: it failed to load ({e})."
            ))
        })
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[async_trait]
impl Provider for LocalModel {
    async fn count_tokens(&self, request: &ChatRequest) -> Result<u32> {
        request.validate()?;
        let engine = self.engine()?;
        Ok(engine.prompt_tokens(request)?.len() as u32)
    }

    async fn stream(&self, request: ChatRequest) -> Result<EventStream> {
        request.validate()?;
        let engine = self.engine()?;
        let prompt = engine.prompt_tokens(&request)?;
        let window = engine.config().context_window as usize;
        if prompt.len() >= window {
            return Err(Error::validation(format!(
                "Input is too long for requested model: the prompt is {} tokens and the model's context window is {window} tokens.",
                prompt.len()
            )));
        }
        let room = (window - prompt.len()) as u32;
        let inf = &request.inference;
        let max_tokens = match inf.max_tokens {
            Some(m) if m > room => {
                return Err(Error::validation(format!(
                    "The prompt ({} tokens) plus maxTokens ({m}) exceeds the model's context window of {window} tokens. Lower maxTokens to at most {room}.",
                    prompt.len()
                )))
            }
            Some(m) => m,
            None => self.settings.default_max_tokens.min(room),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(max_tokens as usize + 8);
        engine.submit(Job {
            prompt,
            max_tokens,
            sampling: SamplingParams {
                temperature: inf.temperature.unwrap_or(1.0),
                top_p: inf.top_p.unwrap_or(1.0),
                top_k: inf.top_k.unwrap_or(0),
                seed: inf.seed.map_or_else(random_seed, u64::from),
            },
            stop_sequences: inf.stop_sequences.clone(),
            events: tx,
        })?;
        Ok(rx)
    }

    fn engine_stats(&self) -> Option<&EngineStats> {
        self.state.as_ref().ok().map(|e| e.stats())
    }

    fn unavailable_reason(&self) -> Option<&str> {
        self.load_error()
    }
}
