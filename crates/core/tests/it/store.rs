//! The database file: refused when it is not ours to touch.

use ruwad_core::store::{Store, StoreError, StoreOptions, LATEST_VERSION};

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_and_left_byte_for_byte_untouched() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cache.db");
    let store = Store::open(&path, StoreOptions::default()).await.expect("create");
    store
        .write(|tx, _| Ok(tx.execute("INSERT INTO kv (key, value) VALUES ('unsent', 'precious')", [])?))
        .await
        .expect("write");
    store.close().await;
    {
        // What a newer build would leave: a higher schema version (and a journal mode it chose).
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(&format!("PRAGMA journal_mode=DELETE; PRAGMA user_version = {};", LATEST_VERSION + 1))
            .expect("bump");
    }
    let before = std::fs::read(&path).expect("read file");
    let err = Store::open(&path, StoreOptions::default()).await.expect_err("refused");
    match &err {
        StoreError::TooNew { found, supported, .. } => {
            assert_eq!((*found, *supported), (LATEST_VERSION + 1, LATEST_VERSION))
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("newer version") && text.contains("left untouched"), "a clear message: {text}");
    assert_eq!(std::fs::read(&path).expect("read file"), before, "not a byte changed (journal mode included)");
    assert!(!dir.path().join("cache.db-wal").exists(), "no WAL was created");
}

#[tokio::test]
async fn a_foreign_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');").expect("seed");
    }
    let before = std::fs::read(&path).expect("read");
    let err = Store::open(&path, StoreOptions::default()).await.expect_err("refused");
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[tokio::test]
async fn reopening_keeps_the_data_and_applies_no_migration_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cache.db");
    for round in 0..3 {
        let store = Store::open(&path, StoreOptions::default()).await.expect("open");
        let (versions, rows): (i64, i64) = store
            .write(move |tx, _| {
                tx.execute("INSERT INTO kv (key, value) VALUES (?1, 'x')", [format!("k{round}")])?;
                let v = tx.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))?;
                let n = tx.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
                Ok((v, n))
            })
            .await
            .expect("write");
        assert_eq!((versions, rows), (LATEST_VERSION, round + 1));
        store.close().await;
    }
}
