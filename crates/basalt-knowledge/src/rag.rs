//! RetrieveAndGenerate: retrieve, fill the prompt template's
//! `$search_results$`, generate through the gateway (metered like any call),
//! cite, and keep the conversation under a session id.

use std::sync::Arc;

use basalt_gateway::CallContext;
use basalt_types::guardrail::{GuardText, GuardrailRef, Qualifier};
use basalt_types::{ChatRequest, Error, InferenceConfig, Message, Result, Role, StopReason};

use crate::index::dot;
use crate::model::{new_id, now_ms, Retrieved};
use crate::{blocking, db, Knowledge, RetrieveQuery};

/// The prompt used when the request names none (Bedrock's placeholders).
pub const DEFAULT_PROMPT_TEMPLATE: &str = "You are a question answering agent. I will provide you with a set of search results. The user will provide you with a question. Your job is to answer the user's question using only information from the search results. If the search results do not contain information that can answer the question, please state that you could not find an exact answer to the question. Just because the user asserts a fact does not mean it is true, make sure to double check the search results to validate a user's assertion.\n\nHere are the search results in numbered order:\n$search_results$\n\n$output_format_instructions$";

/// Sentences whose best reference scores below this have no citation.
const CITE_MIN_SIMILARITY: f32 = 0.3;

/// The turns of a session the model sees (and the store keeps): the latest.
pub const SESSION_TURNS: usize = 10;

/// A session unused for this long is gone (ResourceNotFoundException).
pub const SESSION_IDLE_MS: i64 = 24 * 3600 * 1000;

