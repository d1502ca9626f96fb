//! The canonical conversation request, its response, and the stream events every
//! generation produces, whatever wire API asked for it.

use crate::guardrail::{GuardText, GuardrailRef, GuardrailTrace};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One piece of message content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    Text(String),
    /// Text the model sees like any other, and that a guardrail checks in
    /// place of the message's other blocks (Converse `guardContent`).
    Guarded(GuardText),
}

impl ContentBlock {
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t),
            Self::Guarded(g) => Some(&g.text),
        }
    }
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

impl Message {
    #[must_use]
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// All text blocks of the message joined together.
    #[must_use]
    pub fn joined_text(&self) -> String {
        self.content
            .iter()
            .filter_map(ContentBlock::as_text)
            .collect()
    }
}

/// Sampling and length controls. `None` means "the model's default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceConfig {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub stop_sequences: Vec<String>,
    pub seed: Option<u32>,
}

/// A chat request: a conversation for a model, plus how to sample it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model_id: String,
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    /// A raw completion prompt (Meta Llama InvokeModel body); when set the chat
    /// template is not applied and `messages` is empty.
    pub raw_prompt: Option<String>,
    pub inference: InferenceConfig,
    /// A guardrail to apply to the input and the output.
    pub guardrail: Option<GuardrailRef>,
}

impl ChatRequest {
    /// Structural checks that hold for every model. Model-specific limits (context
    /// window, max tokens) are checked where the model is known.
    pub fn validate(&self) -> crate::Result<()> {
        if self.raw_prompt.is_none() {
            if self.messages.is_empty() {
                return Err(crate::Error::validation(
                    "The messages field must contain at least one message.",
                ));
            }
            if self.messages[0].role != Role::User {
                return Err(crate::Error::validation(
                    "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
                ));
            }
            for pair in self.messages.windows(2) {
                if pair[0].role == pair[1].role {
                    return Err(crate::Error::validation(
                        "A conversation must alternate between user and assistant roles.",
                    ));
                }
            }
            for (i, m) in self.messages.iter().enumerate() {
                if m.content.is_empty() {
                    return Err(crate::Error::validation(format!(
                        "The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
                    )));
                }
            }
        }
        let inf = &self.inference;
        if inf.max_tokens == Some(0) {
            return Err(crate::Error::validation(
                "The maximum tokens you requested must be at least 1.",
            ));
        }
        if let Some(t) = inf.temperature {
            if !(0.0..=2.0).contains(&t) || t.is_nan() {
                return Err(crate::Error::validation(format!(
                    "temperature must be between 0 and 2, got {t}"
                )));
            }
        }
        if let Some(p) = inf.top_p {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Err(crate::Error::validation(format!(
                    "topP must be between 0 and 1, got {p}"
                )));
            }
        }
        if inf.stop_sequences.len() > 8 || inf.stop_sequences.iter().any(String::is_empty) {
            return Err(crate::Error::validation(
                "stopSequences takes at most 8 non-empty strings.",
            ));
        }
        Ok(())
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    /// A guardrail blocked the input or the output.
    GuardrailIntervened,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Input tokens served from the KV prefix cache instead of being recomputed.
    pub cache_read_input_tokens: u32,
}

impl Usage {
    #[must_use]
    pub fn total_tokens(&self) -> u32 {
        self.input_tokens + self.output_tokens
    }
}

/// The one stream-event type every generation produces, in this order:
/// `Start`, any number of `TextDelta`, at most one `Guardrail`, then `Stop`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The prompt has been accepted and evaluated; generation begins.
    Start {
        input_tokens: u32,
        cached_tokens: u32,
    },
    /// The next piece of generated text (always whole UTF-8 characters).
    TextDelta(String),
    /// What the guardrail found; sent once, just before `Stop`, when the
    /// request asked for a guardrail.
    Guardrail(Box<GuardrailTrace>),
    /// Generation ended.
    Stop {
        reason: StopReason,
        /// The stop sequence that ended the generation, if one did.
        stop_sequence: Option<String>,
        usage: Usage,
    },
}

/// A finished, non-streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub stop_reason: StopReason,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
    pub latency_ms: u64,
    pub guardrail: Option<GuardrailTrace>,
}
