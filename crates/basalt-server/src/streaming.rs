//! Turns a metered generation stream into an HTTP body, one wire encoder per
//! API (AWS event-stream frames, Anthropic/Llama chunks, OpenAI SSE). Dropping
//! the body (the client went away) drops the stream, which cancels generation.

use std::convert::Infallible;

use axum::body::Body;
use basalt_gateway::GatewayStream;
use basalt_types::{Error, StreamEvent};
use bytes::{Bytes, BytesMut};

/// Encodes generation events into wire bytes.
pub trait Encoder: Send + 'static {
    /// Bytes for one event; `elapsed_ms` is the time since the call started.
    fn event(&mut self, event: &StreamEvent, elapsed_ms: u64, out: &mut BytesMut);
    /// Bytes for an error after the response has started.
    fn error(&mut self, error: &Error, out: &mut BytesMut);
    /// Bytes after the last event (e.g. SSE `[DONE]`).
    fn end(&mut self, _out: &mut BytesMut) {}
}

struct State<E> {
    stream: Option<GatewayStream>,
    first: Option<StreamEvent>,
    encoder: E,
}

/// Waits for the first event so that errors before any output are ordinary
/// HTTP errors; afterwards errors travel inside the stream.
pub async fn first_event(stream: &mut GatewayStream) -> Result<StreamEvent, Error> {
    match stream.next().await {
        Some(event) => event,
        None => Err(Error::internal("the generation produced no events")),
    }
}

/// A streaming body that starts with `first` (already received, so errors
/// before it were answered as ordinary HTTP errors) and continues with `stream`.
pub fn body(stream: GatewayStream, first: StreamEvent, encoder: impl Encoder) -> Body {
    let state = State {
        stream: Some(stream),
        first: Some(first),
        encoder,
    };
    let chunks = futures::stream::unfold(state, |mut st| async move {
        let stream = st.stream.as_mut()?;
        let next = match st.first.take() {
            Some(event) => Some(Ok(event)),
            None => stream.next().await,
        };
        let mut out = BytesMut::new();
        match next {
            Some(Ok(event)) => {
                let elapsed = stream.elapsed_ms();
                st.encoder.event(&event, elapsed, &mut out);
                if matches!(event, StreamEvent::Stop { .. }) {
                    st.encoder.end(&mut out);
                    st.stream = None;
                }
            }
            Some(Err(error)) => {
                st.encoder.error(&error, &mut out);
                st.encoder.end(&mut out);
                st.stream = None;
            }
            None => return None,
        }
        Some((Ok::<Bytes, Infallible>(out.freeze()), st))
    });
    Body::from_stream(chunks)
}
