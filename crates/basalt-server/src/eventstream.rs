//! AWS event-stream (`application/vnd.amazon.eventstream`) frame encoding and decoding,
//! built on `aws-smithy-eventstream`, for the streaming Bedrock/SageMaker responses.
//!
//! Frames produced here are byte-identical to what the real services send and what
//! botocore's event-stream parser expects: the header order is part of the contract
//! (`:event-type`/`:exception-type`, then `:content-type`, then `:message-type`).

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, Bytes, BytesMut};

/// Content type of JSON event and exception payloads.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Length of the frame prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;

/// Smallest possible frame: prelude plus the trailing message CRC.
const MIN_FRAME_LEN: usize = PRELUDE_LEN + 4;

/// Largest frame [`decode_frames`] accepts: the event-stream limits are 16 MiB of payload
/// and 128 KiB of headers. Anything bigger is treated as a corrupt length prefix rather
/// than something to wait for.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024 + 128 * 1024 + MIN_FRAME_LEN;

/// Errors from encoding or decoding event-stream frames.
#[derive(Debug, thiserror::Error)]
pub enum EventStreamError {
    /// A header or payload exceeded the event-stream size limits.
    #[error("cannot encode event-stream frame: {0}")]
    Encode(#[source] aws_smithy_eventstream::error::Error),
    /// A complete frame was malformed (bad CRC, bad header encoding, ...).
    #[error("cannot decode event-stream frame: {0}")]
    Decode(#[source] aws_smithy_eventstream::error::Error),
    /// The length prefix of a frame is outside the allowed range.
    #[error("invalid event-stream frame length {0}")]
    InvalidLength(usize),
}

/// One decoded event-stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    /// The frame's string-typed headers (type 7), in wire order. Headers of other
    /// types are not represented.
    pub headers: Vec<(String, String)>,
    /// The frame's payload.
    pub payload: Bytes,
}

impl DecodedFrame {
    /// The value of the first string header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `:message-type` header (`event`, `exception` or `error`).
    pub fn message_type(&self) -> Option<&str> {
        self.header(":message-type")
    }

    /// The `:event-type` header of an event frame.
    pub fn event_type(&self) -> Option<&str> {
        self.header(":event-type")
    }

    /// The `:exception-type` header of an exception frame.
    pub fn exception_type(&self) -> Option<&str> {
        self.header(":exception-type")
    }
}

fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_owned().into()))
}

fn encode(headers: Vec<Header>, payload: &[u8]) -> Result<Bytes, EventStreamError> {
    let message = Message::new_from_parts(headers, Bytes::copy_from_slice(payload));
    // Prelude + headers + payload + CRC; the headers are small, 128 is plenty for ours.
    let mut out = Vec::with_capacity(MIN_FRAME_LEN + 128 + payload.len());
    write_message_to(&message, &mut out).map_err(EventStreamError::Encode)?;
    Ok(Bytes::from(out))
}

/// Encodes an event frame, or fails if a header or the payload exceeds the
/// event-stream size limits (header values up to 64 KiB, payload up to 4 GiB).
pub fn try_event_frame(
    event_type: &str,
    content_type: &str,
    payload: &[u8],
) -> Result<Bytes, EventStreamError> {
    encode(
        vec![
            string_header(":event-type", event_type),
            string_header(":content-type", content_type),
            string_header(":message-type", "event"),
        ],
        payload,
    )
}

/// Encodes an exception frame whose payload is given verbatim, or fails if it exceeds
/// the event-stream size limits.
pub fn try_exception_frame_raw(
    exception_type: &str,
    payload: &[u8],
) -> Result<Bytes, EventStreamError> {
    encode(
        vec![
            string_header(":exception-type", exception_type),
            string_header(":content-type", CONTENT_TYPE_JSON),
            string_header(":message-type", "exception"),
        ],
        payload,
    )
}

/// The frame sent in place of one that cannot be encoded (only possible for absurd sizes:
/// a header value over 64 KiB or a payload over 4 GiB), so the client sees a modelled
/// error instead of a silently truncated stream.
fn unencodable_frame() -> Bytes {
    try_exception_frame_raw(
        "internalServerException",
        br#"{"message":"event too large to encode"}"#,
    )
    .unwrap_or_default()
}

/// Encodes an event frame with headers `:event-type`, `:content-type`,
/// `:message-type=event` (in that order) and the given payload.
///
/// A frame that cannot be encoded (header value over 64 KiB, payload over 4 GiB) is
/// replaced by an `internalServerException` exception frame; use [`try_event_frame`]
/// to handle that case yourself.
pub fn event_frame(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    try_event_frame(event_type, content_type, payload).unwrap_or_else(|_| unencodable_frame())
}

