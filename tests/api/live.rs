//! The live stream, with a real WebSocket client against the real server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::websocket::{Socket, close_code, next_message};
use crate::helpers::{TestApp, settings, spawn_app, spawn_app_with};

async fn ticket(app: &TestApp, token: &str, lesson_id: i64) -> String {
    let response = app.post("/api/v1/ws-tickets", token, json!({"lesson_id": lesson_id})).await;
    let body = response.ok(201);
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().unwrap().to_owned()
}

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

async fn wait_for_listener(app: &TestApp) {
    for _ in 0..500 {
        if app.hub.listener_up() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the event listener did not connect");
}

#[tokio::test]
async fn a_ticket_opens_the_stream_once() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    let ticket = ticket(&app, &class.teacher, class.lesson_id).await;
    let mut socket =
        app.connect_live(class.lesson_id, &format!("?ticket={ticket}"), &[]).await.expect("the ticket works");
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["lesson"]["id"], class.lesson_id);
    assert_eq!(snapshot["summary"]["enrolled"], 2);
    assert_eq!(snapshot["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.live_refusal(class.lesson_id, &format!("?ticket={ticket}"), &[]).await,
        401,
        "a ticket works once"
    );
}

#[tokio::test]
async fn tickets_are_bound_to_their_lesson_and_expire_after_30_seconds() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let other_lesson = app
        .post(
            &format!("/api/v1/courses/{}/lessons", class.course_id),
            &class.teacher,
            json!({"title": "Other"}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    let for_other = ticket(&app, &class.teacher, other_lesson).await;
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={for_other}"), &[]).await, 401);
    let stale = ticket(&app, &class.teacher, class.lesson_id).await;
    app.advance(30);
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={stale}"), &[]).await, 401);
    let fresh = ticket(&app, &class.teacher, class.lesson_id).await;
    app.advance(29);
    app.connect_live(class.lesson_id, &format!("?ticket={fresh}"), &[]).await.expect("29 s is fine");
}

#[tokio::test]
async fn tickets_and_access_tokens_are_not_interchangeable() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    assert_eq!(app.live_refusal(class.lesson_id, &format!("?ticket={}", class.teacher), &[]).await, 401);
    let ticket = ticket(&app, &class.teacher, class.lesson_id).await;
    let as_bearer = format!("Bearer {ticket}");
    assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", &as_bearer)]).await, 401);
    app.get("/api/v1/me", &ticket).await.problem(401, "unauthorized");
    // A ticket presented together with someone else's token is refused.
    let other = app.class("o", 0).await;
    let other_bearer = format!("Bearer {}", other.teacher);
    assert_eq!(
        app.live_refusal(class.lesson_id, &format!("?ticket={ticket}"), &[("authorization", &other_bearer)])
            .await,
        401
    );
}

#[tokio::test]
async fn the_stream_is_for_the_lessons_teacher_and_admins_only() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    assert_eq!(app.live_refusal(class.lesson_id, "", &[]).await, 401);
    assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", "Bearer nonsense")]).await, 401);
    for token in [&other.teacher, &class.students[0].token] {
        let bearer = format!("Bearer {token}");
        assert_eq!(app.live_refusal(class.lesson_id, "", &[("authorization", &bearer)]).await, 403);
        app.post("/api/v1/ws-tickets", token, json!({"lesson_id": class.lesson_id}))
            .await
            .problem(403, "forbidden");
    }
    let teacher = format!("Bearer {}", class.teacher);
    assert_eq!(app.live_refusal(424242, "", &[("authorization", &teacher)]).await, 404);
    app.post("/api/v1/ws-tickets", &class.teacher, json!({"lesson_id": 424242}))
        .await
        .problem(404, "not_found");
    let admin_ticket = ticket(&app, &app.admin_token, class.lesson_id).await;
    app.connect_live(class.lesson_id, &format!("?ticket={admin_ticket}"), &[])
        .await
        .expect("admins may watch");
    // A plain GET (no upgrade) is a clear 400, not a hang.
    app.get(&format!("/api/v1/lessons/{}/checkin/live", class.lesson_id), &class.teacher)
        .await
        .problem(400, "bad_request");
}

