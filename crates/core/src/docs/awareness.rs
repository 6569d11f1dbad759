//! Awareness — who is in a document, their cursor, selection, name and colour — in the wire
//! format of Yjs' `y-protocols/awareness`, so the webview's `Awareness` (and any Yjs client on
//! the same channel) reads it unchanged. Never stored.
//!
//! An awareness update is `varuint n`, then per client `varuint client_id`, `varuint clock`,
//! `varstring JSON(state)` (`null`: the client left). A receiver takes an entry whose clock is
//! newer than the one it holds, or a `null` with the same clock (y-protocols' rule).
//!
//! [`Awareness`] is the engine's half for one open document:
//! - **local clients** (the webview's `Y.Doc` client ids on this device) hand their states in
//!   ([`Awareness::set_local`]); what goes out re-stamps each with its own clock, always above
//!   the last one sent, so the 15 s renewal (the same state again, a newer clock) is never
//!   shadowed by the webview's own counter;
//! - **peers** (everyone else on the channel) are kept with the time they were last heard of;
//!   one silent for longer than the timeout is dropped ([`Awareness::expire`]), and the webview
//!   is told with a `null` entry at the peer's clock (so the peer's next renewal is accepted).
//!
//! Time is passed in (`tokio::time::Instant`), so the rules are unit-tested without waiting.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::codec::{read_string, read_var, write_string, write_var, DecodeError};

/// One client's entry of an awareness update.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub client_id: u64,
    pub clock: u64,
    /// `None`: the client left (JSON `null`).
    pub state: Option<Value>,
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>, DecodeError> {
    let mut pos = 0;
    let n = read_var(bytes, &mut pos)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let client_id = read_var(bytes, &mut pos)?;
        let clock = read_var(bytes, &mut pos)?;
        let json = read_string(bytes, &mut pos)?;
        let state: Value =
            serde_json::from_str(&json).map_err(|e| DecodeError(format!("awareness state is not JSON: {e}")))?;
        out.push(Entry { client_id, clock, state: (!state.is_null()).then_some(state) });
    }
    if pos != bytes.len() {
        return Err(DecodeError("trailing bytes after the awareness update".into()));
    }
    Ok(out)
}

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    write_var(&mut out, entries.len() as u64);
    for e in entries {
        write_var(&mut out, e.client_id);
        write_var(&mut out, e.clock);
        let json = e.state.as_ref().map(Value::to_string).unwrap_or_else(|| "null".into());
        write_string(&mut out, &json);
    }
    out
}

/// Someone else in the document, as the UI lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocPeer {
    pub client_id: u64,
    /// Their awareness state (`user: {name, color}`, `cursor`, … as their editor set it).
    pub state: Value,
}

struct Local {
    state: Option<Value>,
    /// The clock the webview gave it (its own counter).
    ui_clock: u64,
    /// The last clock we sent for it (0: never sent).
    sent: u64,
}

struct Peer {
    clock: u64,
    state: Option<Value>,
    heard: Instant,
}

/// The awareness of one open document (see the module doc).
#[derive(Default)]
pub struct Awareness {
    local: BTreeMap<u64, Local>,
    peers: HashMap<u64, Peer>,
}

