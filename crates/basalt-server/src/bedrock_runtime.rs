//! Bedrock Runtime: Converse, ConverseStream, InvokeModel (Meta Llama and
//! Anthropic Messages bodies), InvokeModelWithResponseStream and CountTokens,
//! translated to and from the canonical chat request.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use basalt_gateway::CallContext;
use basalt_types::guardrail::TraceLevel;
use basalt_types::{
    ChatRequest, ContentBlock, EmbedRequest, Error, InferenceConfig, Message, Role, StopReason,
    StreamEvent, Usage,
};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{stream_exception, AwsError};
use crate::eventstream;
use crate::streaming::{self, Encoder};
use crate::{parse_json, AppState, RequestId};

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

// ---------- Converse wire shapes ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConverseBody {
    #[serde(default)]
    messages: Option<Vec<WireMessage>>,
    #[serde(default)]
    system: Option<Vec<Value>>,
    #[serde(default)]
    inference_config: Option<WireInference>,
    #[serde(default)]
    additional_model_request_fields: Option<Value>,
    #[serde(default)]
    tool_config: Option<Value>,
    #[serde(default)]
    guardrail_config: Option<Value>,
    #[serde(default)]
    prompt_variables: Option<Value>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted and ignored, as Bedrock does for logging metadata"
    )]
    request_metadata: Option<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted; local models have one latency profile")]
    performance_config: Option<Value>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted; local models return no extra response fields"
    )]
    additional_model_response_field_paths: Option<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted; ignored by local models")]
    service_tier: Option<Value>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Vec<serde_json::Map<String, Value>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireInference {
    max_tokens: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    stop_sequences: Option<Vec<String>>,
}

fn parse_role(role: &str, at: usize) -> Result<Role, Error> {
    match role {
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(Error::validation(format!(
            "messages.{at}.role must be user or assistant, got {other:?}"
        ))),
    }
}

fn unsupported_block(kind: &str) -> Error {
    let what = match kind {
        "toolUse" | "toolResult" => "tool use",
        "image" | "document" | "video" => "this media type",
        _ => kind,
    };
    Error::validation(format!(
        "This model doesn't support {what} (content block `{kind}`). Send text content blocks."
    ))
}

fn blocks_to_text(
    blocks: &[serde_json::Map<String, Value>],
    at: &str,
) -> Result<Vec<ContentBlock>, Error> {
    let mut out = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        if let Some(text) = block.get("text") {
            let text = text.as_str().ok_or_else(|| {
                Error::validation(format!("{at}.content.{j}.text must be a string"))
            })?;
            out.push(ContentBlock::Text(text.to_string()));
        } else if let Some(g) = block.get("guardContent") {
            out.push(ContentBlock::Guarded(crate::guardrails::guard_text(
                g,
                &format!("{at}.content.{j}.guardContent"),
            )?));
        } else if block.contains_key("cachePoint") {
            // Prompt caching is automatic (KV prefix cache); cache points need no action.
        } else {
            let kind = block.keys().next().map_or("empty", String::as_str);
            return Err(unsupported_block(kind));
        }
    }
    Ok(out)
}

fn top_k_and_seed(extra: Option<&Value>) -> Result<(Option<u32>, Option<u32>), Error> {
    let Some(extra) = extra else {
        return Ok((None, None));
    };
    let field = |names: &[&str]| -> Result<Option<u32>, Error> {
        for name in names {
            if let Some(v) = extra.get(*name) {
                return v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "additionalModelRequestFields.{name} must be a non-negative integer"
                        ))
                    });
            }
        }
        Ok(None)
    };
    Ok((field(&["top_k", "topK"])?, field(&["seed"])?))
}

