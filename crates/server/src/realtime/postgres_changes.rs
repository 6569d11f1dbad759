//! postgres_changes: row changes committed to SQLite, delivered to the channels that asked for
//! them and may read them (spec §4).
//!
//! Design:
//! - A join's `config.postgres_changes` entries are parsed into [`Subscription`]s (event, table,
//!   one typed filter). Each entry is echoed in the join reply with an integer `id`, a stable
//!   hash of the entry (like Realtime's `phash2`), so equal parameters always get the same id.
//! - Channels with subscriptions sit in the [`PgRegistry`], whose read side is an immutable
//!   [`PgIndex`] (table → channels) rebuilt on join/leave and shared by `Arc`.
//! - **One dispatcher task** ([`run`]) reads `Db::changes()` in commit order. It takes the
//!   changes that are ready (up to a batch) and hands them, with the current index, to one
//!   `spawn_blocking` job, which matches subscriptions, checks row visibility and queues the
//!   frames. Batches run one after another, so delivery keeps commit order, and the SQL never
//!   runs on the async runtime.
//! - **Every delivery is checked** against `policy::row_visible_sql` with the channel's current
//!   role (updated by `access_token`). Within one change the verdict is cached per role, so N
//!   channels of one user cost one query. A failed query hides the row (fail closed).
//! - `data` (schema, table, type, commit_timestamp, columns, record, old_record, errors) is
//!   serialised once per change and spliced into each channel's frame, which only adds the
//!   channel's topic and matching `ids`. `old_record` is the full old row for UPDATE and only the
//!   primary key for DELETE (Supabase with RLS); INSERT has no `old_record` and DELETE no
//!   `record`, as Realtime sends them.
//!
//! Failure modes:
//! - an entry naming an unknown schema/table → `system` error `Unable to subscribe to changes
//!   with given parameters…`; an unparseable filter, unknown column, unknown operator or a value
//!   that is not of the column's type → `system` error ``Error parsing `filter` params: …``. The
//!   join still succeeds and the valid entries of the channel still deliver;
//! - the dispatcher falling behind the feed (`Lagged`) is logged as an error and every
//!   subscribed channel gets a `system` error saying how many changes it missed (it should
//!   catch up through REST); changes are never skipped silently;
//! - a subscriber whose queue is full is disconnected, so a stuck client cannot stall delivery
//!   to the others.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::serializer::{self, Vsn};
use super::socket::Outbox;
use super::{ChannelId, HubShared};
use crate::db::{Change, ChangeKind, Db, DbError};
use crate::policy::{self, Role};
use crate::schema::{self, ColType, Table};

/// How many ready changes one dispatch job takes at most.
const MAX_BATCH: usize = 256;

/// Which change types a subscription wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventFilter {
    All,
    Only(ChangeKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// A filter value or column value, typed by the column.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Scalar {
    Int(i64),
    Text(String),
}

/// `column=op.value` on one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    column: &'static str,
    ty: ColType,
    op: Op,
    values: Vec<Scalar>,
}

/// One postgres_changes entry of a join.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: u32,
    pub event: EventFilter,
    /// `None`: every table of schema `public`.
    pub table: Option<&'static Table>,
    pub filter: Option<Filter>,
}

impl Subscription {
    fn matches(&self, change: &Change, row: &Map<String, Value>) -> bool {
        if let EventFilter::Only(kind) = self.event {
            if kind != change.kind {
                return false;
            }
        }
        if self.table.is_some_and(|t| t.name != change.table.name) {
            return false;
        }
        self.filter.as_ref().is_none_or(|f| f.matches(row))
    }
}

impl Filter {
    fn matches(&self, row: &Map<String, Value>) -> bool {
        // SQL semantics: a comparison with NULL is never true.
        let Some(v) = row.get(self.column).and_then(|v| column_scalar(self.ty, v)) else {
            return false;
        };
        let first = &self.values[0];
        match self.op {
            Op::Eq => v == *first,
            Op::Neq => v != *first,
            Op::Lt => v < *first,
            Op::Lte => v <= *first,
            Op::Gt => v > *first,
            Op::Gte => v >= *first,
            Op::In => self.values.contains(&v),
        }
    }
}

