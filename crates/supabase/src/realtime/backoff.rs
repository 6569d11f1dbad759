//! Exponential backoff with jitter, for reconnecting the socket and rejoining channels.
//!
//! Retry *n* (1-based) waits `min(max, initial × multiplier^(n−1))` scaled by a random factor in
//! `(1 − jitter, 1]`. With the defaults (1 s, ×2, 30 s, jitter ½) the first retry comes after
//! 0.5–1 s, then 1–2 s, 2–4 s, … and never more than 30 s: jitter spreads the clients of a
//! restarted server over the interval instead of letting them return in one wave, and never
//! makes a wait longer than its un-jittered value.
//!
//! realtime-js waits 1, 2, 5, 10, 10, … s and resets whenever a socket *opens*, so a server
//! that accepts and drops at once is hit every second forever. Here the counter resets only
//! after a connection proved healthy (see the socket task), so such a server sees the backoff
//! grow to the cap.

use std::time::Duration;

/// A backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The un-jittered wait before the first retry.
    pub initial: Duration,
    /// Growth per retry (≥ 1).
    pub multiplier: f64,
    /// The longest wait.
    pub max: Duration,
    /// Fraction of each wait that is randomised away, in `[0, 1]` (0: no jitter).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { initial: Duration::from_secs(1), multiplier: 2.0, max: Duration::from_secs(30), jitter: 0.5 }
    }
}

impl Backoff {
    /// The un-jittered wait before retry `n` (1-based; 0 is treated as 1).
    pub fn base(&self, n: u32) -> Duration {
        let exp = i32::try_from(n.max(1) - 1).unwrap_or(i32::MAX).min(64);
        let secs = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The wait before retry `n`, jittered with `unit` (a uniform random number in `[0, 1)`).
    pub fn delay_with(&self, n: u32, unit: f64) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0);
        self.base(n).mul_f64(1.0 - jitter * unit.clamp(0.0, 1.0))
    }

    /// The wait before retry `n`, jittered randomly.
    pub fn delay(&self, n: u32) -> Duration {
        self.delay_with(n, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_starts_under_a_second_grows_and_caps_at_thirty() {
        let b = Backoff::default();
        let bases: Vec<u64> = (1..=8).map(|n| b.base(n).as_millis() as u64).collect();
        assert_eq!(bases, vec![1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(b.base(u32::MAX), Duration::from_secs(30), "no overflow for absurd retry counts");
        for n in 1..=40 {
            for unit in [0.0, 0.25, 0.5, 0.999] {
                let d = b.delay_with(n, unit);
                assert!(d <= b.base(n) && d >= b.base(n) / 2, "retry {n}: {d:?} within (base/2, base]");
            }
        }
        assert!(b.delay(1) <= Duration::from_secs(1), "first retry ≤ 1 s");
    }

    #[test]
    fn jitter_spreads_waits() {
        let b = Backoff::default();
        let samples: std::collections::HashSet<u128> = (0..50).map(|_| b.delay(3).as_micros()).collect();
        assert!(samples.len() > 40, "random jitter gives distinct waits: {}", samples.len());
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(3), Duration::from_secs(4));
    }
}
