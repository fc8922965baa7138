//! The rotating code on the stream: a new frame at every step boundary, on time, for every
//! dashboard, and the close announced when the window ends.

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;
use crate::helpers::websocket::{Socket, next_message};

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
async fn a_lesson_task_that_starts_late_catches_up_on_the_code_at_once() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    // Keep the lesson's window unreadable, so the dashboard's snapshot is stuck in its read,
    // and with it the lesson's task, which starts from what that snapshot shows.
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
