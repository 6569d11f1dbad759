//! PostgREST subset at `/rest/v1`.
use crate::AppState;
use axum::Router;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
}
