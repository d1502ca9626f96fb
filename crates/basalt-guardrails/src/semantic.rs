//! The policies that need meaning rather than patterns — denied topics, content
//! filters, contextual grounding and relevance — on static embeddings distilled
//! from the embedding model (see `basalt_engine::StaticEmbeddings`), so a check
//! costs microseconds instead of a forward pass.
//!
//! Content filters are nearest-neighbour classifiers over a labelled set of
//! example sentences written for basalt (`data/content.tsv`): a sentence's score
//! for a category is how much closer it is to that category's examples than to
//! the neutral ones; prompt attacks add a few structural patterns.

use std::sync::{Arc, LazyLock};

use basalt_providers::{dot, StaticEmbeddings};
use basalt_types::guardrail::Level;
use regex::Regex;

/// The content-filter categories, in Bedrock's order.
pub const CATEGORIES: [&str; 6] = [
    "SEXUAL",
    "VIOLENCE",
    "HATE",
    "INSULTS",
    "MISCONDUCT",
    "PROMPT_ATTACK",
];

/// The labelled examples: `CATEGORY<TAB>sentence` per line.
const EXAMPLES: &str = include_str!("../data/content.tsv");

/// Sentences of `text` (split after `.`, `!`, `?` before whitespace, and at
/// newlines), trimmed and non-empty.
#[must_use]
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let end_here = b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()));
        if end_here {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Embeds every sentence of a text once, for all semantic policies.
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
}

impl Embedded {
    #[must_use]
    pub fn new(model: &StaticEmbeddings, text: &str) -> Self {
        let mut vectors: Vec<Vec<f32>> = sentences(text).iter().map(|s| model.embed(s)).collect();
        if vectors.len() > 1 {
            vectors.push(model.embed(text));
        }
        Self { vectors }
    }
}

/// A denied topic compiled to the vectors of its definition and examples.
pub struct TopicModel {
    prototypes: Vec<Vec<f32>>,
}

/// Similarity at and above which a sentence is on a denied topic (it must
/// also be closer to the topic than to everyday requests; see
/// [`TopicModel::detects`]). Chosen with `examples/calibrate.rs` on
/// `bench/guardrails/topics_eval.json`.
pub const TOPIC_THRESHOLD: f32 = 0.45;

impl TopicModel {
    #[must_use]
    pub fn new(model: &StaticEmbeddings, definition: &str, examples: &[String]) -> Self {
        let prototypes = std::iter::once(definition)
            .chain(examples.iter().map(String::as_str))
            .map(|t| model.embed(t))
            .collect();
        Self { prototypes }
    }

    /// The highest similarity of any sentence to the topic.
    #[must_use]
    pub fn score(&self, text: &Embedded) -> f32 {
        text.vectors
            .iter()
            .flat_map(|v| self.prototypes.iter().map(move |p| dot(v, p)))
            .fold(0.0, f32::max)
    }

    /// True when some sentence is on the topic: similar enough to it, and
    /// more similar to it than to everyday neutral requests.
    #[must_use]
    pub fn detects(&self, text: &Embedded, background: &ContentModel) -> bool {
        text.vectors.iter().any(|v| {
            let best = self
                .prototypes
                .iter()
                .map(|p| dot(v, p))
                .fold(0.0, f32::max);
            best >= TOPIC_THRESHOLD && best >= top_k_mean(v, &background.neutral)
        })
    }

    /// The highest margin of any sentence: its similarity to the topic minus
    /// its similarity to everyday neutral requests (so a generic "how do I…"
    /// question is not near every topic).
    #[must_use]
    pub fn margin(&self, text: &Embedded, background: &ContentModel) -> f32 {
        text.vectors
            .iter()
            .map(|v| {
                let best = self
                    .prototypes
                    .iter()
                    .map(|p| dot(v, p))
                    .fold(0.0, f32::max);
                best - top_k_mean(v, &background.neutral)
            })
            .fold(f32::MIN, f32::max)
    }
}

