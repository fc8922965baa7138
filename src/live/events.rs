//! Change events between server instances: written with `pg_notify` inside the transaction
//! that makes the change (so only committed changes are announced), and received by one
//! `LISTEN`ing connection per instance that feeds the hub. The listener reconnects by itself.

use std::time::Duration;

use diesel::{PgConnection, QueryResult, RunQueryDsl};
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::hub::Hub;

pub const CHANNEL: &str = "rollcall_events";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Check-in for the lesson opened or closed.
    Window { lesson_id: i64 },
    /// A student's record for the lesson was created or changed.
    Record { lesson_id: i64, student_id: i64 },
}

impl Event {
    pub fn encode(self) -> String {
        match self {
            Self::Window { lesson_id } => format!("window:{lesson_id}"),
            Self::Record { lesson_id, student_id } => format!("record:{lesson_id}:{student_id}"),
        }
    }

    fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.split(':');
        let event = match (parts.next()?, parts.next()?.parse().ok()?) {
            ("window", lesson_id) => Self::Window { lesson_id },
            ("record", lesson_id) => Self::Record { lesson_id, student_id: parts.next()?.parse().ok()? },
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
pub fn publish_all(conn: &mut PgConnection, payloads: &[String]) -> QueryResult<()> {
    if payloads.is_empty() {
        return Ok(());
    }
    diesel::sql_query("SELECT pg_notify($1, payload) FROM unnest($2) AS payload")
        .bind::<diesel::sql_types::Text, _>(CHANNEL)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(payloads)
        .execute(conn)
        .map(drop)
}

/// Listens for events forever, reconnecting after any failure, and hands them to the hub.
/// After a reconnect the hub resynchronises every live lesson, since events may have been
/// missed while the connection was down.
pub async fn listen(database_url: String, hub: Hub) {
    let mut connected_before = false;
    loop {
        match listen_once(&database_url, &hub, &mut connected_before).await {
            Ok(()) => tracing::warn!("event listener connection closed; reconnecting"),
            Err(err) => tracing::warn!(error = %err, "event listener failed; reconnecting"),
        }
        hub.set_listener_up(false);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listen_once(
    database_url: &str,
    hub: &Hub,
    connected_before: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = database_url.parse()?;
    config.application_name("rollcall-listener").connect_timeout(Duration::from_secs(5));
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection object performs the I/O; notifications come out of it.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    hub.set_listener_up(true);
    if *connected_before {
        hub.resync_all();
    }
    *connected_before = true;
    tracing::info!("listening for change events");
    while let Some(payload) = rx.recv().await {
        match Event::decode(&payload) {
            Some(event) => hub.dispatch(event),
            None => tracing::warn!("ignoring a malformed change event"),
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_payload() {
        for event in [Event::Window { lesson_id: 7 }, Event::Record { lesson_id: 7, student_id: 42 }] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for junk in ["", "window", "window:x", "record:1", "record:1:2:3", "other:1"] {
            assert_eq!(Event::decode(junk), None, "{junk}");
        }
    }
}
