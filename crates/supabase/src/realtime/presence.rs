//! Presence: the client side of Phoenix.Presence, producing the same `sync` / `join` / `leave`
//! sequence as realtime-js for the same frames (wire spec §3.3).
//!
//! The algorithm, restated:
//! - **state** (`presence_state`, the full set after each join): keys absent from the new state
//!   leave with all their metas; for a key in both, metas whose `phx_ref` is new join and metas
//!   whose `phx_ref` vanished leave; new keys join with all their metas. The result is applied
//!   as a diff (below), then every diff buffered while waiting for this state is applied, then
//!   one `sync`.
//! - **diff** (`presence_diff`): joins first — per key, the metas become the current metas not
//!   among the joined ones, followed by the joined ones; `join(key, current-before, joined)`.
//!   Then leaves — per key present, drop the listed `phx_ref`s; `leave(key, remaining, left)`;
//!   drop the key when nothing remains. Then `sync`. A leave for an unknown key is ignored.
//! - Diffs that arrive before the `presence_state` of the **current** join (the channel's
//!   join_ref differs from the one the last state came with) are buffered, so a rejoin
//!   reconciles against the new state instead of applying diffs to a stale one.
//! - An update (re-track with a new payload) arrives as a join of the new meta plus a leave of
//!   the old one in one diff, so listeners see `join` then `leave` for that key.
//!
//! Keys keep their first-seen order (JavaScript objects keep insertion order, and the order of
//! events depends on it); [`Presence`] exposes `phx_ref` as `presence_ref` and hides
//! `phx_ref_prev`, as realtime-js's `presenceState()` does.
//!
//! Failure modes: malformed state/diff payloads are ignored (logged); the diff buffer holds at
//! most [`MAX_PENDING_DIFFS`] (oldest dropped — the next state resynchronises everything).

use serde_json::{Map, Value};

/// Diffs buffered while waiting for a `presence_state`.
pub const MAX_PENDING_DIFFS: usize = 1024;

/// One presence (one tracked meta) of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// The server's `phx_ref` of this meta.
    pub presence_ref: String,
    /// What was tracked (without `phx_ref` / `phx_ref_prev`).
    pub payload: Map<String, Value>,
}

/// Who is present on a channel: key → metas, in first-seen key order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresenceState {
    entries: Vec<(String, Vec<Presence>)>,
}

