//! This instance's view of revoked sessions, for the one route that does not look its
//! session up: a check-in. It is loaded from the database whenever the change-event listener
//! (re)connects, and fed by the `session:` events every revocation publishes, so it is at
//! most an event's delivery behind the database. While the listener is down the view is not
//! trusted, and check-in batches ask the database instead.
//!
//! Only revocation needs it: an access token never outlives its session, so an ended session
//! is already refused by the token's own expiry.

use std::collections::HashSet;
use std::sync::RwLock;

#[derive(Default)]
pub struct RevokedSessions {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    ids: HashSet<i64>,
    /// Loaded since the listener last connected, and fed by it since.
    trusted: bool,
}

impl RevokedSessions {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // Each write is one consistent update, so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the view can stand in for the database (`None` if not).
    pub fn is_revoked(&self, session_id: i64) -> Option<bool> {
        let state = self.state();
        state.trusted.then(|| state.ids.contains(&session_id))
    }

    /// A `session:` event: this session was revoked.
    pub fn record(&self, session_id: i64) {
        self.state.write().unwrap_or_else(|e| e.into_inner()).ids.insert(session_id);
    }

    /// The listener connected and read every revoked, unexpired session: the view is
    /// complete again (and forgets sessions that have ended meanwhile).
    pub fn reload(&self, ids: impl IntoIterator<Item = i64>) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.ids = ids.into_iter().collect();
        state.trusted = true;
    }

    /// The listener lost its connection: events may be missed until it reloads.
    pub fn distrust(&self) {
        self.state.write().unwrap_or_else(|e| e.into_inner()).trusted = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_answers_only_while_it_is_fed() {
        let view = RevokedSessions::new();
        assert_eq!(view.is_revoked(1), None, "not loaded yet");
        view.reload([1]);
        assert_eq!((view.is_revoked(1), view.is_revoked(2)), (Some(true), Some(false)));
        view.record(2);
        assert_eq!(view.is_revoked(2), Some(true));
        view.distrust();
        assert_eq!(view.is_revoked(2), None, "events may have been missed");
        view.reload([]);
        assert_eq!(view.is_revoked(1), Some(false), "a reload replaces the set");
    }
}
