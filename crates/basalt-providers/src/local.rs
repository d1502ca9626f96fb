//! The local provider: a GGUF model on the basalt engine, with the catalog's
//! limits (context window, default max tokens) checked before any work.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_engine::{Engine, EngineConfig, EngineStats, Job, SamplingParams, Score};
use basalt_types::{ChatRequest, Error, RerankRequest, RerankResponse, Result, StreamEvent};
use futures::StreamExt;

use crate::{EventStream, Provider};

/// Catalog settings the local provider needs beyond the engine's.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub engine: EngineConfig,
    /// Completion length when a request sets none.
    pub default_max_tokens: u32,
    /// The whole prompt a rerank call sends for each document, with `{query}`
    /// and `{document}` placeholders, sent without the chat template; `None`
    /// uses [`RERANK_PROMPT`].
    pub rerank_prompt: Option<String>,
}

/// The default rerank prompt: a few-shot completion, sent without the chat
/// template, that base and instruction-tuned models both continue with "yes"
/// or "no"; the score is the probability of "yes" against "no".
pub const RERANK_PROMPT: &str = "Decide whether each document is relevant to the search query.

Query: How do vaccines protect against disease?
Document: A vaccine exposes the immune system to a harmless form of a pathogen, so that it produces antibodies and memory cells before a real infection.
Relevant: yes

Query: What are the effects of caffeine on sleep?
Document: The committee reviewed the annual budget of the regional transport authority and approved two new bus routes.
Relevant: no

Query: {query}
Document: {document}
Relevant:";

/// Longest document text, in characters, one rerank prompt carries.
const RERANK_DOCUMENT_CHARS: usize = 4000;

/// A local model: loaded, or failed to load (then every call answers
/// ServiceUnavailable with the reason).
pub struct LocalModel {
    state: std::result::Result<Arc<Engine>, String>,
    settings: LocalSettings,
}

impl LocalModel {
    /// Loads the model. Blocking; never fails: a load failure is kept and
    /// reported on use, so one bad model does not stop the server.
    #[must_use]
    pub fn load(settings: LocalSettings) -> Self {
        let state = Engine::load(settings.engine.clone())
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if let Err(e) = &state {
            tracing::error!(model = %settings.engine.model_path.display(), error = %e, "model failed to load");
        }
        Self { state, settings }
    }

    /// Why the model is unavailable, if it is.
    #[must_use]
    pub fn load_error(&self) -> Option<&str> {
        self.state.as_ref().err().map(String::as_str)
    }

    fn engine(&self) -> Result<&Arc<Engine>> {
        self.state.as_ref().map_err(|e| {
            Error::unavailable(format!(
                "The model is not available: it failed to load ({e})."
            ))
        })
    }
}

/// `{query}` and `{document}` filled in; the document is cut to `max_chars`.
fn rerank_text(template: &str, query: &str, document: &str, max_chars: usize) -> String {
    let document = match document.char_indices().nth(max_chars) {
        Some((cut, _)) => &document[..cut],
        None => document,
    };
    template
        .replace("{query}", query)
        .replace("{document}", document)
}

/// `ln(sum(exp(x)))` of log-probabilities.
fn log_sum_exp(xs: &[f32]) -> f32 {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f32>().ln()
}

/// P(yes) / (P(yes) + P(no)) from the log-probabilities of each spelling.
fn yes_probability(yes: &[f32], no: &[f32]) -> f32 {
    let (y, n) = (log_sum_exp(yes), log_sum_exp(no));
    if y == f32::NEG_INFINITY && n == f32::NEG_INFINITY {
        return 0.0;
    }
    1.0 / (1.0 + (n - y).exp())
}

