//! Realtime's limits, in one place, with the error texts Supabase uses (wire spec §5.1).
//!
//! Defaults suit a **local desktop backend**: the structural limits a client must also live
//! with on hosted Supabase keep Supabase's values (100 channels per socket, 5 presence calls
//! per 30 s per channel, 3000 KB payloads, 60 s idle timeout) so that an app that works here
//! works there. The tenant-wide *rates* are raised far above Supabase's (100 events/s) because
//! one machine is the whole tenant and the benchmarks must measure the server, not the
//! throttle: 100 000 broadcast events/s (each socket broadcast or REST message counts once,
//! however many subscribers it reaches), 10 000 presence calls/s, 1000 joins/s, 10 000
//! sockets. Tests lower them to prove each error.
//!
//! The counters are fixed one-second (or configured) windows behind a `parking_lot` mutex held
//! for a few instructions, never across an `.await`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Every Realtime limit. `Config::realtime_limits` carries it to the hub.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Channels one socket may have joined at once (`ChannelRateLimitReached: Too many channels`).
    pub channels_per_socket: usize,
    /// Broadcast events (socket broadcasts and REST messages) per second for the whole server
    /// (`Too many messages per second`; REST 429).
    pub events_per_second: u64,
    /// Joins per second for the whole server (`ClientJoinRateLimitReached: Too many joins per
    /// second`, then the socket is closed).
    pub joins_per_second: u64,
    /// Presence track/untrack calls per second for the whole server (`Too many presence
    /// messages per second`).
    pub presence_events_per_second: u64,
    /// Presence calls one channel may make per window (`Client presence rate limit exceeded`).
    pub presence_calls_per_window: u32,
    pub presence_window: Duration,
    /// Largest broadcast / presence payload, in bytes (measured as the frame or body size).
    pub max_payload_bytes: usize,
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Messages one REST batch may carry.
    pub max_batch_messages: usize,
    /// Concurrent sockets (`Too many connected users`).
    pub max_connections: usize,
    /// A socket that sends nothing (not even a heartbeat) for this long is closed.
    pub idle_timeout: Duration,
    /// Frames a socket's outbound queue holds before senders wait.
    pub outbound_queue: usize,
    /// How long a broadcast sender waits on a full subscriber queue before that subscriber is
    /// disconnected as too slow.
    pub slow_consumer_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            channels_per_socket: 100,
            events_per_second: 100_000,
            joins_per_second: 1_000,
            presence_events_per_second: 10_000,
            presence_calls_per_window: 5,
            presence_window: Duration::from_secs(30),
            max_payload_bytes: 3_000 * 1024,
            max_frame_bytes: 5_000_000,
            max_batch_messages: 1_000,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
            outbound_queue: 4_096,
            slow_consumer_timeout: Duration::from_secs(5),
        }
    }
}

/// A counter over fixed windows: `hit(n)` is allowed while the window's total stays within
/// `limit`.
#[derive(Debug)]
pub struct RateWindow {
    limit: u64,
    window: Duration,
    /// (start of the current window, events in it); no window before the first event.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateWindow {
    pub fn new(limit: u64, window: Duration) -> RateWindow {
        RateWindow { limit, window, state: Mutex::new((None, 0)) }
    }

    pub fn per_second(limit: u64) -> RateWindow {
        RateWindow::new(limit, Duration::from_secs(1))
    }

    /// Counts `n` events now; `false` if that goes over the limit (the events still count, so
    /// a client that keeps pushing stays limited until the window ends).
    pub fn hit(&self, n: u64) -> bool {
        let now = Instant::now();
        let mut s = self.state.lock();
        if s.0.is_none_or(|start| now.duration_since(start) >= self.window) {
            *s = (Some(now), 0);
        }
        s.1 = s.1.saturating_add(n);
        s.1 <= self.limit
    }

    /// Whether `n` more events would fit, without counting them.
    pub fn fits(&self, n: u64) -> bool {
        let now = Instant::now();
        let s = self.state.lock();
        let used = if s.0.is_none_or(|start| now.duration_since(start) >= self.window) { 0 } else { s.1 };
        used.saturating_add(n) <= self.limit
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// Error texts, verbatim from Supabase Realtime.
pub mod text {
    pub const TOO_MANY_CHANNELS: &str = "ChannelRateLimitReached: Too many channels";
    pub const TOO_MANY_JOINS: &str = "ClientJoinRateLimitReached: Too many joins per second";
    pub const TOO_MANY_MESSAGES: &str = "Too many messages per second";
    pub const TOO_MANY_PRESENCE: &str = "Too many presence messages per second";
    pub const CLIENT_PRESENCE: &str = "Client presence rate limit exceeded";
    pub const TRACK_TOO_BIG: &str = "Track message size exceeded";
    pub const PAYLOAD_TOO_BIG: &str = "Payload size exceeded";
    pub const TOO_MANY_USERS: &str = "Too many connected users";
    pub const REST_RATE: &str = "You have exceeded your rate limit";
    pub const REST_BATCH: &str = "Too many messages to broadcast, please reduce the batch size";
    pub const REST_PAYLOAD: &str = "Payload size exceeds tenant limit";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_allows_up_to_the_limit_then_resets() {
        let w = RateWindow::new(3, Duration::from_millis(50));
        assert!(w.hit(1) && w.hit(2));
        assert!(!w.fits(1));
        assert!(!w.hit(1), "the fourth event in the window is over the limit");
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.hit(3), "a new window starts from zero");
    }
}
