//! The local SQLite database: the cache of what the signed-in user can see and the local state
//! (sync cursors, drafts, notification preferences, read markers, the outbound queue).
//!
//! ## One thread owns the connection
//! [`Store`] is a cheap clonable handle. A dedicated OS thread owns the one `rusqlite`
//! connection and runs jobs — closures over [`Db`] — one at a time, in the order they were
//! sent, over a bounded channel; each job's result comes back through a `oneshot`. Async
//! callers therefore never block a runtime thread on SQLite, and every job sees the effects
//! of the jobs before it. The thread stops when the last handle is dropped (after finishing
//! the jobs already sent); [`Store::close`] waits for that.
//!
//! Serialising everything on one connection is also what makes the outbound queue simple: the
//! set of entries the sender has in flight ([`Db::inflight`]) lives on this thread, so
//! "fold an edit into a queued insert unless it is being sent" is one decision, never a race.
//!
//! ## Settings
//! WAL, `foreign_keys=ON`, a busy timeout (another process — a second app instance, a test —
//! may hold the file briefly), and `synchronous=FULL` by default: the outbound queue holds
//! things the user typed that exist nowhere else, so a committed entry must survive a power
//! cut, not only a crash (WAL with `NORMAL` already survives a killed process). The cost is
//! measured in `docs/benchmarks.md`; [`StoreOptions::synchronous`] can lower it.
//!
//! ## Failure modes
//! - A database written by a newer version (a higher `user_version` than this build's last
//!   migration) is refused with [`StoreError::TooNew`] before anything is written — not even
//!   the journal mode is changed — so the newer app still finds it intact.
//! - A file that is some other SQLite database (another `application_id`, or tables without
//!   ours) is refused with [`StoreError::Foreign`].
//! - A failing migration rolls the whole upgrade back ([`migrations`]): the file stays at its
//!   old version, usable by the old build.
//! - A job that panics does not take the thread down: its caller gets [`StoreError::Crashed`]
//!   and its transaction (if any) is rolled back when it unwinds.

pub mod cache;
mod migrations;

use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

pub use migrations::{LATEST_VERSION, MIGRATIONS};

/// `PRAGMA application_id` of a Ruwād cache ("RWAD").
pub const APPLICATION_ID: i32 = 0x5257_4144;

/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Jobs waiting for the store thread before senders wait too.
const JOB_QUEUE: usize = 256;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file was written by a newer version of the app. It was not modified.
    #[error(
        "the local database {path} was written by a newer version of Ruwād (schema version {found}; this version \
         knows up to {supported}); it was left untouched — update the app to open it"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    /// The file is not a Ruwād cache. It was not modified.
    #[error("{path} is not a Ruwād local database ({reason}); it was left untouched")]
    Foreign { path: PathBuf, reason: String },
    /// The file could not be opened or configured.
    #[error("cannot open the local database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed; the upgrade was rolled back and the file is at its old version.
    #[error("migration {version} ({name}) failed, nothing was changed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON value (a queue entry's request, …) does not parse.
    #[error("stored value does not parse: {0}")]
    Json(#[from] serde_json::Error),
    /// A row that breaks an invariant of this crate (named in the message).
    #[error("inconsistent local data: {0}")]
    Corrupt(String),
    /// The operation is not possible in the current state (named in the message).
    #[error("{0}")]
    Refused(String),
    /// The store thread has stopped.
    #[error("the local database is closed")]
    Closed,
    /// The job panicked; its transaction was rolled back.
    #[error("a local database operation failed unexpectedly (it panicked)")]
    Crashed,
}

/// How the store trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=FULL`: a committed transaction survives power loss.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the app, may lose the last transactions on
    /// power loss (WAL stays consistent).
    Normal,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub synchronous: Synchronous,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { synchronous: Synchronous::Full }
    }
}

