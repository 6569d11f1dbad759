//! Phoenix frame encoding and decoding for the two serializer versions Supabase Realtime speaks.
//!
//! - `vsn=1.0.0`: JSON objects `{"topic","event","payload","ref"[,"join_ref"]}` in text frames.
//!   Server frames carry only `topic, event, payload, ref`, like Phoenix's V1 serializer.
//! - `vsn=2.0.0`: JSON arrays `[join_ref, ref, topic, event, payload]` in text frames, plus two
//!   binary kinds: kind 3 (client → server user broadcast push) is decoded here, kind 4
//!   (server → client user broadcast) is the only binary frame ever sent, because it is the only
//!   one realtime-js can decode.
//!
//! Design: outgoing frames are built once and shared (`Utf8Bytes` / `Bytes` are reference
//! counted), so a fan-out to N subscribers costs one encoding per serializer version. Pieces that
//! are already JSON (a postgres change's `data`, a kind-3 JSON payload) are spliced into the frame
//! as text instead of being parsed and re-serialised.
//!
//! Failure modes: anything that does not decode ([`FrameError`]) is reported to the caller, which
//! logs and drops the frame and keeps the connection open (Realtime's `MalformedWebSocketMessage`).
//! A kind-4 frame whose topic, event or metadata is longer than 255 bytes cannot be encoded
//! ([`user_broadcast_binary`] returns `None`); callers fall back to a text frame.

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

/// Binary frame kind: client → server user broadcast push.
const KIND_USER_BROADCAST_PUSH: u8 = 3;
/// Binary frame kind: server → client user broadcast.
const KIND_USER_BROADCAST: u8 = 4;

/// The serializer a socket negotiated with `?vsn=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    /// Phoenix treats a missing `vsn` as `1.0.0`; anything other than the two supported
    /// versions is refused.
    pub fn parse(vsn: Option<&str>) -> Option<Vsn> {
        match vsn {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            Some(_) => None,
        }
    }
}

/// Why a client frame was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame is not valid JSON")]
    NotJson,
    #[error("frame does not have the {0} shape")]
    WrongShape(&'static str),
    #[error("payload is not a JSON object")]
    PayloadNotObject,
    #[error("binary frames are not part of the 1.0.0 serializer")]
    BinaryOnV1,
    #[error("binary frame kind {0} is not accepted (only 3, user broadcast push)")]
    UnsupportedKind(u8),
    #[error("binary frame header is truncated or its lengths overrun the frame")]
    BinaryHeader,
    #[error("binary frame field {0} is not UTF-8")]
    BinaryText(&'static str),
    #[error("binary frame payload encoding {0} is unknown (1 = JSON, 0 = binary)")]
    BinaryEncoding(u8),
    #[error("binary frame JSON payload or metadata is not valid JSON")]
    BinaryJson,
}

/// A text push from the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub join_ref: Option<String>,
    pub reference: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Map<String, Value>,
    /// Size of the frame on the wire, the measure for payload limits.
    pub size: usize,
}

/// The payload of a user broadcast that travels as bytes (kind 3 in, kind 4 out).
#[derive(Debug, Clone, PartialEq)]
pub enum BroadcastBytes {
    /// Valid JSON text.
    Json(Bytes),
    /// Raw bytes (an `ArrayBuffer` on the client); never delivered to 1.0.0 sockets.
    Binary(Bytes),
}

impl BroadcastBytes {
    pub fn len(&self) -> usize {
        match self {
            BroadcastBytes::Json(b) | BroadcastBytes::Binary(b) => b.len(),
        }
    }
}

/// A kind-3 binary push.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryPush {
    pub join_ref: Option<String>,
    pub reference: Option<String>,
    pub topic: String,
    pub event: String,
    /// JSON metadata, or empty.
    pub metadata: Bytes,
    pub payload: BroadcastBytes,
}

