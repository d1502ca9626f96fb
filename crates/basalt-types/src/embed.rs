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