/// A stored column value as a comparable scalar (`None` for NULL).
fn column_scalar(ty: ColType, v: &Value) -> Option<Scalar> {
    match (ty, v) {
        (_, Value::Null) => None,
        (t, Value::Number(n)) if t.is_integer() => n.as_i64().map(Scalar::Int),
        (t, Value::String(s)) if t.is_integer() => s.parse().ok().map(Scalar::Int),
        (ColType::Uuid, Value::String(s)) => Some(Scalar::Text(s.to_ascii_lowercase())),
        (ColType::Timestamptz, Value::String(s)) => {
            Some(Scalar::Text(schema::normalize_ts(s).unwrap_or_else(|| s.clone())))
        }
        (_, Value::String(s)) => Some(Scalar::Text(s.clone())),
        (_, other) => Some(Scalar::Text(other.to_string())),
    }
}

/// A filter value as the column's type, as Postgres would cast it.
fn filter_scalar(ty: ColType, raw: &str) -> Result<Scalar, String> {
    match ty {
        ColType::Int4 | ColType::Int8 => {
            raw.trim().parse().map(Scalar::Int).map_err(|_| format!("{raw:?} is not an integer"))
        }
        ColType::Uuid => uuid::Uuid::parse_str(raw.trim())
            .map(|u| Scalar::Text(u.to_string()))
            .map_err(|_| format!("{raw:?} is not a uuid")),
        ColType::Timestamptz => {
            schema::normalize_ts(raw).map(Scalar::Text).ok_or_else(|| format!("{raw:?} is not a timestamp"))
        }
        ColType::Text => Ok(Scalar::Text(raw.to_string())),
    }
}

/// Parses `column=op.value` against `table`.
pub(crate) fn parse_filter(table: &'static Table, filter: &str) -> Result<Filter, String> {
    let fail = |why: &str| format!("Error parsing `filter` params: {filter:?} ({why})");
    let (column, rest) = filter.split_once('=').ok_or_else(|| fail("expected column=operator.value"))?;
    let (op, value) = rest.split_once('.').ok_or_else(|| fail("expected column=operator.value"))?;
    let col = table
        .column(column.trim())
        .ok_or_else(|| fail(&format!("column {:?} does not exist on {}", column.trim(), table.name)))?;
    let op = match op {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "in" => Op::In,
        other => return Err(fail(&format!("unknown operator {other:?}; use eq, neq, lt, lte, gt, gte or in"))),
    };
    let raw_values: Vec<&str> = if op == Op::In {
        let inner =
            value.strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| fail("in expects (a,b,c)"))?;
        inner.split(',').map(|v| v.trim().trim_matches('"')).collect()
    } else {
        vec![value]
    };
    let values =
        raw_values.iter().map(|v| filter_scalar(col.ty, v)).collect::<Result<Vec<_>, _>>().map_err(|why| fail(&why))?;
    Ok(Filter { column: col.name, ty: col.ty, op, values })
}

/// The parsed `postgres_changes` list of a join.
#[derive(Debug, Default)]
pub(crate) struct PgRequest {
    /// The entries as requested, each with its `id`, in order: the join reply's list.
    pub echo: Vec<Value>,
    pub subscriptions: Vec<Subscription>,
    /// `system` error messages for the entries that could not be subscribed.
    pub errors: Vec<String>,
}

