//! SQLite storage: one writer connection, a few reader connections, append-only migrations, and
//! the change capture that feeds Realtime's postgres_changes.
//!
//! Design:
//! - WAL mode, `synchronous=FULL` on the writer (a confirmed write survives power loss; the
//!   cost is measured in `docs/benchmarks.md`), `foreign_keys=ON`, a busy timeout.
//! - All writes go through [`Db::write`], which runs a closure as one atomic unit on a blocking
//!   thread. Writes that arrive while a commit is in progress are grouped into the next
//!   transaction, each in its own savepoint (group commit: one fsync for many callers; a
//!   failing closure undoes only its own work). If the shared transaction itself breaks (an I/O
//!   error), the units that had succeeded get an error and the ones not yet run are queued
//!   again. TEMP triggers on every public table record each row change (inserts, updates,
//!   deletes, cascades included) as JSON in `temp.changes`; before commit the rows are read and
//!   cleared, and after the commit succeeds they are published on the change feed. A rolled
//!   back transaction therefore publishes nothing, and what is published is exactly what was
//!   committed — the same guarantee Postgres logical replication gives Supabase Realtime.
//! - Reads use a small pool of read-only connections, so policy checks for Realtime delivery
//!   never wait behind a writer (WAL readers see the last committed state).
//! - Migrations are embedded, append-only, recorded in `schema_migrations` and all run in one
//!   transaction. A database written by a newer version (a migration we do not know) is
//!   refused with a clear error instead of being touched.
//!
//! The mutexes are `parking_lot` ones held only inside `spawn_blocking` closures, never across
//! an `.await`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, Transaction};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::schema::{self, Table};

const READERS: usize = 4;
/// How many committed changes Realtime may fall behind before it is told it lagged.
const FEED_CAPACITY: usize = 16_384;

/// The kind of a row change, as Realtime names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        }
    }
}

/// One committed row change. `record` is the new row (insert, update), `old_record` the full
/// old row (update, delete); Realtime decides how much of the old row a subscriber sees.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: &'static Table,
    pub kind: ChangeKind,
    pub record: Option<Map<String, Value>>,
    pub old_record: Option<Map<String, Value>>,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the commit time.
    pub commit_timestamp: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database was written by a newer Ruwād (migration {0} is unknown to this version); refusing to open it"
    )]
    TooNew(i64),
    #[error("a database task ended unexpectedly: {0}")]
    Task(String),
    /// The shared transaction of a group commit failed; no unit of it was written.
    #[error("the write could not be committed: {0}")]
    Batch(String),
}

pub struct Db {
    writer: Mutex<Connection>,
    /// Write units waiting for the next batch (see [`Db::write`]).
    queue: Mutex<VecDeque<Box<dyn Queued>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    feed: broadcast::Sender<Arc<Change>>,
}

/// Append-only: add a new entry at the end, never edit a released one.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_platform.sql"))];

