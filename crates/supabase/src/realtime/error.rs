//! Typed errors of the realtime client, classified from the server's reason strings (wire spec
//! §1.9, §1.11, §5.1) so that callers branch on variants and never on English text.
//!
//! Classification decides what the client does next:
//! - [`LimitError`]: a server limit. Never retried in a tight loop: too many channels waits for a
//!   slot (a channel of this client leaves, or a reconnect); rate limits back off.
//! - [`ChannelError::Token`] / [`ChannelError::Unauthorized`]: the token is refused; the channel
//!   waits for a new token (`RealtimeClient::set_auth`) instead of retrying the same one.
//! - [`ChannelError::Refused`]: a refusal no retry can fix (private-only project, bad topic).
//! - everything else is transient and retried with backoff.

use std::fmt;

/// A Realtime server limit, from its reason text (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `ChannelRateLimitReached: Too many channels` — channels per socket.
    #[error("too many channels on this connection")]
    TooManyChannels,
    /// `ClientJoinRateLimitReached: Too many joins per second` (the server also drops the socket).
    #[error("too many joins per second")]
    TooManyJoins,
    /// `Too many connected users` (connect 429 or join error).
    #[error("too many connected users")]
    TooManyConnections,
    /// `Too many messages per second` — tenant event rate.
    #[error("too many messages per second")]
    TooManyMessages,
    /// `Too many presence messages per second` — tenant presence rate.
    #[error("too many presence messages per second")]
    TooManyPresenceMessages,
    /// `Client presence rate limit exceeded` — presence calls per channel per window.
    #[error("presence rate limit of this channel exceeded")]
    ClientPresenceRate,
    /// `Payload size exceeded` (acked broadcast) / `Payload size exceeds tenant limit`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// `Track message size exceeded`.
    #[error("presence track payload too large")]
    TrackTooLarge,
}

impl LimitError {
    /// The limit a reason or system message names, if any.
    pub fn classify(text: &str) -> Option<LimitError> {
        const TABLE: &[(&str, LimitError)] = &[
            ("ChannelRateLimitReached", LimitError::TooManyChannels),
            ("Too many channels", LimitError::TooManyChannels),
            ("ClientJoinRateLimitReached", LimitError::TooManyJoins),
            ("Too many joins per second", LimitError::TooManyJoins),
            ("ConnectionRateLimitReached", LimitError::TooManyConnections),
            ("Too many connected users", LimitError::TooManyConnections),
            ("Too many presence messages per second", LimitError::TooManyPresenceMessages),
            ("Too many messages per second", LimitError::TooManyMessages),
            ("Client presence rate limit exceeded", LimitError::ClientPresenceRate),
            ("Track message size exceeded", LimitError::TrackTooLarge),
            ("Payload size exceed", LimitError::PayloadTooLarge),
            ("payload_size_exceeded", LimitError::PayloadTooLarge),
        ];
        TABLE.iter().find(|(needle, _)| text.contains(needle)).map(|(_, e)| *e)
    }
}

/// Why a channel is not (or no longer) joined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Limit(LimitError),
    /// The channel's token was refused or has expired; a new token is needed.
    #[error("token refused: {message}")]
    Token { expired: bool, message: String },
    /// The token is valid but may not read this (private) topic.
    #[error("not allowed: {message}")]
    Unauthorized { message: String },
    /// Refused for a reason retrying cannot fix (`PrivateOnly`, `TopicNameRequired`, …).
    #[error("join refused: {reason}")]
    Refused { reason: String },
    /// The server's join reply does not echo our postgres_changes bindings (a server bug); the
    /// channel stays down rather than deliver to the wrong subscriptions.
    #[error("mismatch between server and client bindings for postgres changes")]
    BindingMismatch,
    /// Any other join error (transient: retried with backoff).
    #[error("join failed: {reason}")]
    Server { reason: String },
    /// The channel process on the server crashed (`phx_error`).
    #[error("channel error on the server")]
    Crashed,
    /// The server closed the channel (`phx_close`) for a reason not covered above.
    #[error("closed by the server{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    ClosedByServer { message: Option<String> },
    /// No join reply within the join timeout.
    #[error("join timed out")]
    JoinTimeout,
}