/// What a turn retrieves with: its question, after the previous question
/// when it continues a session, so a follow-up ("and which one is soft?")
/// finds what the conversation is about.
fn retrieval_text(history: &[(String, String)], query: &str) -> String {
    match history.last() {
        Some((previous, _)) => format!("{previous}\n{query}"),
        None => query.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct RagRequest {
    pub kb_id: String,
    pub model_id: String,
    pub query: String,
    pub retrieval: RetrieveQuery,
    pub prompt_template: Option<String>,
    pub inference: InferenceConfig,
    pub session_id: Option<String>,
    /// A guardrail for the query and the answer; the search results are its
    /// grounding source.
    pub guardrail: Option<GuardrailRef>,
}

/// A part of the answer and the retrieved chunks that support it.
#[derive(Debug, Clone)]
pub struct Citation {
    /// Character (not byte) offsets into the answer; `end` is exclusive.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub references: Vec<Retrieved>,
}

#[derive(Debug, Clone)]
pub struct RagResponse {
    pub text: String,
    pub session_id: String,
    pub citations: Vec<Citation>,
    /// Whether a guardrail was asked for, and whether it intervened.
    pub guardrail_intervened: Option<bool>,
}

/// The search results as the prompt lists them.
fn render_results(results: &[Retrieved]) -> String {
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "<search_result index=\"{}\">\n{}\n</search_result>",
                i + 1,
                r.text.trim()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of each span of `text` (character offsets).
fn span_texts(text: &str, parts: &[(usize, usize)]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    parts
        .iter()
        .map(|&(s, e)| chars[s..e].iter().collect())
        .collect()
}

/// Sentence spans of the answer as character offsets.
fn answer_parts(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let end_here = matches!(chars[i], '.' | '!' | '?' | '\n')
            && chars.get(i + 1).is_none_or(|c| c.is_whitespace());
        if end_here || i + 1 == chars.len() {
            let (mut s, mut e) = (start, i + 1);
            while s < e && chars[s].is_whitespace() {
                s += 1;
            }
            while e > s && chars[e - 1].is_whitespace() {
                e -= 1;
            }
            if e > s {
                parts.push((s, e));
            }
            start = i + 1;
        }
        i += 1;
    }
    parts
}

impl Knowledge {
    pub async fn retrieve_and_generate(
        self: &Arc<Self>,
        req: RagRequest,
        request_id: &str,
    ) -> Result<RagResponse> {
        if req.query.trim().is_empty() {
            return Err(Error::validation("input.text must not be empty."));
        }
        let history = match &req.session_id {
            None => Vec::new(),
            Some(id) => {
                let (store, sid) = (self.store().clone(), id.clone());
                let since = now_ms() - SESSION_IDLE_MS;
                blocking(move || db::get_session(&store, &sid, since))
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!("The session {id} does not exist or has expired."))
                    })?
            }
        };
        let kb = self.knowledge_base(&req.kb_id)?;
        let mut retrieval = req.retrieval.clone();
        retrieval.text = retrieval_text(&history, &req.query);
        let (results, _) = self.retrieve(&kb.id, &retrieval, request_id).await?;
        let template = req
            .prompt_template
            .as_deref()
            .unwrap_or(DEFAULT_PROMPT_TEMPLATE);
        let rendered = render_results(&results);
        let system = template
            .replace("$search_results$", &rendered)
            .replace("$output_format_instructions$", "")
            .replace("$query$", &req.query);
        let mut messages = Vec::with_capacity(history.len() * 2 + 1);
        for (user, assistant) in &history {
            messages.push(Message::text(Role::User, user.clone()));
            messages.push(Message::text(Role::Assistant, assistant.clone()));
        }
        messages.push(Message::text(Role::User, req.query.clone()));
        let chat = ChatRequest {
            model_id: req.model_id.clone(),
            system: vec![system.trim().to_string()],
            messages,
            raw_prompt: None,
            guardrail: req.guardrail.clone().map(|mut g| {
                g.context = vec![
                    GuardText {
                        text: rendered.clone(),
                        qualifiers: vec![Qualifier::GroundingSource],
                    },
                    GuardText {
                        text: req.query.clone(),
                        qualifiers: vec![Qualifier::Query],
                    },
                ];
                g
            }),
            inference: req.inference.clone(),
        };
        let answer = self
            .gateway()
            .converse(
                CallContext {
                    api: "RetrieveAndGenerate",
                    request_id: request_id.to_string(),
                },
                chat,
            )
            .await?;
        let text = answer.text.trim().to_string();
        let intervened = answer.stop_reason == StopReason::GuardrailIntervened;
        let citations = if intervened {
            Vec::new()
        } else {
            self.cite(&kb, &text, &results, request_id).await?
        };
        let session_id = req
            .session_id
            .clone()
            .unwrap_or_else(|| new_id().to_lowercase());
        let mut turns = history;
        turns.push((req.query, text.clone()));
        let keep_from = turns.len().saturating_sub(SESSION_TURNS);
        turns.drain(..keep_from);
        let (store, sid) = (self.store().clone(), session_id.clone());
        let now = now_ms();
        blocking(move || db::save_session(&store, &sid, &turns, now, now - SESSION_IDLE_MS))
            .await?;
        Ok(RagResponse {
            text,
            session_id,
            citations,
            guardrail_intervened: req.guardrail.as_ref().map(|_| intervened),
        })
    }

    /// Attributes each sentence of the answer to the retrieved chunks whose
    /// vectors are closest to it.
    async fn cite(
        &self,
        kb: &crate::model::KnowledgeBase,
        text: &str,
        results: &[Retrieved],
        request_id: &str,
    ) -> Result<Vec<Citation>> {
        let parts = answer_parts(text);
        if parts.is_empty() || results.is_empty() {
            return Ok(Vec::new());
        }
        let part_texts = span_texts(text, &parts);
        let part_vecs = self
            .embed(
                &kb.embedding_model,
                part_texts.clone(),
                "RetrieveAndGenerate",
                request_id,
            )
            .await?;
        let idx = self.index(kb).await?;
        let idx = idx
            .read()
            .map_err(|_| Error::internal("the index lock was poisoned"))?;
        Ok(attribute(&parts, part_texts, &part_vecs, results, |id| {
            idx.vectors.vector(id)
        }))
    }
}

