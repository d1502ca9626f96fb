//! Guardrails on the model-call path: the input is checked before the model
//! runs (a blocked prompt never reaches it; masked PII is replaced in what it
//! sees), and the output is checked as it streams — in chunks held until they
//! pass (`sync`), in chunks checked behind the stream (`async`), or whole (a
//! non-streamed call).

use std::collections::VecDeque;
use std::sync::Arc;

use basalt_guardrails::Guardrails;
use basalt_types::guardrail::{
    GuardSource, GuardText, GuardrailOutcome, GuardrailRef, GuardrailTrace, Qualifier, StreamMode,
};
use basalt_types::{ChatRequest, ContentBlock, Result, StopReason, StreamEvent, Usage};

/// Characters of output gathered before a chunk is checked (at a word end).
const CHUNK_CHARS: usize = 160;
/// A chunk is checked at this size even without a word end.
const MAX_CHUNK_CHARS: usize = 480;

/// How the output is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Checked once at the end (non-streamed calls).
    Whole,
    /// In chunks, as the request's guardrail says.
    Stream(StreamMode),
}

/// The text blocks of the conversation a guardrail checks: the `guardContent`
/// blocks when there are any, otherwise every message's text.
fn input_blocks(request: &ChatRequest) -> Vec<GuardText> {
    let system = request
        .guardrail
        .iter()
        .flat_map(|r| r.system.iter().cloned());
    let guarded: Vec<GuardText> = system
        .chain(
            request
                .messages
                .iter()
                .flat_map(|m| &m.content)
                .filter_map(|b| match b {
                    ContentBlock::Guarded(g) => Some(g.clone()),
                    ContentBlock::Text(_) => None,
                }),
        )
        .collect();
    // guardContent blocks decide what is checked only when some of them are
    // checkable (not only grounding sources or queries).
    if guarded.iter().any(GuardText::is_checked) {
        return guarded;
    }
    let mut blocks: Vec<GuardText> = request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| b.as_text().map(GuardText::plain))
        .collect();
    if let Some(p) = &request.raw_prompt {
        blocks.push(GuardText::plain(p.clone()));
    }
    blocks
}

/// Replaces the checked input with its masked form, block by block.
fn mask_input(request: &mut ChatRequest, masked: &[String]) {
    let any_guarded = request
        .guardrail
        .as_ref()
        .is_some_and(|r| r.system.iter().any(GuardText::is_checked))
        || request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|b| matches!(b, ContentBlock::Guarded(g) if g.is_checked()));
    let mut next = masked.iter();
    // Masked system blocks replace their text in the system prompt.
    if let Some(r) = request.guardrail.clone() {
        for g in r.system.iter().filter(|g| g.is_checked()) {
            if let Some(m) = next.next() {
                for s in &mut request.system {
                    *s = s.replace(&g.text, m);
                }
            }
        }
    }
    for m in &mut request.messages {
        for b in &mut m.content {
            match b {
                ContentBlock::Guarded(g) if g.is_checked() => {
                    if let Some(t) = next.next() {
                        g.text.clone_from(t);
                    }
                }
                ContentBlock::Text(t) if !any_guarded => {
                    if let Some(m) = next.next() {
                        t.clone_from(m);
                    }
                }
                _ => {}
            }
        }
    }
    if !any_guarded {
        if let Some(p) = &mut request.raw_prompt {
            if let Some(m) = next.next() {
                p.clone_from(m);
            }
        }
    }
}

/// The result of checking a request's input.
pub(crate) enum InputCheck {
    /// Go on to the model (with the request, masked if the guardrail said so).
    Proceed(Box<ChatRequest>, Option<Box<OutputGuard>>),
    /// Blocked: these events are the whole answer.
    Blocked(Vec<StreamEvent>),
}

