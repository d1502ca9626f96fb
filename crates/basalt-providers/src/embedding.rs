//! The local embedding provider: a BERT-family GGUF on the engine's embedder.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_engine::{normalize, EmbedStats, Embedder, EmbedderConfig, StaticEmbeddings};
use basalt_types::{ChatRequest, EmbedRequest, EmbedResponse, Error, Result};

use crate::{EventStream, Provider};

/// A local embedding model: loaded, or failed to load (then every call answers
/// ServiceUnavailable with the reason).
pub struct LocalEmbedder {
    state: std::result::Result<Arc<Embedder>, String>,
    model_id: String,
    static_cache: std::path::PathBuf,
    statics: tokio::sync::OnceCell<Arc<StaticEmbeddings>>,
}

impl LocalEmbedder {
    /// Loads the model. Blocking; a failure is kept and reported on use.
    #[must_use]
    pub fn load(model_id: &str, config: EmbedderConfig) -> Self {
        let state = Embedder::load(config.clone())
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if let Err(e) = &state {
            tracing::error!(model = %config.model_path.display(), error = %e, "embedding model failed to load");
        }
        Self {
            state,
            model_id: model_id.to_string(),
            static_cache: StaticEmbeddings::cache_path(&config.model_path),
            statics: tokio::sync::OnceCell::new(),
        }
    }

    /// Why the model is unavailable, if it is.
    #[must_use]
    pub fn load_error(&self) -> Option<&str> {
        self.state.as_ref().err().map(String::as_str)
    }

    fn embedder(&self) -> Result<&Arc<Embedder>> {
        self.state.as_ref().map_err(|e| {
            Error::unavailable(format!(
                "The model is not available: it failed to load ({e})."
            ))
        })
    }

    fn not_chat(&self) -> Error {
        Error::validation(format!(
            "The model {} is an embedding model; it cannot generate text. Use it with InvokeModel ({{\"inputText\": ...}}) or /v1/embeddings.",
            self.model_id
        ))
    }
}

#[async_trait]
impl Provider for LocalEmbedder {
    async fn count_tokens(&self, _request: &ChatRequest) -> Result<u32> {
        Err(self.not_chat())
    }

    async fn stream(&self, _request: ChatRequest) -> Result<EventStream> {
        Err(self.not_chat())
    }

    async fn embed(&self, request: EmbedRequest) -> Result<EmbedResponse> {
        request.validate()?;
        let embedder = self.embedder()?;
        if let Some(want) = request.dimensions {
            let have = embedder.dimension();
            if want as usize != have {
                return Err(Error::validation(format!(
                    "dimensions = {want} is not available: {} produces {have}-dimensional vectors.",
                    request.model_id
                )));
            }
        }
        let tokens: Vec<_> = request
            .inputs
            .iter()
            .map(|t| embedder.tokenize(t))
            .collect();
        let input_tokens = tokens.iter().map(|t| t.len() as u32).collect();
        let reply = embedder.submit(tokens)?;
        let mut vectors = reply
            .await
            .map_err(|_| Error::internal("the embedding worker stopped"))??;
        if request.normalize {
            vectors.iter_mut().for_each(|v| normalize(v));
        }
        Ok(EmbedResponse {
            vectors,
            input_tokens,
        })
    }

    async fn static_embeddings(&self) -> Result<Arc<StaticEmbeddings>> {
        let embedder = self.embedder()?;
        self.statics
            .get_or_try_init(|| async {
                StaticEmbeddings::load_or_build(embedder, &self.static_cache)
                    .await
                    .map(Arc::new)
                    .map_err(|e| Error::unavailable(format!("static embeddings: {e}")))
            })
            .await
            .cloned()
    }

    fn count_embedding_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.embedder()?.count_tokens(text))
    }

    fn embedding_dimension(&self) -> Option<usize> {
        self.state.as_ref().ok().map(|e| e.dimension())
    }

    fn embed_stats(&self) -> Option<&EmbedStats> {
        self.state.as_ref().ok().map(|e| e.stats())
    }

    fn unavailable_reason(&self) -> Option<&str> {
        self.load_error()
    }
}
