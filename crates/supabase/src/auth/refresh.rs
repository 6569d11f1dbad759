//! The background task that refreshes the session ahead of expiry.
//!
//! It sleeps until the session is due ([`Session::refresh_due_at`]), but never longer than
//! `check_interval`, because tokio's timers run on a monotonic clock that may stop while the
//! machine sleeps while the token's expiry is wall-clock time. A session change (sign-in,
//! sign-out, a refresh made by someone else) wakes it to recompute. A failed refresh that
//! kept the session (network, 5xx, 429) is retried with jittered exponential backoff, at
//! least the server's `Retry-After`; a refresh that ended the session leaves the task waiting
//! for the next sign-in. The task holds only a weak reference to the handle and stops when
//! the last handle is dropped (cancellation token) or the session channel closes.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Auth, AuthError, AuthOptions, Inner, Session};

pub(super) async fn run(
    auth: Weak<Inner>,
    sessions: watch::Receiver<Option<Session>>,
    cancel: CancellationToken,
    options: AuthOptions,
) {
    refresh_loop(auth, sessions, cancel, options).await;
    // Only the end of the owning handles ends it.
    tracing::debug!("session refresh task stopped: the auth handle is gone");
}

async fn refresh_loop(
    auth: Weak<Inner>,
    mut sessions: watch::Receiver<Option<Session>>,
    cancel: CancellationToken,
    options: AuthOptions,
) {
    let mut failures: u32 = 0;
    let mut retry_in: Option<Duration> = None;
    // When this task last refreshed: the next refresh waits at least `retry_min` after it, so a
    // server handing out tokens that are due at once cannot make it spin.
    let mut last_refresh: Option<Instant> = None;
    loop {
        let current = sessions.borrow_and_update().clone();
        let wait = match (&current, retry_in) {
            (None, _) => None,
            (Some(_), Some(delay)) => Some(delay),
            (Some(s), None) => {
                let until_due = s
                    .refresh_due_at(options.refresh_margin)
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .min(options.check_interval);
                let spacing = last_refresh
                    .map(|t| (t + options.retry_min).saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::ZERO);
                Some(until_due.max(spacing))
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = sessions.changed() => {
                if changed.is_err() {
                    return;
                }
                failures = 0;
                retry_in = None;
                continue;
            }
            _ = sleep(wait) => {}
        }
        let Some(session) = current else { continue };
        if !session.is_refresh_due(options.refresh_margin, SystemTime::now()) {
            retry_in = None;
            continue;
        }
        let Some(inner) = auth.upgrade() else { return };
        let handle = Auth { inner };
        let result = handle.refresh_from(session.refresh_token.clone()).await;
        drop(handle);
        last_refresh = Some(Instant::now());
        match result {
            Ok(_) | Err(AuthError::SessionEnded { .. } | AuthError::NotSignedIn) => {
                failures = 0;
                retry_in = None;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(failures, &options).max(e.retry_after().unwrap_or(Duration::ZERO));
                tracing::warn!(error = %e, attempt = failures, retry_in_ms = delay.as_millis() as u64,
                    "session refresh failed; keeping the session and retrying");
                retry_in = Some(delay);
            }
        }
    }
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// `retry_min · 2^(failures-1)`, capped at `retry_max`, times a jitter in [0.8, 1.2).
fn backoff(failures: u32, options: &AuthOptions) -> Duration {
    let exp = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    let base = options.retry_min.saturating_mul(exp).min(options.retry_max);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_with_jitter() {
        let o = AuthOptions::default();
        let within = |d: Duration, base: f64| {
            let s = d.as_secs_f64();
            s >= base * 0.8 && s < base * 1.2
        };
        assert!(within(backoff(1, &o), 1.0));
        assert!(within(backoff(2, &o), 2.0));
        assert!(within(backoff(4, &o), 8.0));
        assert!(within(backoff(10, &o), 30.0), "capped at retry_max");
        assert!(within(backoff(u32::MAX, &o), 30.0), "no overflow");
    }
}
