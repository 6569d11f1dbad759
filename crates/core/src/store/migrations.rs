//! Embedded, append-only migrations.
//!
//! Rules (CONVENTIONS.md, "Persistence"):
//! - A migration is never edited or removed once released; changes are new migrations appended
//!   to [`MIGRATIONS`]. A unit test pins the SQL of released ones by checksum.
//! - All pending migrations run in **one** `BEGIN IMMEDIATE` transaction together with their
//!   records in `schema_migrations` and the new `user_version`: an upgrade either happens whole
//!   or not at all.
//! - A migration never deletes user data it does not understand: rows it cannot convert are
//!   kept (moved aside if need be), never dropped. The outbound queue in particular is only
//!   ever extended (matrix-rust-sdk lost unsent messages in two migrations; we don't).
//! - A database whose `user_version` is above [`LATEST_VERSION`] was written by a newer build:
//!   it is refused before anything is written (see [`check_version`]).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, APPLICATION_ID};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; `version` is the position (1-based).
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "cache and outbox", sql: include_str!("../../migrations/0001_cache.sql") },
    Migration { version: 2, name: "documents", sql: include_str!("../../migrations/0002_documents.sql") },
];

/// The schema version this build writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a database this build must not touch: one from a newer version, or one that is not
/// ours. Reads only.
pub fn check_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(open_err)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open_err)?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            reason: format!("its application id is {app_id:#x}, not {APPLICATION_ID:#x}"),
        });
    }
    if app_id == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))
            .map_err(open_err)?;
        if tables > 0 {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                reason: format!("it holds {tables} tables but no Ruwād application id"),
            });
        }
    }
    if version > LATEST_VERSION {
        return Err(StoreError::TooNew { path: path.to_path_buf(), found: version, supported: LATEST_VERSION });
    }
    Ok(())
}

/// Applies the pending migrations in one transaction. Returns the versions applied.
pub fn migrate(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    let tx = rusqlite::Transaction::new(conn, TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST_VERSION {
        return Err(StoreError::TooNew { path: Default::default(), found: current, supported: LATEST_VERSION });
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at TEXT NOT NULL
         );",
    )?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|source| StoreError::Migration { version: m.version, name: m.name, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, crate::time::now()],
        )?;
        applied.push(m.version);
    }
    if !applied.is_empty() {
        tx.execute_batch(&format!(
            "PRAGMA user_version = {LATEST_VERSION}; PRAGMA application_id = {APPLICATION_ID};"
        ))?;
    }
    tx.commit()?;
    if !applied.is_empty() {
        tracing::info!(?applied, "local database migrated");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a: a stable checksum without a dependency.
    fn checksum(s: &str) -> u64 {
        s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    #[test]
    fn versions_are_positions() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{} is out of place", m.name);
        }
    }

    /// Released migrations are frozen: a change here means a released database would differ
    /// from a fresh one. Append a new migration instead. (Update the pin only for a migration
    /// that has never been released.)
    #[test]
    fn released_migrations_are_unchanged() {
        let pinned: &[(i64, u64)] = &[(1, 0x30c0_8dc0_ba4a_5029), (2, 0xb24d_2036_8be6_c919)];
        for (version, sum) in pinned {
            let m = &MIGRATIONS[(*version - 1) as usize];
            assert_eq!(checksum(m.sql), *sum, "migration {version} was edited");
        }
    }

    #[test]
    fn migrating_twice_applies_nothing_the_second_time_and_records_each_version() {
        let mut conn = Connection::open_in_memory().expect("db");
        assert_eq!(migrate(&mut conn).expect("first"), vec![1, 2]);
        assert_eq!(migrate(&mut conn).expect("second"), Vec::<i64>::new());
        let recorded: i64 =
            conn.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).expect("records");
        assert_eq!(recorded, LATEST_VERSION);
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(v, LATEST_VERSION);
    }
}
