//! What a dashboard sees: the code, check-ins, attendance changes and state changes, in
//! order, even after the server's event listener loses its database connection.
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::helpers::websocket::next_message;

#[tokio::test]
async fn a_dashboard_sees_the_code_check_ins_changes_and_state_in_order() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.wait_for_listener().await;
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

#[tokio::test]
async fn the_event_listener_reconnects_after_losing_its_connection() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.wait_for_listener().await;
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