/// Encodes an event frame whose payload is `payload` serialised as compact JSON,
/// with `:content-type=application/json`.
pub fn json_event(event_type: &str, payload: &serde_json::Value) -> Bytes {
    event_frame(
        event_type,
        CONTENT_TYPE_JSON,
        payload.to_string().as_bytes(),
    )
}

/// Encodes a modelled mid-stream error: headers `:exception-type`,
/// `:content-type=application/json`, `:message-type=exception`, payload
/// `{"message":"<message>"}`.
pub fn exception_frame(exception_type: &str, message: &str) -> Bytes {
    let payload = serde_json::json!({ "message": message }).to_string();
    exception_frame_raw(exception_type, payload.as_bytes())
}

/// Like [`exception_frame`] but with the JSON payload given verbatim.
pub fn exception_frame_raw(exception_type: &str, payload: &[u8]) -> Bytes {
    try_exception_frame_raw(exception_type, payload).unwrap_or_else(|_| unencodable_frame())
}

/// Decodes every complete frame at the front of `buf`, removing them from it; a partial
/// trailing frame is left in `buf` for the next call.
///
/// On error the offending frame has been removed from `buf` (so the frames returned by
/// earlier calls stay valid), but the stream should be treated as corrupt.
pub fn decode_frames(buf: &mut BytesMut) -> Result<Vec<DecodedFrame>, EventStreamError> {
    let mut frames = Vec::new();
    while buf.len() >= PRELUDE_LEN {
        let total_len = usize::try_from((&buf[..4]).get_u32())
            .map_err(|_| EventStreamError::InvalidLength(usize::MAX))?;
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total_len) {
            return Err(EventStreamError::InvalidLength(total_len));
        }
        if buf.len() < total_len {
            break;
        }
        let frame = buf.split_to(total_len).freeze();
        let message = read_message_from(frame).map_err(EventStreamError::Decode)?;
        frames.push(to_decoded(&message));
    }
    Ok(frames)
}

