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
pub(crate) enum Release {
    /// Checked once at the end (non-streamed calls).
    Whole,
    Stream(StreamMode),
}

/// The text blocks of the conversation a guardrail checks: the `guardContent`
/// blocks when there are any, otherwise every message's text.
fn input_blocks(request: &ChatRequest) -> Vec<GuardText> {
    let guarded: Vec<GuardText> = request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::Guarded(g) => Some(g.clone()),
            ContentBlock::Text(_) => None,
        })
        .collect();
    if !guarded.is_empty() {
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
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .any(|b| matches!(b, ContentBlock::Guarded(_)));
    let mut next = masked.iter();
    for m in &mut request.messages {
        for b in &mut m.content {
            match b {
                ContentBlock::Guarded(g)
                    if g.qualifiers.is_empty() || g.has(Qualifier::GuardContent) =>
                {
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

/// Checks the input of `request` and prepares the output check.
pub(crate) async fn check_input(
    guardrails: &Arc<Guardrails>,
    mut request: ChatRequest,
    release: Release,
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
        release: match release {
            Release::Whole => Release::Whole,
            Release::Stream(_) => Release::Stream(r.stream_mode),
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
            .collect(),
        pending: String::new(),
        model_output: String::new(),
        intervened: outcome.intervened,
        trace,
        done: false,
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
    done: bool,
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
                let at_word_end = self.pending.ends_with(char::is_whitespace);
                let ready = matches!(self.release, Release::Stream(_))
                    && ((chars >= CHUNK_CHARS && at_word_end) || chars >= MAX_CHUNK_CHARS);
                if ready && self.flush(out).await? {
                    self.finish_blocked(usage_so_far, out);
                    return Ok(Step::Stop);
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
                self.done = true;
                let reason = if self.intervened {
                    StopReason::GuardrailIntervened
                } else {
                    reason
                };
                if self.intervened {
                    self.trace.model_output = Some(self.model_output.clone());
                }
                out.push_back(Ok(StreamEvent::Guardrail(Box::new(std::mem::take(
                    &mut self.trace,
                )))));
                out.push_back(Ok(StreamEvent::Stop {
                    reason,
                    stop_sequence,
                    usage,
                }));
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
                outcome.outputs.concat()
            } else {
                text
            };
            out.push_back(Ok(StreamEvent::TextDelta(shown)));
        }
        Ok(false)
    }

    fn finish_blocked(&mut self, usage: Usage, out: &mut VecDeque<Result<StreamEvent>>) {
        self.done = true;
        self.intervened = true;
        self.trace.model_output = Some(self.model_output.clone());
        out.push_back(Ok(StreamEvent::Guardrail(Box::new(std::mem::take(
            &mut self.trace,
        )))));
        out.push_back(Ok(StreamEvent::Stop {
            reason: StopReason::GuardrailIntervened,
            stop_sequence: None,
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
    }
}