/// What a job works with: the connection and the state that lives beside it on the store
/// thread.
pub struct Db {
    pub conn: Connection,
    /// Outbox entries (by `seq`) the sender has claimed and not yet settled. Lives here, not in
    /// the file: after a crash nothing is in flight.
    pub(crate) inflight: HashSet<i64>,
    /// The durability the store was opened with (restored after a relaxed write).
    synchronous: Synchronous,
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// Handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    path: Arc<PathBuf>,
    /// Resolved when the thread has exited (its sender half is dropped then).
    done: Arc<tokio::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, and starts its thread.
    pub async fn open(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.into();
        let (jobs, mut rx) = mpsc::channel::<Job>(JOB_QUEUE);
        let (opened_tx, opened_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("ruwad-store".into())
            .spawn(move || {
                let conn = match open_connection(&thread_path, &options) {
                    Ok(conn) => {
                        let _ = opened_tx.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let mut db = Db { conn, inflight: HashSet::new(), synchronous: options.synchronous };
                while let Some(job) = rx.blocking_recv() {
                    // A panicking job drops its reply sender (the caller sees `Crashed`) and
                    // its transaction (rolled back on unwind); the thread goes on.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut db))).is_err() {
                        tracing::error!("a store job panicked; its transaction was rolled back");
                    }
                }
                drop(db);
                drop(done_tx);
            })
            .map_err(|e| StoreError::Refused(format!("cannot start the store thread: {e}")))?;
        opened_rx.await.map_err(|_| StoreError::Crashed)??;
        Ok(Store { jobs, path: Arc::new(path), done: Arc::new(tokio::sync::Mutex::new(Some(done_rx))) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Crashed)?
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`): committed if it returns `Ok`,
    /// rolled back otherwise.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>, &mut HashSet<i64>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.call(move |db| {
            let tx = rusqlite::Transaction::new(&mut db.conn, rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx, &mut db.inflight)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// [`Store::write`] committed with `synchronous=NORMAL` even when the store runs with
    /// `FULL`: the commit survives a killed process (WAL) but not necessarily a power cut
    /// until the next `FULL` commit or checkpoint syncs the log. For high-rate local writes
    /// whose loss on power failure is bounded by a following `FULL` write (a document's
    /// keystrokes: their outbox entry follows within the batch window, and its `FULL` commit
    /// makes every earlier commit durable too). Measured in `docs/benchmarks.md`.
    pub async fn write_relaxed<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>, &mut HashSet<i64>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.call(move |db| {
            let full = db.synchronous == Synchronous::Full;
            if full {
                db.conn.execute_batch("PRAGMA synchronous=NORMAL")?;
            }
            let out = (|| {
                let tx = rusqlite::Transaction::new(&mut db.conn, rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&tx, &mut db.inflight)?;
                tx.commit()?;
                Ok(out)
            })();
            if full {
                db.conn.execute_batch("PRAGMA synchronous=FULL")?;
            }
            out
        })
        .await
    }

    /// Runs `f` with the connection, for reads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.call(move |db| f(&db.conn)).await
    }

    /// Drops this handle and waits until the store thread has finished every job and closed
    /// the file — if this was the last handle. With other handles alive it only drops this one.
    pub async fn close(self) {
        let done = Arc::clone(&self.done);
        drop(self);
        if Arc::strong_count(&done) == 1 {
            if let Some(rx) = done.lock().await.take() {
                let _ = rx.await;
            }
        }
    }
}

/// Migrates a bare connection (unit tests of modules that work on a connection).
#[cfg(test)]
pub(crate) fn migrate_for_tests(conn: &mut Connection) {
    conn.execute_batch("PRAGMA foreign_keys=ON;").expect("pragma");
    migrations::migrate(conn).expect("migrate");
}

fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // Refuse before writing anything (journal mode included).
    migrations::check_version(&conn, path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "the local database is not in WAL mode (the file system may not support it)");
    }
    let sync = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;")).map_err(open_err)?;
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("cache.db"), StoreOptions::default()).await.expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn pragmas_are_set_on_open() {
        let (_dir, store) = temp_store().await;
        let (mode, sync, fk): (String, i64, i64) = store
            .read(|c| {
                let mode = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let sync = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                let fk = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((mode, sync, fk))
            })
            .await
            .expect("read");
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1), "WAL, synchronous=FULL (2), foreign keys on");
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back_and_a_panicking_job_leaves_the_thread_running() {
        let (_dir, store) = temp_store().await;
        let r: Result<(), _> = store
            .write(|tx, _| {
                tx.execute("INSERT INTO kv (key, value) VALUES ('a', '1')", [])?;
                Err(StoreError::Refused("no".into()))
            })
            .await;
        assert!(r.is_err());
        let r: Result<(), _> = store
            .write(|tx, _| {
                tx.execute("INSERT INTO kv (key, value) VALUES ('b', '1')", [])?;
                panic!("job panics mid-transaction")
            })
            .await;
        assert!(matches!(r, Err(StoreError::Crashed)), "{r:?}");
        let n: i64 =
            store.read(|c| Ok(c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?)).await.expect("thread alive");
        assert_eq!(n, 0, "neither the refused nor the panicking write left a row");
    }

    #[tokio::test]
    async fn a_relaxed_write_commits_and_the_store_goes_back_to_full() {
        let (_dir, store) = temp_store().await;
        store
            .write_relaxed(|tx, _| Ok(tx.execute("INSERT INTO kv (key, value) VALUES ('r', '1')", [])?))
            .await
            .expect("relaxed");
        let (n, sync): (i64, i64) = store
            .read(|c| {
                Ok((
                    c.query_row("SELECT count(*) FROM kv WHERE key = 'r'", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })
            .await
            .expect("read");
        assert_eq!((n, sync), (1, 2), "committed, and synchronous is FULL (2) again");
        let r: Result<(), _> = store.write_relaxed(|_, _| Err(StoreError::Refused("no".into()))).await;
        assert!(r.is_err());
        let sync: i64 = store.read(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?)).await.expect("read");
        assert_eq!(sync, 2, "a failed relaxed write restores FULL too");
    }

    #[tokio::test]
    async fn close_waits_for_the_thread_so_the_file_can_be_reopened() {
        let (dir, store) = temp_store().await;
        store.write(|tx, _| Ok(tx.execute("INSERT INTO kv (key, value) VALUES ('k', 'v')", [])?)).await.expect("write");
        store.close().await;
        let store = Store::open(dir.path().join("cache.db"), StoreOptions::default()).await.expect("reopen");
        let v: String = store
            .read(|c| Ok(c.query_row("SELECT value FROM kv WHERE key = 'k'", [], |r| r.get(0))?))
            .await
            .expect("read");
        assert_eq!(v, "v");
    }
}
