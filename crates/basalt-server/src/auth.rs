//! The guard every request passes first: assigns the request id, enforces the
//! body-size limit, and — when keys are configured — requires a valid SigV4
//! signature or a Bearer API key.

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use basalt_types::{Error, ErrorKind};
use subtle::ConstantTimeEq;

use crate::error::error_for_path;
use crate::{sigv4, AppState, RequestId};

fn denied(message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::AccessDenied, message)
}

/// Checks the request's credentials against the configured keys.
fn authorize(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), Error> {
    let auth = &state.gateway.config().auth;
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| denied("Missing credentials: sign the request with SigV4 or send Authorization: Bearer <api key>."))?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        let token = token.trim().as_bytes();
        let ok = auth.api_keys.iter().fold(false, |found, key| {
            found | bool::from(key.as_bytes().ct_eq(token))
        });
        return if ok {
            Ok(())
        } else {
            Err(denied("The API key is not valid."))
        };
    }
    if header.starts_with("AWS4-HMAC-SHA256") {
        let request = sigv4::SignedRequest::from_parts(parts, body);
        let lookup = |id: &str| {
            auth.access_keys
                .iter()
                .find(|k| k.access_key_id == id)
                .map(|k| k.secret_access_key.clone())
        };
        return sigv4::verify(
            &request,
            lookup,
            SystemTime::now(),
            Duration::from_secs(auth.max_clock_skew_seconds),
        )
        .map(|_| ())
        .map_err(|e| denied(format!("The request signature is not valid: {e}")));
    }
    Err(denied(
        "Unsupported Authorization scheme: use AWS SigV4 or Bearer.",
    ))
}

fn with_request_id(mut resp: Response, id: &RequestId) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// Reads and discards a body that is over the limit, so the client finishes
/// sending and reads the 413 instead of a connection reset. Bounded: past
/// `DRAIN_LIMIT_FACTOR` times the limit the connection is simply closed.
async fn drain(body: Body, limit: usize) {
    use futures::StreamExt;
    const DRAIN_LIMIT_FACTOR: usize = 16;
    let cap = limit.saturating_mul(DRAIN_LIMIT_FACTOR);
    let mut seen = 0usize;
    let mut stream = body.into_data_stream();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > cap {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
}

/// Middleware: request id, body limit, authentication.
pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = RequestId(basalt_types::new_request_id());
    let path = req.uri().path().to_string();
    let (mut parts, body) = req.into_parts();
    let limit = state.gateway.config().server.max_body_bytes;
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        error_for_path(
            &path,
            Error::validation(format!(
                "The request body is larger than the limit of {limit} bytes (server.max_body_bytes)."
            )),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        drain(body, limit).await;
        return with_request_id(too_large(), &id);
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return with_request_id(too_large(), &id),
    };
    if state.gateway.config().auth.enabled() && path != "/ping" {
        if let Err(e) = authorize(&state, &parts, &bytes) {
            tracing::info!(path = %path, reason = %e, "request denied");
            return with_request_id(error_for_path(&path, e, None), &id);
        }
    }
    parts.extensions.insert(id.clone());
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    with_request_id(resp, &id)
}