/// The content classifier: example vectors per category plus neutral ones.
pub struct ContentModel {
    /// One entry per [`CATEGORIES`] element.
    categories: Vec<Vec<Vec<f32>>>,
    neutral: Vec<Vec<f32>>,
}

/// Neighbours averaged per class.
const K: usize = 3;

fn top_k_mean(v: &[f32], examples: &[Vec<f32>]) -> f32 {
    let mut top = [f32::MIN; K];
    for e in examples {
        let s = dot(v, e);
        if s > top[K - 1] {
            top[K - 1] = s;
            top.sort_by(|a, b| b.total_cmp(a));
        }
    }
    let k = examples.len().min(K);
    if k == 0 {
        return 0.0;
    }
    top[..k].iter().sum::<f32>() / k as f32
}

static ATTACK_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"(?i)\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|your|the|any)\b.{0,20}\b(instructions?|rules|guidelines|prompts?|directives|restrictions|polic(y|ies))",
        r"(?i)\b(reveal|print|show|repeat|output|leak|tell me)\b.{0,30}\b(system prompt|hidden prompt|initial prompt|instructions you were given|your instructions)",
        r"(?i)\b(you are now|act as|pretend (to be|you are)|roleplay as)\b.{0,40}\b(dan|unfiltered|uncensored|jailbroken|without (any )?(restrictions|limits|rules|filters))",
        r"(?i)\b(developer|god|jailbreak|dan) mode\b",
        r"(?i)\bdo anything now\b",
        r"(?i)\bno (longer )?(bound|restricted) by\b.{0,30}\b(rules|guidelines|policies|openai|anthropic|safety)",
    ]
    .iter()
    .filter_map(|p| Regex::new(p).ok())
    .collect()
});

impl ContentModel {
    #[must_use]
    pub fn new(model: &StaticEmbeddings) -> Self {
        let mut categories = vec![Vec::new(); CATEGORIES.len()];
        let mut neutral = Vec::new();
        for line in EXAMPLES.lines() {
            let Some((label, text)) = line.split_once('\t') else {
                continue;
            };
            let v = model.embed(text);
            match CATEGORIES.iter().position(|c| *c == label) {
                Some(i) => categories[i].push(v),
                None if label == "NEUTRAL" => neutral.push(v),
                None => {}
            }
        }
        Self {
            categories,
            neutral,
        }
    }

    /// Per category (in [`CATEGORIES`] order): how much closer the text's
    /// nearest sentence is to that category's examples than to the neutral ones.
    #[must_use]
    pub fn margins(&self, text: &Embedded) -> Vec<f32> {
        let mut margins = vec![f32::MIN; CATEGORIES.len()];
        for v in &text.vectors {
            let base = top_k_mean(v, &self.neutral);
            for (i, examples) in self.categories.iter().enumerate() {
                let m = top_k_mean(v, examples) - base;
                margins[i] = margins[i].max(m);
            }
        }
        margins
    }

    /// Confidence per category (in [`CATEGORIES`] order) that `text` belongs to it.
    #[must_use]
    pub fn classify(&self, text: &Embedded, raw: &str) -> Vec<Level> {
        let mut levels: Vec<Level> = self.margins(text).into_iter().map(level).collect();
        if let Some(i) = CATEGORIES.iter().position(|c| *c == "PROMPT_ATTACK") {
            if ATTACK_PATTERNS.iter().any(|p| p.is_match(raw)) {
                levels[i] = Level::High;
            }
        }
        levels
    }
}

/// Margin over the neutral examples at which each confidence begins.
pub const MARGINS: [f32; 3] = [0.06, 0.10, 0.15];

fn level(margin: f32) -> Level {
    if margin >= MARGINS[2] {
        Level::High
    } else if margin >= MARGINS[1] {
        Level::Medium
    } else if margin >= MARGINS[0] {
        Level::Low
    } else {
        Level::None
    }
}