impl ChannelError {
    /// A join error reply's `reason` (`"<Code>: <message>"`).
    pub fn from_join_reason(reason: &str) -> ChannelError {
        if let Some(limit) = LimitError::classify(reason) {
            return ChannelError::Limit(limit);
        }
        let code = reason.split(':').next().unwrap_or("").trim();
        match code {
            "InvalidJWTToken" | "MalformedJWT" | "JwtSignatureError" | "InvalidJWT" | "JwtExpired" => {
                ChannelError::Token { expired: reason.contains("expired"), message: reason.to_string() }
            }
            "Unauthorized" => ChannelError::Unauthorized { message: reason.to_string() },
            "PrivateOnly" | "TopicNameRequired" | "RealtimeDisabledForConfiguration" | "TenantNotFound" => {
                ChannelError::Refused { reason: reason.to_string() }
            }
            _ if token_text(reason) => {
                ChannelError::Token { expired: reason.contains("expired"), message: reason.to_string() }
            }
            _ => ChannelError::Server { reason: reason.to_string() },
        }
    }

    /// A `system` error message followed by `phx_close` (the server's shutdown pattern).
    pub fn from_close_message(message: Option<&str>) -> ChannelError {
        let Some(m) = message else { return ChannelError::ClosedByServer { message: None } };
        if let Some(limit) = LimitError::classify(m) {
            return ChannelError::Limit(limit);
        }
        if token_text(m) {
            return ChannelError::Token { expired: m.contains("expired"), message: m.to_string() };
        }
        if m.contains("no longer have permission") || m.contains("do not have permission") {
            return ChannelError::Unauthorized { message: m.to_string() };
        }
        ChannelError::ClosedByServer { message: Some(m.to_string()) }
    }

    /// What the channel does after this error.
    pub(crate) fn recovery(&self) -> Recovery {
        match self {
            ChannelError::Limit(LimitError::TooManyChannels) => Recovery::WaitForSlot,
            ChannelError::Token { .. } | ChannelError::Unauthorized { .. } => Recovery::WaitForToken,
            ChannelError::Refused { .. } | ChannelError::BindingMismatch => Recovery::Never,
            _ => Recovery::Backoff,
        }
    }
}

/// The texts Realtime uses for a refused JWT.
fn token_text(m: &str) -> bool {
    m.contains("Token has expired")
        || m.contains("are required in JWT")
        || m.contains("not a valid JWT")
        || m.contains("JWT signature")
}

/// What a channel does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    Backoff,
    WaitForToken,
    WaitForSlot,
    Never,
}

/// Why a push (broadcast, track, untrack) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not sent, or not acknowledged, within the push timeout.
    #[error("timed out")]
    Timeout,
    /// The server replied with an error.
    #[error("rejected by the server: {reason}")]
    Rejected { reason: String },
    #[error("{0}")]
    Limit(LimitError),
    /// A binary-frame header field (topic, event, refs) is longer than 255 bytes.
    #[error("{field} is {len} bytes; binary broadcast fields are limited to 255")]
    FieldTooLong { field: &'static str, len: usize },
    /// The payload of a track is not a JSON object.
    #[error("presence payloads must be JSON objects")]
    NotAnObject,
    /// More than the channel's buffer of pushes were waiting for the channel to join; the
    /// oldest was dropped.
    #[error("dropped: too many pushes waiting for the channel to join")]
    Overflow,
    /// The connection dropped after the push was written and before its reply: it may or may
    /// not have been delivered.
    #[error("connection lost before the reply")]
    Disconnected,
    /// The client stopped.
    #[error("the realtime client has stopped")]
    Closed,
}

impl SendError {
    pub(crate) fn from_reply_reason(reason: &str) -> SendError {
        match LimitError::classify(reason) {
            Some(limit) => SendError::Limit(limit),
            None => SendError::Rejected { reason: reason.to_string() },
        }
    }
}

