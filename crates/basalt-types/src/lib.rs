//! Wire-neutral domain types shared by every basalt crate: the one canonical
//! conversation request, the one stream-event type, usage, and error kinds.
//!
//! Nothing here knows HTTP or any wire format; each wire API in `basalt-server`
//! translates into these types and back.

mod chat;
mod embed;
mod error;
pub mod guardrail;

pub use chat::{
    ChatRequest, ChatResponse, ContentBlock, InferenceConfig, Message, Role, StopReason,
    StreamEvent, Usage,
};
pub use embed::{
    EmbedRequest, EmbedResponse, RerankRequest, RerankResponse, MAX_EMBED_INPUTS,
    MAX_RERANK_DOCUMENTS,
};
pub use error::{Error, ErrorKind, Result};

/// A fresh request id (UUID v4), as AWS services return in `x-amzn-RequestId`.
#[must_use]
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
