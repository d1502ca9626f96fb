//! A guardrail's configuration — its policies and blocked messages — and the
//! checks that keep a bad configuration from ever being stored. Serialized as
//! JSON into the store.

use basalt_types::guardrail::{GuardSource, Level};
use basalt_types::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::pii::PII_TYPES;
use crate::semantic::CATEGORIES;

/// What a policy does on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Block,
    /// Only for sensitive information: mask the match.
    Anonymize,
    /// Detect and report, change nothing.
    None,
}

impl Action {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "BLOCK",
            Self::Anonymize => "ANONYMIZE",
            Self::None => "NONE",
        }
    }

    pub fn parse(s: &str, field: &str, allow_anonymize: bool) -> Result<Self> {
        match s {
            "BLOCK" => Ok(Self::Block),
            "NONE" => Ok(Self::None),
            "ANONYMIZE" if allow_anonymize => Ok(Self::Anonymize),
            _ => Err(Error::validation(format!(
                "{field} must be one of {}, got {s:?}.",
                if allow_anonymize {
                    "BLOCK, ANONYMIZE, NONE"
                } else {
                    "BLOCK, NONE"
                }
            ))),
        }
    }
}

/// The per-direction switches every policy entry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sides {
    pub input_action: Action,
    pub output_action: Action,
    pub input_enabled: bool,
    pub output_enabled: bool,
}

impl Sides {
    /// `action` on both input and output, both enabled.
    #[must_use]
    pub fn both(action: Action) -> Self {
        Self {
            input_action: action,
            output_action: action,
            input_enabled: true,
            output_enabled: true,
        }
    }