fn to_decoded(message: &Message) -> DecodedFrame {
    let headers = message
        .headers()
        .iter()
        .filter_map(|h| match h.value() {
            HeaderValue::String(s) => Some((h.name().as_str().to_owned(), s.as_str().to_owned())),
            _ => None,
        })
        .collect();
    DecodedFrame {
        headers,
        payload: message.payload().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct Vector {
        hex: String,
        len: usize,
        decoded_headers: serde_json::Map<String, serde_json::Value>,
        payload: String,
    }

    fn vectors() -> BTreeMap<String, Vector> {
        serde_json::from_str(include_str!(
            "../tests/fixtures/wire/eventstream_vectors.json"
        ))
        .unwrap()
    }

    /// The vector's headers, sorted by name (the JSON object does not keep wire order;
    /// the wire order is checked byte for byte by `encoder_reproduces_golden_frames`).
    fn headers_of(v: &Vector) -> Vec<(String, String)> {
        let mut h: Vec<_> = v
            .decoded_headers
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    }

    fn sorted(mut h: Vec<(String, String)>) -> Vec<(String, String)> {
        h.sort();
        h
    }

    #[test]
    fn vector_file_has_all_kinds() {
        let v = vectors();
        assert_eq!(v.len(), 5);
        for name in [
            "messageStart",
            "contentBlockDelta_text",
            "throttlingException",
            "error",
            "sagemaker_PayloadPart_raw",
        ] {
            assert!(v.contains_key(name), "missing vector {name}");
        }
    }

    #[test]
    fn encoder_reproduces_golden_frames() {
        let mut checked = 0;
        for (name, v) in vectors() {
            let expected = hex::decode(&v.hex).unwrap();
            assert_eq!(expected.len(), v.len, "{name}: len field");
            let h = |k: &str| v.decoded_headers[k].as_str().unwrap().to_owned();
            let got = match h(":message-type").as_str() {
                "event" => {
                    event_frame(&h(":event-type"), &h(":content-type"), v.payload.as_bytes())
                }
                "exception" => {
                    assert_eq!(h(":content-type"), CONTENT_TYPE_JSON);
                    exception_frame_raw(&h(":exception-type"), v.payload.as_bytes())
                }
                _ => continue,
            };
            assert_eq!(hex::encode(&got), v.hex, "{name}");
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn json_helpers_match_golden_frames() {
        let v = vectors();
        let start = json_event("messageStart", &serde_json::json!({"role": "assistant"}));
        assert_eq!(hex::encode(&start), v["messageStart"].hex);
        let delta = json_event(
            "contentBlockDelta",
            &serde_json::json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        );
        assert_eq!(hex::encode(&delta), v["contentBlockDelta_text"].hex);
        // The golden throttling payload is Python's json.dumps (space after the colon);
        // ours is compact JSON, so compare decoded content instead of bytes.
        let mut buf = BytesMut::from(&exception_frame("throttlingException", "slow down")[..]);
        let frames = decode_frames(&mut buf).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            sorted(frames[0].headers.clone()),
            headers_of(&v["throttlingException"])
        );
        let got: serde_json::Value = serde_json::from_slice(&frames[0].payload).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(&v["throttlingException"].payload).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn every_vector_decodes() {
        for (name, v) in vectors() {
            let mut buf = BytesMut::from(&hex::decode(&v.hex).unwrap()[..]);
            let frames = decode_frames(&mut buf).unwrap();
            assert_eq!(frames.len(), 1, "{name}");
            assert!(buf.is_empty(), "{name}");
            assert_eq!(sorted(frames[0].headers.clone()), headers_of(&v), "{name}");
            assert_eq!(frames[0].payload, v.payload.as_bytes(), "{name}");
        }
        let mut buf = BytesMut::from(&hex::decode(&vectors()["error"].hex).unwrap()[..]);
        let frame = decode_frames(&mut buf).unwrap().remove(0);
        assert_eq!(frame.message_type(), Some("error"));
        assert_eq!(frame.header(":error-code"), Some("InternalFailure"));
        assert_eq!(frame.header(":error-message"), Some("boom"));
    }

    #[test]
    fn decoder_handles_concatenation_and_partial_frames() {
        let v = vectors();
        let mut stream = Vec::new();
        for name in ["messageStart", "contentBlockDelta_text", "error"] {
            stream.extend(hex::decode(&v[name].hex).unwrap());
        }
        // Feed the stream in 7-byte chunks, collecting frames as they complete.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in stream.chunks(7) {
            buf.extend_from_slice(chunk);
            frames.extend(decode_frames(&mut buf).unwrap());
        }
        assert!(buf.is_empty());
        let kinds: Vec<_> = frames
            .iter()
            .map(|f| {
                f.event_type()
                    .or(f.header(":error-code"))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            ["messageStart", "contentBlockDelta", "InternalFailure"]
        );

        // A partial frame stays in the buffer untouched.
        let one = hex::decode(&v["messageStart"].hex).unwrap();
        let mut buf = BytesMut::from(&one[..one.len() - 1]);
        assert!(decode_frames(&mut buf).unwrap().is_empty());
        assert_eq!(buf.len(), one.len() - 1);
        let mut short = BytesMut::from(&one[..5]);
        assert!(decode_frames(&mut short).unwrap().is_empty());
        assert_eq!(short.len(), 5);
    }

    #[test]
    fn decoder_rejects_corruption() {
        let mut frame = hex::decode(&vectors()["messageStart"].hex).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        let mut buf = BytesMut::from(&frame[..]);
        assert!(matches!(
            decode_frames(&mut buf),
            Err(EventStreamError::Decode(_))
        ));

        let mut frame = hex::decode(&vectors()["messageStart"].hex).unwrap();
        frame[8] ^= 0xff; // prelude CRC
        let mut buf = BytesMut::from(&frame[..]);
        assert!(matches!(
            decode_frames(&mut buf),
            Err(EventStreamError::Decode(_))
        ));

        let mut buf = BytesMut::from(&[0xffu8; 16][..]);
        assert!(matches!(
            decode_frames(&mut buf),
            Err(EventStreamError::InvalidLength(_))
        ));
        let mut buf = BytesMut::from(&[0u8; 16][..]);
        assert!(matches!(
            decode_frames(&mut buf),
            Err(EventStreamError::InvalidLength(0))
        ));
    }

    #[test]
    fn round_trips_arbitrary_payloads() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let frame = event_frame("PayloadPart", "application/octet-stream", &payload);
        let mut buf = BytesMut::from(&frame[..]);
        let decoded = decode_frames(&mut buf).unwrap();
        assert_eq!(decoded[0].payload, payload);
        assert_eq!(decoded[0].event_type(), Some("PayloadPart"));
    }

    #[test]
    fn oversized_header_falls_back_to_exception_frame() {
        let huge = "x".repeat(70_000);
        assert!(matches!(
            try_event_frame(&huge, CONTENT_TYPE_JSON, b"{}"),
            Err(EventStreamError::Encode(_))
        ));
        let mut buf = BytesMut::from(&event_frame(&huge, CONTENT_TYPE_JSON, b"{}")[..]);
        let decoded = decode_frames(&mut buf).unwrap();
        assert_eq!(decoded[0].message_type(), Some("exception"));
        assert_eq!(decoded[0].exception_type(), Some("internalServerException"));
    }
}
