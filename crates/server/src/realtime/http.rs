//! HTTP side of Realtime: the WebSocket upgrade and the REST broadcast endpoints (spec §1.1,
//! §2.3).
//!
//! - `GET /realtime/v1/websocket?apikey=…&vsn=1.0.0|2.0.0`: the key comes from the `x-api-key`
//!   header or the `apikey` parameter and must be a valid project JWT; refusals are HTTP
//!   responses `{"error": …}` with Realtime's texts (401 `API key is missing`, `Token has
//!   expired`, `The token provided is not a valid JWT`, …; 429 `Too many connected users`;
//!   400 for an unsupported `vsn`). Realtime's 2 s refusal delay is left out: the local server has
//!   no tenant to protect and clients back off on their own.
//! - `POST /realtime/v1/api/broadcast`: a batch `{"messages":[{topic,event,payload,private}]}`;
//!   202 with an empty body. Messages reach subscribers as JSON text broadcasts.
//! - `POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]`: one message, body
//!   JSON or `application/octet-stream`; 202. It reaches 2.0.0 sockets as a kind-4 frame.
//!
//! Both REST endpoints authenticate with `Authorization: Bearer` or the `apikey` header (401
//! `{"message":"Unauthorized"}`), answer 422 to an invalid body or an oversized payload
//! (`Payload size exceeds tenant limit`) and 429 over the event rate. A private message is
//! delivered only if the caller passes the topic's rule; otherwise it is dropped, as Realtime
//! does. Query parameters other than `private` (clients keep `apikey` and `vsn`) are ignored.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::broadcast::BroadcastMessage;
use super::channel::topic_allowed;
use super::limits::text;
use super::serializer::{self, BroadcastBytes, Vsn};
use super::socket;
use crate::gateway;
use crate::jwt::JwtError;
use crate::policy::Role;
use crate::AppState;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/websocket", get(websocket))
        .route("/api/broadcast", post(broadcast_batch))
        .route("/api/broadcast/{topic}/events/{event}", post(broadcast_event))
}

/// Why a WebSocket upgrade was refused; the texts are Realtime's.
#[derive(Debug, thiserror::Error)]
enum ConnectRefusal {
    #[error("API key is missing")]
    MissingKey,
    #[error("{}", connect_jwt_text(.0))]
    BadKey(JwtError),
    #[error("Unsupported serializer version {0:?}: this server speaks vsn 1.0.0 and 2.0.0")]
    Vsn(String),
    #[error("{}", text::TOO_MANY_USERS)]
    TooManyUsers,
}

impl IntoResponse for ConnectRefusal {
    fn into_response(self) -> Response {
        let status = match self {
            ConnectRefusal::MissingKey | ConnectRefusal::BadKey(_) => StatusCode::UNAUTHORIZED,
            ConnectRefusal::Vsn(_) => StatusCode::BAD_REQUEST,
            ConnectRefusal::TooManyUsers => StatusCode::TOO_MANY_REQUESTS,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The connect-time text for a refused key (no "N seconds ago", as Realtime).
fn connect_jwt_text(e: &JwtError) -> &'static str {
    match e {
        JwtError::Expired(_) => "Token has expired",
        JwtError::MissingClaims => "Fields `role` and `exp` are required in JWT",
        JwtError::Malformed => "The token provided is not a valid JWT",
        JwtError::Signature | JwtError::Algorithm(_) => "Failed to validate JWT signature",
    }
}

async fn websocket(
    State(app): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let from_header = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(token) = from_header.or_else(|| query.get("apikey").cloned()).filter(|t| !t.is_empty()) else {
        return ConnectRefusal::MissingKey.into_response();
    };
    if let Err(e) = app.verify(&token) {
        return ConnectRefusal::BadKey(e).into_response();
    }
    let asked = query.get("vsn").map(String::as_str);
    let Some(vsn) = Vsn::parse(asked) else {
        return ConnectRefusal::Vsn(asked.unwrap_or("").to_string()).into_response();
    };
    let hub = &app.realtime.shared;
    if hub.connections.load(Ordering::Relaxed) >= hub.limits.max_connections {
        return ConnectRefusal::TooManyUsers.into_response();
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let max = hub.limits.max_frame_bytes;
    upgrade.max_message_size(max).max_frame_size(max).on_upgrade(move |ws| socket::run(app, ws, vsn, token))
}

/// Why a REST broadcast was refused.
#[derive(Debug, thiserror::Error)]
enum RestError {
    #[error("Unauthorized")]
    Unauthorized,
    /// 422: the body does not validate.
    #[error("{0}")]
    Invalid(String),
    #[error("{}", text::REST_PAYLOAD)]
    PayloadTooLarge,
    #[error("{}", text::REST_BATCH)]
    BatchTooLarge,
    #[error("{}", text::REST_RATE)]
    RateLimited,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = match self {
            RestError::Unauthorized => StatusCode::UNAUTHORIZED,
            RestError::Invalid(_) | RestError::PayloadTooLarge => StatusCode::UNPROCESSABLE_ENTITY,
            RestError::BatchTooLarge | RestError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        };
        (status, Json(json!({ "message": self.to_string() }))).into_response()
    }
}

/// The caller's role from `Authorization: Bearer`, else the `apikey` header.
fn rest_role(app: &AppState, headers: &HeaderMap) -> Result<Role, RestError> {
    let token = gateway::bearer(headers)
        .or_else(|| headers.get("apikey").and_then(|v| v.to_str().ok()))
        .filter(|t| !t.is_empty());
    let claims = app.verify(token.ok_or(RestError::Unauthorized)?).map_err(|_| RestError::Unauthorized)?;
    Ok(Role::from_claims(&claims))
}

/// Counts `n` REST messages against the tenant's event rate.
fn rest_rate(app: &AppState, n: u64) -> Result<(), RestError> {
    let events = &app.realtime.shared.events;
    if n > events.limit() {
        return Err(RestError::BatchTooLarge);
    }
    if !events.hit(n) {
        return Err(RestError::RateLimited);
    }
    Ok(())
}

struct BatchMessage {
    topic: String,
    private: bool,
    payload: Value,
}

fn parse_batch(body: &[u8], max_payload: usize) -> Result<Vec<BatchMessage>, RestError> {
    let invalid = RestError::Invalid;
    let v: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the body must be JSON {\"messages\": [...]}".into()))?;
    let list =
        v.get("messages").and_then(Value::as_array).ok_or_else(|| invalid("`messages` must be a list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let field = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(topic), Some(event)) = (field("topic"), field("event")) else {
            return Err(invalid(format!("messages[{i}]: `topic` and `event` must be non-empty strings")));
        };
        let payload = match m.get("payload") {
            Some(Value::Object(p)) => p.clone(),
            None => Map::new(),
            Some(_) => return Err(invalid(format!("messages[{i}]: `payload` must be an object"))),
        };
        if serde_json::to_vec(&payload).map(|b| b.len()).unwrap_or(usize::MAX) > max_payload {
            return Err(RestError::PayloadTooLarge);
        }
        let private = matches!(m.get("private"), Some(Value::Bool(true)))
            || m.get("private").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("true"));
        let mut wire = Map::new();
        wire.insert("type".into(), "broadcast".into());
        wire.insert("event".into(), event.into());
        wire.insert("payload".into(), Value::Object(payload));
        if let Some(id) = m.get("id").filter(|id| !id.is_null()) {
            wire.insert("meta".into(), json!({ "id": id }));
        }
        out.push(BatchMessage { topic: topic.to_string(), private, payload: Value::Object(wire) });
    }
    Ok(out)
}