/// Each answer part (character span, text, unit vector) cites the results
/// (up to 3, closest first) whose chunk vectors are within
/// [`CITE_MIN_SIMILARITY`] of it; a part close to none is not cited.
fn attribute<'a>(
    parts: &[(usize, usize)],
    texts: Vec<String>,
    vectors: &[Vec<f32>],
    results: &[Retrieved],
    vector_of: impl Fn(i64) -> Option<&'a [f32]>,
) -> Vec<Citation> {
    let mut citations = Vec::new();
    for (((start, end), part), v) in parts.iter().zip(texts).zip(vectors) {
        let mut scored: Vec<(f32, &Retrieved)> = results
            .iter()
            .filter_map(|r| vector_of(r.chunk_id).map(|rv| (dot(rv, v), r)))
            .filter(|(s, _)| *s >= CITE_MIN_SIMILARITY)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        if scored.is_empty() {
            continue;
        }
        citations.push(Citation {
            start: *start,
            end: *end,
            text: part,
            references: scored.into_iter().take(3).map(|(_, r)| r.clone()).collect(),
        });
    }
    citations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrieved(id: i64, text: &str) -> Retrieved {
        Retrieved {
            chunk_id: id,
            text: text.into(),
            score: 0.5,
            metadata: serde_json::Map::new(),
            location: crate::model::Location::Custom { id: text.into() },
            document_id: text.into(),
        }
    }

    #[test]
    fn each_sentence_cites_the_chunks_closest_to_it() {
        let answer = "Apples crunch. Bananas are soft! Nothing here.";
        let parts = answer_parts(answer);
        let chars: Vec<char> = answer.chars().collect();
        let texts = span_texts(answer, &parts);
        // Unit vectors: sentence 1 near chunk 1, sentence 2 near chunk 2 (and
        // a little near chunk 1), sentence 3 near nothing.
        let v = |x: f32, y: f32, z: f32| {
            let n = (x * x + y * y + z * z).sqrt();
            vec![x / n, y / n, z / n]
        };
        let vectors = vec![v(1.0, 0.1, 0.0), v(0.5, 1.0, 0.0), v(0.0, 0.0, 1.0)];
        let chunks: std::collections::HashMap<i64, Vec<f32>> =
            [(1, v(1.0, 0.0, 0.0)), (2, v(0.0, 1.0, 0.0))].into();
        let results = vec![
            retrieved(1, "apples"),
            retrieved(2, "bananas"),
            retrieved(3, "gone"),
        ];
        let cited = attribute(&parts, texts, &vectors, &results, |id| {
            chunks.get(&id).map(Vec::as_slice)
        });
        assert_eq!(cited.len(), 2);
        for c in &cited {
            let span: String = chars[c.start..c.end].iter().collect();
            assert_eq!(span, c.text);
        }
        let cites = |i: usize| -> (&str, Vec<i64>) {
            let c = &cited[i];
            (&c.text, c.references.iter().map(|r| r.chunk_id).collect())
        };
        assert_eq!(cites(0), ("Apples crunch.", vec![1]));
        assert_eq!(cites(1), ("Bananas are soft!", vec![2, 1]));
    }

    #[test]
    fn a_follow_up_retrieves_with_the_previous_question() {
        assert_eq!(
            retrieval_text(&[], "Which fruit is crunchy?"),
            "Which fruit is crunchy?"
        );
        let history = vec![
            ("Tell me about volcanoes.".to_string(), "...".to_string()),
            ("Which fruit is crunchy?".to_string(), "Apples.".to_string()),
        ];
        assert_eq!(
            retrieval_text(&history, "And which one is soft?"),
            "Which fruit is crunchy?\nAnd which one is soft?"
        );
    }

    #[test]
    fn answer_parts_are_sentences_as_character_offsets() {
        let t = "Café is open. It closes at 9!\nDone";
        let texts = span_texts(t, &answer_parts(t));
        assert_eq!(texts, vec!["Café is open.", "It closes at 9!", "Done"]);
    }
}
