//! postgres_changes: the subscription filter a channel joins with, the change it delivers, and
//! how a delivered change is matched to subscriptions (wire spec §1.8, §1.9, §4).
//!
//! - A [`PostgresChangesFilter`] becomes one entry of the join's `config.postgres_changes`.
//!   Equal filters on one channel share one entry (realtime-js drops duplicates too), so two
//!   subscribers of the same filter cost one server subscription and each get every change once.
//! - The join reply echoes the entries in order, each with an integer `id`. Entry *i* must
//!   echo filter *i* (event, schema, table, filter); the binding then takes that id. Ids are
//!   re-read from every join reply: after a reconnect or a server restart they may differ.
//! - A `postgres_changes` frame carries `ids` (the subscriptions of this channel the row
//!   matched) and `data`. A binding fires when its id is listed and its event is `*` or equals
//!   `data.type` (case-insensitive), exactly realtime-js's rule.
//! - [`PostgresChange`] is decoded from the wire names (`type`, `record`, `old_record`) straight
//!   from the frame text, once per frame, whatever the number of subscribers. Column lists are
//!   interned (the server repeats a table's columns in every change), which halves the
//!   allocations of a typical change.
//!
//! Failure modes: a change frame that does not decode is logged and dropped (the channel stays
//! up); a join reply whose entries do not match the request is `ChannelError::BindingMismatch`.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

/// Which row events a subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChangeEvent {
    #[default]
    All,
    Insert,
    Update,
    Delete,
}

impl ChangeEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEvent::All => "*",
            ChangeEvent::Insert => "INSERT",
            ChangeEvent::Update => "UPDATE",
            ChangeEvent::Delete => "DELETE",
        }
    }

    fn matches(self, kind: ChangeKind) -> bool {
        match self {
            ChangeEvent::All => true,
            ChangeEvent::Insert => kind == ChangeKind::Insert,
            ChangeEvent::Update => kind == ChangeKind::Update,
            ChangeEvent::Delete => kind == ChangeKind::Delete,
        }
    }
}

/// One postgres_changes subscription: `event` on `schema`.`table` where `filter`
/// (PostgREST syntax, e.g. `room_id=eq.<uuid>`; evaluated by the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostgresChangesFilter {
    pub event: ChangeEvent,
    pub schema: String,
    /// `None`: every table of the schema.
    pub table: Option<String>,
    pub filter: Option<String>,
}

impl PostgresChangesFilter {
    /// `event` on `public.<table>`.
    pub fn table(event: ChangeEvent, table: impl Into<String>) -> PostgresChangesFilter {
        PostgresChangesFilter { event, schema: "public".into(), table: Some(table.into()), filter: None }
    }

    /// Adds a server-side row filter such as `room_id=eq.42`.
    pub fn filter(mut self, filter: impl Into<String>) -> PostgresChangesFilter {
        self.filter = Some(filter.into());
        self
    }

    /// The join payload entry.
    pub(crate) fn to_entry(&self) -> Value {
        let mut o = Map::new();
        o.insert("event".into(), json!(self.event.as_str()));
        o.insert("schema".into(), json!(self.schema));
        if let Some(t) = &self.table {
            o.insert("table".into(), json!(t));
        }
        if let Some(f) = &self.filter {
            o.insert("filter".into(), json!(f));
        }
        Value::Object(o)
    }

    /// Does the join reply's entry echo this filter? (null ≡ absent, event case-insensitive.)
    pub(crate) fn echoed_by(&self, entry: &Value) -> bool {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let event_ok = text("event").unwrap_or("*").eq_ignore_ascii_case(self.event.as_str());
        event_ok
            && text("schema") == Some(self.schema.as_str())
            && text("table") == self.table.as_deref()
            && text("filter") == self.filter.as_deref()
    }
}

/// A subscription id from a join reply: an integer (Realtime uses `phash2`), kept opaque.
pub(crate) fn reply_id(entry: &Value) -> Option<u64> {
    match entry.get("id")? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The row event of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl<'de> Deserialize<'de> for ChangeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ChangeKind, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s.as_ref() {
            "INSERT" | "insert" => Ok(ChangeKind::Insert),
            "UPDATE" | "update" => Ok(ChangeKind::Update),
            "DELETE" | "delete" => Ok(ChangeKind::Delete),
            other => Err(serde::de::Error::custom(format!("unknown change type {other:?}"))),
        }
    }
}