async fn broadcast_batch(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    let role = rest_role(&app, &headers)?;
    let hub = Arc::clone(&app.realtime.shared);
    let messages = parse_batch(&body, hub.limits.max_payload_bytes)?;
    rest_rate(&app, messages.len() as u64)?;
    let mut allowed: HashMap<String, bool> = HashMap::new();
    for m in messages {
        if m.private {
            let ok = match allowed.get(&m.topic) {
                Some(ok) => *ok,
                None => {
                    let ok = topic_allowed(&hub.db, &m.topic, &role).await;
                    allowed.insert(m.topic.clone(), ok);
                    ok
                }
            };
            if !ok {
                tracing::info!(topic = %m.topic, "REST broadcast to a private topic the caller may not use; dropped");
                continue;
            }
        }
        if let Some(topic) = hub.topics.get(&format!("realtime:{}", m.topic), m.private) {
            topic.broadcast(&BroadcastMessage::Json(m.payload), None, hub.limits.slow_consumer_timeout).await;
        }
    }
    Ok(StatusCode::ACCEPTED)
}

async fn broadcast_event(
    State(app): State<Arc<AppState>>,
    Path((topic, event)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, RestError> {
    let role = rest_role(&app, &headers)?;
    let hub = Arc::clone(&app.realtime.shared);
    let binary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().to_ascii_lowercase().starts_with("application/octet-stream"));
    let payload = if binary {
        BroadcastBytes::Binary(body)
    } else if body.is_empty() {
        BroadcastBytes::Json(Bytes::from_static(b"{}"))
    } else if serializer::is_json(&body) {
        BroadcastBytes::Json(body)
    } else {
        return Err(RestError::Invalid("the body must be JSON, or application/octet-stream bytes".into()));
    };
    if payload.len() > hub.limits.max_payload_bytes {
        return Err(RestError::PayloadTooLarge);
    }
    rest_rate(&app, 1)?;
    let private = query.get("private").is_some_and(|p| p.eq_ignore_ascii_case("true"));
    if private && !topic_allowed(&hub.db, &topic, &role).await {
        tracing::info!(%topic, "REST broadcast to a private topic the caller may not use; dropped");
        return Ok(StatusCode::ACCEPTED);
    }
    if let Some(t) = hub.topics.get(&format!("realtime:{topic}"), private) {
        let message = BroadcastMessage::User { event, metadata: Bytes::new(), payload };
        t.broadcast(&message, None, hub.limits.slow_consumer_timeout).await;
    }
    Ok(StatusCode::ACCEPTED)
}
