//! The read side of change events: one `LISTEN`ing connection per instance that hands every
//! event to the hub, reconnecting by itself and resynchronising after a gap.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::hub::Hub;
use crate::events::{CHANNEL, Event};

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
    // Listening first, then reading: a revocation between the two is both read and heard.
    let revoked = client
        .query("SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > now()", &[])
        .await?;
    hub.reload_revoked(revoked.iter().map(|row| row.get::<_, i64>(0)).collect());
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
