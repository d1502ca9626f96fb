//! HTTP client pieces the CLI's `chat` and `bench` share: picking the model,
//! sending a request with a clear error, and reading an SSE stream.

use anyhow::{bail, Context, Result};
use basalt_gateway::Config;
use serde_json::Value;

/// The model named on the command line, else the first in the catalog.
pub fn model_or_default(config: &Config, model: Option<String>) -> Result<String> {
    match model.or_else(|| config.models.first().map(|m| m.id.clone())) {
        Some(m) => Ok(m),
        None => bail!("no model: pass --model"),
    }
}

/// Sends a request; a non-2xx answer becomes an error carrying its body.
pub async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response> {
    let resp = request
        .send()
        .await
        .with_context(|| format!("cannot reach {what}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!(
            "{what} answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(resp)
}

/// Splits a `text/event-stream` body into the JSON of its `data:` events.
#[derive(Default)]
pub struct SseReader {
    buf: String,
}

impl SseReader {
    /// Feeds a chunk; returns the complete events it finished (`[DONE]` skipped).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Value>> {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut events = Vec::new();
        while let Some(end) = self.buf.find("\n\n") {
            let event: String = self.buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data != "[DONE]" {
                events.push(serde_json::from_str(data)?);
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_may_span_chunks() {
        let mut r = SseReader::default();
        assert!(r.push(b"data: {\"a\":").unwrap().is_empty());
        let events = r.push(b"1}\n\ndata: [DONE]\n\n").unwrap();
        assert_eq!(events, vec![serde_json::json!({"a": 1})]);
    }
}
