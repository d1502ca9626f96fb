//! Model providers behind one small trait: count tokens exactly and stream a
//! generation. The local provider runs a GGUF model on the basalt engine; later
//! providers (hosted endpoints, remote APIs, the scripted test double) implement
//! the same trait.

mod local;
pub mod source;

use async_trait::async_trait;
use basalt_engine::EngineStats;
use basalt_types::{ChatRequest, Result, StreamEvent};

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

    /// Live engine counters, when the provider runs a local engine.
    fn engine_stats(&self) -> Option<&EngineStats> {
        None
    }
}