pub(crate) fn parse_request(entries: &[Value]) -> PgRequest {
    let mut out = PgRequest::default();
    for entry in entries {
        let id = stable_id(entry);
        let mut echoed = entry.clone();
        if let Value::Object(o) = &mut echoed {
            o.insert("id".into(), Value::from(id));
        }
        out.echo.push(echoed);
        match parse_subscription(entry, id) {
            Ok(s) => out.subscriptions.push(s),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

fn parse_subscription(entry: &Value, id: u32) -> Result<Subscription, String> {
    let obj = entry.as_object();
    let get = |k: &str| obj.and_then(|o| o.get(k)).and_then(Value::as_str);
    let event_text = get("event").unwrap_or("*").to_ascii_uppercase();
    let event = match event_text.as_str() {
        "INSERT" => EventFilter::Only(ChangeKind::Insert),
        "UPDATE" => EventFilter::Only(ChangeKind::Update),
        "DELETE" => EventFilter::Only(ChangeKind::Delete),
        _ => EventFilter::All,
    };
    let (schema_name, table_name, filter) = (get("schema"), get("table"), get("filter").filter(|f| !f.is_empty()));
    let unable = || {
        format!(
            "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: {event_text}, schema: {}, table: {}, filters: [{}]]",
            schema_name.unwrap_or(""),
            table_name.unwrap_or("*"),
            filter.unwrap_or("")
        )
    };
    let schema_ok = match schema_name {
        Some("public") | Some("*") => true,
        None => table_name.is_some(),
        Some(_) => false,
    };
    if obj.is_none() || !schema_ok {
        return Err(unable());
    }
    let table = match table_name {
        None | Some("*") => None,
        Some(name) => Some(schema::table(name).ok_or_else(unable)?),
    };
    let filter = match (filter, table) {
        (None, _) => None,
        (Some(f), Some(t)) => Some(parse_filter(t, f)?),
        (Some(f), None) => return Err(format!("Error parsing `filter` params: {f:?} (a filter needs a table)")),
    };
    Ok(Subscription { id, event, table, filter })
}

/// A stable 27-bit id for a postgres_changes entry: FNV-1a over a canonical form (object keys
/// sorted), so equal parameters get equal ids in any process.
pub(crate) fn stable_id(v: &Value) -> u32 {
    fn feed(h: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *h ^= u64::from(*b);
            *h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn walk(h: &mut u64, v: &Value) {
        match v {
            Value::Object(o) => {
                feed(h, b"{");
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                for k in keys {
                    feed(h, k.as_bytes());
                    feed(h, b":");
                    walk(h, &o[k]);
                    feed(h, b",");
                }
                feed(h, b"}");
            }
            Value::Array(a) => {
                feed(h, b"[");
                for x in a {
                    walk(h, x);
                    feed(h, b",");
                }
                feed(h, b"]");
            }
            other => feed(h, other.to_string().as_bytes()),
        }
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    walk(&mut h, v);
    ((h >> 32) ^ h) as u32 & 0x07FF_FFFF
}

/// A channel with postgres_changes subscriptions, as the dispatcher sees it.
pub(crate) struct PgChannel {
    pub channel: ChannelId,
    topic: String,
    subtopic: String,
    join_ref: Option<String>,
    vsn: Vsn,
    outbox: Outbox,
    /// The role deliveries are checked with; `access_token` replaces it.
    role: RwLock<Role>,
    subs: Vec<Subscription>,
}

impl PgChannel {
    pub fn new(
        channel: ChannelId,
        topic: &str,
        join_ref: Option<String>,
        vsn: Vsn,
        outbox: Outbox,
        role: Role,
        subs: Vec<Subscription>,
    ) -> PgChannel {
        let subtopic = topic.strip_prefix("realtime:").unwrap_or(topic).to_string();
        PgChannel { channel, topic: topic.to_string(), subtopic, join_ref, vsn, outbox, role: RwLock::new(role), subs }
    }

    pub fn set_role(&self, role: Role) {
        *self.role.write() = role;
    }

    fn covers(&self, table: &str) -> bool {
        self.subs.iter().any(|s| s.table.is_none_or(|t| t.name == table))
    }

    fn system_error(&self, message: &str) -> axum::extract::ws::Message {
        let payload =
            json!({ "extension": "postgres_changes", "status": "error", "message": message, "channel": self.subtopic });
        serializer::text_frame(self.vsn, self.join_ref.as_deref(), None, &self.topic, "system", &payload)
    }
}

/// The dispatcher's view: table name → channels with a subscription on it.
#[derive(Default)]
pub(crate) struct PgIndex {
    by_table: HashMap<&'static str, Vec<Arc<PgChannel>>>,
}

impl PgIndex {
    fn is_empty(&self) -> bool {
        self.by_table.is_empty()
    }
}

/// Channels with postgres_changes subscriptions.
#[derive(Default)]
pub(crate) struct PgRegistry {
    channels: Mutex<HashMap<ChannelId, Arc<PgChannel>>>,
    index: RwLock<Arc<PgIndex>>,
}

impl PgRegistry {
    pub fn add(&self, channel: Arc<PgChannel>) {
        let mut channels = self.channels.lock();
        channels.insert(channel.channel, channel);
        self.rebuild(&channels);
    }

    pub fn remove(&self, channel: ChannelId) {
        let mut channels = self.channels.lock();
        if channels.remove(&channel).is_some() {
            self.rebuild(&channels);
        }
    }

    /// Called with `channels` locked, so rebuilds happen in the order of the changes.
    fn rebuild(&self, channels: &HashMap<ChannelId, Arc<PgChannel>>) {
        let mut by_table: HashMap<&'static str, Vec<Arc<PgChannel>>> = HashMap::new();
        for table in schema::TABLES {
            let list: Vec<Arc<PgChannel>> = channels.values().filter(|c| c.covers(table.name)).cloned().collect();
            if !list.is_empty() {
                by_table.insert(table.name, list);
            }
        }
        *self.index.write() = Arc::new(PgIndex { by_table });
    }

    fn snapshot(&self) -> Arc<PgIndex> {
        Arc::clone(&self.index.read())
    }

    fn all(&self) -> Vec<Arc<PgChannel>> {
        self.channels.lock().values().cloned().collect()
    }
}

/// The dispatcher task: runs until shutdown (or until the change feed closes, which is
/// reported as an error).
pub(crate) async fn run(hub: Arc<HubShared>, mut feed: broadcast::Receiver<Arc<Change>>) {
    loop {
        let first = tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            r = feed.recv() => r,
        };
        let mut batch = Vec::new();
        let mut lagged = 0;
        match first {
            Ok(c) => batch.push(c),
            Err(RecvError::Lagged(n)) => lagged = n,
            Err(RecvError::Closed) => {
                tracing::error!("the database change feed closed; postgres_changes delivery has stopped");
                return;
            }
        }
        while lagged == 0 && batch.len() < MAX_BATCH {
            match feed.try_recv() {
                Ok(c) => batch.push(c),
                Err(TryRecvError::Lagged(n)) => lagged = n,
                Err(_) => break,
            }
        }
        let index = hub.pg.snapshot();
        if !batch.is_empty() && !index.is_empty() {
            let db = Arc::clone(&hub.db);
            if let Err(e) = tokio::task::spawn_blocking(move || deliver_batch(&db, &index, &batch)).await {
                tracing::error!(error = %e, "a postgres_changes delivery job failed; its changes were not delivered");
            }
        }
        if lagged > 0 {
            report_lag(&hub.pg, lagged);
        }
    }
}

/// The feed dropped `missed` changes before the dispatcher read them: say so loudly, and tell
/// every subscribed channel.
fn report_lag(registry: &PgRegistry, missed: u64) {
    let channels = registry.all();
    tracing::error!(
        missed,
        channels = channels.len(),
        "postgres_changes dispatcher LAGGED behind the database: changes were lost; subscribers are told to catch up"
    );
    let message = format!("Realtime fell behind the database and missed {missed} changes; reload to catch up");
    for c in channels {
        c.outbox.push_now(c.system_error(&message));
    }
}

fn deliver_batch(db: &Db, index: &PgIndex, batch: &[Arc<Change>]) {
    let result = db.read_blocking(|conn| -> Result<(), DbError> {
        for change in batch {
            deliver_change(conn, index, change);
        }
        Ok(())
    });
    if let Err(e) = result {
        tracing::error!(error = %e, "postgres_changes delivery failed");
    }
}

fn deliver_change(conn: &Connection, index: &PgIndex, change: &Change) {
    let Some(candidates) = index.by_table.get(change.table.name) else {
        return;
    };
    let row = match change.kind {
        ChangeKind::Delete => change.old_record.as_ref(),
        _ => change.record.as_ref(),
    };
    let Some(row) = row else { return };
    let mut data: Option<String> = None;
    let mut verdicts: Vec<(Role, bool)> = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    for channel in candidates {
        ids.clear();
        for s in &channel.subs {
            if !ids.contains(&s.id) && s.matches(change, row) {
                ids.push(s.id);
            }
        }
        if ids.is_empty() || channel.outbox.is_gone() {
            continue;
        }
        let role = channel.role.read().clone();
        let visible = match verdicts.iter().find(|(r, _)| *r == role) {
            Some((_, v)) => *v,
            None => {
                let v = row_visible(conn, change.table, &role, row);
                verdicts.push((role, v));
                v
            }
        };
        if !visible {
            continue;
        }
        let data = data.get_or_insert_with(|| encode_data(change));
        let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let payload = format!("{{\"ids\":{ids_json},\"data\":{data}}}");
        channel.outbox.push_now(serializer::raw_text_frame(channel.vsn, &channel.topic, "postgres_changes", &payload));
    }
}

/// Whether `role` may read `row` of `table` (`row` may be a deleted row).
fn row_visible(conn: &Connection, table: &Table, role: &Role, row: &Map<String, Value>) -> bool {
    let Some(sql) = policy::row_visible_sql(table, role) else {
        return true;
    };
    let params: Vec<rusqlite::types::Value> = table.columns.iter().map(|c| sql_value(row.get(c.name))).collect();
    let result = conn.prepare_cached(&sql).and_then(|mut stmt| stmt.exists(rusqlite::params_from_iter(params)));
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, table = table.name, "row visibility check failed; hiding the row");
        false
    })
}

fn sql_value(v: Option<&Value>) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match v {
        None | Some(Value::Null) => Sql::Null,
        Some(Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        Some(Value::Number(n)) => n.as_i64().map(Sql::Integer).unwrap_or_else(|| Sql::Real(n.as_f64().unwrap_or(0.0))),
        Some(Value::String(s)) => Sql::Text(s.clone()),
        Some(other) => Sql::Text(other.to_string()),
    }
}

/// The `data` object of a change, serialised once.
fn encode_data(change: &Change) -> String {
    let table = change.table;
    let columns: Vec<Value> = table.columns.iter().map(|c| json!({ "name": c.name, "type": c.ty.pg_name() })).collect();
    let mut data = Map::new();
    data.insert("schema".into(), "public".into());
    data.insert("table".into(), table.name.into());
    data.insert("type".into(), change.kind.as_str().into());
    data.insert("commit_timestamp".into(), change.commit_timestamp.clone().into());
    data.insert("columns".into(), Value::Array(columns));
    let empty = Map::new();
    match change.kind {
        ChangeKind::Insert => {
            data.insert("record".into(), Value::Object(change.record.clone().unwrap_or_default()));
        }
        ChangeKind::Update => {
            data.insert("record".into(), Value::Object(change.record.clone().unwrap_or_default()));
            data.insert("old_record".into(), Value::Object(change.old_record.clone().unwrap_or_default()));
        }
        ChangeKind::Delete => {
            let old = change.old_record.as_ref().unwrap_or(&empty);
            let key: Map<String, Value> = table
                .primary_key
                .iter()
                .map(|k| (k.to_string(), old.get(*k).cloned().unwrap_or(Value::Null)))
                .collect();
            data.insert("old_record".into(), Value::Object(key));
        }
    }
    data.insert("errors".into(), Value::Null);
    serde_json::to_string(&Value::Object(data)).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::socket::Outbound;
    use axum::extract::ws::Message;

    #[test]
    fn a_lagging_feed_is_reported_to_every_subscribed_channel() {
        let (outbox, mut rx) = Outbox::for_test(8);
        let registry = PgRegistry::default();
        let subs = parse_request(&[json!({"event": "*", "schema": "public"})]).subscriptions;
        registry.add(Arc::new(PgChannel::new(1, "realtime:x", Some("3".into()), Vsn::V2, outbox, Role::Anon, subs)));
        report_lag(&registry, 7);
        let Ok(Outbound::Frame(Message::Text(text))) = rx.try_recv() else { panic!("a system frame was queued") };
        let v: Value = serde_json::from_str(text.as_str()).expect("json");
        assert_eq!((v[0].as_str(), v[2].as_str(), v[3].as_str()), (Some("3"), Some("realtime:x"), Some("system")));
        assert_eq!(v[4]["status"], "error");
        assert!(v[4]["message"].as_str().unwrap_or("").contains("missed 7 changes"), "{v}");
    }

    fn messages() -> &'static Table {
        schema::table("chat_messages").expect("table")
    }

    #[test]
    fn filters_compare_by_column_type() {
        let docs = schema::table("collaborative_documents").expect("table");
        let row = |v: i64| json!({"version": v}).as_object().cloned().expect("obj");
        let f = parse_filter(docs, "version=gt.9").expect("gt");
        assert!(f.matches(&row(10)), "10 > 9 as integers even though \"10\" < \"9\" as text");
        assert!(!f.matches(&row(9)));
        let f = parse_filter(docs, "version=in.(1,3)").expect("in");
        assert!(f.matches(&row(3)) && !f.matches(&row(2)));
        assert!(parse_filter(docs, "version=eq.abc").is_err(), "not an integer");
        assert!(parse_filter(docs, "nope=eq.1").is_err(), "unknown column");
        assert!(parse_filter(docs, "version=like.1").is_err(), "unknown operator");
        assert!(parse_filter(docs, "garbage").is_err());
    }

    #[test]
    fn text_filters_treat_sql_as_a_value_and_null_never_matches() {
        let f = parse_filter(messages(), "content=eq.x' OR '1'='1").expect("eq");
        let row = |c: Value| json!({"content": c}).as_object().cloned().expect("obj");
        assert!(f.matches(&row(json!("x' OR '1'='1"))));
        assert!(!f.matches(&row(json!("anything else"))));
        let f = parse_filter(messages(), "content=neq.a").expect("neq");
        assert!(!f.matches(&row(Value::Null)), "NULL <> 'a' is not true in SQL");
    }

    #[test]
    fn ids_are_stable_and_depend_on_the_parameters() {
        let a = json!({"event": "INSERT", "schema": "public", "table": "t"});
        let b = json!({"table": "t", "schema": "public", "event": "INSERT"});
        assert_eq!(stable_id(&a), stable_id(&b), "key order does not matter");
        assert_ne!(stable_id(&a), stable_id(&json!({"event": "UPDATE", "schema": "public", "table": "t"})));
        assert!(stable_id(&a) < (1 << 27));
    }

    #[test]
    fn bad_entries_become_system_errors_and_good_ones_subscriptions() {
        let req = parse_request(&[
            json!({"event": "insert", "schema": "public", "table": "chat_messages"}),
            json!({"event": "*", "schema": "public", "table": "nope"}),
            json!({"event": "*", "schema": "public", "table": "chat_messages", "filter": "room_id=eq.not-a-uuid"}),
        ]);
        assert_eq!(req.echo.len(), 3);
        assert_eq!(req.subscriptions.len(), 1);
        assert_eq!(req.subscriptions[0].event, EventFilter::Only(ChangeKind::Insert));
        assert!(req.errors[0].starts_with("Unable to subscribe to changes"), "{}", req.errors[0]);
        assert!(req.errors[1].starts_with("Error parsing `filter` params:"), "{}", req.errors[1]);
    }
}
