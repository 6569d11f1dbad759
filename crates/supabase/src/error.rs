//! What REST and auth failures share: how a failure should be retried ([`Retry`]), the
//! classification of HTTP statuses and transport errors behind it, and `Retry-After`.
//!
//! The rule (DESIGN.md, "Transient vs permanent failures"): network errors, timeouts, 5xx and
//! 429 are transient and worth retrying with backoff (after `Retry-After` when the server
//! sent one); other 4xx are permanent. A refused access token is neither: the caller refreshes
//! the session first and retries once, never in a blind loop.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// How a caller that retries should treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later: after `after` when the server said so, else with the caller's backoff.
    Transient { after: Option<Duration> },
    /// The access token was refused (expired or invalid JWT): refresh the session, then retry
    /// once. Retrying with the same token cannot succeed.
    Unauthorized,
    /// Retrying the same request cannot succeed (validation, permission, conflict, not found…).
    Permanent,
}

impl Retry {
    pub fn is_transient(self) -> bool {
        matches!(self, Retry::Transient { .. })
    }

    /// The server's `Retry-After`, when it sent one with a transient failure.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Retry::Transient { after } => after,
            _ => None,
        }
    }
}

/// A base URL that cannot address a Supabase project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Supabase URL {url:?}: {reason}")]
pub struct InvalidUrl {
    pub url: String,
    pub reason: String,
}

/// How to treat an HTTP error status on its own: 408, 429 and 5xx are transient (with the
/// response's `Retry-After`), everything else permanent. Services refine this (PostgREST's
/// JWT errors are [`Retry::Unauthorized`]; some 5xx carry a deterministic SQLSTATE).
pub(crate) fn classify_status(status: StatusCode, headers: &HeaderMap) -> Retry {
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Retry::Transient { after: retry_after(headers, SystemTime::now()) }
    } else {
        Retry::Permanent
    }
}

/// How to treat a transport error: a request that could not be built or was redirected
/// wrongly is permanent; anything on the way (connect, timeout, reset, a body cut short) is
/// transient.
pub(crate) fn classify_transport(e: &reqwest::Error) -> Retry {
    if e.is_builder() || e.is_redirect() {
        Retry::Permanent
    } else {
        Retry::Transient { after: None }
    }
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date relative to `now` (a date in the
/// past means "now"). `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_757); // Sun, 06 Nov 1994 08:49:17 GMT
        assert_eq!(retry_after(&with_retry_after("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), now), Some(Duration::from_secs(20)));
        assert_eq!(retry_after(&with_retry_after("Sun, 06 Nov 1994 08:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn too_many_requests_timeouts_and_server_errors_are_transient() {
        let h = with_retry_after("7");
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, &h),
            Retry::Transient { after: Some(Duration::from_secs(7)) }
        );
        for s in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::REQUEST_TIMEOUT] {
            assert_eq!(classify_status(s, &HeaderMap::new()), Retry::Transient { after: None }, "{s}");
        }
        for s in [StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN, StatusCode::CONFLICT, StatusCode::NOT_FOUND] {
            assert_eq!(classify_status(s, &h), Retry::Permanent, "{s}");
        }
    }
}