/// A column of the changed table: name and Postgres type name (`int8`, `_text`, …).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// One row change, as Realtime puts it on the wire (`data` of a `postgres_changes` frame).
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresChange {
    pub schema: String,
    pub table: String,
    /// Wire name `type`.
    pub kind: ChangeKind,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub commit_timestamp: String,
    /// The table's columns. The server lists the same ones with every change of a table, so
    /// equal lists are shared (decoded once, cloned for free).
    pub columns: Arc<[Column]>,
    /// The new row (INSERT, UPDATE). Wire name `record`.
    pub record: Option<Map<String, Value>>,
    /// The old row (UPDATE: as the replica identity allows; DELETE: often only the primary
    /// key). Wire name `old_record`.
    pub old_record: Option<Map<String, Value>>,
    /// Empty, or messages such as `Error 413: Payload Too Large`.
    pub errors: Vec<String>,
}

/// The payload of a `postgres_changes` frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChangesPayload {
    pub ids: Vec<u64>,
    pub data: PostgresChange,
}

/// Recently seen column lists, so that equal lists are decoded into one shared allocation.
#[derive(Debug, Default)]
pub(crate) struct ColumnCache {
    recent: Vec<Arc<[Column]>>,
}

/// Column lists remembered (one per table in use, typically).
const COLUMN_CACHE: usize = 32;

impl ColumnCache {
    fn intern(&mut self, columns: Vec<RawColumn<'_>>) -> Arc<[Column]> {
        let same = |known: &Arc<[Column]>| {
            known.len() == columns.len()
                && known.iter().zip(&columns).all(|(k, c)| k.name == c.name && k.type_name == c.type_name)
        };
        if let Some(hit) = self.recent.iter().find(|k| same(k)) {
            return Arc::clone(hit);
        }
        let fresh: Arc<[Column]> = columns
            .into_iter()
            .map(|c| Column { name: c.name.into_owned(), type_name: c.type_name.into_owned() })
            .collect();
        if self.recent.len() >= COLUMN_CACHE {
            self.recent.remove(0);
        }
        self.recent.push(Arc::clone(&fresh));
        fresh
    }
}

/// A column as read from the frame, borrowing its text when it can.
#[derive(Deserialize)]
struct RawColumn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    type_name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    schema: String,
    table: String,
    #[serde(rename = "type")]
    kind: ChangeKind,
    commit_timestamp: String,
    #[serde(borrow, default)]
    columns: Vec<RawColumn<'a>>,
    #[serde(default)]
    record: Option<Row>,
    #[serde(default)]
    old_record: Option<Row>,
    #[serde(default, deserialize_with = "errors")]
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(default)]
    ids: Vec<u64>,
    #[serde(borrow)]
    data: RawData<'a>,
}

/// Fields a row map is sized for up front (JSON gives no size hint; growing a map rehashes it).
const ROW_CAPACITY: usize = 16;

/// A row object, decoded into a map sized up front.
struct Row(Map<String, Value>);

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut row = Map::with_capacity(map.size_hint().unwrap_or(ROW_CAPACITY));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    row.insert(k, v);
                }
                Ok(Row(row))
            }
        }
        d.deserialize_map(V)
    }
}

/// Decodes a `postgres_changes` payload, sharing column lists through `cache`.
pub(crate) struct ChangesSeed<'c>(pub &'c mut ColumnCache);

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ChangesPayload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ChangesPayload, D::Error> {
        let RawPayload { ids, data } = RawPayload::deserialize(d)?;
        Ok(ChangesPayload {
            ids,
            data: PostgresChange {
                schema: data.schema,
                table: data.table,
                kind: data.kind,
                commit_timestamp: data.commit_timestamp,
                columns: self.0.intern(data.columns),
                record: data.record.map(|r| r.0),
                old_record: data.old_record.map(|r| r.0),
                errors: data.errors,
            },
        })
    }
}

