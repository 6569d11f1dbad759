//! Channels: joining `realtime:<name>`, leaving, token refresh and expiry, private topics.
//!
//! Design: a [`Channel`] is one join incarnation, owned by its socket's session (no shared
//! mutable state besides its membership in the topic, its presence meta and, if it asked for
//! postgres_changes, its entry in the dispatcher's registry; leaving undoes all three).
//!
//! Behaviour (spec §1.7–1.13, §5.2–5.4):
//! - token = join payload `access_token` / `user_token`, else the socket's `apikey`; tokens
//!   starting `sb_` are ignored; an invalid token refuses the join with Realtime's code and text;
//! - `config.private: true` → the topic must pass `policy::topic_sql` for the token's role, or
//!   the join fails with `Unauthorized: You do not have permissions to read from this Channel
//!   topic: <t>`;
//! - a second join of a joined topic closes the old incarnation (`phx_close`) first;
//! - join ok reply echoes `postgres_changes` with ids, then `presence_state` (when presence is
//!   enabled), then the postgres_changes `system` messages;
//! - `access_token` gets no reply; a bad token, or a private topic no longer allowed, closes
//!   the channel with a `system` error then `phx_close`;
//! - a channel whose token expires is closed at the expiry instant (`Token has expired N seconds
//!   ago`): the session keeps one timer for its earliest deadline, no polling.
//!
//! Failure modes: limits (too many channels, joins per second) refuse the join with their
//! codes; the join rate limit also closes the socket, as Realtime does. A database error while
//! authorising a private topic refuses the join (fail closed) and is logged.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::broadcast::{Member, Topic};
use super::limits::text;
use super::postgres_changes::{self, PgChannel};
use super::serializer::{self, Push};
use super::socket::Session;
use super::ChannelId;
use crate::db::{Db, DbError};
use crate::jwt::JwtError;
use crate::policy::{self, Role};

/// One joined channel.
pub(crate) struct Channel {
    pub id: ChannelId,
    pub topic: Arc<Topic>,
    /// The name after `realtime:`.
    pub subtopic: String,
    pub join_ref: Option<String>,
    pub self_broadcast: bool,
    pub ack: bool,
    pub presence_key: String,
    pub private: bool,
    pub token: String,
    pub role: Role,
    /// Unix seconds.
    pub expires_at: i64,
    pub pg: Option<Arc<PgChannel>>,
    /// The online identity this channel's presence meta counts for, while it has one.
    pub tracked: Option<String>,
    /// Presence calls in the current window: (window start, count).
    pub presence_window: (Instant, u32),
}

/// Who a tracked channel counts as for `Hub::online_users`: the signed-in user, else the
/// presence key.
pub(crate) fn channel_identity(role: &Role, presence_key: &str) -> String {
    match role {
        Role::User(id) => format!("user:{id}"),
        _ => format!("key:{presence_key}"),
    }
}

/// `config` of a join payload, cast leniently like Realtime (booleans may be strings).
#[derive(Debug, Default)]
pub(crate) struct JoinConfig {
    pub self_broadcast: bool,
    pub ack: bool,
    pub presence_enabled: bool,
    pub presence_key: String,
    pub private: bool,
    pub postgres_changes: Vec<Value>,
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl JoinConfig {
    pub fn parse(payload: &Map<String, Value>) -> JoinConfig {
        let config = payload.get("config").and_then(Value::as_object);
        let get = |k: &str| config.and_then(|c| c.get(k));
        let broadcast = get("broadcast").and_then(Value::as_object);
        let presence = get("presence").and_then(Value::as_object);
        JoinConfig {
            self_broadcast: flag(broadcast.and_then(|b| b.get("self"))),
            ack: flag(broadcast.and_then(|b| b.get("ack"))),
            presence_enabled: flag(presence.and_then(|p| p.get("enabled"))),
            presence_key: presence.and_then(|p| p.get("key")).and_then(Value::as_str).unwrap_or("").to_string(),
            private: flag(get("private")),
            postgres_changes: get("postgres_changes").and_then(Value::as_array).cloned().unwrap_or_default(),
        }
    }
}

/// A verified token.
pub(crate) struct Grant {
    pub token: String,
    pub role: Role,
    pub expires_at: i64,
}

/// The join error reason for a refused token (Realtime's codes).
fn jwt_reason(e: &JwtError) -> String {
    let code = match e {
        JwtError::Malformed => "MalformedJWT",
        JwtError::Signature | JwtError::Algorithm(_) => "JwtSignatureError",
        JwtError::Expired(_) | JwtError::MissingClaims => "InvalidJWTToken",
    };
    format!("{code}: {}", jwt_text(e))
}

/// The text Realtime shows for a refused token.
pub(crate) fn jwt_text(e: &JwtError) -> String {
    match e {
        JwtError::Algorithm(_) => JwtError::Signature.to_string(),
        other => other.to_string(),
    }
}

/// May `role` use the private topic `subtopic`? Evaluates `policy::topic_sql` on a reader.
pub(crate) async fn topic_allowed(db: &Arc<Db>, subtopic: &str, role: &Role) -> bool {
    let sql = match policy::topic_sql(subtopic, role) {
        Err(_) => return false,
        Ok(None) => return true,
        Ok(Some(sql)) => sql,
    };
    let result = db
        .read(move |conn| -> Result<bool, DbError> {
            let v: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
            Ok(v != 0)
        })
        .await;
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, topic = subtopic, "private topic check failed; refusing");
        false
    })
}

