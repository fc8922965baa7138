//! The time source. Everything time-dependent (code steps, window closing, throttles,
//! token expiry, the live rotation timer) asks a `Clock`, so tests move time by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

pub type SharedClock = Arc<dyn Clock>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // Re-check after waking: the wall clock may have been adjusted meanwhile.
            loop {
                let left = deadline - Utc::now();
                match left.to_std() {
                    Ok(left) if !left.is_zero() => tokio::time::sleep(left).await,
                    _ => return,
                }
            }
        })
    }
}

/// A clock that only moves when told to; sleepers wake when it passes their deadline.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: watch::Sender<()>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self { now: Mutex::new(start), changed: watch::Sender::new(()) })
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.changed.send_replace(());
    }

    pub fn advance(&self, by: Duration) {
        let to = self.now() + by;
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut changed = self.changed.subscribe();
        Box::pin(async move {
            while self.now() < deadline {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_time_passes_their_deadline() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(start + Duration::seconds(10)).await })
        };
        clock.advance(Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::seconds(5));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper).await.unwrap().unwrap();
    }
}