#[tokio::test]
async fn only_allowed_origins_may_open_the_stream() {
    let mut with_origins = settings();
    with_origins.cors_origins = vec!["https://dash.example.edu".into()];
    let app = spawn_app_with(with_origins).await;
    let class = app.class("c", 0).await;
    let bearer = format!("Bearer {}", class.teacher);
    let evil = [("authorization", bearer.as_str()), ("origin", "https://evil.example")];
    assert_eq!(app.live_refusal(class.lesson_id, "", &evil).await, 403);
    let good = [("authorization", bearer.as_str()), ("origin", "https://dash.example.edu")];
    app.connect_live(class.lesson_id, "", &good).await.expect("an allowed origin connects");
}

#[tokio::test]
async fn a_dashboard_sees_the_code_check_ins_changes_and_state_in_order() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    wait_for_listener(&app).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    let snapshot = next_message(&mut socket).await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["lesson"]["checkin"]["state"].as_str()),
        (Some("snapshot"), Some("open"))
    );
    let code = next_message(&mut socket).await;
    assert_eq!(code["type"], "code");
    assert_eq!(code["code"].as_str().unwrap(), app.current_code(&class).await);
    assert_eq!(code["expires_at"], "2026-11-25T08:00:10Z");

    app.check_in(&class.students[0], code["code"].as_str().unwrap()).await.ok(201);
    let checkin = next_message(&mut socket).await;
    assert_eq!(checkin["type"], "checkin");
    assert_eq!(checkin["lesson_id"], class.lesson_id);
    assert_eq!(checkin["record"]["student"]["id"], class.students[0].id);
    assert_eq!(checkin["record"]["status"], "present");
    assert_eq!(checkin["summary"]["present"], 1);
    assert_eq!(checkin["summary"]["pending"], 1);

    let path = format!("/api/v1/lessons/{}/attendance/{}", class.lesson_id, class.students[1].id);
    app.send(Method::PUT, &path, Some(&class.teacher), Some(json!({"status": "excused"}))).await.ok(200);
    let change = next_message(&mut socket).await;
    assert_eq!(
        (change["type"].as_str(), change["record"]["status"].as_str()),
        (Some("checkin"), Some("excused"))
    );
    assert_eq!(change["summary"]["excused"], 1);

    app.post(&format!("/api/v1/lessons/{}/checkin/close", class.lesson_id), &class.teacher, json!({}))
        .await
        .ok(200);
    let state = next_message(&mut socket).await;
    assert_eq!((state["type"].as_str(), state["checkin"]["state"].as_str()), (Some("state"), Some("closed")));

    app.open_checkin(&class, json!({})).await;
    let reopened = next_message(&mut socket).await;
    assert_eq!(
        (reopened["type"].as_str(), reopened["checkin"]["state"].as_str()),
        (Some("state"), Some("open"))
    );
    assert_eq!(next_message(&mut socket).await["type"], "code");
}

/// The next message that is not a repeat: the `window` event of the opening that preceded
/// the connection may be delivered after its snapshot (LISTEN/NOTIFY is asynchronous), and
/// a dashboard then gets the open state and the code of the step it already shows again.
/// Code frames of steps up to `seen` (an RFC 3339 time) are such repeats.
async fn next_code_or_close(socket: &mut Socket, seen: &str) -> serde_json::Value {
    loop {
        let message = next_message(socket).await;
        let repeated_state = message["type"] == "state" && message["checkin"]["state"] == "open";
        let repeated_code =
            message["type"] == "code" && message["valid_from"].as_str().is_some_and(|at| at <= seen);
        if !repeated_state && !repeated_code {
            return message;
        }
    }
}