impl PresenceState {
    pub fn get(&self, key: &str) -> Option<&[Presence]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, m)| m.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Presence])> {
        self.entries.iter().map(|(k, m)| (k.as_str(), m.as_slice()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    /// Sets a key's metas, keeping its position if it exists (like assigning a JS property).
    fn set(&mut self, key: &str, metas: Vec<Presence>) {
        match self.position(key) {
            Some(i) => self.entries[i].1 = metas,
            None => self.entries.push((key.to_string(), metas)),
        }
    }
}

/// What a presence listener receives.
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceEvent {
    /// The state was (re)synchronised or a diff was applied; read the state now.
    Sync,
    /// `new` joined `key`; `current` is what the key had before.
    Join { key: String, current: Vec<Presence>, new: Vec<Presence> },
    /// `left` left `key`; `current` is what remains.
    Leave { key: String, current: Vec<Presence>, left: Vec<Presence> },
}

/// Keyed metas in wire order.
type Entries = Vec<(String, Vec<Presence>)>;

/// A parsed `presence_diff`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Diff {
    joins: Entries,
    leaves: Entries,
}

/// `{key: {"metas": [...]}}` → entries; `None` if it is not that shape.
fn parse_entries(v: &Value) -> Option<Entries> {
    let mut out = Vec::new();
    for (key, entry) in v.as_object()? {
        let metas = entry.get("metas")?.as_array()?;
        out.push((key.clone(), metas.iter().filter_map(parse_meta).collect()));
    }
    Some(out)
}

fn parse_meta(v: &Value) -> Option<Presence> {
    let o = v.as_object()?;
    let presence_ref = match o.get("phx_ref")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let payload = o
        .iter()
        .filter(|(k, _)| *k != "phx_ref" && *k != "phx_ref_prev")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(Presence { presence_ref, payload })
}

fn parse_diff(v: &Value) -> Option<Diff> {
    let empty = Value::Object(Map::new());
    Some(Diff {
        joins: parse_entries(v.get("joins").unwrap_or(&empty))?,
        leaves: parse_entries(v.get("leaves").unwrap_or(&empty))?,
    })
}

fn has_ref(metas: &[Presence], r: &str) -> bool {
    metas.iter().any(|m| m.presence_ref == r)
}

/// The presence of one channel, fed with the channel's frames.
#[derive(Debug, Default)]
pub(crate) struct PresenceTracker {
    state: PresenceState,
    /// The channel join_ref the last `presence_state` arrived under.
    synced_join_ref: Option<String>,
    pending: Vec<Diff>,
}

impl PresenceTracker {
    pub fn state(&self) -> &PresenceState {
        &self.state
    }

    /// A `presence_state` frame, received while the channel's join_ref is `join_ref`.
    /// Returns whether it was applied (well-formed).
    pub fn on_state(&mut self, join_ref: Option<&str>, payload: &Value, emit: &mut impl FnMut(PresenceEvent)) -> bool {
        let Some(new) = parse_entries(payload) else {
            tracing::warn!("ignored a malformed presence_state");
            return false;
        };
        self.synced_join_ref = join_ref.map(str::to_string);
        self.sync_state(new, emit);
        for diff in std::mem::take(&mut self.pending) {
            self.sync_diff(diff, emit);
        }
        emit(PresenceEvent::Sync);
        true
    }

    /// A `presence_diff` frame, received while the channel's join_ref is `join_ref`.
    pub fn on_diff(&mut self, join_ref: Option<&str>, payload: &Value, emit: &mut impl FnMut(PresenceEvent)) -> bool {
        let Some(diff) = parse_diff(payload) else {
            tracing::warn!("ignored a malformed presence_diff");
            return false;
        };
        let pending_sync = self.synced_join_ref.is_none() || self.synced_join_ref.as_deref() != join_ref;
        if pending_sync {
            if self.pending.len() >= MAX_PENDING_DIFFS {
                self.pending.remove(0);
            }
            self.pending.push(diff);
            return true;
        }
        self.sync_diff(diff, emit);
        emit(PresenceEvent::Sync);
        true
    }

    fn sync_state(&mut self, new: Entries, emit: &mut impl FnMut(PresenceEvent)) {
        let mut diff = Diff::default();
        for (key, metas) in &self.state.entries {
            if !new.iter().any(|(k, _)| k == key) {
                diff.leaves.push((key.clone(), metas.clone()));
            }
        }
        for (key, new_metas) in new {
            match self.state.get(&key) {
                Some(current) => {
                    let joined: Vec<Presence> =
                        new_metas.iter().filter(|m| !has_ref(current, &m.presence_ref)).cloned().collect();
                    let left: Vec<Presence> =
                        current.iter().filter(|m| !has_ref(&new_metas, &m.presence_ref)).cloned().collect();
                    if !joined.is_empty() {
                        diff.joins.push((key.clone(), joined));
                    }
                    if !left.is_empty() {
                        diff.leaves.push((key, left));
                    }
                }
                None => diff.joins.push((key, new_metas)),
            }
        }
        self.sync_diff(diff, emit);
    }

    fn sync_diff(&mut self, diff: Diff, emit: &mut impl FnMut(PresenceEvent)) {
        for (key, joined) in diff.joins {
            let current = self.state.get(&key).map(<[Presence]>::to_vec);
            let mut metas: Vec<Presence> = match &current {
                Some(cur) => cur.iter().filter(|m| !has_ref(&joined, &m.presence_ref)).cloned().collect(),
                None => Vec::new(),
            };
            metas.extend(joined.iter().cloned());
            self.state.set(&key, metas);
            emit(PresenceEvent::Join { key, current: current.unwrap_or_default(), new: joined });
        }
        for (key, left) in diff.leaves {
            let Some(i) = self.state.position(&key) else { continue };
            let metas = &mut self.state.entries[i].1;
            metas.retain(|m| !has_ref(&left, &m.presence_ref));
            let remaining = metas.clone();
            if remaining.is_empty() {
                self.state.entries.remove(i);
            }
            emit(PresenceEvent::Leave { key, current: remaining, left });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &mut PresenceTracker, join_ref: &str, frame: (&str, Value)) -> Vec<PresenceEvent> {
        let mut events = Vec::new();
        let mut emit = |e| events.push(e);
        match frame.0 {
            "state" => t.on_state(Some(join_ref), &frame.1, &mut emit),
            _ => t.on_diff(Some(join_ref), &frame.1, &mut emit),
        };
        events
    }

    fn p(r: &str, name: &str) -> Presence {
        Presence { presence_ref: r.into(), payload: json!({"name": name}).as_object().cloned().expect("object") }
    }

    /// A compact trace: `join k [refs] <- [current refs]`, `leave k [refs] -> [remaining refs]`.
    fn trace(events: &[PresenceEvent]) -> Vec<String> {
        let refs = |v: &[Presence]| v.iter().map(|m| m.presence_ref.as_str()).collect::<Vec<_>>().join(",");
        events
            .iter()
            .map(|e| match e {
                PresenceEvent::Sync => "sync".to_string(),
                PresenceEvent::Join { key, current, new } => {
                    format!("join {key} [{}] <- [{}]", refs(new), refs(current))
                }
                PresenceEvent::Leave { key, current, left } => {
                    format!("leave {key} [{}] -> [{}]", refs(left), refs(current))
                }
            })
            .collect()
    }

    fn meta(r: &str, name: &str) -> Value {
        json!({"phx_ref": r, "name": name})
    }

    #[test]
    fn first_state_joins_everyone_then_syncs() {
        let mut t = PresenceTracker::default();
        let e = run(
            &mut t,
            "1",
            ("state", json!({"u1": {"metas": [meta("a", "one")]}, "u2": {"metas": [meta("b", "two")]}})),
        );
        assert_eq!(trace(&e), vec!["join u1 [a] <- []", "join u2 [b] <- []", "sync"]);
        assert_eq!(e[0], PresenceEvent::Join { key: "u1".into(), current: vec![], new: vec![p("a", "one")] });
        assert_eq!(t.state().keys().collect::<Vec<_>>(), vec!["u1", "u2"]);
    }

    #[test]
    fn diff_join_second_meta_then_leave_it() {
        let mut t = PresenceTracker::default();
        run(&mut t, "1", ("state", json!({"u1": {"metas": [meta("a", "tab1")]}})));
        let e = run(&mut t, "1", ("diff", json!({"joins": {"u1": {"metas": [meta("b", "tab2")]}}, "leaves": {}})));
        assert_eq!(trace(&e), vec!["join u1 [b] <- [a]", "sync"]);
        assert_eq!(t.state().get("u1").map(|m| m.len()), Some(2));
        let e = run(&mut t, "1", ("diff", json!({"joins": {}, "leaves": {"u1": {"metas": [meta("a", "tab1")]}}})));
        assert_eq!(trace(&e), vec!["leave u1 [a] -> [b]", "sync"]);
        let e = run(&mut t, "1", ("diff", json!({"joins": {}, "leaves": {"u1": {"metas": [meta("b", "tab2")]}}})));
        assert_eq!(trace(&e), vec!["leave u1 [b] -> []", "sync"]);
        assert!(t.state().is_empty(), "a key with no metas is dropped");
    }

    #[test]
    fn update_is_a_join_of_the_new_meta_and_a_leave_of_the_old() {
        let mut t = PresenceTracker::default();
        run(&mut t, "1", ("state", json!({"u1": {"metas": [meta("a", "old")]}})));
        let update = json!({
            "joins": {"u1": {"metas": [{"phx_ref": "b", "phx_ref_prev": "a", "name": "new"}]}},
            "leaves": {"u1": {"metas": [meta("a", "old")]}}
        });
        let e = run(&mut t, "1", ("diff", update));
        assert_eq!(trace(&e), vec!["join u1 [b] <- [a]", "leave u1 [a] -> [b]", "sync"]);
        assert_eq!(t.state().get("u1"), Some(&[p("b", "new")][..]), "phx_ref_prev is hidden");
    }

    #[test]
    fn diffs_before_the_state_of_the_current_join_are_buffered() {
        let mut t = PresenceTracker::default();
        let e = run(&mut t, "1", ("diff", json!({"joins": {"u2": {"metas": [meta("b", "two")]}}, "leaves": {}})));
        assert!(e.is_empty(), "no state yet: buffered");
        let e = run(&mut t, "1", ("state", json!({"u1": {"metas": [meta("a", "one")]}})));
        assert_eq!(trace(&e), vec!["join u1 [a] <- []", "join u2 [b] <- []", "sync"], "one sync after state + buffer");
    }

    #[test]
    fn rejoin_reconciles_against_the_new_state() {
        let mut t = PresenceTracker::default();
        run(&mut t, "1", ("state", json!({"u1": {"metas": [meta("a", "one")]}, "u2": {"metas": [meta("b", "two")]}})));
        // Rejoined under join_ref 5: a diff from the new incarnation waits for its state.
        let e = run(&mut t, "5", ("diff", json!({"joins": {"u3": {"metas": [meta("c", "three")]}}, "leaves": {}})));
        assert!(e.is_empty());
        // u2 left while we were away, u1 is unchanged, u1 gained a meta.
        let e = run(
            &mut t,
            "5",
            (
                "state",
                json!({"u1": {"metas": [meta("a", "one"), meta("d", "one-b")]}, "u3": {"metas": [meta("c", "three")]}}),
            ),
        );
        assert_eq!(
            trace(&e),
            vec!["join u1 [d] <- [a]", "join u3 [c] <- []", "leave u2 [b] -> []", "join u3 [c] <- [c]", "sync"],
            "realtime-js re-applies the buffered join (u3 already in the state: current is its metas)"
        );
        assert_eq!(t.state().keys().collect::<Vec<_>>(), vec!["u1", "u3"]);
    }

    #[test]
    fn leave_of_an_unknown_key_is_ignored_and_malformed_frames_change_nothing() {
        let mut t = PresenceTracker::default();
        run(&mut t, "1", ("state", json!({})));
        let e = run(&mut t, "1", ("diff", json!({"joins": {}, "leaves": {"ghost": {"metas": [meta("z", "")]}}})));
        assert_eq!(trace(&e), vec!["sync"]);
        assert!(run(&mut t, "1", ("diff", json!({"joins": 5}))).is_empty());
        assert!(run(&mut t, "1", ("state", json!([1, 2]))).is_empty());
    }

    #[test]
    fn server_restart_changes_every_ref_so_everyone_leaves_and_rejoins() {
        let mut t = PresenceTracker::default();
        run(&mut t, "1", ("state", json!({"u1": {"metas": [meta("a", "one")]}})));
        let e = run(&mut t, "9", ("state", json!({"u1": {"metas": [meta("a2", "one")]}})));
        assert_eq!(trace(&e), vec!["join u1 [a2] <- [a]", "leave u1 [a] -> [a2]", "sync"]);
    }
}