impl Db {
    /// Opens (creating if needed) `dir/ruwad.db` and runs pending migrations.
    pub fn open(dir: &Path) -> Result<Arc<Db>, DbError> {
        let path = dir.join("ruwad.db");
        let mut writer = Connection::open(&path)?;
        writer.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )?;
        migrate(&mut writer)?;
        install_change_capture(&writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            r.execute_batch("PRAGMA busy_timeout=5000; PRAGMA query_only=ON;")?;
            readers.push(Mutex::new(r));
        }
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Ok(Arc::new(Db {
            writer: Mutex::new(writer),
            queue: Mutex::new(VecDeque::new()),
            readers,
            next_reader: AtomicUsize::new(0),
            feed,
        }))
    }

    /// Subscribes to committed changes, in commit order.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.feed.subscribe()
    }

    /// Runs `f` as one atomic unit of a write transaction on a blocking thread. If `f` returns
    /// `Ok`, its writes are committed (durably: `synchronous=FULL`) before this returns, and its
    /// row changes are published; on `Err` its writes are rolled back and nothing is published.
    ///
    /// **Group commit:** writes that arrive while a commit is in progress are queued and the
    /// next writer to take the connection runs all of them in one transaction, each inside its
    /// own savepoint, so one fsync covers many callers while a failing caller still undoes
    /// only its own work. Under load this is what keeps insert → change latency low.
    pub async fn write<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.lock().push_back(Box::new(Unit { work: f, reply }));
        let db = Arc::clone(self);
        // The spawned leader may find the queue already drained by another one: then it just
        // returns, and our answer comes from that other batch.
        let lead = tokio::task::spawn_blocking(move || db.lead_batch());
        let outcome = answer.await;
        if let Err(e) = lead.await {
            tracing::error!(error = %e, "a write batch task failed");
        }
        outcome.unwrap_or_else(|_| Err(E::from(DbError::Task("the write was dropped unanswered".into()))))
    }

    /// Takes the writer connection and runs every queued unit in one transaction.
    fn lead_batch(&self) {
        let mut conn = self.writer.lock();
        loop {
            let units: Vec<Box<dyn Queued>> = self.queue.lock().drain(..).collect();
            if units.is_empty() {
                return;
            }
            self.run_batch(&mut conn, units);
        }
    }

    fn run_batch(&self, conn: &mut Connection, units: Vec<Box<dyn Queued>>) {
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let why = e.to_string();
                return units.into_iter().for_each(|u| u.abort(DbError::Batch(why.clone())));
            }
        };
        let mut done: Vec<Box<dyn Committed>> = Vec::with_capacity(units.len());
        let mut units = units.into_iter();
        while let Some(unit) = units.next() {
            match unit.run(&tx) {
                Ok(Some(committed)) => done.push(committed),
                Ok(None) => {}
                Err(broken) => {
                    // The transaction itself failed (I/O error, savepoint lost): nothing of
                    // this batch can commit. Units not yet run go back to the queue.
                    let why = broken.to_string();
                    drop(tx);
                    done.into_iter().for_each(|d| d.finish(Err(DbError::Batch(why.clone()))));
                    let mut q = self.queue.lock();
                    for u in units.rev() {
                        q.push_front(u);
                    }
                    return;
                }
            }
        }
        let committed = drain_changes(&tx).and_then(|changes| tx.commit().map(|()| changes));
        match committed {
            Ok(changes) => {
                done.into_iter().for_each(|d| d.finish(Ok(())));
                for c in changes {
                    // No receiver is fine: nobody is subscribed yet.
                    let _ = self.feed.send(Arc::new(c));
                }
            }
            Err(e) => {
                let why = e.to_string();
                done.into_iter().for_each(|d| d.finish(Err(DbError::Batch(why.clone()))));
            }
        }
    }

    /// [`Db::write`] for callers already on a blocking thread whose closure borrows (seeding,
    /// tests): its own transaction, no batching.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
    {
        let mut conn = self.writer.lock();
        let tx = conn.transaction().map_err(DbError::from)?;
        let value = f(&tx)?;
        let changes = drain_changes(&tx).map_err(DbError::from)?;
        tx.commit().map_err(DbError::from)?;
        drop(conn);
        for c in changes {
            let _ = self.feed.send(Arc::new(c));
        }
        Ok(value)
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    pub async fn read<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let db = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || db.read_blocking(f)).await;
        joined.map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// The blocking body of [`Db::read`].
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle reader; if all are busy, wait on the one whose turn it is.
        for i in 0..self.readers.len() {
            if let Some(conn) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[start % self.readers.len()].lock();
        f(&conn)
    }
}

/// A write waiting in the queue: its closure and where its answer goes.
trait Queued: Send {
    /// Runs inside a savepoint of the batch's transaction. `Ok(Some)`: the unit succeeded and
    /// waits for the commit; `Ok(None)`: it failed, was rolled back alone and already
    /// answered; `Err`: the transaction itself is broken (the unit was answered with the error).
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Result<Option<Box<dyn Committed>>, rusqlite::Error>;
    /// Answers without running (the batch could not start).
    fn abort(self: Box<Self>, why: DbError);
}

/// A unit that succeeded, waiting to learn whether its batch committed.
trait Committed: Send {
    fn finish(self: Box<Self>, outcome: Result<(), DbError>);
}