#[tokio::test]
async fn a_new_code_goes_out_at_every_step_boundary_and_the_close_is_announced() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10, "duration_seconds": 30})).await;
    let mut first = app.watch(class.lesson_id, &class.teacher).await;
    let mut second = app.watch(class.lesson_id, &class.teacher).await;
    for socket in [&mut first, &mut second] {
        assert_eq!(next_message(socket).await["type"], "snapshot");
        assert_eq!(next_message(socket).await["valid_from"], "2026-11-25T08:00:00Z");
    }
    let mut codes = Vec::new();
    for step in 1..3 {
        app.advance(10);
        let seen = format!("2026-11-25T08:00:{:02}Z", (step - 1) * 10);
        let frames =
            [next_code_or_close(&mut first, &seen).await, next_code_or_close(&mut second, &seen).await];
        for frame in &frames {
            assert_eq!(frame["type"], "code");
            assert_eq!(frame["valid_from"], format!("2026-11-25T08:00:{:02}Z", step * 10));
            assert_eq!(frame["server_time"], frame["valid_from"], "sent at the boundary");
        }
        assert_eq!(frames[0]["code"], frames[1]["code"], "every dashboard gets the same code");
        assert_eq!(frames[0]["code"].as_str().unwrap(), app.current_code(&class).await);
        codes.push(frames[0]["code"].clone());
    }
    assert_ne!(codes[0], codes[1]);
    app.advance(10);
    let closed = next_code_or_close(&mut first, "2026-11-25T08:00:20Z").await;
    assert_eq!(
        (closed["type"].as_str(), closed["checkin"]["state"].as_str()),
        (Some("state"), Some("closed"))
    );
    assert_eq!(closed["checkin"]["closed_at"], "2026-11-25T08:00:30Z");
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

#[tokio::test]
async fn the_event_listener_reconnects_after_losing_its_connection() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    wait_for_listener(&app).await;
    app.open_checkin(&class, json!({})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    assert_eq!(next_message(&mut socket).await["type"], "code");

    {
        use diesel::prelude::*;
        let mut conn = app.pool.get().unwrap();
        let killed: Vec<bool> = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rollcall-listener' AND datname = current_database()",
        ))
        .load(&mut conn)
        .unwrap();
        assert_eq!(killed, [true]);
    }
    // After reconnecting, the hub resends a snapshot (events may have been missed).
    let resync: Value = next_message(&mut socket).await;
    assert_eq!(resync["type"], "snapshot");
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    let mut seen = next_message(&mut socket).await;
    while seen["type"] != "checkin" {
        seen = next_message(&mut socket).await;
    }
    assert_eq!(seen["record"]["student"]["id"], class.students[0].id);
}

#[tokio::test]
async fn a_lesson_task_that_starts_late_catches_up_on_the_code_at_once() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    // Keep the lesson's window unreadable, so its live task is stuck in its first read.
    let mut blocker = app.pool.get().unwrap();
    blocker.batch_execute("BEGIN; LOCK TABLE checkin_windows IN ACCESS EXCLUSIVE MODE").unwrap();
    let watching = {
        let (address, teacher, lesson) = (app.address.clone(), class.teacher.clone(), class.lesson_id);
        tokio::spawn(async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request =
                format!("{}/api/v1/lessons/{lesson}/checkin/live", address.replace("http://", "ws://"))
                    .into_client_request()
                    .unwrap();
            request.headers_mut().insert("authorization", format!("Bearer {teacher}").parse().unwrap());
            tokio_tungstenite::connect_async(request).await.unwrap().0
        })
    };
    for _ in 0..500 {
        if app.hub.live_lessons() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.hub.live_lessons(), 1);
    // A step boundary passes while the task cannot read.
    app.advance(10);
    blocker.batch_execute("ROLLBACK").unwrap();
    let mut socket = watching.await.unwrap();
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    let mut frame = next_message(&mut socket).await;
    if frame["valid_from"] == "2026-11-25T08:00:00Z" {
        frame = next_message(&mut socket).await;
    }
    assert_eq!(
        (frame["type"].as_str(), frame["valid_from"].as_str()),
        (Some("code"), Some("2026-11-25T08:00:10Z"))
    );
}

#[tokio::test]
async fn an_hour_of_rotations_stays_on_the_step_boundaries() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10, "duration_seconds": 3700})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    assert_eq!(next_message(&mut socket).await["valid_from"], "2026-11-25T08:00:00Z");
    // Each wake-up comes a different 0–9 s late (as a busy machine might). Deadlines taken
    // from the window's opening keep every step; deadlines taken from the last wake-up
    // ("rotation seconds after the previous frame") would drift and skip steps.
    let opened = crate::helpers::start_time();
    let at = |seconds: i64| {
        (opened + chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for step in 1..=360 {
        let late = (step * 7) % 10;
        app.clock.set(opened + chrono::Duration::seconds(10 * step + late));
        let frame = next_message(&mut socket).await;
        assert_eq!(frame["valid_from"], at(10 * step).as_str(), "step {step}");
        assert_eq!(frame["server_time"], at(10 * step + late).as_str(), "step {step}");
    }
}
