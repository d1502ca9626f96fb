//! The domain of knowledge bases: what a knowledge base, a data source, an
//! ingestion job and a retrieval are, independent of any wire API. Stored as
//! JSON in the store; `echo` fields keep a client's configuration exactly as
//! given, for the control plane to return.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A knowledge base: a named index over its data sources' chunks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnowledgeBase {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub role_arn: String,
    /// The catalog id of the embedding model (resolved from an ARN or id).
    pub embedding_model: String,
    /// Configuration as the client gave it (returned by Get).
    pub echo: Value,
    pub status: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Where a data source's documents come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum SourceKind {
    /// An S3 bucket, which the config resolves to a local directory; only keys
    /// under one of `prefixes` (all when empty) are ingested.
    S3 {
        bucket: String,
        prefixes: Vec<String>,
    },
    /// Documents pushed with IngestKnowledgeBaseDocuments.
    Custom,
}

/// How documents are cut into chunks (token counts from the embedding
/// model's tokenizer).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Chunking {
    FixedSize {
        max_tokens: u32,
        overlap_percentage: u32,
    },
    Hierarchical {
        parent_max_tokens: u32,
        child_max_tokens: u32,
        overlap_tokens: u32,
    },
    Semantic {
        max_tokens: u32,
        buffer_size: u32,
        breakpoint_percentile_threshold: u32,
    },
    /// Each document is one chunk.
    None,
}

impl Chunking {
    /// The default when a data source names none: fixed windows of 200 tokens
    /// with 20% overlap (Bedrock uses 300; the default embedding model reads at
    /// most 256, so 200 keeps every chunk whole for it).
    pub const DEFAULT: Self = Self::FixedSize {
        max_tokens: 200,
        overlap_percentage: 20,
    };

    /// The most tokens a chunk that is embedded can hold (HIERARCHICAL
    /// embeds the children); `None` for NONE, where a chunk is a document.
    #[must_use]
    pub fn embedded_max_tokens(self) -> Option<u32> {
        match self {
            Self::FixedSize { max_tokens, .. } | Self::Semantic { max_tokens, .. } => {
                Some(max_tokens)
            }
            Self::Hierarchical {
                child_max_tokens, ..
            } => Some(child_max_tokens),
            Self::None => None,
        }
    }
}

/// What happens to a data source's chunks when the data source is deleted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum DeletionPolicy {
    Delete,
    Retain,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataSource {
    pub id: String,
    pub kb_id: String,
    pub name: String,
    pub description: Option<String>,
    pub source: SourceKind,
    pub chunking: Chunking,
    pub deletion_policy: DeletionPolicy,
    /// Configuration as the client gave it.
    pub echo: Value,
    pub status: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Counters of one ingestion job (as Bedrock reports them).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobStatistics {
    pub documents_scanned: u64,
    pub metadata_documents_scanned: u64,
    pub new_documents_indexed: u64,
    pub modified_documents_indexed: u64,
    pub metadata_documents_modified: u64,
    pub documents_deleted: u64,
    pub documents_failed: u64,
    pub documents_skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestionJob {
    pub id: String,
    pub kb_id: String,
    pub ds_id: String,
    pub description: Option<String>,
    /// STARTING, IN_PROGRESS, COMPLETE or FAILED.
    pub status: String,
    pub statistics: JobStatistics,
    pub failure_reasons: Vec<String>,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A document of a data source, as the index knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    pub kb_id: String,
    pub ds_id: String,
    /// The S3 key (relative path) or the custom document id.
    pub key: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub updated_at_ms: i64,
}

/// A document pushed directly into a CUSTOM data source.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineDocument {
    pub id: String,
    pub content: InlineContent,
    pub metadata: Map<String, Value>,
}

/// What an inline document holds.
#[derive(Debug, Clone, PartialEq)]
pub enum InlineContent {
    Text(String),
    /// A file's bytes, parsed by the type `name`'s extension says (`.pdf`,
    /// `.html`, ...) when the document is ingested: a file that does not
    /// parse fails that document, not the request.
    File {
        name: String,
        bytes: Vec<u8>,
    },
}

impl InlineContent {
    /// The bytes a document's content hash covers.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::File { bytes, .. } => bytes,
        }
    }
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchType {
    /// Vectors only.
    #[default]
    Semantic,
    /// Vectors and BM25, fused by reciprocal rank.
    Hybrid,
}

/// Where a retrieved chunk came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Location {
    /// `s3://bucket/key`
    S3 {
        uri: String,
    },
    Custom {
        id: String,
    },
}

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieved {
    pub chunk_id: i64,
    /// The chunk's text (the parent chunk's, for hierarchical chunking).
    pub text: String,
    pub score: f64,
    pub metadata: Map<String, Value>,
    pub location: Location,
    pub document_id: String,
}

/// Reranking of retrieved results with a local model.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerank {
    /// A catalog model id or foundation-model ARN.
    pub model_id: String,
    /// Results kept after reranking; `None` keeps every retrieved result.
    pub number_of_results: Option<usize>,
    pub metadata: RerankMetadata,
}

/// Which metadata fields the reranker reads with each chunk's text.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RerankMetadata {
    /// The text only.
    #[default]
    None,
    /// Every field of the document's metadata.
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl RerankMetadata {
    /// The text the reranker reads: `key: value` lines of the selected
    /// metadata, then the chunk's text.
    #[must_use]
    pub fn document(&self, text: &str, metadata: &Map<String, Value>) -> String {
        let mut out = String::new();
        for (k, v) in metadata {
            if k.starts_with("x-amz-bedrock-kb-") {
                continue;
            }
            let keep = match self {
                Self::None => false,
                Self::All => true,
                Self::Include(keys) => keys.contains(k),
                Self::Exclude(keys) => !keys.contains(k),
            };
            if keep {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out.push_str(text);
        out
    }
}

/// Now, in Unix milliseconds.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fresh 10-character upper-case alphanumeric id, as Bedrock's look.
#[must_use]
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..10]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_metadata_selects_fields_and_skips_basalts_own() {
        let meta: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "author": "Ada", "year": 1843, "x-amz-bedrock-kb-chunk-id": "7"
        }))
        .unwrap_or_default();
        assert_eq!(RerankMetadata::None.document("text", &meta), "text");
        assert_eq!(
            RerankMetadata::All.document("text", &meta),
            "author: Ada\nyear: 1843\ntext"
        );
        assert_eq!(
            RerankMetadata::Include(vec!["year".into()]).document("t", &meta),
            "year: 1843\nt"
        );
        assert_eq!(
            RerankMetadata::Exclude(vec!["year".into()]).document("t", &meta),
            "author: Ada\nt"
        );
    }
}
