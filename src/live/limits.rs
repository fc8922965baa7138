//! Caps on live-stream connections, in total and per user, so no one user (or a flood of
//! tickets) can pin the instance's sockets and memory. A permit is taken before the
//! upgrade is answered and given back when the connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::ApiError;

#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: usize,
    max_per_user: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_user: HashMap<i64, usize>,
}

/// One open connection, counted until dropped.
pub struct Permit {
    limits: ConnectionLimits,
    user_id: i64,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_user: usize) -> Self {
        Self { inner: Arc::new(Inner { max_total, max_per_user, open: Mutex::default() }) }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        // Each critical section is a single consistent update, so a poisoned lock is usable.
        self.inner.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a permit for `user_id`, or says which cap is reached.
    pub fn acquire(&self, user_id: i64) -> Result<Permit, ApiError> {
        let mut open = self.open();
        if open.total >= self.inner.max_total {
            return Err(ApiError::ServerBusy("this server has as many live connections as it accepts"));
        }
        let mine = open.per_user.entry(user_id).or_default();
        if *mine >= self.inner.max_per_user {
            return Err(ApiError::TooManyConnections { limit: self.inner.max_per_user });
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit { limits: self.clone(), user_id })
    }

    pub fn open_total(&self) -> usize {
        self.open().total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total -= 1;
        if let Some(mine) = open.per_user.get_mut(&self.user_id) {
            *mine -= 1;
            if *mine == 0 {
                open.per_user.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_cap_refuses_the_extra_connection_and_frees_on_drop() {
        let limits = ConnectionLimits::new(10, 2);
        let first = limits.acquire(1).unwrap();
        let _second = limits.acquire(1).unwrap();
        assert!(matches!(limits.acquire(1), Err(ApiError::TooManyConnections { limit: 2 })));
        let _other_user = limits.acquire(2).unwrap();
        drop(first);
        assert!(limits.acquire(1).is_ok());
        assert_eq!(limits.open_total(), 2, "the permit taken in the assert is dropped at once");
    }

    #[test]
    fn total_cap_applies_across_users() {
        let limits = ConnectionLimits::new(2, 5);
        let _a = limits.acquire(1).unwrap();
        let _b = limits.acquire(2).unwrap();
        assert!(matches!(limits.acquire(3), Err(ApiError::ServerBusy(_))));
        drop(_a);
        assert!(limits.acquire(3).is_ok());
    }
}