struct Unit<F, T, E> {
    work: F,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

struct Succeeded<T, E> {
    value: T,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Queued for Unit<F, T, E>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Result<Option<Box<dyn Committed>>, rusqlite::Error> {
        let Unit { work, reply } = *self;
        if let Err(e) = tx.execute_batch("SAVEPOINT unit") {
            let _ = reply.send(Err(E::from(DbError::Batch(e.to_string()))));
            return Err(e);
        }
        match work(tx) {
            Ok(value) => match tx.execute_batch("RELEASE unit") {
                Ok(()) => Ok(Some(Box::new(Succeeded { value, reply }))),
                Err(e) => {
                    let _ = reply.send(Err(E::from(DbError::Batch(e.to_string()))));
                    Err(e)
                }
            },
            Err(failure) => {
                let _ = reply.send(Err(failure));
                // Undo this unit only. If SQLite already rolled the whole transaction back
                // (some I/O errors do), the savepoint is gone and the batch is broken.
                match tx.execute_batch("ROLLBACK TO unit; RELEASE unit") {
                    Ok(()) if !tx.is_autocommit() => Ok(None),
                    Ok(()) => Err(rusqlite::Error::InvalidQuery),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn abort(self: Box<Self>, why: DbError) {
        let _ = self.reply.send(Err(E::from(why)));
    }
}

impl<T: Send, E: From<DbError> + Send> Committed for Succeeded<T, E> {
    fn finish(self: Box<Self>, outcome: Result<(), DbError>) {
        let Succeeded { value, reply } = *self;
        let _ = reply.send(outcome.map(|()| value).map_err(E::from));
    }
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let newest: Option<i64> = tx.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if let Some(v) = newest.filter(|v| *v > known) {
        return Err(DbError::TooNew(v));
    }
    for (version, sql) in MIGRATIONS {
        if newest.is_some_and(|n| n >= *version) {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, schema::now_text()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// TEMP table + TEMP triggers on the writer connection: they exist only for this connection,
/// cost nothing on disk, and see every row change including cascades.
fn install_change_capture(conn: &Connection) -> Result<(), DbError> {
    let mut sql = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS changes (n INTEGER PRIMARY KEY, tbl TEXT NOT NULL, kind TEXT NOT NULL, new TEXT, old TEXT);\n",
    );
    for t in schema::TABLES {
        let obj = |alias: &str| {
            let fields: Vec<String> = t.columns.iter().map(|c| format!("'{0}', {alias}.\"{0}\"", c.name)).collect();
            format!("json_object({})", fields.join(", "))
        };
        let (new, old) = (obj("NEW"), obj("OLD"));
        let name = t.name;
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS cap_{name}_ins AFTER INSERT ON main.\"{name}\" BEGIN INSERT INTO changes (tbl, kind, new) VALUES ('{name}', 'INSERT', {new}); END;\n\
             CREATE TEMP TRIGGER IF NOT EXISTS cap_{name}_upd AFTER UPDATE ON main.\"{name}\" BEGIN INSERT INTO changes (tbl, kind, new, old) VALUES ('{name}', 'UPDATE', {new}, {old}); END;\n\
             CREATE TEMP TRIGGER IF NOT EXISTS cap_{name}_del AFTER DELETE ON main.\"{name}\" BEGIN INSERT INTO changes (tbl, kind, old) VALUES ('{name}', 'DELETE', {old}); END;\n"
        ));
    }
    conn.execute_batch(&sql)?;
    Ok(())
}

fn drain_changes(tx: &Transaction<'_>) -> Result<Vec<Change>, rusqlite::Error> {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached("SELECT tbl, kind, new, old FROM temp.changes ORDER BY n")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let tbl: String = row.get(0)?;
            let kind: String = row.get(1)?;
            let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Map<String, Value>>(&s).ok());
            let Some(table) = schema::table(&tbl) else { continue };
            let kind = match kind.as_str() {
                "INSERT" => ChangeKind::Insert,
                "UPDATE" => ChangeKind::Update,
                _ => ChangeKind::Delete,
            };
            out.push(Change {
                table,
                kind,
                record: parse(row.get(2)?),
                old_record: parse(row.get(3)?),
                commit_timestamp: ts.clone(),
            });
        }
    }
    if !out.is_empty() {
        tx.execute("DELETE FROM temp.changes", [])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_matches_the_schema_description() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        let conn = db.writer.lock();
        for t in schema::TABLES {
            let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{}\")", t.name)).expect("pragma");
            let cols: Vec<String> =
                stmt.query_map([], |r| r.get::<_, String>(1)).expect("query").map(|c| c.expect("col")).collect();
            let want: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            assert_eq!(cols, want, "columns of {} in SQLite must match schema.rs in order", t.name);
        }
    }

