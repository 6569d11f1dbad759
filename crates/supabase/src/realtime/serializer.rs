//! Phoenix frames in the two serializer versions Supabase Realtime speaks (wire spec §1.2).
//!
//! - `vsn=2.0.0` (default, as realtime-js ≥ 2.91): text frames are JSON arrays
//!   `[join_ref, ref, topic, event, payload]`; user broadcasts are sent as binary **kind 3**
//!   frames and may arrive as binary **kind 4** frames.
//! - `vsn=1.0.0`: text frames are JSON objects `{topic, event, payload, ref, join_ref}`; no
//!   binary frames (a broadcast is a text `broadcast` push).
//!
//! Decoding is one pass over the text: the envelope is read element by element and a
//! `postgres_changes` payload is deserialised straight into its typed form (no intermediate
//! `Value` tree), which is what makes the client's decode + dispatch fast. Other payloads stay
//! JSON values. `join_ref` / `ref` are accepted as strings, numbers or null.
//!
//! Failure modes: a frame that is not one of these shapes, or a binary kind other than 4, is a
//! [`FrameError`]; the socket task logs and drops it and keeps the connection (as the server
//! does with `MalformedWebSocketMessage`). Kind-3 header fields are single bytes: a topic,
//! event or ref longer than 255 bytes cannot be sent ([`SendError::FieldTooLong`]).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::broadcast::{Broadcast, BroadcastPayload};
use super::error::SendError;
use super::postgres_changes::{ChangesPayload, ChangesSeed, ColumnCache};

const KIND_USER_BROADCAST_PUSH: u8 = 3;
const KIND_USER_BROADCAST: u8 = 4;

/// The Phoenix serializer version, sent as `?vsn=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vsn {
    /// `1.0.0`: JSON objects, no binary frames.
    V1,
    /// `2.0.0`: JSON arrays plus binary user broadcasts (kinds 3 and 4).
    #[default]
    V2,
}

impl Vsn {
    pub fn as_str(self) -> &'static str {
        match self {
            Vsn::V1 => "1.0.0",
            Vsn::V2 => "2.0.0",
        }
    }
}

/// A frame from the server, decoded; topic and event borrow from the frame text when they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming<'a> {
    pub join_ref: Option<String>,
    pub reference: Option<String>,
    pub topic: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    Json(Value),
    /// A `postgres_changes` payload, decoded to its typed form.
    Changes(ChangesPayload),
    /// A binary kind-4 user broadcast (event `broadcast`).
    UserBroadcast(Broadcast),
}

/// Why a server frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("text frame does not decode: {0}")]
    Text(String),
    #[error("binary frames are not part of vsn 1.0.0")]
    BinaryOnV1,
    #[error("binary frame kind {0} is not a server frame (only 4, user broadcast)")]
    Kind(u8),
    #[error("binary frame header is truncated or its lengths overrun the frame")]
    Header,
    #[error("binary frame field {0} is not UTF-8")]
    Utf8(&'static str),
    #[error("binary frame payload encoding {0} is unknown")]
    Encoding(u8),
    #[error("binary frame JSON payload or metadata does not parse")]
    Json,
}

/// Decodes a text frame (`columns` shares the column lists of postgres changes).
pub(crate) fn decode_text<'a>(vsn: Vsn, text: &'a str, columns: &mut ColumnCache) -> Result<Incoming<'a>, FrameError> {
    match vsn {
        Vsn::V2 => {
            let mut de = serde_json::Deserializer::from_str(text);
            let frame = de.deserialize_seq(V2Visitor(columns)).map_err(|e| FrameError::Text(e.to_string()))?;
            de.end().map_err(|e| FrameError::Text(e.to_string()))?;
            Ok(frame)
        }
        Vsn::V1 => decode_v1(text, columns),
    }
}