/// Checks the input of `request` and prepares the output check: whole for a
/// non-streamed call, in chunks (the request's stream mode) for a stream.
pub(crate) async fn check_input(
    guardrails: &Arc<Guardrails>,
    mut request: ChatRequest,
    streamed: bool,
) -> Result<InputCheck> {
    let Some(r) = request.guardrail.clone() else {
        return Ok(InputCheck::Proceed(Box::new(request), None));
    };
    let outcome = guardrails
        .apply(
            &r.identifier,
            &r.version,
            GuardSource::Input,
            &input_blocks(&request),
        )
        .await?;
    let mut trace = GuardrailTrace {
        level: r.trace,
        input: Some(outcome.assessment.clone()),
        ..GuardrailTrace::default()
    };
    if outcome.blocked() {
        trace.action_reason = Some(outcome.action_reason.clone());
        let text = outcome.outputs.first().cloned().unwrap_or_default();
        return Ok(InputCheck::Blocked(vec![
            StreamEvent::Start {
                input_tokens: 0,
                cached_tokens: 0,
            },
            StreamEvent::TextDelta(text),
            StreamEvent::Guardrail(Box::new(trace)),
            StreamEvent::Stop {
                reason: StopReason::GuardrailIntervened,
                stop_sequence: None,
                usage: Usage::default(),
            },
        ]));
    }
    if outcome.intervened {
        mask_input(&mut request, &outcome.outputs);
        trace.action_reason = Some(outcome.action_reason.clone());
    }
    let guard = OutputGuard {
        guardrails: Arc::clone(guardrails),
        reference: r.clone(),
        release: if streamed {
            Release::Stream(r.stream_mode)
        } else {
            Release::Whole
        },
        grounding: request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|b| match b {
                ContentBlock::Guarded(g)
                    if g.has(Qualifier::GroundingSource) || g.has(Qualifier::Query) =>
                {
                    Some(g.clone())
                }
                _ => None,
            })
            .chain(r.context.iter().cloned())
            .map(|mut g| {
                // Context for grounding, never itself checked as output.
                g.qualifiers.retain(|q| *q != Qualifier::GuardContent);
                g
            })
            .collect(),
        pending: String::new(),
        model_output: String::new(),
        intervened: outcome.intervened,
        trace,
    };
    Ok(InputCheck::Proceed(
        Box::new(request),
        Some(Box::new(guard)),
    ))
}

/// Checks a generation's output as it arrives.
pub(crate) struct OutputGuard {
    guardrails: Arc<Guardrails>,
    reference: GuardrailRef,
    release: Release,
    /// Grounding sources and queries from the input, for grounding checks.
    grounding: Vec<GuardText>,
    /// Output not yet checked.
    pending: String,
    /// Everything the model said.
    model_output: String,
    intervened: bool,
    trace: GuardrailTrace,
}

/// Where to end a chunk of `s`: after its last sentence end in the second
/// half, else after its last whitespace in the second half.
fn cut_point(s: &str) -> Option<usize> {
    let half = s.len() / 2;
    let b = s.as_bytes();
    let sentence = (half..b.len().saturating_sub(1))
        .rev()
        .find(|&i| matches!(b[i], b'.' | b'!' | b'?' | b'\n') && b[i + 1].is_ascii_whitespace())
        .map(|i| i + 1);
    sentence.or_else(|| {
        (half..b.len())
            .rev()
            .find(|&i| b[i].is_ascii_whitespace() && i > 0)
    })
}

/// What the stream does after a guard step.
pub(crate) enum Step {
    Continue,
    /// The guardrail blocked the output: stop the generation.
    Stop,
}

impl OutputGuard {
    async fn check(&mut self, text: String) -> Result<GuardrailOutcome> {
        let mut blocks = self.grounding.clone();
        blocks.push(GuardText::plain(text));
        let outcome = self
            .guardrails
            .apply(
                &self.reference.identifier,
                &self.reference.version,
                GuardSource::Output,
                &blocks,
            )
            .await?;
        self.trace.outputs.push(outcome.assessment.clone());
        Ok(outcome)
    }

    /// True once the guardrail masked or blocked something.
    pub(crate) fn intervened(&self) -> bool {
        self.intervened
    }

    /// Takes one model event and queues what the client should see.
    pub(crate) async fn step(
        &mut self,
        event: StreamEvent,
        usage_so_far: Usage,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) -> Result<Step> {
        match event {
            StreamEvent::TextDelta(t) => {
                self.model_output.push_str(&t);
                self.pending.push_str(&t);
                if let Release::Stream(StreamMode::Async) = self.release {
                    out.push_back(Ok(StreamEvent::TextDelta(t)));
                }
                let chars = self.pending.chars().count();
                if matches!(self.release, Release::Stream(_)) && chars >= CHUNK_CHARS {
                    // Check up to a sentence end (else a word end), so a
                    // phrase or an e-mail is not split between two checks;
                    // the rest waits for the next chunk.
                    let cut = cut_point(&self.pending)
                        .or_else(|| (chars >= MAX_CHUNK_CHARS).then_some(self.pending.len()));
                    if let Some(cut) = cut {
                        let rest = self.pending.split_off(cut);
                        let blocked = self.flush(out).await?;
                        self.pending = rest;
                        if blocked {
                            self.finish_blocked(usage_so_far, out);
                            return Ok(Step::Stop);
                        }
                    }
                }
                Ok(Step::Continue)
            }
            StreamEvent::Stop {
                reason,
                stop_sequence,
                usage,
            } => {
                if self.flush(out).await? {
                    self.finish_blocked(usage, out);
                    return Ok(Step::Stop);
                }
                self.finish(reason, stop_sequence, usage, out);
                Ok(Step::Continue)
            }
            other => {
                out.push_back(Ok(other));
                Ok(Step::Continue)
            }
        }
    }