/// Why a connection attempt failed or a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP or WebSocket transport error.
    #[error("network error: {0}")]
    Network(String),
    #[error("connect timed out")]
    Timeout,
    /// The upgrade was answered with an HTTP error (401 bad key, 429 too many users, …).
    #[error("refused with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// No heartbeat reply within the timeout: a half-open link.
    #[error("heartbeat timeout")]
    HeartbeatTimeout,
    /// The server closed the socket.
    #[error("closed by the server{}", CloseText(.code, .reason))]
    Closed { code: Option<u16>, reason: String },
    /// The socket stopped accepting writes (the outbound queue filled up).
    #[error("the connection stopped accepting writes")]
    WriteStalled,
}

struct CloseText<'a>(&'a Option<u16>, &'a String);

impl fmt::Display for CloseText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.0 {
            write!(f, " ({code}")?;
            if !self.1.is_empty() {
                write!(f, " {}", self.1)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl ConnectError {
    /// Refusals that another attempt with the same key will not fix: retried at the backoff cap
    /// rather than on the fast schedule (not a retry storm, and still never giving up).
    pub(crate) fn is_auth_refusal(&self) -> bool {
        matches!(self, ConnectError::Refused { status: 401 | 403, .. })
    }
}

/// The configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("API key is required to connect to Realtime")]
    MissingApiKey,
    #[error("unsupported URL {0:?}: expected http(s):// or ws(s)://")]
    BadUrl(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("RealtimeClient::connect must be called inside a tokio runtime")]
    NoRuntime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_reasons_are_classified_by_code() {
        let e = ChannelError::from_join_reason;
        assert_eq!(e("ChannelRateLimitReached: Too many channels"), ChannelError::Limit(LimitError::TooManyChannels));
        assert_eq!(
            e("ClientJoinRateLimitReached: Too many joins per second"),
            ChannelError::Limit(LimitError::TooManyJoins)
        );
        assert!(matches!(
            e("InvalidJWTToken: Token has expired 12 seconds ago"),
            ChannelError::Token { expired: true, .. }
        ));
        assert!(matches!(
            e("JwtSignatureError: Failed to validate JWT signature"),
            ChannelError::Token { expired: false, .. }
        ));
        assert!(matches!(
            e("Unauthorized: You do not have permissions to read from this Channel topic: room1"),
            ChannelError::Unauthorized { .. }
        ));
        assert!(matches!(e("PrivateOnly: This project only allows private channels"), ChannelError::Refused { .. }));
        assert!(matches!(e("Unknown Error on Channel"), ChannelError::Server { .. }));
        assert_eq!(e("Unknown Error on Channel").recovery(), Recovery::Backoff);
        assert_eq!(e("ChannelRateLimitReached: Too many channels").recovery(), Recovery::WaitForSlot);
    }

    #[test]
    fn close_messages_are_classified() {
        let c = |m| ChannelError::from_close_message(Some(m));
        assert!(matches!(c("Token has expired 3 seconds ago"), ChannelError::Token { expired: true, .. }));
        assert_eq!(c("Too many messages per second"), ChannelError::Limit(LimitError::TooManyMessages));
        assert_eq!(
            c("Too many presence messages per second"),
            ChannelError::Limit(LimitError::TooManyPresenceMessages)
        );
        assert_eq!(c("Client presence rate limit exceeded"), ChannelError::Limit(LimitError::ClientPresenceRate));
        assert!(matches!(
            c("You no longer have permission to read from this Channel topic: x"),
            ChannelError::Unauthorized { .. }
        ));
        assert_eq!(ChannelError::from_close_message(None), ChannelError::ClosedByServer { message: None });
        assert_eq!(c("Too many messages per second").recovery(), Recovery::Backoff);
    }

    #[test]
    fn close_text_formats_code_and_reason() {
        let e = ConnectError::Closed { code: Some(1001), reason: "server shutting down".into() };
        assert_eq!(e.to_string(), "closed by the server (1001 server shutting down)");
        assert_eq!(ConnectError::Closed { code: None, reason: String::new() }.to_string(), "closed by the server");
    }
}
