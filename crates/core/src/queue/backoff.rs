//! Exponential backoff with jitter for transient failures: the n-th consecutive failure waits
//! a random time in `[d/2, d]` with `d = min(max, min · 2ⁿ⁻¹)`, and never less than the
//! server's `Retry-After`. Jitter spreads the retries of many clients after an outage.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), failures: 0 }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure; returns how long to wait before the next attempt.
    pub fn fail(&mut self, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(20);
        let d = self.min.saturating_mul(1 << exp).min(self.max);
        let jittered = rand::thread_rng().gen_range(d / 2..=d);
        jittered.max(retry_after.unwrap_or(Duration::ZERO))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_honour_retry_after() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut last_cap = Duration::ZERO;
        for n in 1..=10u32 {
            let d = b.fail(None);
            let cap = (Duration::from_millis(100) * 2u32.pow(n - 1)).min(Duration::from_secs(2));
            assert!(d >= cap / 2 && d <= cap, "failure {n}: {d:?} not in [{:?}, {cap:?}]", cap / 2);
            assert!(cap >= last_cap);
            last_cap = cap;
        }
        assert_eq!(b.fail(Some(Duration::from_secs(30))), Duration::from_secs(30), "Retry-After is a floor");
        b.reset();
        assert!(b.fail(None) <= Duration::from_millis(100), "a reset starts over");
    }
}