/// Decodes a text frame according to the socket's serializer.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Push, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|_| FrameError::NotJson)?;
    let (join_ref, reference, topic, event, payload) = match (vsn, value) {
        (Vsn::V2, Value::Array(mut items)) if items.len() >= 5 => {
            let payload = items[4].take();
            let event = items[3].take();
            let topic = items[2].take();
            (ref_of(&items[0])?, ref_of(&items[1])?, topic, event, payload)
        }
        (Vsn::V2, _) => return Err(FrameError::WrongShape("[join_ref, ref, topic, event, payload] array")),
        (Vsn::V1, Value::Object(mut obj)) => {
            let get = |o: &mut Map<String, Value>, k: &str| o.remove(k).unwrap_or(Value::Null);
            let join_ref = ref_of(&get(&mut obj, "join_ref"))?;
            let reference = ref_of(&get(&mut obj, "ref"))?;
            (join_ref, reference, get(&mut obj, "topic"), get(&mut obj, "event"), get(&mut obj, "payload"))
        }
        (Vsn::V1, _) => return Err(FrameError::WrongShape("{topic, event, payload, ref} object")),
    };
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err(FrameError::WrongShape("string topic and event"));
    };
    let Value::Object(payload) = payload else {
        return Err(FrameError::PayloadNotObject);
    };
    Ok(Push { join_ref, reference, topic, event, payload, size: text.len() })
}

/// `join_ref` / `ref`: a string, a number (stringified) or null.
fn ref_of(v: &Value) -> Result<Option<String>, FrameError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(FrameError::WrongShape("string or null ref")),
    }
}

/// Decodes a binary frame: only kind 3 on 2.0.0 sockets.
pub fn decode_binary(vsn: Vsn, data: Bytes) -> Result<BinaryPush, FrameError> {
    if vsn == Vsn::V1 {
        return Err(FrameError::BinaryOnV1);
    }
    let header = data.get(..7).ok_or(FrameError::BinaryHeader)?;
    if header[0] != KIND_USER_BROADCAST_PUSH {
        return Err(FrameError::UnsupportedKind(header[0]));
    }
    let lens = [header[1], header[2], header[3], header[4], header[5]].map(usize::from);
    let encoding = header[6];
    let mut at = 7;
    let mut field = |n: usize| -> Result<Bytes, FrameError> {
        let end = at + n;
        if end > data.len() {
            return Err(FrameError::BinaryHeader);
        }
        let b = data.slice(at..end);
        at = end;
        Ok(b)
    };
    let text = |b: Bytes, name: &'static str| String::from_utf8(b.to_vec()).map_err(|_| FrameError::BinaryText(name));
    let join_ref = text(field(lens[0])?, "join_ref")?;
    let reference = text(field(lens[1])?, "ref")?;
    let topic = text(field(lens[2])?, "topic")?;
    let event = text(field(lens[3])?, "event")?;
    let metadata = field(lens[4])?;
    let payload = data.slice(at..);
    if !metadata.is_empty() && !is_json(&metadata) {
        return Err(FrameError::BinaryJson);
    }
    let payload = match encoding {
        1 if is_json(&payload) => BroadcastBytes::Json(payload),
        1 => return Err(FrameError::BinaryJson),
        0 => BroadcastBytes::Binary(payload),
        other => return Err(FrameError::BinaryEncoding(other)),
    };
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(BinaryPush { join_ref: non_empty(join_ref), reference: non_empty(reference), topic, event, metadata, payload })
}

/// True if `bytes` is one complete JSON value.
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

#[derive(Serialize)]
struct V1Frame<'a, P: Serialize> {
    topic: &'a str,
    event: &'a str,
    payload: &'a P,
    #[serde(rename = "ref")]
    reference: Option<&'a str>,
}

/// Encodes a server push or reply as a text frame.
pub fn text_frame<P: Serialize>(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &P,
) -> Message {
    let encoded = match vsn {
        Vsn::V2 => serde_json::to_string(&(join_ref, reference, topic, event, payload)),
        Vsn::V1 => serde_json::to_string(&V1Frame { topic, event, payload, reference }),
    };
    // Serialising strings and `serde_json` values cannot fail; an empty frame would only be
    // dropped by the client, so no panic path is needed.
    Message::Text(Utf8Bytes::from(encoded.unwrap_or_default()))
}

