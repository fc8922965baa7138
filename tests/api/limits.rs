//! Resource limits: live-connection caps, slow clients, and a database that is slow or
//! saturated. Each limit answers a clear problem+json instead of a hang.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, settings, spawn_app_with};

async fn wait_for_connections(app: &TestApp, expected: i64) {
    for _ in 0..500 {
        if app.hub.open_connections() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} live connections, expected {expected}", app.hub.open_connections());
}

#[tokio::test]
async fn live_connections_are_capped_per_user_and_in_total() {
    let mut capped = settings();
    capped.ws_max_per_user = 2;
    capped.ws_max_connections = 3;
    let app = spawn_app_with(capped).await;
    let class = app.class("cap", 0).await;
    let auth = format!("Bearer {}", class.teacher);
    let teacher = [("authorization", auth.as_str())];

    let first = app.watch(class.lesson_id, &class.teacher).await;
    let _second = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(app.live_refusal(class.lesson_id, "", &teacher).await, 429, "a third for the same teacher");

    let admin_auth = format!("Bearer {}", app.admin_token);
    let admin = [("authorization", admin_auth.as_str())];
    let _third = app.watch(class.lesson_id, &app.admin_token).await;
    assert_eq!(app.live_refusal(class.lesson_id, "", &admin).await, 503, "the instance is full");
    wait_for_connections(&app, 3).await;

    // Closing a connection gives its place back.
    drop(first);
    wait_for_connections(&app, 2).await;
    let _again = app.watch(class.lesson_id, &class.teacher).await;
}

#[tokio::test]
async fn a_refused_live_connection_is_a_problem_with_its_code() {
    let mut capped = settings();
    capped.ws_max_per_user = 1;
    let app = spawn_app_with(capped).await;
    let class = app.class("cap", 0).await;
    let _open = app.watch(class.lesson_id, &class.teacher).await;
    // A plain GET carrying the upgrade headers shows the refusal body.
    let response = app
        .client
        .get(app.url(&format!("/api/v1/lessons/{}/checkin/live", class.lesson_id)))
        .bearer_auth(&class.teacher)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_connections");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_dropped() {
    let mut quick = settings();
    quick.request_header_timeout = Duration::from_millis(500);
    let app = spawn_app_with(quick).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let started = Instant::now();
    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One more header byte now and then, never the blank line that ends the headers.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let _ = socket.write_all(b"X").await;
        match tokio::time::timeout(Duration::from_millis(100), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => assert!(started.elapsed() < Duration::from_secs(10), "the server kept the connection"),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "got {answer:?}");
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_instead_of_hanging_and_recovers() {
    use diesel::prelude::*;
    let app = spawn_app_with(settings()).await;
    let class = app.class("slow", 1).await;
    // Another session holds a lock every attendance read waits for: each request that
    // reaches the database keeps its pooled connection until the lock goes.
    let url = app.database_url().to_owned();
    let (release, locked) = std::sync::mpsc::channel::<()>();
    let (hold, holding) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction(|conn| {
            diesel::sql_query("LOCK TABLE attendance IN ACCESS EXCLUSIVE MODE").execute(conn)?;
            hold.send(()).unwrap();
            let _ = locked.recv();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    });
    holding.recv().unwrap();

    let path = format!("/api/v1/lessons/{}/attendance", class.lesson_id);
    let started = Instant::now();
    let requests = (0..24).map(|_| app.get(&path, &class.teacher));
    let (responses, ()) = tokio::join!(futures_util::future::join_all(requests), async {
        // Release the lock only after the waiting requests have been refused.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        release.send(()).unwrap();
    });
    locker.join().unwrap();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    let refused: Vec<_> = responses.iter().filter(|r| r.status == 503).collect();
    assert!(!refused.is_empty(), "the pool (8) could not serve 24 blocked requests: {statuses:?}");
    for response in &refused {
        response.problem(503, "database_unavailable");
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "requests hung for {:?}", started.elapsed());
    // The requests that held connections finished once the lock went; the pool serves again.
    app.get(&path, &class.teacher).await.ok(200);
}