impl LocalModel {
    /// Scores one query/document pair: (score, prompt tokens, cached tokens).
    async fn score_pair(
        &self,
        engine: &Engine,
        query: &str,
        document: &str,
        candidates: &[basalt_engine::LlamaToken],
        yes: usize,
    ) -> Result<(f32, u32, u32)> {
        let window = engine.config().context_window as usize;
        let mut chars = RERANK_DOCUMENT_CHARS;
        let template = self
            .settings
            .rerank_prompt
            .as_deref()
            .unwrap_or(RERANK_PROMPT);
        let prompt = loop {
            let request = ChatRequest {
                model_id: String::new(),
                system: vec![],
                messages: vec![],
                raw_prompt: Some(rerank_text(template, query, document, chars)),
                guardrail: None,
                inference: basalt_types::InferenceConfig::default(),
            };
            let prompt = engine.prompt_tokens(&request)?;
            if prompt.len() < window {
                break prompt;
            }
            if chars < 64 {
                return Err(Error::validation(format!(
                    "The rerank query does not fit the model's context window of {window} tokens."
                )));
            }
            chars = chars * window / prompt.len() * 9 / 10;
        };
        let (tx, mut events) = tokio::sync::mpsc::channel(4);
        let (reply, answer) = tokio::sync::oneshot::channel();
        engine.submit(Job {
            prompt,
            max_tokens: 1,
            sampling: SamplingParams::greedy(),
            stop_sequences: vec![],
            events: tx,
            score: Some(Score {
                candidates: candidates.to_vec(),
                reply,
            }),
        })?;
        let mut used = (0, 0);
        let mut failure = None;
        while let Some(event) = events.recv().await {
            match event {
                Ok(StreamEvent::Stop { usage, .. }) => {
                    used = (usage.input_tokens, usage.cache_read_input_tokens);
                }
                Ok(_) => {}
                Err(e) => failure = Some(e),
            }
        }
        match answer.await {
            Ok(logprobs) => Ok((
                yes_probability(&logprobs[..yes], &logprobs[yes..]),
                used.0,
                used.1,
            )),
            Err(_) => {
                Err(failure.unwrap_or_else(|| Error::internal("the engine dropped a rerank job")))
            }
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[async_trait]
impl Provider for LocalModel {
    async fn count_tokens(&self, request: &ChatRequest) -> Result<u32> {
        request.validate()?;
        let engine = self.engine()?;
        Ok(engine.prompt_tokens(request)?.len() as u32)
    }

    async fn stream(&self, request: ChatRequest) -> Result<EventStream> {
        request.validate()?;
        let engine = self.engine()?;
        let prompt = engine.prompt_tokens(&request)?;
        let window = engine.config().context_window as usize;
        if prompt.len() >= window {
            return Err(Error::validation(format!(
                "Input is too long for requested model: the prompt is {} tokens and the model's context window is {window} tokens.",
                prompt.len()
            )));
        }
        let room = (window - prompt.len()) as u32;
        let inf = &request.inference;
        let max_tokens = match inf.max_tokens {
            Some(m) if m > room => {
                return Err(Error::validation(format!(
                    "The prompt ({} tokens) plus maxTokens ({m}) exceeds the model's context window of {window} tokens. Lower maxTokens to at most {room}.",
                    prompt.len()
                )))
            }
            Some(m) => m,
            None => self.settings.default_max_tokens.min(room),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(max_tokens as usize + 8);
        engine.submit(Job {
            prompt,
            max_tokens,
            sampling: SamplingParams {
                temperature: inf.temperature.unwrap_or(1.0),
                top_p: inf.top_p.unwrap_or(1.0),
                top_k: inf.top_k.unwrap_or(0),
                seed: inf.seed.map_or_else(random_seed, u64::from),
            },
            stop_sequences: inf.stop_sequences.clone(),
            events: tx,
            score: None,
        })?;
        Ok(rx)
    }

    async fn rerank(&self, request: RerankRequest) -> Result<RerankResponse> {
        request.validate()?;
        let engine = self.engine()?;
        let yes_tokens = engine.word_tokens(&["yes", "Yes", "YES"]);
        let no_tokens = engine.word_tokens(&["no", "No", "NO"]);
        if yes_tokens.is_empty() || no_tokens.is_empty() {
            return Err(Error::validation(format!(
                "The model {} has no single token for \"yes\" and \"no\", so it cannot rerank.",
                request.model_id
            )));
        }
        let yes = yes_tokens.len();
        let candidates = [yes_tokens, no_tokens].concat();
        // At most `parallel` pairs in the engine at once: they decode together,
        // share the query's prefix, and leave the admission queue to others.
        let parallel = engine.config().parallel.max(1) as usize;
        let pairs: Vec<_> = request
            .documents
            .iter()
            .map(|d| self.score_pair(engine, &request.query, d, &candidates, yes))
            .collect();
        let scored: Vec<Result<(f32, u32, u32)>> = futures::stream::iter(pairs)
            .buffered(parallel)
            .collect()
            .await;
        let mut response = RerankResponse {
            scores: Vec::with_capacity(scored.len()),
            input_tokens: 0,
            cached_tokens: 0,
        };
        for s in scored {
            let (score, input, cached) = s?;
            response.scores.push(score);
            response.input_tokens += input;
            response.cached_tokens += cached;
        }
        Ok(response)
    }

    fn engine_stats(&self) -> Option<&EngineStats> {
        self.state.as_ref().ok().map(|e| e.stats())
    }

    fn unavailable_reason(&self) -> Option<&str> {
        self.load_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_probability_compares_yes_with_no() {
        let half = yes_probability(&[(0.2f32).ln()], &[(0.2f32).ln()]);
        assert!((half - 0.5).abs() < 1e-6);
        // Two spellings of "yes" add up: 0.3 + 0.3 against 0.2.
        let p = yes_probability(&[(0.3f32).ln(), (0.3f32).ln()], &[(0.2f32).ln()]);
        assert!((p - 0.75).abs() < 1e-5, "{p}");
        assert!(yes_probability(&[-50.0], &[-1.0]) < 1e-6);
        assert_eq!(
            yes_probability(&[f32::NEG_INFINITY], &[f32::NEG_INFINITY]),
            0.0
        );
    }

    #[test]
    fn rerank_text_fills_the_template_and_cuts_at_a_character() {
        let t = rerank_text("Q={query} D={document}", "why?", "héllo wörld", 2);
        assert_eq!(t, "Q=why? D=hé");
        assert_eq!(
            rerank_text(RERANK_PROMPT, "q", "d", 10)
                .matches("Query: q")
                .count(),
            1
        );
    }
}