/// Encodes a server push whose payload is already JSON text (spliced in verbatim).
pub fn raw_text_frame(vsn: Vsn, topic: &str, event: &str, payload_json: &str) -> Message {
    let topic = json_string(topic);
    let event = json_string(event);
    let mut s = String::with_capacity(payload_json.len() + topic.len() + event.len() + 48);
    match vsn {
        Vsn::V2 => {
            s.push_str("[null,null,");
            s.push_str(&topic);
            s.push(',');
            s.push_str(&event);
            s.push(',');
            s.push_str(payload_json);
            s.push(']');
        }
        Vsn::V1 => {
            s.push_str("{\"topic\":");
            s.push_str(&topic);
            s.push_str(",\"event\":");
            s.push_str(&event);
            s.push_str(",\"payload\":");
            s.push_str(payload_json);
            s.push_str(",\"ref\":null}");
        }
    }
    Message::Text(Utf8Bytes::from(s))
}

/// A JSON string literal for `s`.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `{"status":…,"response":…}` reply payload.
pub fn reply_payload(ok: bool, response: Value) -> Value {
    serde_json::json!({ "status": if ok { "ok" } else { "error" }, "response": response })
}

/// A `phx_reply`.
pub fn reply(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    ok: bool,
    response: Value,
) -> Message {
    text_frame(vsn, join_ref, reference, topic, "phx_reply", &reply_payload(ok, response))
}

/// An error reply `{"reason": …}`.
pub fn error_reply(vsn: Vsn, join_ref: Option<&str>, reference: Option<&str>, topic: &str, reason: &str) -> Message {
    reply(vsn, join_ref, reference, topic, false, serde_json::json!({ "reason": reason }))
}

/// `phx_close`: `ref` equals `join_ref`, payload `{}`.
pub fn close(vsn: Vsn, join_ref: &str, topic: &str) -> Message {
    text_frame(vsn, Some(join_ref), Some(join_ref), topic, "phx_close", &serde_json::json!({}))
}

/// Kind-4 user broadcast frame, or `None` if topic, event or metadata exceed 255 bytes.
pub fn user_broadcast_binary(topic: &str, event: &str, metadata: &[u8], payload: &BroadcastBytes) -> Option<Message> {
    let (encoding, body) = match payload {
        BroadcastBytes::Json(b) => (1u8, b),
        BroadcastBytes::Binary(b) => (0u8, b),
    };
    let (t, e, m) =
        (u8::try_from(topic.len()).ok()?, u8::try_from(event.len()).ok()?, u8::try_from(metadata.len()).ok()?);
    let mut out = Vec::with_capacity(5 + topic.len() + event.len() + metadata.len() + body.len());
    out.extend_from_slice(&[KIND_USER_BROADCAST, t, e, m, encoding]);
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(metadata);
    out.extend_from_slice(body);
    Some(Message::Binary(Bytes::from(out)))
}