/// The token a join or refresh names, if it is one to use (`sb_` keys are ignored).
fn named_token(payload: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .filter(|t| !t.is_empty() && !t.starts_with("sb_"))
        .map(str::to_string)
}

impl Session {
    fn grant(&self, token: String) -> Result<Grant, JwtError> {
        let claims = self.app.verify(&token)?;
        Ok(Grant { role: Role::from_claims(&claims), expires_at: claims.exp, token })
    }

    /// `phx_join`.
    pub(super) async fn join(&mut self, push: Push) {
        let topic = push.topic.as_str();
        let join_ref = push.join_ref.clone().or_else(|| push.reference.clone());
        let reference = push.reference.as_deref();
        let vsn = self.vsn;
        let refuse = |reason: &str| serializer::error_reply(vsn, join_ref.as_deref(), reference, topic, reason);
        let Some(subtopic) = topic.strip_prefix("realtime:") else {
            return self.unmatched(topic, push.join_ref.as_deref(), reference).await;
        };
        if subtopic.is_empty() {
            return self.send(refuse("TopicNameRequired: You must provide a topic name")).await;
        }
        if !self.hub.joins.hit(1) {
            tracing::warn!(topic, "ClientJoinRateLimitReached: refusing the join and closing the socket");
            self.send(refuse(text::TOO_MANY_JOINS)).await;
            self.refuse = Some((1008, "Too many joins per second"));
            return;
        }
        if self.channels.contains_key(topic) {
            self.close_channel(topic, true).await;
        }
        if self.channels.len() >= self.hub.limits.channels_per_socket {
            return self.send(refuse(text::TOO_MANY_CHANNELS)).await;
        }
        let config = JoinConfig::parse(&push.payload);
        let token =
            named_token(&push.payload, &["access_token", "user_token"]).unwrap_or_else(|| self.socket_token.clone());
        let grant = match self.grant(token) {
            Ok(g) => g,
            Err(e) => return self.send(refuse(&jwt_reason(&e))).await,
        };
        if config.private && !topic_allowed(&self.hub.db, subtopic, &grant.role).await {
            let reason =
                format!("Unauthorized: You do not have permissions to read from this Channel topic: {subtopic}");
            return self.send(refuse(&reason)).await;
        }
        let id = self.hub.next_channel_id();
        let pg_request = postgres_changes::parse_request(&config.postgres_changes);
        let reply = serializer::reply(
            vsn,
            join_ref.as_deref(),
            reference,
            topic,
            true,
            json!({ "postgres_changes": pg_request.echo }),
        );
        self.send(reply).await;

        let member = Member { channel: id, vsn, outbox: self.outbox.clone() };
        let want_state = config.presence_enabled;
        let (topic_arc, state) =
            self.hub.topics.join(topic, config.private, member, |p| want_state.then(|| p.snapshot()));
        if let Some(state) = state {
            self.send(serializer::text_frame(vsn, join_ref.as_deref(), None, topic, "presence_state", &state)).await;
        }
        let presence_key =
            if config.presence_key.is_empty() { uuid::Uuid::new_v4().to_string() } else { config.presence_key.clone() };
        let pg = if pg_request.subscriptions.is_empty() {
            None
        } else {
            let pg = Arc::new(PgChannel::new(
                id,
                topic,
                join_ref.clone(),
                vsn,
                self.outbox.clone(),
                grant.role.clone(),
                pg_request.subscriptions,
            ));
            self.hub.pg.add(Arc::clone(&pg));
            Some(pg)
        };
        for message in &pg_request.errors {
            self.system(topic, join_ref.as_deref(), "postgres_changes", false, message).await;
        }
        if pg.is_some() {
            self.system(topic, join_ref.as_deref(), "postgres_changes", true, "Subscribed to PostgreSQL").await;
        }
        self.channels.insert(
            topic.to_string(),
            Channel {
                id,
                topic: topic_arc,
                subtopic: subtopic.to_string(),
                join_ref,
                self_broadcast: config.self_broadcast,
                ack: config.ack,
                presence_key,
                private: config.private,
                token: grant.token,
                role: grant.role,
                expires_at: grant.expires_at,
                pg,
                tracked: None,
                presence_window: (Instant::now(), 0),
            },
        );
        self.deadlines_changed = true;
    }