    /// Checks the pending text; queues it (masked if need be) unless blocked.
    /// Returns true when blocked.
    async fn flush(&mut self, out: &mut VecDeque<Result<StreamEvent>>) -> Result<bool> {
        if self.pending.trim().is_empty() {
            if !self.pending.is_empty()
                && !matches!(self.release, Release::Stream(StreamMode::Async))
            {
                out.push_back(Ok(StreamEvent::TextDelta(std::mem::take(
                    &mut self.pending,
                ))));
            }
            self.pending.clear();
            return Ok(false);
        }
        let text = std::mem::take(&mut self.pending);
        let outcome = self.check(text.clone()).await?;
        if outcome.intervened {
            self.intervened = true;
            self.trace.action_reason = Some(outcome.action_reason.clone());
        }
        if outcome.blocked() {
            let message = outcome.outputs.first().cloned().unwrap_or_default();
            out.push_back(Ok(StreamEvent::TextDelta(message)));
            return Ok(true);
        }
        if !matches!(self.release, Release::Stream(StreamMode::Async)) {
            let shown = if outcome.intervened {
                outcome.outputs.last().cloned().unwrap_or_default()
            } else {
                text
            };
            out.push_back(Ok(StreamEvent::TextDelta(shown)));
        }
        Ok(false)
    }

    /// Ends the answer after a block: the trace, then the stop.
    fn finish_blocked(&mut self, usage: Usage, out: &mut VecDeque<Result<StreamEvent>>) {
        self.intervened = true;
        self.finish(StopReason::GuardrailIntervened, None, usage, out);
    }

    /// Queues the trace and the stop event; an intervention overrides the
    /// model's stop reason and keeps what the model said in the trace.
    fn finish(
        &mut self,
        reason: StopReason,
        stop_sequence: Option<String>,
        usage: Usage,
        out: &mut VecDeque<Result<StreamEvent>>,
    ) {
        let reason = if self.intervened {
            self.trace.model_output = Some(self.model_output.clone());
            StopReason::GuardrailIntervened
        } else {
            reason
        };
        out.push_back(Ok(StreamEvent::Guardrail(Box::new(std::mem::take(
            &mut self.trace,
        )))));
        out.push_back(Ok(StreamEvent::Stop {
            reason,
            stop_sequence,
            usage,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_types::{InferenceConfig, Message, Role};

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model_id: "m".into(),
            system: Vec::new(),
            messages,
            raw_prompt: None,
            inference: InferenceConfig::default(),
            guardrail: None,
        }
    }

    #[test]
    fn guard_content_blocks_are_checked_instead_of_the_rest() {
        let r = request(vec![Message {
            role: Role::User,
            content: vec![
                ContentBlock::Text("context".into()),
                ContentBlock::Guarded(GuardText::plain("question")),
            ],
        }]);
        assert_eq!(input_blocks(&r), vec![GuardText::plain("question")]);
        let mut r = request(vec![Message::text(Role::User, "mail a@b.com")]);
        assert_eq!(input_blocks(&r), vec![GuardText::plain("mail a@b.com")]);
        mask_input(&mut r, &["mail {EMAIL}".to_string()]);
        assert_eq!(r.messages[0].joined_text(), "mail {EMAIL}");
        // Only grounding blocks marked: every message is checked.
        let r = request(vec![Message {
            role: Role::User,
            content: vec![
                ContentBlock::Text("question".into()),
                ContentBlock::Guarded(GuardText {
                    text: "source".into(),
                    qualifiers: vec![Qualifier::GroundingSource],
                }),
            ],
        }]);
        assert_eq!(input_blocks(&r).len(), 2);
    }

    #[test]
    fn chunks_end_at_sentences_then_words() {
        let s = "A first sentence that is quite long indeed. Short tail";
        assert_eq!(
            &s[..cut_point(s).unwrap()],
            "A first sentence that is quite long indeed."
        );
        let s = "no sentence end in this text at all";
        let cut = cut_point(s).unwrap();
        assert!(s[..cut].ends_with("at") || s[cut..].starts_with(' '));
        assert_eq!(cut_point("x"), None);
    }
}
