//! Timestamps as the server writes them: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (PostgREST's
//! rendering of `timestamptz`). One fixed width and zone, so stored texts sort in time order
//! and cursors compare as strings.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `t` in the canonical form.
pub fn format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Now, by this machine's clock, in the canonical form.
pub fn now() -> String {
    format(Utc::now())
}

/// Parses any RFC 3339 time (the server's form included).
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// `text` moved back by `by`, in the canonical form; `text` unchanged when it does not parse.
pub fn minus(text: &str, by: Duration) -> String {
    match (parse(text), chrono::Duration::from_std(by)) {
        (Some(t), Ok(d)) => format(t - d),
        _ => text.to_string(),
    }
}

/// `text` in the canonical form (the server may answer `Z` or fewer digits through a proxy).
pub fn canonical(text: &str) -> String {
    parse(text).map(format).unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_times_sort_as_text_and_move_back() {
        assert_eq!(canonical("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05.000000+00:00");
        assert_eq!(canonical("2026-01-02T05:04:05.5+02:00"), "2026-01-02T03:04:05.500000+00:00");
        assert_eq!(
            minus("2026-01-02T03:04:05.000000+00:00", Duration::from_secs(65)),
            "2026-01-02T03:03:00.000000+00:00"
        );
        assert_eq!(minus("garbage", Duration::from_secs(1)), "garbage");
        let (a, b) = ("2026-01-02T03:04:05.000001+00:00", "2026-01-02T03:04:05.000010+00:00");
        assert!(a < b, "the fixed width makes text order time order");
    }
}