impl ConverseBody {
    /// The canonical request; `stream` says whether ConverseStream sent it
    /// (only a stream takes a `streamProcessingMode`).
    pub(crate) fn into_request(self, model_id: String, stream: bool) -> Result<ChatRequest, Error> {
        if self.tool_config.is_some() {
            return Err(Error::validation("This model doesn't support tool use."));
        }
        let mut guardrail = self
            .guardrail_config
            .as_ref()
            .map(|g| crate::guardrails::from_config(g, stream))
            .transpose()?;
        if self.prompt_variables.is_some() {
            return Err(Error::validation(
                "promptVariables requires a prompt resource, which basalt does not manage yet.",
            ));
        }
        let mut messages = Vec::new();
        for (i, m) in self.messages.unwrap_or_default().into_iter().enumerate() {
            messages.push(Message {
                role: parse_role(&m.role, i)?,
                content: blocks_to_text(&m.content, &format!("messages.{i}"))?,
            });
        }
        let mut system = Vec::new();
        for (i, block) in self.system.unwrap_or_default().iter().enumerate() {
            let obj = block
                .as_object()
                .ok_or_else(|| Error::validation(format!("system.{i} must be an object")))?;
            for b in blocks_to_text(std::slice::from_ref(obj), "system")? {
                if let (ContentBlock::Guarded(g), Some(r)) = (&b, guardrail.as_mut()) {
                    r.system.push(g.clone());
                }
                if let Some(t) = b.as_text() {
                    system.push(t.to_string());
                }
            }
        }
        let inf = self.inference_config.unwrap_or_default();
        let max_tokens = match inf.max_tokens {
            None => None,
            Some(n) if n < 1 => {
                return Err(Error::validation(format!(
                    "The value {n} at inferenceConfig.maxTokens is invalid: it must be at least 1."
                )))
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        };
        let (top_k, seed) = top_k_and_seed(self.additional_model_request_fields.as_ref())?;
        let request = ChatRequest {
            model_id,
            system,
            messages,
            raw_prompt: None,
            guardrail,
            inference: InferenceConfig {
                max_tokens,
                temperature: inf.temperature,
                top_p: inf.top_p,
                top_k,
                stop_sequences: inf.stop_sequences.unwrap_or_default(),
                seed,
            },
        };
        request.validate()?;
        Ok(request)
    }
}

fn stop_reason(r: StopReason) -> &'static str {
    basalt_gateway::stop_reason_label(r)
}