impl Awareness {
    /// The webview's update of its own clients. Entries of clients we know as peers are
    /// ignored (a webview only speaks for itself).
    pub fn set_local(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if self.peers.contains_key(&e.client_id) {
                continue;
            }
            let local = self.local.entry(e.client_id).or_insert(Local { state: None, ui_clock: 0, sent: 0 });
            local.ui_clock = local.ui_clock.max(e.clock);
            local.state = e.state;
        }
    }

    /// Whether there are local clients to announce.
    pub fn has_local(&self) -> bool {
        !self.local.is_empty()
    }

    /// The update to broadcast now: every local client with a clock above the last one sent.
    /// Clients that left are announced once (`null`) and forgotten.
    pub fn outgoing(&mut self) -> Option<Vec<u8>> {
        if self.local.is_empty() {
            return None;
        }
        let mut entries = Vec::with_capacity(self.local.len());
        for (id, l) in self.local.iter_mut() {
            l.sent = l.ui_clock.max(l.sent + 1);
            entries.push(Entry { client_id: *id, clock: l.sent, state: l.state.clone() });
        }
        self.local.retain(|_, l| l.state.is_some());
        Some(encode(&entries))
    }

    /// Everyone local leaves (the document closes): the update that says so, if anyone was
    /// announced.
    pub fn leave(&mut self) -> Option<Vec<u8>> {
        for l in self.local.values_mut() {
            l.state = None;
        }
        self.outgoing()
    }

    /// A peer's update. Returns the entries that changed something (to hand to the webview)
    /// and whether a peer appeared that had not been heard of (it should hear from us soon).
    pub fn apply_remote(&mut self, entries: Vec<Entry>, now: Instant) -> (Vec<Entry>, bool) {
        let mut changed = Vec::new();
        let mut newcomer = false;
        for e in entries {
            if self.local.contains_key(&e.client_id) {
                continue;
            }
            match self.peers.get_mut(&e.client_id) {
                Some(p) if e.clock > p.clock || (e.clock == p.clock && e.state.is_none() && p.state.is_some()) => {
                    newcomer |= p.state.is_none() && e.state.is_some();
                    p.clock = e.clock;
                    p.state = e.state.clone();
                    p.heard = now;
                    changed.push(e);
                }
                Some(p) => {
                    // An old or repeated clock: still a sign of life.
                    if e.clock == p.clock && p.state.is_some() {
                        p.heard = now;
                    }
                }
                None => {
                    newcomer |= e.state.is_some();
                    self.peers.insert(e.client_id, Peer { clock: e.clock, state: e.state.clone(), heard: now });
                    changed.push(e);
                }
            }
        }
        (changed, newcomer)
    }

    /// Drops peers silent for longer than `timeout`; returns the `null` entries that tell the
    /// webview (at the peer's clock, so its next renewal is taken).
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Entry> {
        let mut gone = Vec::new();
        for (id, p) in self.peers.iter_mut() {
            if p.state.is_some() && now.duration_since(p.heard) > timeout {
                p.state = None;
                gone.push(Entry { client_id: *id, clock: p.clock, state: None });
            }
        }
        gone.sort_by_key(|e| e.client_id);
        gone
    }

    /// Peers present now, by client id.
    pub fn peers(&self) -> Vec<DocPeer> {
        let mut out: Vec<DocPeer> = self
            .peers
            .iter()
            .filter_map(|(id, p)| p.state.clone().map(|state| DocPeer { client_id: *id, state }))
            .collect();
        out.sort_by_key(|p| p.client_id);
        out
    }

    /// Every present peer as one update (for a webview that binds after they arrived).
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        let entries: Vec<Entry> = self
            .peers
            .iter()
            .filter(|(_, p)| p.state.is_some())
            .map(|(id, p)| Entry { client_id: *id, clock: p.clock, state: p.state.clone() })
            .collect();
        (!entries.is_empty()).then(|| encode(&entries))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(client_id: u64, clock: u64, state: Option<Value>) -> Entry {
        Entry { client_id, clock, state }
    }

    #[test]
    fn the_wire_format_is_y_protocols() {
        // y-protocols' encodeAwarenessUpdate for client 1, clock 2, state {"a":1}.
        let bytes = encode(&[entry(1, 2, Some(json!({"a": 1})))]);
        assert_eq!(bytes, [&[1u8, 1, 2, 7][..], br#"{"a":1}"#].concat());
        assert_eq!(decode(&bytes).expect("decodes"), vec![entry(1, 2, Some(json!({"a": 1})))]);
        let gone = encode(&[entry(300, 5, None)]);
        assert_eq!(gone, [&[1u8, 0xac, 0x02, 5, 4][..], b"null"].concat());
        assert_eq!(decode(&gone).expect("decodes")[0].state, None);
        assert!(decode(&[1, 1, 2, 3, b'{', b'x', b'}']).is_err(), "not JSON");
        assert!(decode(&[2, 1, 2, 2, b'{', b'}']).is_err(), "truncated");
        assert!(decode(&[0, 9]).is_err(), "trailing bytes");
    }

    #[test]
    fn outgoing_clocks_always_rise_above_both_the_webview_and_the_last_send() {
        let mut a = Awareness::default();
        a.set_local(vec![entry(7, 1, Some(json!({"cursor": 1})))]);
        let first = decode(&a.outgoing().expect("sends")).expect("decodes");
        assert_eq!(first, vec![entry(7, 1, Some(json!({"cursor": 1})))]);
        // The renewal: same state, newer clock.
        let renewed = decode(&a.outgoing().expect("renews")).expect("decodes");
        assert_eq!(renewed[0].clock, 2);
        // The webview's counter is behind ours now: we still go up.
        a.set_local(vec![entry(7, 2, Some(json!({"cursor": 5})))]);
        let next = decode(&a.outgoing().expect("sends")).expect("decodes");
        assert_eq!((next[0].clock, next[0].state.clone()), (3, Some(json!({"cursor": 5}))));
        // And when the webview is ahead, its clock wins.
        a.set_local(vec![entry(7, 10, Some(json!({"cursor": 6})))]);
        assert_eq!(decode(&a.outgoing().expect("sends")).expect("decodes")[0].clock, 10);
        // Leaving is announced once with a newer clock, then nothing is left to send.
        let left = decode(&a.leave().expect("leaves")).expect("decodes");
        assert_eq!(left, vec![entry(7, 11, None)]);
        assert!(a.outgoing().is_none());
    }

    #[test]
    fn peers_follow_y_protocols_clock_rules_and_expire_after_silence() {
        let mut a = Awareness::default();
        let t0 = Instant::now();
        let (changed, newcomer) = a.apply_remote(vec![entry(9, 3, Some(json!({"user": "omar"})))], t0);
        assert_eq!((changed.len(), newcomer), (1, true));
        // An older clock changes nothing.
        let (changed, _) = a.apply_remote(vec![entry(9, 2, Some(json!({"user": "x"})))], t0);
        assert!(changed.is_empty());
        assert_eq!(a.peers()[0].state, json!({"user": "omar"}));
        // A renewal keeps the peer alive past the first timeout.
        let t1 = t0 + Duration::from_secs(20);
        a.apply_remote(vec![entry(9, 4, Some(json!({"user": "omar"})))], t1);
        assert!(a.expire(t0 + Duration::from_secs(31), Duration::from_secs(30)).is_empty());
        // 30 s of silence after that: dropped, the webview told at the peer's clock.
        let gone = a.expire(t1 + Duration::from_secs(31), Duration::from_secs(30));
        assert_eq!(gone, vec![entry(9, 4, None)]);
        assert!(a.peers().is_empty());
        // Its next renewal brings it back, as a newcomer.
        let (changed, newcomer) = a.apply_remote(vec![entry(9, 5, Some(json!({"user": "omar"})))], t1);
        assert_eq!((changed.len(), newcomer), (1, true));
        // A null at the same clock removes it at once.
        let (changed, _) = a.apply_remote(vec![entry(9, 5, None)], t1);
        assert_eq!(changed, vec![entry(9, 5, None)]);
        assert!(a.peers().is_empty());
    }

    #[test]
    fn our_own_clients_are_never_peers_and_peers_cannot_be_claimed_locally() {
        let mut a = Awareness::default();
        a.set_local(vec![entry(1, 1, Some(json!({})))]);
        let (changed, _) = a.apply_remote(vec![entry(1, 9, Some(json!({"evil": true})))], Instant::now());
        assert!(changed.is_empty(), "our echo is ignored");
        a.apply_remote(vec![entry(2, 1, Some(json!({})))], Instant::now());
        a.set_local(vec![entry(2, 5, None)]);
        assert_eq!(a.peers().len(), 1, "the webview cannot remove someone else");
    }
}
