//! Observable states: the connection's and each channel's (both behind `tokio::sync::watch`, so
//! a UI can show "connected / connecting, retry in N s / offline" without polling).

use tokio::time::Instant;

use super::error::{ChannelError, ConnectError};

/// The health of the one realtime connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Trying to (re)connect. `attempt` counts attempts since the last healthy connection
    /// (1 = the first). `retry_at` is when that attempt starts (`None`: it is running now).
    /// `last_error` says why the previous attempt failed or the previous connection ended.
    Connecting { attempt: u32, retry_at: Option<Instant>, last_error: Option<ConnectError> },
    /// The socket is open (channels join and rejoin on their own).
    Connected,
    /// The caller said the network is gone (`RealtimeClient::network_lost`). Attempts slow to
    /// one per backoff cap, in case that signal is wrong, until `network_back`.
    Offline { retry_at: Option<Instant>, last_error: Option<ConnectError> },
    /// The client was stopped (every handle dropped, or `disconnect`).
    Stopped,
}

impl ConnectionState {
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected)
    }
}

/// Where one channel stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelStatus {
    /// Waiting for the socket, or the join is in flight.
    Joining,
    /// Joined: broadcasts, presence and postgres_changes flow.
    Joined,
    /// A join failed or the server closed the channel; the next join is at `retry_at` (or as
    /// soon as the socket reconnects).
    Retrying { retry_at: Instant, error: ChannelError },
    /// The token was refused or expired: the channel rejoins when `set_auth` gives a new one.
    WaitingForToken { error: ChannelError },
    /// Refused: too many channels (joins again when a channel of this client leaves, or after a
    /// reconnect), or a reason no retry fixes (see the error).
    Refused { error: ChannelError },
    /// The last handle was dropped or the client stopped.
    Closed,
}
