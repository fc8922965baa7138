//! Publishing change events (the write side): `pg_notify` inside the transaction that makes
//! the change, so only committed changes are announced, to every instance. Features call
//! this, except the check-in batch, whose insert statement notifies each record it stores
//! (`attendance::records::insert_checkins`, with `Event::Record`'s payload);
//! `live::listener` is the read side that hands them to dashboards.

use diesel::{PgConnection, QueryResult, RunQueryDsl};

use crate::db::Prepared;

pub const CHANNEL: &str = "rollcall_events";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Check-in for the lesson opened or closed.
    Window { lesson_id: i64 },
    /// A student's record for the lesson was created or changed.
    Record { lesson_id: i64, student_id: i64 },
    /// A session was revoked: its dashboards must close.
    SessionRevoked { session_id: i64 },
}

impl Event {
    pub fn encode(self) -> String {
        match self {
            Self::Window { lesson_id } => format!("window:{lesson_id}"),
            Self::Record { lesson_id, student_id } => format!("record:{lesson_id}:{student_id}"),
            Self::SessionRevoked { session_id } => format!("session:{session_id}"),
        }
    }

    pub fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.split(':');
        let event = match (parts.next()?, parts.next()?.parse().ok()?) {
            ("window", lesson_id) => Self::Window { lesson_id },
            ("record", lesson_id) => Self::Record { lesson_id, student_id: parts.next()?.parse().ok()? },
            ("session", session_id) => Self::SessionRevoked { session_id },
            _ => return None,
        };
        parts.next().is_none().then_some(event)
    }
}

/// Announces `event` when the surrounding transaction commits.
pub fn publish(conn: &mut PgConnection, event: Event) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(CHANNEL)
        .bind::<diesel::sql_types::Text, _>(event.encode())
        .execute(conn)
        .map(drop)
}

/// Publishes several events in one statement (a no-op for none).
pub fn publish_all(conn: &mut PgConnection, events: &[Event]) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = events.iter().map(|event| event.encode()).collect();
    let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
    Prepared::new("SELECT pg_notify({}, payload) FROM unnest({}::text[]) AS payload")
        .text(CHANNEL)
        .strs(&payloads)
        .execute(conn)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_payload() {
        for event in [
            Event::Window { lesson_id: 7 },
            Event::Record { lesson_id: 7, student_id: 42 },
            Event::SessionRevoked { session_id: 9 },
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for junk in ["", "window", "window:x", "record:1", "record:1:2:3", "other:1"] {
            assert_eq!(Event::decode(junk), None, "{junk}");
        }
    }
}