fn usage_json(u: &Usage) -> Value {
    json!({ "inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total_tokens() })
}

fn ctx(api: &'static str, id: &RequestId) -> CallContext {
    CallContext {
        api,
        request_id: id.0.clone(),
    }
}

pub(crate) async fn converse(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let request = parse_json::<ConverseBody>(&body)?.into_request(model_id, false)?;
    let guardrail_id = request.guardrail.as_ref().map(|g| g.identifier.clone());
    let resp = state
        .gateway
        .converse(ctx("Converse", &id), request)
        .await?;
    let mut out = json!({
        "output": { "message": { "role": "assistant", "content": [ { "text": resp.text } ] } },
        "stopReason": stop_reason(resp.stop_reason),
        "usage": usage_json(&resp.usage),
        "metrics": { "latencyMs": resp.latency_ms },
    });
    if let (Some(gid), Some(trace)) = (guardrail_id, &resp.guardrail) {
        if trace.level != TraceLevel::Disabled {
            out["trace"] = json!({ "guardrail": crate::guardrails::trace_json(&gid, trace) });
        }
    }
    Ok(Json(out).into_response())
}

/// ConverseStream events; the guardrail trace, which arrives just before the
/// stop, goes into the final `metadata` event.
struct ConverseEncoder {
    guardrail_id: Option<String>,
    trace: Option<Value>,
}

impl Encoder for ConverseEncoder {
    fn event(&mut self, event: &StreamEvent, elapsed_ms: u64, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { .. } => {
                out.extend_from_slice(&eventstream::json_event(
                    "messageStart",
                    &json!({ "role": "assistant" }),
                ));
            }
            StreamEvent::TextDelta(text) => out.extend_from_slice(&eventstream::json_event(
                "contentBlockDelta",
                &json!({ "contentBlockIndex": 0, "delta": { "text": text } }),
            )),
            StreamEvent::Stop { reason, usage, .. } => {
                out.extend_from_slice(&eventstream::json_event(
                    "contentBlockStop",
                    &json!({ "contentBlockIndex": 0 }),
                ));
                out.extend_from_slice(&eventstream::json_event(
                    "messageStop",
                    &json!({ "stopReason": stop_reason(*reason) }),
                ));
                let mut metadata =
                    json!({ "usage": usage_json(usage), "metrics": { "latencyMs": elapsed_ms } });
                if let Some(t) = self.trace.take() {
                    metadata["trace"] = json!({ "guardrail": t });
                }
                out.extend_from_slice(&eventstream::json_event("metadata", &metadata));
            }
            StreamEvent::Guardrail(trace) => {
                if let Some(gid) = &self.guardrail_id {
                    if trace.level != TraceLevel::Disabled {
                        self.trace = Some(crate::guardrails::trace_json(gid, trace));
                    }
                }
            }
        }
    }

    fn error(&mut self, error: &Error, out: &mut BytesMut) {
        out.extend_from_slice(&eventstream::exception_frame(
            stream_exception(error.kind),
            &error.message,
        ));
    }
}

fn event_stream_response(
    body: axum::body::Body,
    extra: Option<(&'static str, &'static str)>,
) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    if let Some((name, value)) = extra {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    resp
}

pub(crate) async fn converse_stream(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let request = parse_json::<ConverseBody>(&body)?.into_request(model_id, true)?;
    let encoder = ConverseEncoder {
        guardrail_id: request.guardrail.as_ref().map(|g| g.identifier.clone()),
        trace: None,
    };
    let mut stream = state
        .gateway
        .converse_stream(ctx("ConverseStream", &id), request)
        .await?;
    let first = streaming::first_event(&mut stream).await?;
    Ok(event_stream_response(
        streaming::body(stream, first, encoder),
        None,
    ))
}

// ---------- InvokeModel bodies ----------

/// The model-specific InvokeModel body formats basalt accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    MetaLlama,
    Anthropic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LlamaBody {
    prompt: String,
    max_gen_len: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    #[serde(default)]
    images: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnthropicBody {
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted as sent by Anthropic clients; one version is served"
    )]
    anthropic_version: Option<String>,
    #[serde(default)]
    anthropic_beta: Option<Value>,
    max_tokens: Option<i64>,
    messages: Vec<AnthropicMessage>,
    #[serde(default)]
    system: Option<Value>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted; metadata is not used by local models")]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    role: String,
    content: Value,
}

fn anthropic_text(content: &Value, at: &str) -> Result<String, Error> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (j, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(b.get("text").and_then(Value::as_str).ok_or_else(|| {
                            Error::validation(format!("{at}.{j}.text must be a string"))
                        })?)
                    }
                    Some(other) => return Err(unsupported_block(other)),
                    None => return Err(Error::validation(format!("{at}.{j} needs a type"))),
                }
            }
            Ok(text)
        }
        _ => Err(Error::validation(format!(
            "{at} must be a string or a list of content blocks"
        ))),
    }
}

fn max_tokens_field(v: Option<i64>, name: &str) -> Result<Option<u32>, Error> {
    match v {
        Some(n) if n < 1 => Err(Error::validation(format!(
            "{name} must be at least 1, got {n}"
        ))),
        Some(n) => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        None => Ok(None),
    }
}

