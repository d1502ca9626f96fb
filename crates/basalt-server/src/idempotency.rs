//! `clientToken` / `clientRequestToken` idempotency for the create/start operations that take one
//! (CreateKnowledgeBase, CreateDataSource, StartIngestionJob,
//! IngestKnowledgeBaseDocuments, DeleteKnowledgeBaseDocuments, CreateGuardrail,
//! CreateGuardrailVersion): the first successful answer to a token is stored,
//! a retry with the same token and the same request gets that answer again
//! (no second resource), and the same token with a different request is a
//! ConflictException. boto3 fills `clientToken` in itself and reuses it when
//! it retries, so a retried create never makes a duplicate.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use basalt_store::IdempotentAnswer;
use basalt_types::Error;
use sha2::{Digest, Sha256};

use crate::error::AwsError;
use crate::AppState;

/// One idempotent request at a time, so two retries racing with the same
/// token cannot both create. These operations are rare and quick.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The idempotency token of a JSON body, if it has one: `clientToken`
/// (bedrock-agent) or `clientRequestToken` (bedrock guardrails).
fn client_token(body: &[u8]) -> Option<String> {
    let has = |name: &[u8]| body.windows(name.len()).any(|w| w == name);
    if !has(b"\"clientToken\"") && !has(b"\"clientRequestToken\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["clientToken", "clientRequestToken"]
        .iter()
        .find_map(|k| v.get(k)?.as_str().filter(|t| !t.is_empty()))
        .map(str::to_string)
}

async fn store_call<T: Send + 'static>(
    f: impl FnOnce() -> basalt_store::Result<T> + Send + 'static,
) -> Result<T, AwsError> {
    Ok(
        crate::blocking(move || f().map_err(|e| Error::internal(format!("the store failed: {e}"))))
            .await?,
    )
}

fn replay(answer: IdempotentAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, answer.body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Middleware for routes whose POST/PUT bodies may carry a `clientToken`.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(&state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, AwsError> {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return Ok(next.run(req).await);
    }
    let limit = state.gateway.config().server.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| Error::validation(format!("The request body could not be read: {e}")))?;
    let Some(token) = client_token(&bytes) else {
        return Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await);
    };
    let operation = format!("{} {}", parts.method, parts.uri.path());
    let digest = hex::encode(Sha256::digest(&bytes));
    let _one = ONE_AT_A_TIME.lock().await;
    let store = state.gateway.store().clone();
    let previous = {
        let (store, operation, token) = (store.clone(), operation.clone(), token.clone());
        store_call(move || store.idempotent_answer(&operation, &token, now_ms())).await?
    };
    if let Some(answer) = previous {
        if answer.request_sha256 != digest {
            return Err(Error::conflict(format!(
                "The client token {token} was already used with a different request; use a new token for a new request."
            ))
            .into());
        }
        return Ok(replay(answer));
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !resp.status().is_success() {
        return Ok(resp);
    }
    let (resp_parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| Error::internal(format!("the answer could not be read: {e}")))?;
    let answer = IdempotentAnswer {
        request_sha256: digest,
        status: resp_parts.status.as_u16(),
        body: body.to_vec(),
    };
    store_call(move || store.remember_answer(&operation, &token, &answer, now_ms())).await?;
    Ok(Response::from_parts(resp_parts, Body::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_string_token_counts() {
        assert_eq!(
            client_token(br#"{"name":"a","clientToken":"t-1"}"#).as_deref(),
            Some("t-1")
        );
        assert_eq!(
            client_token(br#"{"clientRequestToken":"t-2"}"#).as_deref(),
            Some("t-2")
        );
        assert_eq!(client_token(br#"{"name":"a"}"#), None);
        assert_eq!(client_token(br#"{"clientToken":""}"#), None);
        assert_eq!(client_token(br#"{"clientToken":7}"#), None);
        assert_eq!(client_token(b"not json \"clientToken\""), None);
    }
}
