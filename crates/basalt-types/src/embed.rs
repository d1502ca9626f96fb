//! Embedding calls: texts in, one vector per text out.

/// Texts to embed with one embedding model.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub model_id: String,
    pub inputs: Vec<String>,
    /// Scale each vector to unit length (what cosine search wants).
    pub normalize: bool,
    /// The vector length the caller asks for; the model must produce exactly
    /// that (basalt does not truncate vectors).
    pub dimensions: Option<u32>,
}

/// One vector per input, in order, with the tokens each input used.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedResponse {
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: Vec<u32>,
}

impl EmbedResponse {
    /// Tokens of every input together (what a call is metered on).
    #[must_use]
    pub fn total_tokens(&self) -> u32 {
        self.input_tokens.iter().sum()
    }
}

/// Most inputs one embedding call may carry.
pub const MAX_EMBED_INPUTS: usize = 2048;

impl EmbedRequest {
    /// Checks the request before any work.
    pub fn validate(&self) -> crate::Result<()> {
        if self.inputs.is_empty() {
            return Err(crate::Error::validation(
                "The input must contain at least one text.",
            ));
        }
        if self.inputs.len() > MAX_EMBED_INPUTS {
            return Err(crate::Error::validation(format!(
                "The input has {} texts; at most {MAX_EMBED_INPUTS} are allowed in one call.",
                self.inputs.len()
            )));
        }
        if let Some(i) = self.inputs.iter().position(String::is_empty) {
            return Err(crate::Error::validation(format!(
                "Input {i} is empty; every text to embed needs at least one character."
            )));
        }
        Ok(())
    }
}

/// Documents to score against one query with a reranking model.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankRequest {
    pub model_id: String,
    pub query: String,
    pub documents: Vec<String>,
}

/// One relevance score per document, in order, from 0 (unrelated) to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankResponse {
    pub scores: Vec<f32>,
    /// Prompt tokens of every query/document pair together.
    pub input_tokens: u32,
    /// Of those, tokens served from the prefix cache.
    pub cached_tokens: u32,
}

/// Most documents one rerank call may carry (Bedrock's Rerank limit).
pub const MAX_RERANK_DOCUMENTS: usize = 1000;

impl RerankRequest {
    /// Checks the request before any work.
    pub fn validate(&self) -> crate::Result<()> {
        if self.query.trim().is_empty() {
            return Err(crate::Error::validation(
                "The rerank query must not be empty.",
            ));
        }
        if self.documents.is_empty() || self.documents.len() > MAX_RERANK_DOCUMENTS {
            return Err(crate::Error::validation(format!(
                "A rerank call takes 1 to {MAX_RERANK_DOCUMENTS} documents, got {}.",
                self.documents.len()
            )));
        }
        Ok(())
    }
}