    #[test]
    fn a_newer_database_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(Db::open(dir.path()).expect("open"));
        {
            let c = Connection::open(dir.path().join("ruwad.db")).expect("raw open");
            c.execute("INSERT INTO schema_migrations VALUES (999, 'x')", []).expect("insert");
        }
        let err = Db::open(dir.path()).err().expect("must refuse");
        assert!(matches!(err, DbError::TooNew(999)), "{err}");
    }

    #[tokio::test]
    async fn committed_writes_are_published_and_rolled_back_ones_are_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        let mut feed = db.changes();
        let now = schema::now_text();
        let uid = uuid::Uuid::new_v4().to_string();
        let (u2, n2) = (uid.clone(), now.clone());
        db.write(move |tx| -> Result<(), DbError> {
            tx.execute("INSERT INTO auth_users (id, email, encrypted_password, created_at, updated_at) VALUES (?1, 'a@b.c', 'x', ?2, ?2)", rusqlite::params![u2, n2])?;
            tx.execute("INSERT INTO profiles (id, display_name, locale, created_at) VALUES (?1, 'A', 'ar', ?2)", rusqlite::params![u2, n2])?;
            Ok(())
        })
        .await
        .expect("write");
        let c = feed.recv().await.expect("change");
        assert_eq!((c.table.name, c.kind), ("profiles", ChangeKind::Insert));
        assert_eq!(c.record.as_ref().and_then(|r| r.get("display_name")), Some(&Value::from("A")));
        let u3 = uid.clone();
        let r: Result<(), DbError> = db
            .write(move |tx| {
                tx.execute("UPDATE profiles SET display_name = 'B' WHERE id = ?1", [u3])?;
                Err(DbError::Task("abort".into()))
            })
            .await;
        assert!(r.is_err());
        assert!(feed.try_recv().is_err(), "a rolled back write must publish nothing");
    }

    /// Concurrent writers share batches; a failing writer undoes only its own rows, and only
    /// committed rows are published.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_batch_and_a_failing_one_undoes_only_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        let mut feed = db.changes();
        let mut tasks = Vec::new();
        for i in 0..60 {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                let id = uuid::Uuid::new_v4().to_string();
                let id2 = id.clone();
                let r = db
                    .write(move |tx| -> Result<(), DbError> {
                        let now = schema::now_text();
                        tx.execute(
                            "INSERT INTO auth_users (id, email, encrypted_password, created_at, updated_at) VALUES (?1, ?2, 'x', ?3, ?3)",
                            rusqlite::params![id2, format!("u{i}@x.y"), now],
                        )?;
                        if i % 5 == 0 {
                            return Err(DbError::Task("refused".into()));
                        }
                        Ok(())
                    })
                    .await;
                (i, id, r.is_ok())
            }));
        }
        let mut committed = std::collections::HashSet::new();
        for t in tasks {
            let (i, id, ok) = t.await.expect("task");
            assert_eq!(ok, i % 5 != 0, "writer {i}");
            if ok {
                committed.insert(id);
            }
        }
        let stored: i64 =
            db.read_blocking(|c| c.query_row("SELECT count(*) FROM auth_users", [], |r| r.get(0))).expect("count");
        assert_eq!(stored, 48, "12 of 60 writers failed and must have left nothing");
        assert!(feed.try_recv().is_err(), "auth_users is not a published table");
        let _ = &mut feed;
    }
}