fn decode_v1(text: &str, columns: &mut ColumnCache) -> Result<Incoming<'static>, FrameError> {
    let bad = |why: &str| FrameError::Text(why.to_string());
    let Value::Object(mut o) = serde_json::from_str(text).map_err(|e| FrameError::Text(e.to_string()))? else {
        return Err(bad("a 1.0.0 frame is a JSON object"));
    };
    let mut take_str = |k: &str| match o.remove(k) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(bad("ref, join_ref, topic and event are strings")),
    };
    let join_ref = take_str("join_ref")?;
    let reference = take_str("ref")?;
    let topic = take_str("topic")?.ok_or_else(|| bad("topic is missing"))?;
    let event = take_str("event")?.ok_or_else(|| bad("event is missing"))?;
    let raw = o.remove("payload").unwrap_or(Value::Null);
    let payload = if event == "postgres_changes" {
        Payload::Changes(ChangesSeed(columns).deserialize(raw).map_err(|e| FrameError::Text(e.to_string()))?)
    } else {
        Payload::Json(raw)
    };
    Ok(Incoming { join_ref, reference, topic: Cow::Owned(topic), event: Cow::Owned(event), payload })
}

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `join_ref` / `ref`: a string, a number or null.
struct Ref(Option<String>);

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ref, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ref, E> {
                Ok(Ref(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Ref, E> {
                Ok(Ref(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ref, E> {
                Ok(Ref(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ref, E> {
                Ok(Ref(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ref, E> {
                Ok(Ref(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Ref, E> {
                Ok(Ref(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The payload element, typed by the event that precedes it.
struct PayloadSeed<'a, 'c>(&'a str, &'c mut ColumnCache);

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_, '_> {
    type Value = Payload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        if self.0 == "postgres_changes" {
            ChangesSeed(self.1).deserialize(d).map(Payload::Changes)
        } else {
            Value::deserialize(d).map(Payload::Json)
        }
    }
}

struct V2Visitor<'c>(&'c mut ColumnCache);

impl<'de> Visitor<'de> for V2Visitor<'_> {
    type Value = Incoming<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [join_ref, ref, topic, event, payload] array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming<'de>, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"a [join_ref, ref, topic, event, payload] array");
        let join_ref: Ref = seq.next_element()?.ok_or_else(|| missing(0))?;
        let reference: Ref = seq.next_element()?.ok_or_else(|| missing(1))?;
        let topic: Text<'de> = seq.next_element()?.ok_or_else(|| missing(2))?;
        let event: Text<'de> = seq.next_element()?.ok_or_else(|| missing(3))?;
        let payload = seq.next_element_seed(PayloadSeed(&event.0, self.0))?.ok_or_else(|| missing(4))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Incoming { join_ref: join_ref.0, reference: reference.0, topic: topic.0, event: event.0, payload })
    }
}

/// Decodes a binary frame: only kind 4 (user broadcast) is a server frame.
pub(crate) fn decode_binary(vsn: Vsn, data: &Bytes) -> Result<Incoming<'static>, FrameError> {
    if vsn == Vsn::V1 {
        return Err(FrameError::BinaryOnV1);
    }
    let (&kind, rest) = data.split_first().ok_or(FrameError::Header)?;
    if kind != KIND_USER_BROADCAST {
        return Err(FrameError::Kind(kind));
    }
    let [topic_len, event_len, meta_len, encoding] = *rest.get(..4).ok_or(FrameError::Header)? else {
        return Err(FrameError::Header);
    };
    let mut at = 5usize;
    let mut field = |len: u8| {
        let end = at + usize::from(len);
        let slice = data.get(at..end).ok_or(FrameError::Header);
        at = end;
        slice
    };
    let topic = std::str::from_utf8(field(topic_len)?).map_err(|_| FrameError::Utf8("topic"))?.to_string();
    let event = std::str::from_utf8(field(event_len)?).map_err(|_| FrameError::Utf8("event"))?.to_string();
    let meta_bytes = field(meta_len)?;
    let meta = if meta_bytes.is_empty() {
        None
    } else {
        Some(serde_json::from_slice::<Value>(meta_bytes).map_err(|_| FrameError::Json)?)
    };
    let body = data.slice(at..);
    let payload = match encoding {
        1 => BroadcastPayload::Json(serde_json::from_slice(&body).map_err(|_| FrameError::Json)?),
        0 => BroadcastPayload::Binary(body),
        other => return Err(FrameError::Encoding(other)),
    };
    Ok(Incoming {
        join_ref: None,
        reference: None,
        topic: Cow::Owned(topic),
        event: Cow::Borrowed("broadcast"),
        payload: Payload::UserBroadcast(Broadcast { event, payload, meta }),
    })
}

/// A text frame.
pub(crate) fn encode_text(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Value,
) -> Message {
    let text = match vsn {
        Vsn::V2 => json!([join_ref, reference, topic, event, payload]).to_string(),
        Vsn::V1 => json!({"topic": topic, "event": event, "payload": payload, "ref": reference, "join_ref": join_ref})
            .to_string(),
    };
    Message::text(text)
}

/// A user broadcast push: a binary kind-3 frame on 2.0.0, a text `broadcast` push on 1.0.0
/// (like realtime-js).
pub(crate) fn encode_broadcast(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: &str,
    topic: &str,
    event: &str,
    payload: &BroadcastPayload,
) -> Result<Message, SendError> {
    match vsn {
        Vsn::V1 => match payload {
            BroadcastPayload::Json(p) => {
                let wrapper = json!({"type": "broadcast", "event": event, "payload": p});
                Ok(encode_text(vsn, join_ref, Some(reference), topic, "broadcast", &wrapper))
            }
            BroadcastPayload::Binary(_) => {
                Err(SendError::Rejected { reason: "binary broadcasts need serializer vsn 2.0.0".into() })
            }
        },
        Vsn::V2 => {
            let join_ref = join_ref.unwrap_or("");
            let len = |field: &'static str, s: &str| {
                u8::try_from(s.len()).map_err(|_| SendError::FieldTooLong { field, len: s.len() })
            };
            let header = [
                KIND_USER_BROADCAST_PUSH,
                len("join_ref", join_ref)?,
                len("ref", reference)?,
                len("topic", topic)?,
                len("event", event)?,
                0, // metadata: none
            ];
            let (encoding, body) = match payload {
                BroadcastPayload::Json(p) => (1u8, serde_json::to_vec(p).unwrap_or_else(|_| b"{}".to_vec())),
                BroadcastPayload::Binary(b) => (0u8, b.to_vec()),
            };
            let mut frame =
                Vec::with_capacity(7 + join_ref.len() + reference.len() + topic.len() + event.len() + body.len());
            frame.extend_from_slice(&header);
            frame.push(encoding);
            for part in [join_ref.as_bytes(), reference.as_bytes(), topic.as_bytes(), event.as_bytes()] {
                frame.extend_from_slice(part);
            }
            frame.extend_from_slice(&body);
            Ok(Message::binary(frame))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::postgres_changes::ChangeKind;

    fn text_of(m: &Message) -> String {
        match m {
            Message::Text(t) => t.as_str().to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn v2_text_round_trips_with_null_refs() {
        let m = encode_text(Vsn::V2, None, Some("8"), "phoenix", "heartbeat", &json!({}));
        assert_eq!(text_of(&m), r#"[null,"8","phoenix","heartbeat",{}]"#);
        let f = decode_text(
            Vsn::V2,
            r#"[null,"8","phoenix","phx_reply",{"status":"ok","response":{}}]"#,
            &mut ColumnCache::default(),
        )
        .expect("decodes");
        assert_eq!(f.join_ref, None);
        assert_eq!(f.reference.as_deref(), Some("8"));
        assert_eq!((f.topic.as_ref(), f.event.as_ref()), ("phoenix", "phx_reply"));
        assert_eq!(f.payload, Payload::Json(json!({"status": "ok", "response": {}})));
    }

    #[test]
    fn v1_text_round_trips() {
        let m = encode_text(Vsn::V1, Some("6"), Some("7"), "realtime:a", "phx_join", &json!({"config": {}}));
        let v: Value = serde_json::from_str(&text_of(&m)).expect("json");
        assert_eq!(
            v,
            json!({"topic": "realtime:a", "event": "phx_join", "payload": {"config": {}}, "ref": "7", "join_ref": "6"})
        );
        let f = decode_text(
            Vsn::V1,
            r#"{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok"},"ref":7}"#,
            &mut ColumnCache::default(),
        )
        .expect("decodes");
        assert_eq!(f.reference.as_deref(), Some("7"), "numeric refs are accepted");
        assert_eq!(f.join_ref, None, "V1 server frames carry no join_ref");
    }

    #[test]
    fn postgres_changes_decode_typed_in_both_versions() {
        let data = r#"{"schema":"public","table":"todos","type":"INSERT","commit_timestamp":"2026-01-01T00:00:00.000Z","columns":[{"name":"id","type":"int8"}],"record":{"id":1},"errors":null}"#;
        let v2 = format!(r#"[null,null,"realtime:a","postgres_changes",{{"ids":[7,9],"data":{data}}}]"#);
        let v1 = format!(
            r#"{{"topic":"realtime:a","event":"postgres_changes","payload":{{"ids":[7,9],"data":{data}}},"ref":null}}"#
        );
        for (vsn, text) in [(Vsn::V2, v2), (Vsn::V1, v1)] {
            let f = decode_text(vsn, &text, &mut ColumnCache::default()).expect("decodes");
            let Payload::Changes(p) = f.payload else { panic!("typed payload") };
            assert_eq!(p.ids, vec![7, 9]);
            assert_eq!(p.data.kind, ChangeKind::Insert);
            assert_eq!(p.data.record.and_then(|r| r.get("id").cloned()), Some(json!(1)));
        }
    }

    #[test]
    fn malformed_text_frames_are_errors() {
        for bad in ["", "{", "[1,2,3]", r#"["a","b","c","d"]"#, r#"{"event":"x"}"#, "5"] {
            let vsn = if bad.starts_with('{') { Vsn::V1 } else { Vsn::V2 };
            assert!(decode_text(vsn, bad, &mut ColumnCache::default()).is_err(), "{bad:?} must not decode");
        }
        let bad_change = r#"[null,null,"t","postgres_changes",{"ids":[1],"data":{"type":"NOPE"}}]"#;
        assert!(decode_text(Vsn::V2, bad_change, &mut ColumnCache::default()).is_err());
    }

    #[test]
    fn kind3_layout_is_realtime_js_layout() {
        let m = encode_broadcast(
            Vsn::V2,
            Some("6"),
            "7",
            "realtime:room1",
            "x",
            &BroadcastPayload::Json(json!({"hello": "w"})),
        )
        .expect("encodes");
        let Message::Binary(b) = m else { panic!("binary") };
        let mut want = vec![3u8, 1, 1, 14, 1, 0, 1];
        want.extend_from_slice(b"67realtime:room1x");
        want.extend_from_slice(br#"{"hello":"w"}"#);
        assert_eq!(b.as_ref(), want.as_slice());
        let long = "e".repeat(256);
        assert_eq!(
            encode_broadcast(Vsn::V2, Some("6"), "7", "t", &long, &BroadcastPayload::Json(json!({}))),
            Err(SendError::FieldTooLong { field: "event", len: 256 })
        );
        let v1 =
            encode_broadcast(Vsn::V1, Some("6"), "7", "t", "x", &BroadcastPayload::Json(json!({"a": 1}))).expect("v1");
        let v: Value = serde_json::from_str(&text_of(&v1)).expect("json");
        assert_eq!(v["payload"], json!({"type": "broadcast", "event": "x", "payload": {"a": 1}}));
    }

    #[test]
    fn kind4_decodes_json_binary_and_meta() {
        let frame = |enc: u8, meta: &[u8], body: &[u8]| {
            let mut b = vec![4u8, 6, 2, u8::try_from(meta.len()).expect("short"), enc];
            b.extend_from_slice(b"room:1ev");
            b.extend_from_slice(meta);
            b.extend_from_slice(body);
            Bytes::from(b)
        };
        let f = decode_binary(Vsn::V2, &frame(1, b"", br#"{"a":1}"#)).expect("json");
        assert_eq!((f.topic.as_ref(), f.event.as_ref()), ("room:1", "broadcast"));
        assert_eq!(
            f.payload,
            Payload::UserBroadcast(Broadcast {
                event: "ev".into(),
                payload: BroadcastPayload::Json(json!({"a": 1})),
                meta: None
            })
        );
        let f = decode_binary(Vsn::V2, &frame(0, br#"{"id":"x"}"#, &[0, 255])).expect("binary");
        let Payload::UserBroadcast(b) = f.payload else { panic!("broadcast") };
        assert_eq!(b.payload, BroadcastPayload::Binary(Bytes::from_static(&[0, 255])));
        assert_eq!(b.meta, Some(json!({"id": "x"})));
        assert_eq!(decode_binary(Vsn::V2, &Bytes::from_static(&[3, 0, 0])), Err(FrameError::Kind(3)));
        assert_eq!(decode_binary(Vsn::V2, &Bytes::from_static(&[4, 200, 0, 0, 1, b'a'])), Err(FrameError::Header));
        assert_eq!(decode_binary(Vsn::V1, &frame(1, b"", b"{}")), Err(FrameError::BinaryOnV1));
        assert_eq!(decode_binary(Vsn::V2, &frame(7, b"", b"{}")), Err(FrameError::Encoding(7)));
    }
}