    /// The action on `source`, or `None` when the entry is disabled there.
    #[must_use]
    pub fn on(&self, source: GuardSource) -> Option<Action> {
        match source {
            GuardSource::Input => self.input_enabled.then_some(self.input_action),
            GuardSource::Output => self.output_enabled.then_some(self.output_action),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentFilter {
    pub category: String,
    pub input_strength: Strength,
    pub output_strength: Strength,
    pub sides: Sides,
}

/// A strength as stored (`NONE`…`HIGH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strength {
    None,
    Low,
    Medium,
    High,
}

impl Strength {
    #[must_use]
    pub fn level(self) -> Level {
        match self {
            Self::None => Level::None,
            Self::Low => Level::Low,
            Self::Medium => Level::Medium,
            Self::High => Level::High,
        }
    }

    pub fn parse(s: &str, field: &str) -> Result<Self> {
        Ok(match Level::parse(s) {
            Some(Level::None) => Self::None,
            Some(Level::Low) => Self::Low,
            Some(Level::Medium) => Self::Medium,
            Some(Level::High) => Self::High,
            None => {
                return Err(Error::validation(format!(
                    "{field} must be one of NONE, LOW, MEDIUM, HIGH, got {s:?}."
                )))
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub name: String,
    pub definition: String,
    pub examples: Vec<String>,
    pub sides: Sides,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Word {
    pub text: String,
    pub sides: Sides,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PiiEntity {
    pub kind: String,
    /// The entry's `action` (the defaults of both sides).
    pub action: Action,
    pub sides: Sides,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexEntity {
    pub name: String,
    pub description: Option<String>,
    pub pattern: String,
    pub action: Action,
    pub sides: Sides,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingFilter {
    /// `GROUNDING` or `RELEVANCE`.
    pub kind: String,
    pub threshold: f64,
    pub action: Action,
    pub enabled: bool,
}

/// Everything a guardrail checks, and what it says when it blocks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub blocked_input_messaging: String,
    pub blocked_outputs_messaging: String,
    #[serde(default)]
    pub content: Option<Vec<ContentFilter>>,
    #[serde(default)]
    pub content_tier: Option<String>,
    #[serde(default)]
    pub topics: Option<Vec<Topic>>,
    #[serde(default)]
    pub topic_tier: Option<String>,
    #[serde(default)]
    pub words: Option<Vec<Word>>,
    /// The managed lists (only `PROFANITY` exists).
    #[serde(default)]
    pub managed_words: Option<Vec<(String, Sides)>>,
    #[serde(default)]
    pub pii: Option<Vec<PiiEntity>>,
    #[serde(default)]
    pub regexes: Option<Vec<RegexEntity>>,
    #[serde(default)]
    pub grounding: Option<Vec<GroundingFilter>>,
}

fn check_len(value: &str, field: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::validation(format!(
            "{field} must be {min} to {max} characters long, got {n}."
        )));
    }
    Ok(())
}

fn check_count<T>(items: &[T], field: &str, min: usize, max: usize) -> Result<()> {
    if items.len() < min || items.len() > max {
        return Err(Error::validation(format!(
            "{field} must have {min} to {max} entries, got {}.",
            items.len()
        )));
    }
    Ok(())
}

/// Checks a guardrail name (1–50 of `[0-9a-zA-Z-_]`).
pub fn check_name(name: &str) -> Result<()> {
    check_len(name, "name", 1, 50)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::validation(format!(
            "name {name:?} is not valid: use letters, digits, '-' and '_'."
        )));
    }
    Ok(())
}

impl Policy {
    /// Every constraint Bedrock enforces on a configuration, with a message
    /// naming the field.
    pub fn validate(&self) -> Result<()> {
        check_len(
            &self.blocked_input_messaging,
            "blockedInputMessaging",
            1,
            500,
        )?;
        check_len(
            &self.blocked_outputs_messaging,
            "blockedOutputsMessaging",
            1,
            500,
        )?;
        if let Some(filters) = &self.content {
            check_count(filters, "contentPolicyConfig.filtersConfig", 1, 6)?;
            for (i, f) in filters.iter().enumerate() {
                let at = format!("contentPolicyConfig.filtersConfig.{i}");
                if !CATEGORIES.contains(&f.category.as_str()) {
                    return Err(Error::validation(format!(
                        "{at}.type must be one of {}, got {:?}.",
                        CATEGORIES.join(", "),
                        f.category
                    )));
                }
                if filters[..i].iter().any(|g| g.category == f.category) {
                    return Err(Error::validation(format!(
                        "{at}.type {} is configured twice.",
                        f.category
                    )));
                }
                if f.category == "PROMPT_ATTACK" && f.output_strength != Strength::None {
                    return Err(Error::validation(
                        "The PROMPT_ATTACK filter applies to input only: its outputStrength must be NONE.",
                    ));
                }
            }
        }
        if let Some(topics) = &self.topics {
            check_count(topics, "topicPolicyConfig.topicsConfig", 1, 30)?;
            for (i, t) in topics.iter().enumerate() {
                let at = format!("topicPolicyConfig.topicsConfig.{i}");
                check_len(&t.name, &format!("{at}.name"), 1, 100)?;
                if !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " -_!?.".contains(c))
                {
                    return Err(Error::validation(format!(
                        "{at}.name {:?} may use only letters, digits, spaces and - _ ! ? .",
                        t.name
                    )));
                }
                if topics[..i].iter().any(|u| u.name == t.name) {
                    return Err(Error::validation(format!(
                        "{at}.name {:?} is used by another topic.",
                        t.name
                    )));
                }
                check_len(&t.definition, &format!("{at}.definition"), 1, 200)?;
                check_count(&t.examples, &format!("{at}.examples"), 0, 5)?;
                for (j, e) in t.examples.iter().enumerate() {
                    check_len(e, &format!("{at}.examples.{j}"), 1, 100)?;
                }
            }
        }
        if let Some(words) = &self.words {
            check_count(words, "wordPolicyConfig.wordsConfig", 1, 10_000)?;
            for (i, w) in words.iter().enumerate() {
                check_len(
                    &w.text,
                    &format!("wordPolicyConfig.wordsConfig.{i}.text"),
                    1,
                    100,
                )?;
            }
        }
        if let Some(lists) = &self.managed_words {
            for (name, _) in lists {
                if name != "PROFANITY" {
                    return Err(Error::validation(format!(
                        "managedWordListsConfig type must be PROFANITY, got {name:?}."
                    )));
                }
            }
        }
        if let Some(entities) = &self.pii {
            check_count(
                entities,
                "sensitiveInformationPolicyConfig.piiEntitiesConfig",
                1,
                usize::MAX,
            )?;
            for (i, e) in entities.iter().enumerate() {
                if !PII_TYPES.contains(&e.kind.as_str()) {
                    return Err(Error::validation(format!(
                        "sensitiveInformationPolicyConfig.piiEntitiesConfig.{i}.type {:?} is not a PII entity type. Valid types: {}.",
                        e.kind,
                        PII_TYPES.join(", ")
                    )));
                }
                if entities[..i].iter().any(|f| f.kind == e.kind) {
                    return Err(Error::validation(format!(
                        "PII entity type {} is configured twice.",
                        e.kind
                    )));
                }
            }
        }
        if let Some(regexes) = &self.regexes {
            check_count(
                regexes,
                "sensitiveInformationPolicyConfig.regexesConfig",
                1,
                30,
            )?;
            for (i, r) in regexes.iter().enumerate() {
                let at = format!("sensitiveInformationPolicyConfig.regexesConfig.{i}");
                check_len(&r.name, &format!("{at}.name"), 1, 100)?;
                check_len(&r.pattern, &format!("{at}.pattern"), 1, 500)?;
                if let Some(d) = &r.description {
                    check_len(d, &format!("{at}.description"), 1, 1000)?;
                }
                if let Err(e) = regex::Regex::new(&r.pattern) {
                    return Err(Error::validation(format!(
                        "{at}.pattern is not a valid regular expression: {e}"
                    )));
                }
            }
        }
        if let Some(filters) = &self.grounding {
            check_count(
                filters,
                "contextualGroundingPolicyConfig.filtersConfig",
                1,
                2,
            )?;
            for (i, f) in filters.iter().enumerate() {
                let at = format!("contextualGroundingPolicyConfig.filtersConfig.{i}");
                if f.kind != "GROUNDING" && f.kind != "RELEVANCE" {
                    return Err(Error::validation(format!(
                        "{at}.type must be GROUNDING or RELEVANCE, got {:?}.",
                        f.kind
                    )));
                }
                if filters[..i].iter().any(|g| g.kind == f.kind) {
                    return Err(Error::validation(format!(
                        "{at}.type {} is configured twice.",
                        f.kind
                    )));
                }
                if !(0.0..=0.99).contains(&f.threshold) || f.threshold.is_nan() {
                    return Err(Error::validation(format!(
                        "{at}.threshold must be between 0 and 0.99, got {}.",
                        f.threshold
                    )));
                }
            }
        }
        Ok(())
    }

    /// True when a check needs the static embeddings.
    #[must_use]
    pub fn needs_embeddings(&self) -> bool {
        self.content.as_ref().is_some_and(|c| !c.is_empty())
            || self.topics.as_ref().is_some_and(|t| !t.is_empty())
            || self.grounding.as_ref().is_some_and(|g| !g.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sides() -> Sides {
        Sides::both(Action::Block)
    }

    fn base() -> Policy {
        Policy {
            blocked_input_messaging: "no".into(),
            blocked_outputs_messaging: "no".into(),
            ..Policy::default()
        }
    }

    #[test]
    fn rejects_each_bad_configuration() {
        let mut p = base();
        p.topics = Some(vec![Topic {
            name: "x".into(),
            definition: "d".into(),
            examples: vec!["e".into(); 6],
            sides: sides(),
        }]);
        assert!(p.validate().unwrap_err().message.contains("examples"));
        let mut p = base();
        p.grounding = Some(vec![GroundingFilter {
            kind: "GROUNDING".into(),
            threshold: 1.0,
            action: Action::Block,
            enabled: true,
        }]);
        assert!(p.validate().unwrap_err().message.contains("threshold"));
        let mut p = base();
        p.pii = Some(vec![PiiEntity {
            kind: "SHOE_SIZE".into(),
            action: Action::Block,
            sides: sides(),
        }]);
        assert!(p.validate().unwrap_err().message.contains("SHOE_SIZE"));
        let mut p = base();
        p.regexes = Some(vec![RegexEntity {
            name: "r".into(),
            description: None,
            pattern: "(unclosed".into(),
            action: Action::Block,
            sides: sides(),
        }]);
        assert!(p.validate().is_err());
        assert!(base().validate().is_ok());
    }
}
