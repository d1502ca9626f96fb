//! OpenAI-compatible API: `POST /v1/chat/completions` (JSON and SSE, with usage),
//! `POST /v1/embeddings` and `GET /v1/models`, translated to and from the
//! canonical requests.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use basalt_gateway::CallContext;
use basalt_types::{
    ChatRequest, EmbedRequest, Error, InferenceConfig, Message, Role, StopReason, StreamEvent,
    Usage,
};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{classify, OpenAiError};
use crate::streaming::{self, Encoder};
use crate::{parse_json, AppState, RequestId};

#[derive(Deserialize)]
struct ChatBody {
    model: String,
    messages: Vec<ChatMessage>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    seed: Option<i64>,
    stop: Option<Value>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    tools: Option<Value>,
    /// basalt's extension: a Bedrock guardrail for this call, in Converse's
    /// `guardrailConfig` shape (the openai SDK sends it with `extra_body`).
    #[serde(rename = "guardrailConfig")]
    guardrail_config: Option<Value>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

fn content_text(v: &Value, at: usize) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => Ok(t.to_string()),
                    (Some(other), _) => Err(Error::validation(format!(
                    "messages[{at}]: content part type {other:?} is not supported by this model"
                ))),
                    _ => Err(Error::validation(format!(
                        "messages[{at}]: malformed content part"
                    ))),
                }
            })
            .collect(),
        Value::Null => Ok(String::new()),
        _ => Err(Error::validation(format!(
            "messages[{at}].content must be a string or a list of parts"
        ))),
    }
}

impl ChatBody {
    fn into_request(self) -> Result<ChatRequest, Error> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(Error::validation("n must be 1"));
        }
        if self.tools.is_some() {
            return Err(Error::validation("This model doesn't support tool use."));
        }
        let mut system = Vec::new();
        let mut messages: Vec<Message> = Vec::new();
        for (i, m) in self.messages.iter().enumerate() {
            let text = content_text(&m.content, i)?;
            let role = match m.role.as_str() {
                "system" | "developer" => {
                    system.push(text);
                    continue;
                }
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(Error::validation(format!(
                        "messages[{i}].role {other:?} is not supported"
                    )))
                }
            };
            messages.push(Message::text(role, text));
        }
        let max = self.max_completion_tokens.or(self.max_tokens);
        let max_tokens = match max {
            Some(n) if n < 1 => {
                return Err(Error::validation(format!(
                    "max_tokens must be at least 1, got {n}"
                )))
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => None,
        };
        let stop_sequences = match self.stop {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::validation("stop must be strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Error::validation(
                    "stop must be a string or a list of strings",
                ))
            }
        };
        let request = ChatRequest {
            model_id: self.model,
            system,
            messages,
            raw_prompt: None,
            guardrail: self
                .guardrail_config
                .as_ref()
                .map(|g| crate::guardrails::from_config(g, self.stream))
                .transpose()?,
            inference: InferenceConfig {
                max_tokens,
                temperature: self.temperature,
                top_p: self.top_p,
                top_k: self.top_k,
                stop_sequences,
                seed: self.seed.map(|s| s as u32),
            },
        };
        request.validate()?;
        Ok(request)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_reason(r: StopReason) -> &'static str {
    match r {
        StopReason::MaxTokens => "length",
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::GuardrailIntervened => "content_filter",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens(),
        "prompt_tokens_details": { "cached_tokens": u.cache_read_input_tokens },
    })
}

pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let body: ChatBody = parse_json(&body)?;
    let stream = body.stream;
    let include_usage = body
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let request = body.into_request()?;
    let model = request.model_id.clone();
    let completion_id = format!("chatcmpl-{}", id.0.replace('-', ""));
    let ctx = CallContext {
        api: "ChatCompletions",
        request_id: id.0.clone(),
    };
    if !stream {
        let resp = state.gateway.converse(ctx, request).await?;
        return Ok(Json(json!({
            "id": completion_id,
            "object": "chat.completion",
            "created": now_secs(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": resp.text },
                "finish_reason": finish_reason(resp.stop_reason),
                "logprobs": null,
            }],
            "usage": usage_json(&resp.usage),
        }))
        .into_response());
    }
    let mut events = state.gateway.converse_stream(ctx, request).await?;
    let first = streaming::first_event(&mut events).await?;
    let encoder = SseEncoder {
        id: completion_id,
        model,
        created: now_secs(),
        include_usage,
    };
    let mut resp = Response::new(streaming::body(events, first, encoder));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