/// Parses an InvokeModel body into a chat request, recognising its format.
fn parse_invoke_body(body: &[u8], model_id: String) -> Result<(BodyFormat, ChatRequest), Error> {
    let value: Value = parse_json(body)?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::validation("The request body must be a JSON object."))?;
    if obj.contains_key("messages") || obj.contains_key("anthropic_version") {
        let b: AnthropicBody = serde_json::from_value(value)
            .map_err(|e| Error::validation(format!("Malformed Anthropic Messages body: {e}")))?;
        if b.tools.is_some() || b.tool_choice.is_some() {
            return Err(Error::validation("This model doesn't support tool use."));
        }
        if b.anthropic_beta.is_some() {
            return Err(Error::validation(
                "anthropic_beta features are not supported by this model.",
            ));
        }
        let mut messages = Vec::new();
        for (i, m) in b.messages.iter().enumerate() {
            messages.push(Message::text(
                parse_role(&m.role, i)?,
                anthropic_text(&m.content, &format!("messages.{i}.content"))?,
            ));
        }
        let system = match &b.system {
            None => vec![],
            Some(s) => vec![anthropic_text(s, "system")?],
        };
        let request = ChatRequest {
            model_id,
            system,
            messages,
            raw_prompt: None,
            guardrail: None,
            inference: InferenceConfig {
                max_tokens: max_tokens_field(b.max_tokens, "max_tokens")?,
                temperature: b.temperature,
                top_p: b.top_p,
                top_k: b.top_k,
                stop_sequences: b.stop_sequences.unwrap_or_default(),
                seed: None,
            },
        };
        request.validate()?;
        Ok((BodyFormat::Anthropic, request))
    } else if obj.contains_key("prompt") {
        let b: LlamaBody = serde_json::from_value(value)
            .map_err(|e| Error::validation(format!("Malformed Meta Llama body: {e}")))?;
        if b.images.is_some() {
            return Err(unsupported_block("image"));
        }
        if b.prompt.is_empty() {
            return Err(Error::validation("prompt must not be empty."));
        }
        let request = ChatRequest {
            model_id,
            system: vec![],
            messages: vec![],
            raw_prompt: Some(b.prompt),
            guardrail: None,
            inference: InferenceConfig {
                max_tokens: max_tokens_field(b.max_gen_len, "max_gen_len")?,
                temperature: b.temperature,
                top_p: b.top_p,
                ..InferenceConfig::default()
            },
        };
        request.validate()?;
        Ok((BodyFormat::MetaLlama, request))
    } else {
        Err(Error::validation(
            "Unrecognised request body: send a Meta Llama body ({\"prompt\": …}) or an Anthropic Messages body ({\"anthropic_version\": …, \"messages\": […]}).",
        ))
    }
}

fn llama_stop(r: StopReason) -> &'static str {
    match r {
        StopReason::MaxTokens => "length",
        StopReason::EndTurn | StopReason::StopSequence | StopReason::GuardrailIntervened => "stop",
    }
}

fn message_id(request_id: &str) -> String {
    format!("msg_bdrk_{}", request_id.replace('-', ""))
}

fn invocation_metrics(usage: &Usage, latency_ms: u64, first_byte_ms: u64) -> Value {
    json!({
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
    })
}

/// A Titan Text Embeddings body: `inputText`, optional `dimensions`,
/// `normalize` (default true) and `embeddingTypes` (`float`, `binary`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TitanEmbedBody {
    input_text: String,
    dimensions: Option<u32>,
    normalize: Option<bool>,
    embedding_types: Option<Vec<String>>,
}

fn is_titan_embed_body(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key("inputText")))
        .unwrap_or(false)
}

async fn invoke_embedding(
    state: &AppState,
    id: &RequestId,
    model_id: String,
    body: &[u8],
) -> Result<Response, AwsError> {
    let b: TitanEmbedBody = serde_json::from_slice(body)
        .map_err(|e| Error::validation(format!("Malformed Titan embeddings body: {e}")))?;
    let types = b.embedding_types.clone().unwrap_or_default();
    if let Some(t) = types
        .iter()
        .find(|t| !matches!(t.as_str(), "float" | "binary"))
    {
        return Err(Error::validation(format!(
            "embeddingTypes may contain \"float\" and \"binary\", not {t:?}."
        ))
        .into());
    }
    if b.input_text.is_empty() {
        return Err(Error::validation("inputText must not be empty.").into());
    }
    let request = EmbedRequest {
        model_id,
        inputs: vec![b.input_text],
        normalize: b.normalize.unwrap_or(true),
        dimensions: b.dimensions,
    };
    let resp = state.gateway.embed(ctx("InvokeModel", id), request).await?;
    let tokens = resp.total_tokens();
    let vector = resp.vectors.into_iter().next().unwrap_or_default();
    let mut out = json!({ "embedding": vector, "inputTextTokenCount": tokens });
    if !types.is_empty() {
        let mut by_type = serde_json::Map::new();
        if types.iter().any(|t| t == "float") {
            by_type.insert("float".into(), json!(vector));
        }
        if types.iter().any(|t| t == "binary") {
            let bits: Vec<u8> = vector.iter().map(|x| u8::from(*x > 0.0)).collect();
            by_type.insert("binary".into(), json!(bits));
        }
        out["embeddingsByType"] = Value::Object(by_type);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-bedrock-input-token-count",
        HeaderValue::from(tokens),
    );
    Ok((headers, Json(out)).into_response())
}

