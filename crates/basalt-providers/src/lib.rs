//! Model providers behind one small trait: count tokens exactly, stream a
//! generation, embed texts. The local providers run GGUF models on the basalt
//! engine (chat models on the scheduler, embedding models on the embedder); later
//! providers (hosted endpoints, remote APIs, the scripted test double) implement
//! the same trait.

pub mod convert;
mod embedding;
mod local;
pub mod source;

use async_trait::async_trait;
pub use basalt_engine::{dot, StaticEmbeddings};
use basalt_engine::{EmbedStats, EngineStats};
use basalt_types::{
    ChatRequest, EmbedRequest, EmbedResponse, Error, RerankRequest, RerankResponse, Result,
    StreamEvent,
};

pub use embedding::LocalEmbedder;
pub use local::{LocalModel, LocalSettings};

/// Events of one generation, in order: `Start`, `TextDelta`*, `Stop` (or an error).
/// Dropping the receiver cancels the generation.
pub type EventStream = tokio::sync::mpsc::Receiver<Result<StreamEvent>>;

/// Something that can run a conversation.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Input tokens the request would use, counted with the model's own tokenizer.
    async fn count_tokens(&self, request: &ChatRequest) -> Result<u32>;

    /// Checks the request against the model's limits and starts generating.
    /// Errors here happen before any work is done.
    async fn stream(&self, request: ChatRequest) -> Result<EventStream>;

    /// Embeds texts, one vector per input. Chat models answer ValidationException.
    async fn embed(&self, request: EmbedRequest) -> Result<EmbedResponse> {
        Err(Error::validation(format!(
            "The model {} does not produce embeddings; use an embedding model such as sentence-transformers.all-minilm-l6-v2.",
            request.model_id
        )))
    }

    /// Scores how relevant each document is to the query. Local chat models
    /// rerank by the probability they give to answering "yes" when asked
    /// whether the document is relevant; embedding models cannot rerank.
    async fn rerank(&self, request: RerankRequest) -> Result<RerankResponse> {
        Err(Error::validation(format!(
            "The model {} cannot rerank; use a local text model such as google.gemma-3-270m.",
            request.model_id
        )))
    }

    /// Word-piece tokens of `text` under the embedding model's tokenizer, without
    /// special tokens (what chunkers count). Chat models answer ValidationException.
    fn count_embedding_tokens(&self, _text: &str) -> Result<usize> {
        Err(Error::validation("This model does not produce embeddings."))
    }

    /// Per-token static embeddings distilled from this embedding model (built
    /// on first use, then cached on disk), for microsecond-scale semantic checks.
    async fn static_embeddings(&self) -> Result<std::sync::Arc<StaticEmbeddings>> {
        Err(Error::validation("This model does not produce embeddings."))
    }

    /// Length of the vectors [`Provider::embed`] returns, for embedding models.
    fn embedding_dimension(&self) -> Option<usize> {
        None
    }

    /// Live engine counters, when the provider runs a local engine.
    fn engine_stats(&self) -> Option<&EngineStats> {
        None
    }

    /// Live embedder counters, when the provider runs a local embedding model.
    fn embed_stats(&self) -> Option<&EmbedStats> {
        None
    }

    /// Why the provider cannot serve, when it cannot (a model that failed to load).
    fn unavailable_reason(&self) -> Option<&str> {
        None
    }
}