struct SseEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
}

impl SseEncoder {
    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        });
        push_sse(out, &v);
    }
}

fn push_sse(out: &mut BytesMut, v: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl Encoder for SseEncoder {
    fn event(&mut self, event: &StreamEvent, _elapsed_ms: u64, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { .. } => {
                self.chunk(out, json!({ "role": "assistant", "content": "" }), None)
            }
            StreamEvent::TextDelta(t) => self.chunk(out, json!({ "content": t }), None),
            StreamEvent::Guardrail(_) => {}
            StreamEvent::Stop { reason, usage, .. } => {
                self.chunk(out, json!({}), Some(finish_reason(*reason)));
                if self.include_usage {
                    push_sse(
                        out,
                        &json!({
                            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": usage_json(usage),
                        }),
                    );
                }
            }
        }
    }

    fn error(&mut self, error: &Error, out: &mut BytesMut) {
        let (_, _, kind) = classify(error.kind);
        push_sse(
            out,
            &json!({ "error": { "message": error.message, "type": kind, "param": null, "code": null } }),
        );
    }

    fn end(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

#[derive(Deserialize)]
struct EmbeddingsBody {
    model: String,
    input: Value,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted for compatibility; basalt has no per-user policy"
    )]
    user: Option<String>,
}

fn embedding_inputs(input: Value) -> Result<Vec<String>, Error> {
    let token_arrays = || {
        Error::validation(
            "input as token arrays is not supported: send a string or a list of strings.",
        )
    };
    match input {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                Value::Number(_) | Value::Array(_) => Err(token_arrays()),
                _ => Err(Error::validation(format!("input[{i}] must be a string."))),
            })
            .collect(),
        _ => Err(Error::validation(
            "input must be a string or a list of strings.",
        )),
    }
}

pub(crate) async fn embeddings(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let body: EmbeddingsBody = parse_json(&body)?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(Error::validation(format!(
                "encoding_format must be \"float\" or \"base64\", got {other:?}."
            ))
            .into())
        }
    };
    let request = EmbedRequest {
        model_id: body.model.clone(),
        inputs: embedding_inputs(body.input)?,
        normalize: true,
        dimensions: body.dimensions,
    };
    request.validate()?;
    let ctx = CallContext {
        api: "Embeddings",
        request_id: id.0.clone(),
    };
    let resp = state.gateway.embed(ctx, request).await?;
    let total = resp.total_tokens();
    let data: Vec<Value> = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": { "prompt_tokens": total, "total_tokens": total },
    }))
    .into_response())
}

fn model_json(id: &str, owner: &str) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": owner })
}

pub(crate) async fn list_models(State(state): State<AppState>) -> Response {
    let data: Vec<Value> = state
        .gateway
        .models()
        .map(|m| model_json(&m.config.id, &m.config.provider))
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

pub(crate) async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let m = state.gateway.model(&id)?;
    Ok(Json(model_json(&m.config.id, &m.config.provider)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, Error> {
        serde_json::from_value::<ChatBody>(v)
            .map_err(Error::validation)?
            .into_request()
    }

    #[test]
    fn system_messages_become_the_system_prompt() {
        let r = parse(json!({"model": "m", "max_tokens": 3, "stop": "x",
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "u"}]}]}))
        .unwrap();
        assert_eq!(r.system, vec!["s"]);
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.inference.stop_sequences, vec!["x"]);
        assert_eq!(r.inference.max_tokens, Some(3));
    }

    #[test]
    fn bad_requests_are_rejected() {
        assert!(parse(json!({"model": "m", "messages": []})).is_err());
        assert!(parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2})
        )
        .is_err());
        assert!(
            parse(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})).is_err()
        );
        assert!(parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0})
        )
        .is_err());
    }
}