/// Confidence at and above which a filter of this strength blocks (Bedrock:
/// HIGH strength blocks LOW confidence and up; LOW strength only HIGH).
#[must_use]
pub fn blocks_from(strength: Level) -> Option<Level> {
    match strength {
        Level::None => None,
        Level::Low => Some(Level::High),
        Level::Medium => Some(Level::Medium),
        Level::High => Some(Level::Low),
    }
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he",
    "her", "his", "i", "in", "is", "it", "its", "of", "on", "or", "our", "she", "so", "that",
    "the", "their", "them", "there", "they", "this", "to", "was", "we", "were", "what", "when",
    "which", "who", "will", "with", "you", "your", "can", "do", "does", "how", "not", "no", "yes",
    "if",
];

fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Share of `answer`'s content words that appear in `reference`.
fn overlap(answer: &str, reference: &str) -> f32 {
    let words = content_words(answer);
    if words.is_empty() {
        return 1.0;
    }
    let refs: std::collections::HashSet<String> = content_words(reference).into_iter().collect();
    words.iter().filter(|w| refs.contains(*w)).count() as f32 / words.len() as f32
}

/// Grounding and relevance scores in 0–1.
pub struct GroundingScores {
    pub grounding: f64,
    pub relevance: f64,
}

/// How well `answer` is supported by `source` (each answer sentence against its
/// best source sentence, by meaning and by shared words) and how relevant it is
/// to `query`.
#[must_use]
pub fn grounding(
    model: &Arc<StaticEmbeddings>,
    source: &str,
    query: &str,
    answer: &str,
) -> GroundingScores {
    let source_sentences: Vec<Vec<f32>> =
        sentences(source).iter().map(|s| model.embed(s)).collect();
    let answer_sentences = sentences(answer);
    let mut support = Vec::new();
    for s in &answer_sentences {
        let v = model.embed(s);
        let semantic = source_sentences
            .iter()
            .map(|p| dot(&v, p))
            .fold(0.0f32, f32::max)
            .clamp(0.0, 1.0);
        support.push(0.5 * semantic + 0.5 * overlap(s, source));
    }
    let grounding = if support.is_empty() {
        1.0
    } else {
        support.iter().copied().fold(f32::MAX, f32::min) * 0.5
            + support.iter().sum::<f32>() / support.len() as f32 * 0.5
    };
    let relevance = if query.trim().is_empty() {
        1.0
    } else {
        let semantic = dot(&model.embed(query), &model.embed(answer)).clamp(0.0, 1.0);
        let shared = overlap(query, answer);
        (0.7 * semantic + 0.3 * shared).clamp(0.0, 1.0)
    };
    GroundingScores {
        grounding: f64::from(grounding.clamp(0.0, 1.0)),
        relevance: f64::from(relevance),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_without_breaking_decimals() {
        assert_eq!(
            sentences("It costs 3.50 dollars. Really?\nYes"),
            vec!["It costs 3.50 dollars.", "Really?", "Yes"]
        );
    }

    #[test]
    fn strength_maps_to_the_lowest_blocked_confidence() {
        assert_eq!(blocks_from(Level::High), Some(Level::Low));
        assert_eq!(blocks_from(Level::Low), Some(Level::High));
        assert_eq!(blocks_from(Level::None), None);
    }

    #[test]
    fn examples_cover_every_category() {
        for c in CATEGORIES.iter().chain(&["NEUTRAL"]) {
            let n = EXAMPLES
                .lines()
                .filter(|l| l.split_once('\t').is_some_and(|(l, _)| l == *c))
                .count();
            assert!(n >= 15, "{c} has only {n} examples");
        }
    }

    #[test]
    fn word_overlap_ignores_stopwords() {
        assert!((overlap("The cat sat", "a cat sat down") - 1.0).abs() < 1e-6);
        assert!(overlap("Paris is in France", "Berlin is in Germany") < 0.01);
    }
}
