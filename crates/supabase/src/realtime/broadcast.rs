//! Broadcast: what a channel receives and how listeners are matched (wire spec §2).
//!
//! A broadcast arrives either as a text `broadcast` frame whose payload is
//! `{"type":"broadcast","event":e,"payload":p[,"meta":m]}` or, on vsn 2.0.0, as a binary kind-4
//! frame (user broadcast, JSON or raw bytes). Both become one [`Broadcast`]. A listener for
//! `event` fires when the broadcast's event equals it case-insensitively, or for `*` — as
//! realtime-js matches. Sending (kind 3 on 2.0.0, text on 1.0.0; `ack` awaited when the channel
//! asked for it) is in the channel and serializer modules.
//!
//! Failure modes: a text broadcast without a string `event` is dropped; a listener that does
//! not keep up loses broadcasts (counted), it never slows the others.

use bytes::Bytes;
use serde_json::{Map, Value};

/// A broadcast's payload: JSON, or raw bytes (binary user broadcasts, vsn 2.0.0 only).
#[derive(Debug, Clone, PartialEq)]
pub enum BroadcastPayload {
    Json(Value),
    Binary(Bytes),
}

impl BroadcastPayload {
    /// The JSON payload, if it is one.
    pub fn json(&self) -> Option<&Value> {
        match self {
            BroadcastPayload::Json(v) => Some(v),
            BroadcastPayload::Binary(_) => None,
        }
    }
}

/// One received broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub event: String,
    pub payload: BroadcastPayload,
    /// Server metadata (e.g. `{"id": …}` for REST messages with an id), when present.
    pub meta: Option<Value>,
}

impl Broadcast {
    /// From the payload object of a text `broadcast` frame; `None` if it has no string `event`.
    pub(crate) fn from_text_payload(mut payload: Map<String, Value>) -> Option<Broadcast> {
        let event = match payload.remove("event")? {
            Value::String(s) => s,
            _ => return None,
        };
        let inner = payload.remove("payload").unwrap_or_else(|| Value::Object(Map::new()));
        Some(Broadcast { event, payload: BroadcastPayload::Json(inner), meta: payload.remove("meta") })
    }
}

/// A listener's event: `*` or a name, compared case-insensitively.
pub(crate) fn listener_matches(listener_event: &str, event: &str) -> bool {
    listener_event == "*" || listener_event.eq_ignore_ascii_case(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_payload_becomes_a_broadcast() {
        let p = json!({"type": "broadcast", "event": "cursor", "payload": {"x": 1}, "meta": {"id": "m1"}});
        let b = Broadcast::from_text_payload(p.as_object().cloned().expect("object")).expect("broadcast");
        assert_eq!(b.event, "cursor");
        assert_eq!(b.payload, BroadcastPayload::Json(json!({"x": 1})));
        assert_eq!(b.meta, Some(json!({"id": "m1"})));
        let no_event = json!({"type": "broadcast", "payload": {}});
        assert!(Broadcast::from_text_payload(no_event.as_object().cloned().expect("object")).is_none());
    }

    #[test]
    fn listeners_match_case_insensitively_or_star() {
        assert!(listener_matches("*", "anything"));
        assert!(listener_matches("Cursor", "cursor"));
        assert!(!listener_matches("cursor", "typing"));
    }
}