    /// `phx_leave`: ok reply, then `phx_close`. A leave naming an older incarnation (its
    /// `join_ref` differs from the current one) or an unjoined topic just gets ok.
    pub(super) async fn leave(&mut self, push: Push) {
        let current = self.channels.get(&push.topic).map(|c| c.join_ref.clone());
        let matches = match (&current, &push.join_ref) {
            (Some(_), None) => true,
            (Some(cur), Some(asked)) => cur.as_deref() == Some(asked.as_str()),
            (None, _) => false,
        };
        let join_ref = if matches { current.flatten() } else { push.join_ref.clone() };
        let m =
            serializer::reply(self.vsn, join_ref.as_deref(), push.reference.as_deref(), &push.topic, true, json!({}));
        self.send(m).await;
        if matches {
            self.close_channel(&push.topic, true).await;
        }
    }

    /// `access_token` on a joined channel: no reply.
    pub(super) async fn access_token(&mut self, push: Push) {
        let Some(token) = named_token(&push.payload, &["access_token"]) else {
            return;
        };
        let Some(channel) = self.channels.get(&push.topic) else {
            return;
        };
        if channel.token == token {
            return;
        }
        let (private, subtopic) = (channel.private, channel.subtopic.clone());
        let grant = match self.grant(token) {
            Ok(g) => g,
            Err(e) => return self.shutdown_channel(&push.topic, &jwt_text(&e)).await,
        };
        if private && !topic_allowed(&self.hub.db, &subtopic, &grant.role).await {
            let message = format!("You no longer have permission to read from this Channel topic: {subtopic}");
            return self.shutdown_channel(&push.topic, &message).await;
        }
        let Some(channel) = self.channels.get_mut(&push.topic) else {
            return;
        };
        if let Some(pg) = &channel.pg {
            pg.set_role(grant.role.clone());
        }
        channel.token = grant.token;
        channel.role = grant.role;
        channel.expires_at = grant.expires_at;
        self.deadlines_changed = true;
    }

    /// The earliest token expiry of the joined channels, as a timer deadline.
    pub(super) fn next_token_deadline(&self) -> Option<Instant> {
        let exp = self.channels.values().map(|c| c.expires_at).min()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let wait_ms = exp.saturating_mul(1000).saturating_sub(now_ms).max(0);
        Some(Instant::now() + std::time::Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
    }

    /// Closes every channel whose token has expired.
    pub(super) async fn expire_tokens(&mut self) {
        let now = chrono::Utc::now().timestamp();
        let expired: Vec<(String, i64)> =
            self.channels.iter().filter(|(_, c)| c.expires_at <= now).map(|(t, c)| (t.clone(), c.expires_at)).collect();
        for (topic, exp) in expired {
            let message = JwtError::Expired(now - exp).to_string();
            self.shutdown_channel(&topic, &message).await;
        }
    }

    /// A `system` push on a channel.
    pub(super) async fn system(&self, topic: &str, join_ref: Option<&str>, extension: &str, ok: bool, message: &str) {
        let channel = topic.strip_prefix("realtime:").unwrap_or(topic);
        let payload = json!({ "extension": extension, "status": if ok { "ok" } else { "error" }, "message": message, "channel": channel });
        self.send(serializer::text_frame(self.vsn, join_ref, None, topic, "system", &payload)).await;
    }

    /// Realtime's shutdown pattern: `system` error with `message`, then `phx_close`.
    pub(super) async fn shutdown_channel(&mut self, topic: &str, message: &str) {
        let Some(join_ref) = self.channels.get(topic).map(|c| c.join_ref.clone()) else {
            return;
        };
        self.system(topic, join_ref.as_deref(), "system", false, message).await;
        self.close_channel(topic, true).await;
    }

    /// Ends a channel: presence leave, postgres_changes unregistered, topic membership removed,
    /// then `phx_close` if asked.
    pub(super) async fn close_channel(&mut self, topic: &str, send_close: bool) {
        self.untrack(topic).await;
        let Some(channel) = self.channels.remove(topic) else {
            return;
        };
        if channel.pg.is_some() {
            self.hub.pg.remove(channel.id);
        }
        self.hub.topics.leave(&channel.topic, channel.id);
        self.deadlines_changed = true;
        if send_close {
            let join_ref = channel.join_ref.as_deref().unwrap_or("");
            self.send(serializer::close(self.vsn, join_ref, topic)).await;
        }
    }

    /// The socket is going away: leave every channel without sending anything.
    pub(super) async fn leave_all(&mut self) {
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for topic in topics {
            self.close_channel(&topic, false).await;
        }
    }
}
