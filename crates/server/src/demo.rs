//! Demo data for `--demo`.
use crate::db::Db;

pub fn seed(_db: &Db) -> anyhow::Result<()> {
    Ok(())
}
