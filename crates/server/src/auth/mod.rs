//! GoTrue subset at `/auth/v1`.
use std::sync::Arc;
use axum::Router;
use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
}
