//! Guardrail requests and results: which guardrail a call asks for, what was
//! checked, and what each policy found. `basalt-guardrails` produces the
//! results; the gateway attaches them to generations; the server renders them.

/// Where checked text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardSource {
    /// The user's prompt.
    Input,
    /// The model's answer.
    Output,
}

/// What a piece of checked text is, for contextual grounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// The reference the answer must be grounded in.
    GroundingSource,
    /// The user's question the answer must be relevant to.
    Query,
    /// Text to check with every other policy.
    GuardContent,
}

/// One text block to check, with its qualifiers (none = an ordinary block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardText {
    pub text: String,
    pub qualifiers: Vec<Qualifier>,
}

impl GuardText {
    #[must_use]
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            qualifiers: Vec::new(),
        }
    }

    #[must_use]
    pub fn has(&self, q: Qualifier) -> bool {
        self.qualifiers.contains(&q)
    }

    /// True when the guardrail checks this text itself (an ordinary block, or
    /// one marked `guard_content`); grounding sources and queries are only
    /// context.
    #[must_use]
    pub fn is_checked(&self) -> bool {
        self.qualifiers.is_empty() || self.has(Qualifier::GuardContent)
    }
}

/// How much of an assessment a trace or an ApplyGuardrail answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceLevel {
    #[default]
    Disabled,
    /// Only the policies that intervened.
    Enabled,
    /// Every policy's findings, also those that did not intervene.
    Full,
}

/// How a guarded stream releases output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamMode {
    /// Each chunk is held until it has passed the guardrail.
    #[default]
    Sync,
    /// Chunks stream at once; the guardrail checks them behind and stops the
    /// stream when it intervenes.
    Async,
}

/// A call's request to apply a guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailRef {
    /// A guardrail id or ARN.
    pub identifier: String,
    /// `DRAFT` or a published version number.
    pub version: String,
    pub trace: TraceLevel,
    pub stream_mode: StreamMode,
    /// Grounding sources and queries the guardrail checks the answer
    /// against without the model seeing them as messages (RetrieveAndGenerate
    /// passes its search results and the user's query here).
    pub context: Vec<GuardText>,
    /// `guardContent` blocks of the system prompt: checked with the input.
    pub system: Vec<GuardText>,
}

impl GuardrailRef {
    /// A reference to `version` of `identifier`, with no trace, sync streaming
    /// and no extra context.
    #[must_use]
    pub fn new(identifier: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            version: version.into(),
            trace: TraceLevel::Disabled,
            stream_mode: StreamMode::Sync,
            context: Vec::new(),
            system: Vec::new(),
        }
    }
}

/// Strength of a content filter, and confidence of a finding, on one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    None,
    Low,
    Medium,
    High,
}

impl Level {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NONE" => Self::None,
            "LOW" => Self::Low,
            "MEDIUM" => Self::Medium,
            "HIGH" => Self::High,
            _ => return None,
        })
    }
}

/// What a policy did about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingAction {
    Blocked,
    Anonymized,
    /// Detected only (the policy's action is NONE, or it is below threshold).
    None,
}

/// A denied topic that the text touches.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicFinding {
    pub name: String,
    pub action: FindingAction,
    pub detected: bool,
}

/// A content-filter verdict for one category.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentFinding {
    /// `HATE`, `INSULTS`, `SEXUAL`, `VIOLENCE`, `MISCONDUCT` or `PROMPT_ATTACK`.
    pub category: String,
    pub confidence: Level,
    pub strength: Level,
    pub action: FindingAction,
    pub detected: bool,
}

/// A custom or managed word found in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct WordFinding {
    /// The text as it appeared.
    pub matched: String,
    /// `Some("PROFANITY")` for a managed list, `None` for a custom word.
    pub managed_list: Option<String>,
    pub action: FindingAction,
    pub detected: bool,
}

/// A PII entity or custom regex match.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiFinding {
    /// The PII type (`EMAIL`, …) or, for a custom regex, its name.
    pub kind: String,
    /// Only for custom regexes: the pattern.
    pub regex: Option<String>,
    pub matched: String,
    pub action: FindingAction,
    pub detected: bool,
}

/// A contextual grounding or relevance score.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundingFinding {
    /// `GROUNDING` or `RELEVANCE`.
    pub kind: String,
    pub threshold: f64,
    pub score: f64,
    pub action: FindingAction,
    pub detected: bool,
}

/// Text units each policy processed (1 unit = up to 1,000 characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardrailUnits {
    pub topic: u32,
    pub content: u32,
    pub word: u32,
    pub sensitive_information: u32,
    pub sensitive_information_free: u32,
    pub contextual_grounding: u32,
}

impl GuardrailUnits {
    /// Units over every policy.
    #[must_use]
    pub fn total(&self) -> u32 {
        self.topic
            + self.content
            + self.word
            + self.sensitive_information
            + self.sensitive_information_free
            + self.contextual_grounding
    }
}

/// Everything one guardrail evaluation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub topics: Vec<TopicFinding>,
    pub content: Vec<ContentFinding>,
    pub words: Vec<WordFinding>,
    pub pii: Vec<PiiFinding>,
    pub regexes: Vec<PiiFinding>,
    pub grounding: Vec<GroundingFinding>,
    pub units: GuardrailUnits,
    /// Characters checked, of characters given.
    pub characters_guarded: u32,
    pub characters_total: u32,
    pub latency_ms: u64,
}

/// The outcome of applying a guardrail to some text.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailOutcome {
    pub intervened: bool,
    /// Why it intervened (or that it did not), in words.
    pub action_reason: String,
    /// What to show instead of the text: the blocked message, or the text with
    /// sensitive information masked. Empty when nothing changed.
    pub outputs: Vec<String>,
    pub assessment: Assessment,
}

impl GuardrailOutcome {
    /// True when a policy blocked the text (not only masked it).
    #[must_use]
    pub fn blocked(&self) -> bool {
        let a = &self.assessment;
        let b = FindingAction::Blocked;
        a.topics.iter().any(|f| f.action == b)
            || a.content.iter().any(|f| f.action == b)
            || a.words.iter().any(|f| f.action == b)
            || a.pii.iter().any(|f| f.action == b)
            || a.regexes.iter().any(|f| f.action == b)
            || a.grounding.iter().any(|f| f.action == b)
    }
}

/// What a guarded generation reports about its guardrail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuardrailTrace {
    pub level: TraceLevel,
    pub input: Option<Assessment>,
    pub outputs: Vec<Assessment>,
    /// The model's own answer, when the guardrail replaced it.
    pub model_output: Option<String>,
    pub action_reason: Option<String>,
}