/// The text form of a user broadcast whose payload is JSON bytes:
/// `{"type":"broadcast","event":…,"payload":…[,"meta":…]}`. `None` for binary payloads, which
/// have no text form.
pub fn user_broadcast_text(
    vsn: Vsn,
    topic: &str,
    event: &str,
    metadata: &[u8],
    payload: &BroadcastBytes,
) -> Option<Message> {
    let BroadcastBytes::Json(json) = payload else {
        return None;
    };
    let json = std::str::from_utf8(json).ok()?;
    let mut inner = String::with_capacity(json.len() + event.len() + metadata.len() + 48);
    inner.push_str("{\"type\":\"broadcast\",\"event\":");
    inner.push_str(&json_string(event));
    inner.push_str(",\"payload\":");
    inner.push_str(json);
    if !metadata.is_empty() {
        inner.push_str(",\"meta\":");
        inner.push_str(std::str::from_utf8(metadata).ok()?);
    }
    inner.push('}');
    Some(raw_text_frame(vsn, topic, "broadcast", &inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind3(join_ref: &str, r: &str, topic: &str, event: &str, meta: &str, enc: u8, payload: &[u8]) -> Bytes {
        let mut v =
            vec![3, join_ref.len() as u8, r.len() as u8, topic.len() as u8, event.len() as u8, meta.len() as u8, enc];
        for f in [join_ref, r, topic, event, meta] {
            v.extend_from_slice(f.as_bytes());
        }
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    #[test]
    fn v2_arrays_and_v1_objects_decode_to_the_same_push() {
        let a = decode_text(Vsn::V2, r#"["1","2","realtime:r","phx_join",{"a":1}]"#).expect("v2");
        let b = decode_text(
            Vsn::V1,
            r#"{"join_ref":"1","ref":"2","topic":"realtime:r","event":"phx_join","payload":{"a":1}}"#,
        )
        .expect("v1");
        let (mut a, mut b) = (a, b);
        a.size = 0;
        b.size = 0;
        assert_eq!(a, b);
        assert_eq!(a.reference.as_deref(), Some("2"));
    }

    #[test]
    fn malformed_text_frames_are_errors() {
        assert_eq!(decode_text(Vsn::V2, "nope"), Err(FrameError::NotJson));
        assert!(matches!(decode_text(Vsn::V2, r#"{"topic":"x"}"#), Err(FrameError::WrongShape(_))));
        assert!(matches!(decode_text(Vsn::V1, r#"[null,null,"t","e",{}]"#), Err(FrameError::WrongShape(_))));
        assert_eq!(decode_text(Vsn::V2, r#"[null,"1","t","e",5]"#), Err(FrameError::PayloadNotObject));
        assert!(matches!(decode_text(Vsn::V2, r#"[null,"1",5,"e",{}]"#), Err(FrameError::WrongShape(_))));
    }

    #[test]
    fn kind3_decodes_and_kind4_encodes() {
        let frame = kind3("6", "7", "realtime:room1", "x", "", 1, br#"{"hello":"w"}"#);
        let p = decode_binary(Vsn::V2, frame).expect("kind 3");
        assert_eq!(
            (p.join_ref.as_deref(), p.reference.as_deref(), p.topic.as_str(), p.event.as_str()),
            (Some("6"), Some("7"), "realtime:room1", "x")
        );
        assert_eq!(p.payload, BroadcastBytes::Json(Bytes::from_static(br#"{"hello":"w"}"#)));
        let Some(Message::Binary(out)) = user_broadcast_binary(&p.topic, &p.event, &p.metadata, &p.payload) else {
            panic!("kind 4")
        };
        let mut want = vec![4, 14, 1, 0, 1];
        want.extend_from_slice(b"realtime:room1x{\"hello\":\"w\"}");
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn bad_binary_frames_are_errors() {
        assert_eq!(decode_binary(Vsn::V1, kind3("", "", "t", "e", "", 1, b"{}")), Err(FrameError::BinaryOnV1));
        assert_eq!(decode_binary(Vsn::V2, Bytes::from_static(&[3, 0, 0])), Err(FrameError::BinaryHeader));
        assert_eq!(
            decode_binary(Vsn::V2, Bytes::from_static(&[0, 0, 0, 0, 0, 0, 1])),
            Err(FrameError::UnsupportedKind(0))
        );
        assert_eq!(
            decode_binary(Vsn::V2, Bytes::from_static(&[3, 9, 0, 0, 0, 0, 1, b'a'])),
            Err(FrameError::BinaryHeader)
        );
        assert_eq!(decode_binary(Vsn::V2, kind3("", "", "t", "e", "", 1, b"{nope")), Err(FrameError::BinaryJson));
        assert_eq!(decode_binary(Vsn::V2, kind3("", "", "t", "e", "", 7, b"{}")), Err(FrameError::BinaryEncoding(7)));
    }

    #[test]
    fn user_broadcast_text_forms() {
        let p = BroadcastBytes::Json(Bytes::from_static(b"{\"a\":1}"));
        let Some(Message::Text(t)) = user_broadcast_text(Vsn::V1, "realtime:r", "ev", b"", &p) else { panic!("text") };
        let v: Value = serde_json::from_str(t.as_str()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"topic":"realtime:r","event":"broadcast","payload":{"type":"broadcast","event":"ev","payload":{"a":1}},"ref":null})
        );
        assert!(
            user_broadcast_text(Vsn::V2, "t", "e", b"", &BroadcastBytes::Binary(Bytes::from_static(b"\x00"))).is_none()
        );
        assert!(user_broadcast_binary(&"t".repeat(256), "e", b"", &p).is_none());
    }
}