pub(crate) async fn invoke(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(model_id): Path<String>,
    req_headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AwsError> {
    let guardrail = crate::guardrails::from_headers(&req_headers)?;
    if is_titan_embed_body(&body) {
        if guardrail.is_some() {
            return Err(Error::validation(
                "Guardrails apply to text generation, not to embeddings.",
            )
            .into());
        }
        return invoke_embedding(&state, &id, model_id, &body).await;
    }
    let (format, mut request) = parse_invoke_body(&body, model_id.clone())?;
    request.guardrail = guardrail;
    let resp = state
        .gateway
        .converse(ctx("InvokeModel", &id), request)
        .await?;
    let u = resp.usage;
    let out = match format {
        BodyFormat::MetaLlama => json!({
            "generation": resp.text,
            "prompt_token_count": u.input_tokens,
            "generation_token_count": u.output_tokens,
            "stop_reason": llama_stop(resp.stop_reason),
        }),
        BodyFormat::Anthropic => json!({
            "id": message_id(&id.0),
            "type": "message",
            "role": "assistant",
            "model": model_id,
            "content": [ { "type": "text", "text": resp.text } ],
            "stop_reason": stop_reason(resp.stop_reason),
            "stop_sequence": resp.stop_sequence,
            "usage": { "input_tokens": u.input_tokens, "output_tokens": u.output_tokens },
        }),
    };
    let mut out = out;
    if let Some(trace) = &resp.guardrail {
        out["amazon-bedrock-guardrailAction"] =
            Value::from(if resp.stop_reason == StopReason::GuardrailIntervened {
                "INTERVENED"
            } else {
                "NONE"
            });
        if trace.level != TraceLevel::Disabled {
            let gid = req_headers
                .get("x-amzn-bedrock-guardrailidentifier")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            out["amazon-bedrock-trace"] =
                json!({ "guardrail": crate::guardrails::trace_json(gid, trace) });
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-bedrock-input-token-count",
        HeaderValue::from(u.input_tokens),
    );
    headers.insert(
        "x-amzn-bedrock-output-token-count",
        HeaderValue::from(u.output_tokens),
    );
    headers.insert(
        "x-amzn-bedrock-invocation-latency",
        HeaderValue::from(resp.latency_ms),
    );
    Ok((headers, Json(out)).into_response())
}

/// `chunk` events whose payload is `{"bytes": base64(json)}`.
struct InvokeEncoder {
    format: BodyFormat,
    model_id: String,
    message_id: String,
    input_tokens: u32,
    generated_chunks: u32,
    first_byte_ms: Option<u64>,
    /// Whether the call asked for a guardrail (its action goes in the last chunk).
    guarded: bool,
}

impl InvokeEncoder {
    fn chunk(out: &mut BytesMut, payload: &Value) {
        let bytes = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
        out.extend_from_slice(&eventstream::json_event(
            "chunk",
            &json!({ "bytes": bytes }),
        ));
    }
}

impl Encoder for InvokeEncoder {
    fn event(&mut self, event: &StreamEvent, elapsed_ms: u64, out: &mut BytesMut) {
        match (self.format, event) {
            (BodyFormat::Anthropic, StreamEvent::Start { input_tokens, .. }) => {
                self.input_tokens = *input_tokens;
                Self::chunk(
                    out,
                    &json!({
                        "type": "message_start",
                        "message": {
                            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model_id,
                            "content": [], "stop_reason": null, "stop_sequence": null,
                            "usage": { "input_tokens": input_tokens, "output_tokens": 0 },
                        },
                    }),
                );
                Self::chunk(
                    out,
                    &json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
                );
            }
            (BodyFormat::MetaLlama, StreamEvent::Start { input_tokens, .. }) => {
                self.input_tokens = *input_tokens;
            }
            (_, StreamEvent::TextDelta(text)) => {
                self.first_byte_ms.get_or_insert(elapsed_ms);
                self.generated_chunks += 1;
                let payload = match self.format {
                    BodyFormat::Anthropic => {
                        json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": text } })
                    }
                    BodyFormat::MetaLlama => json!({
                        "generation": text,
                        "prompt_token_count": if self.generated_chunks == 1 { Some(self.input_tokens) } else { None },
                        "generation_token_count": self.generated_chunks,
                        "stop_reason": null,
                    }),
                };
                Self::chunk(out, &payload);
            }
            (_, StreamEvent::Guardrail(_)) => {}
            (
                format,
                StreamEvent::Stop {
                    reason,
                    stop_sequence,
                    usage,
                },
            ) => {
                let metrics =
                    invocation_metrics(usage, elapsed_ms, self.first_byte_ms.unwrap_or(elapsed_ms));
                let action = self.guarded.then(|| {
                    if *reason == StopReason::GuardrailIntervened {
                        "INTERVENED"
                    } else {
                        "NONE"
                    }
                });
                match format {
                    BodyFormat::Anthropic => {
                        Self::chunk(out, &json!({ "type": "content_block_stop", "index": 0 }));
                        Self::chunk(
                            out,
                            &json!({
                                "type": "message_delta",
                                "delta": { "stop_reason": stop_reason(*reason), "stop_sequence": stop_sequence },
                                "usage": { "output_tokens": usage.output_tokens },
                            }),
                        );
                        let mut last = json!({ "type": "message_stop", "amazon-bedrock-invocationMetrics": metrics });
                        if let Some(a) = action {
                            last["amazon-bedrock-guardrailAction"] = Value::from(a);
                        }
                        Self::chunk(out, &last);
                    }
                    BodyFormat::MetaLlama => {
                        let mut last = json!({
                            "generation": "",
                            "prompt_token_count": if self.generated_chunks == 0 { Some(usage.input_tokens) } else { None },
                            "generation_token_count": usage.output_tokens,
                            "stop_reason": llama_stop(*reason),
                            "amazon-bedrock-invocationMetrics": metrics,
                        });
                        if let Some(a) = action {
                            last["amazon-bedrock-guardrailAction"] = Value::from(a);
                        }
                        Self::chunk(out, &last);
                    }
                }
            }
        }
    }

    fn error(&mut self, error: &Error, out: &mut BytesMut) {
        let member = match error.kind {
            basalt_types::ErrorKind::ModelTimeout => "modelTimeoutException",
            kind => stream_exception(kind),
        };
        out.extend_from_slice(&eventstream::exception_frame(member, &error.message));
    }
}

pub(crate) async fn invoke_stream(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(model_id): Path<String>,
    req_headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AwsError> {
    let guardrail = crate::guardrails::from_headers(&req_headers)?;
    if is_titan_embed_body(&body) {
        return Err(Error::validation(
            "Embedding models do not stream; call InvokeModel with this body.",
        )
        .into());
    }
    let (format, mut request) = parse_invoke_body(&body, model_id.clone())?;
    request.guardrail = guardrail;
    let guarded = request.guardrail.is_some();
    let mut stream = state
        .gateway
        .converse_stream(ctx("InvokeModelWithResponseStream", &id), request)
        .await?;
    let first = streaming::first_event(&mut stream).await?;
    let encoder = InvokeEncoder {
        format,
        model_id,
        message_id: message_id(&id.0),
        input_tokens: 0,
        generated_chunks: 0,
        first_byte_ms: None,
        guarded,
    };
    Ok(event_stream_response(
        streaming::body(stream, first, encoder),
        Some(("x-amzn-bedrock-content-type", "application/json")),
    ))
}

// ---------- CountTokens ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountTokensBody {
    input: CountTokensInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CountTokensInput {
    invoke_model: Option<InvokeModelTokens>,
    converse: Option<ConverseBody>,
}

#[derive(Deserialize)]
struct InvokeModelTokens {
    body: String,
}

pub(crate) async fn count_tokens(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b: CountTokensBody = parse_json(&body)?;
    let request = match (b.input.converse, b.input.invoke_model) {
        (Some(c), None) => c.into_request(model_id, false)?,
        (None, Some(i)) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(i.body.as_bytes())
                .map_err(|e| {
                    Error::validation(format!("input.invokeModel.body is not valid base64: {e}"))
                })?;
            parse_invoke_body(&raw, model_id)?.1
        }
        _ => {
            return Err(Error::validation(
                "input must contain exactly one of converse or invokeModel.",
            )
            .into())
        }
    };
    let n = state.gateway.count_tokens(&request).await?;
    Ok(Json(json!({ "inputTokens": n })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Result<ChatRequest, Error> {
        serde_json::from_value::<ConverseBody>(v)
            .map_err(Error::validation)?
            .into_request("m".into(), false)
    }

    #[test]
    fn converse_body_maps_to_the_canonical_request() {
        let r = req(json!({
            "messages": [{"role": "user", "content": [{"text": "a"}, {"cachePoint": {"type": "default"}}, {"text": "b"}]}],
            "system": [{"text": "be brief"}],
            "inferenceConfig": {"maxTokens": 5, "temperature": 0.0, "stopSequences": ["x"]},
            "additionalModelRequestFields": {"top_k": 3, "seed": 9}
        }))
        .unwrap();
        assert_eq!(r.messages[0].joined_text(), "ab");
        assert_eq!(r.system, vec!["be brief"]);
        assert_eq!(r.inference.max_tokens, Some(5));
        assert_eq!((r.inference.top_k, r.inference.seed), (Some(3), Some(9)));
    }

    #[test]
    fn converse_body_rejects_bad_input() {
        assert!(req(json!({"messages": []})).is_err());
        assert!(req(json!({"messages": [{"role": "user", "content": [{"image": {}}]}]})).is_err());
        assert!(
            req(json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]})).is_err()
        );
        assert!(req(json!({"messages": [{"role": "user", "content": [{"text": "x"}]}], "inferenceConfig": {"maxTokens": 0}})).is_err());
        assert!(serde_json::from_value::<ConverseBody>(json!({"messages": "nope"})).is_err());
    }

    #[test]
    fn invoke_bodies_are_recognised_by_shape() {
        let (f, r) =
            parse_invoke_body(br#"{"prompt": "hi", "max_gen_len": 7}"#, "m".into()).unwrap();
        assert_eq!(f, BodyFormat::MetaLlama);
        assert_eq!(
            (r.raw_prompt.as_deref(), r.inference.max_tokens),
            (Some("hi"), Some(7))
        );
        let (f, r) = parse_invoke_body(
            br#"{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4, "system": "s",
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hey"}]}]}"#,
            "m".into(),
        )
        .unwrap();
        assert_eq!(f, BodyFormat::Anthropic);
        assert_eq!(
            (r.system[0].as_str(), r.messages[0].joined_text().as_str()),
            ("s", "hey")
        );
        assert!(parse_invoke_body(br#"{"inputText": "x"}"#, "m".into()).is_err());
        assert!(parse_invoke_body(br#"{"prompt": "x", "bogus": 1}"#, "m".into()).is_err());
        assert!(parse_invoke_body(b"{not json", "m".into()).is_err());
    }
}