fn errors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<Vec<Value>>::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(|e| match e {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}

/// A subscription's filter and, once joined, its server id.
#[derive(Debug)]
pub(crate) struct Binding<S> {
    pub filter: PostgresChangesFilter,
    pub id: Option<u64>,
    pub subscribers: Vec<S>,
}

impl<S> Binding<S> {
    /// realtime-js's rule: the id is listed and the event is `*` or the change's type.
    pub fn fires(&self, ids: &[u64], kind: ChangeKind) -> bool {
        self.id.is_some_and(|id| ids.contains(&id)) && self.filter.event.matches(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_join_entries_and_match_their_echo() {
        let f = PostgresChangesFilter::table(ChangeEvent::Insert, "chat_messages").filter("room_id=eq.7");
        let entry = f.to_entry();
        assert_eq!(
            entry,
            json!({"event": "INSERT", "schema": "public", "table": "chat_messages", "filter": "room_id=eq.7"})
        );
        let mut echo = entry.clone();
        echo["id"] = json!(123);
        assert!(f.echoed_by(&echo));
        assert_eq!(reply_id(&echo), Some(123));
        echo["event"] = json!("insert");
        assert!(f.echoed_by(&echo), "event compares case-insensitively");
        echo["filter"] = json!("room_id=eq.8");
        assert!(!f.echoed_by(&echo));
        let all = PostgresChangesFilter { event: ChangeEvent::All, schema: "public".into(), table: None, filter: None };
        assert!(all.echoed_by(&json!({"event": "*", "schema": "public", "table": null, "id": 1})), "null ≡ absent");
    }

    #[test]
    fn change_decodes_from_wire_names() {
        let data = json!({
            "schema": "public", "table": "todos", "type": "UPDATE",
            "commit_timestamp": "2026-01-01T12:34:56.789Z",
            "columns": [{"name": "id", "type": "int8"}],
            "record": {"id": 1, "done": true}, "old_record": {"id": 1}, "errors": null
        });
        let mut cache = ColumnCache::default();
        let decode = |cache: &mut ColumnCache, v: Value| ChangesSeed(cache).deserialize(v).expect("decodes");
        let p = decode(&mut cache, json!({"ids": [38165470], "data": data.clone()}));
        assert_eq!(p.ids, vec![38165470]);
        assert_eq!(p.data.kind, ChangeKind::Update);
        assert_eq!(p.data.record.as_ref().and_then(|r| r.get("done")), Some(&json!(true)));
        assert_eq!(p.data.old_record, Some(json!({"id": 1}).as_object().cloned().expect("object")));
        assert_eq!(p.data.columns[0], Column { name: "id".into(), type_name: "int8".into() });
        assert!(p.data.errors.is_empty());
        let again = decode(&mut cache, json!({"ids": [1], "data": data}));
        assert!(Arc::ptr_eq(&p.data.columns, &again.data.columns), "equal column lists are shared");
        let with_errors = decode(
            &mut cache,
            json!({"data": {
                "schema": "public", "table": "t", "type": "INSERT", "commit_timestamp": "x",
                "errors": ["Error 413: Payload Too Large"]
            }}),
        )
        .data;
        assert_eq!(with_errors.errors, vec!["Error 413: Payload Too Large".to_string()]);
        assert_eq!(with_errors.record, None);
        assert!(with_errors.columns.is_empty());
    }

    #[test]
    fn bindings_fire_on_listed_ids_and_matching_events() {
        let b = |event| Binding::<()> {
            filter: PostgresChangesFilter::table(event, "t"),
            id: Some(5),
            subscribers: vec![],
        };
        assert!(b(ChangeEvent::All).fires(&[4, 5], ChangeKind::Delete));
        assert!(b(ChangeEvent::Insert).fires(&[5], ChangeKind::Insert));
        assert!(!b(ChangeEvent::Insert).fires(&[5], ChangeKind::Update));
        assert!(!b(ChangeEvent::All).fires(&[4], ChangeKind::Insert));
        let unbound = Binding::<()> { id: None, ..b(ChangeEvent::All) };
        assert!(!unbound.fires(&[5], ChangeKind::Insert), "no id before the join reply");
    }
}
