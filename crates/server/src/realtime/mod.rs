//! Supabase Realtime subset at `/realtime/v1`.
use crate::db::Db;
use crate::AppState;
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Hub {}

impl Hub {
    pub fn new(_db: Arc<Db>, _shutdown: CancellationToken) -> Hub {
        Hub {}
    }

    /// Starts the tasks that fan committed changes out to subscribers.
    pub fn start(_state: &Arc<AppState>) {}

    /// How many distinct users are present (tracked) on any topic right now.
    pub fn online_users(&self) -> usize {
        0
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
}
