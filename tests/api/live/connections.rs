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

/// Live messages leave at once: the server's end of every connection has `TCP_NODELAY`, so
/// a message written while the previous one awaits its ACK is not held back for it
/// (Nagle's algorithm, which actix leaves on, held such messages for up to the client's
/// delayed ACK: the 30–45 ms tails of `cargo bench --bench live` before this).
#[tokio::test]
async fn the_server_end_of_a_connection_sends_small_messages_at_once() {
    use std::io::{Read, Write};
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let answered = tokio::task::spawn_blocking(move || {
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        client.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // The server runs in this process: its end is the socket whose peer is the client.
        let client_port = client.local_addr().unwrap().port();
        let server_end = open_sockets().into_iter().find(|fd| peer_port(*fd) == Some(client_port));
        let fd = server_end.expect("the server's end of the connection is in this process");
        (nodelay(fd), client)
    })
    .await
    .unwrap();
    assert_eq!(answered.0, Some(true));
}

fn open_sockets() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The TCP/IPv4 peer port of `fd`, if it is a connected socket.
fn peer_port(fd: i32) -> Option<u16> {
    let mut address: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a plain system call writing at most `length` bytes into `address`.
    let done = unsafe { libc::getpeername(fd, (&raw mut address).cast(), &mut length) };
    (done == 0 && i32::from(address.sin_family) == libc::AF_INET).then(|| u16::from_be(address.sin_port))
}

fn nodelay(fd: i32) -> Option<bool> {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a plain system call writing at most `length` bytes into `value`.
    let done = unsafe {
        libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&raw mut value).cast(), &mut length)
    };
    (done == 0).then_some(value != 0)
}
