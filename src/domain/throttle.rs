//! The throttle rules: how many failures within how long lock out further attempts, and
//! when the lockout ends. Failures themselves are stored (shared by every instance); this
//! is only the arithmetic.

use chrono::{DateTime, Duration, Utc};

/// At most `max_failures` within `window`; the next attempt waits until the oldest of them
/// leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max_failures: i64,
    pub window: Duration,
}

/// Wrong check-in codes per student: 10 within 60 s.
pub const CHECKIN: Throttle = Throttle { max_failures: 10, window: Duration::seconds(60) };

/// Failed logins per username: 10 within 5 min.
pub const LOGIN: Throttle = Throttle { max_failures: 10, window: Duration::minutes(5) };

impl Throttle {
    /// Failures older than this no longer count at `now`.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }

    /// `Some(retry_after_secs)` if `count` failures within the window, the oldest at
    /// `oldest`, lock out an attempt at `now`.
    pub fn retry_after(&self, count: i64, oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<u64> {
        self.lockout(count, oldest, now).map(|until| seconds_until(now, until))
    }

    /// Until when these failures lock out an attempt at `now`, if they do: until the oldest
    /// of those within the window leaves it.
    pub fn locked_until(&self, failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let since = self.since(now);
        let recent = failures.iter().filter(|at| **at > since);
        self.lockout(recent.clone().count() as i64, recent.min().copied(), now)
    }

    /// The rule itself: `count` failures within the window, the oldest at `oldest`, lock
    /// out until the oldest leaves it.
    fn lockout(
        &self,
        count: i64,
        oldest: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        (count >= self.max_failures).then(|| oldest.unwrap_or(now) + self.window)
    }
}

/// Whole seconds from `now` until `then`, at least 1.
pub fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    let millis = (then - now).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_lockout_lasts_until_the_oldest_failure_leaves_the_window() {
        assert_eq!(CHECKIN.retry_after(9, Some(at(0)), at(10)), None);
        assert_eq!(CHECKIN.retry_after(10, Some(at(0)), at(10)), Some(50));
        assert_eq!(LOGIN.retry_after(10, Some(at(0)), at(299)), Some(1));
    }

    #[test]
    fn failures_lock_out_until_the_oldest_within_the_window_leaves_it() {
        let failures: Vec<DateTime<Utc>> = (0..10).map(|i| at(i * 5)).collect();
        assert_eq!(CHECKIN.locked_until(&failures[..9], at(45)), None, "nine");
        assert_eq!(CHECKIN.locked_until(&failures, at(45)), Some(at(60)));
        // At 61 s the first (at 0) has left the window: nine remain.
        assert_eq!(CHECKIN.locked_until(&failures, at(61)), None);
        let mut more = failures.clone();
        more.push(at(61));
        assert_eq!(CHECKIN.locked_until(&more, at(61)), Some(at(65)), "the oldest within it, at 5 s");
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(seconds_until(at(0), at(0)), 1);
        assert_eq!(seconds_until(at(0), at(0) + Duration::milliseconds(1_001)), 2);
        assert_eq!(seconds_until(at(5), at(0)), 1);
    }
}
