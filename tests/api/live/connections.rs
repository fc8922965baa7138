//! How live connections end: clients that leave, stop answering pings, flood or send
//! oversized frames, and a server that shuts down; none leaves anything behind.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::websocket::{Socket, close_code, next_message};
use crate::helpers::{TestApp, settings, spawn_app, spawn_app_with};

/// Waits (up to 5 s) until the hub's counters reach zero.
async fn wait_until_idle(app: &TestApp) {
    for _ in 0..500 {
        if app.hub.open_connections() == 0 && app.hub.live_lessons() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} connections and {} live lessons remain", app.hub.open_connections(), app.hub.live_lessons());
}

#[tokio::test]
async fn a_thousand_connect_disconnect_cycles_leave_nothing_behind() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    for round in 0..100 {
        let mut sockets: Vec<Socket> = Vec::new();
        for _ in 0..10 {
            sockets.push(app.watch(class.lesson_id, &class.teacher).await);
        }
        if round == 0 {
            assert_eq!(app.hub.open_connections(), 10);
            assert_eq!(app.hub.live_lessons(), 1);
        }
        for (i, mut socket) in sockets.into_iter().enumerate() {
            if i % 2 == 0 {
                let _ = socket.close(None).await;
            }
            // The others vanish without a close frame.
        }
    }
    wait_until_idle(&app).await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let mut quick = settings();
    quick.ws_ping_interval = Duration::from_millis(100);
    quick.ws_client_timeout = Duration::from_millis(300);
    let app = spawn_app_with(quick).await;
    let class = app.class("c", 0).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    // Reading answers pings (the client library pongs), so the connection stays up.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(50), socket.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 3, "only {pings} pings");
    assert_eq!(app.hub.open_connections(), 1);
    // Not reading means not answering: the server gives up and frees the connection.
    tokio::time::sleep(Duration::from_millis(700)).await;
    wait_until_idle(&app).await;
    // (The close frame may be lost: the client still owes pongs to a closed socket.)
    assert!(matches!(close_code(&mut socket).await, Some(1008) | None));
}

#[tokio::test]
async fn a_flooding_client_is_closed_with_1008() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    socket.send(Message::text("{\"type\":\"hello\"}")).await.unwrap();
    socket.send(Message::text("not even json")).await.unwrap();
    for _ in 0..30 {
        if socket.send(Message::text("spam")).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut socket).await, Some(1008));
}

#[tokio::test]
async fn an_oversized_client_frame_is_closed_with_1009() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    socket.send(Message::text("x".repeat(64 * 1024))).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(1009));
}

#[tokio::test]
async fn server_shutdown_closes_dashboards_with_1001() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    let stopper = app.stopper.clone();
    tokio::spawn(async move { stopper.stop().await });
    assert_eq!(close_code(&mut socket).await, Some(1001));
}
