use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn opening_check_in_applies_the_defaults() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let state = app.open_checkin(&class, json!({})).await;
    assert_eq!(state["state"], "open");
    assert_eq!(state["opened_at"], "2026-11-25T08:00:00Z");
    assert_eq!(state["closes_at"], "2026-11-25T08:10:00Z");
    assert_eq!(state["closed_at"], serde_json::Value::Null);
    assert_eq!((state["rotation_seconds"].as_i64(), state["code_length"].as_i64()), (Some(10), Some(6)));
    assert_eq!(state["late_after_seconds"], serde_json::Value::Null);
    let lesson = app.get(&format!("/api/v1/lessons/{}", class.lesson_id), &class.students[0].token).await;
    assert_eq!(lesson.ok(200)["my_status"], "pending");
}

#[tokio::test]
async fn out_of_range_settings_are_rejected_and_nothing_opens() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/lessons/{}/checkin/open", class.lesson_id);
    for bad in [
        json!({"rotation_seconds": 4}),
        json!({"rotation_seconds": 301}),
        json!({"code_length": 3}),
        json!({"code_length": 11}),
        json!({"duration_seconds": 29}),
        json!({"duration_seconds": 14401}),
        json!({"late_after_seconds": -1}),
        json!({"duration_seconds": 60, "late_after_seconds": 61}),
    ] {
        let response = app.post(&path, &class.teacher, bad.clone()).await;
        let field = bad.as_object().unwrap().keys().next_back().unwrap().clone();
        assert_eq!(response.problem(422, "validation_failed")["errors"][0]["field"], field.as_str(), "{bad}");
    }
    app.post(&path, &class.teacher, json!({"rotation_seconds": "ten"})).await.problem(400, "bad_request");
    app.post(&path, &class.teacher, json!({"rotation_seconds": 1.5})).await.problem(400, "bad_request");
    let lesson = app.get(&format!("/api/v1/lessons/{}", class.lesson_id), &class.teacher).await;
    assert_eq!(lesson.ok(200)["checkin"]["state"], "not_started");
}

#[tokio::test]
async fn opening_twice_conflicts_and_concurrent_opens_have_one_winner() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/lessons/{}/checkin/open", class.lesson_id);
    let attempts = (0..10).map(|_| app.post(&path, &class.teacher, json!({})));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    app.post(&path, &class.teacher, json!({})).await.problem(409, "checkin_already_open");
}

#[tokio::test]
async fn closing_ends_the_window_and_closing_again_conflicts() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    app.advance(42);
    let close = format!("/api/v1/lessons/{}/checkin/close", class.lesson_id);
    let state = app.post(&close, &class.teacher, json!({})).await;
    let state = state.ok(200);
    assert_eq!(
        (state["state"].as_str(), state["closed_at"].as_str()),
        (Some("closed"), Some("2026-11-25T08:00:42Z"))
    );
    app.post(&close, &class.teacher, json!({})).await.problem(409, "checkin_not_open");
    app.get(&format!("/api/v1/lessons/{}/checkin/code", class.lesson_id), &class.teacher)
        .await
        .problem(409, "checkin_not_open");
    let lesson = app.get(&format!("/api/v1/lessons/{}", class.lesson_id), &class.students[0].token).await;
    assert_eq!(lesson.ok(200)["my_status"], "absent");
}

#[tokio::test]
async fn a_window_closes_itself_at_closes_at_for_every_reader() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({"duration_seconds": 60})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    app.advance(59);
    let lesson = format!("/api/v1/lessons/{}", class.lesson_id);
    assert_eq!(app.get(&lesson, &class.teacher).await.ok(200)["checkin"]["state"], "open");
    app.advance(1);
    let closed = app.get(&lesson, &class.teacher).await;
    assert_eq!(closed.ok(200)["checkin"]["state"], "closed");
    assert_eq!(closed.body["checkin"]["closed_at"], "2026-11-25T08:01:00Z");
    assert_eq!(app.get(&lesson, &class.students[1].token).await.ok(200)["my_status"], "absent");
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    assert_eq!(
        results.ok(200)["summary"],
        json!({"enrolled": 2, "present": 1, "late": 0, "excused": 0, "absent": 1, "pending": 0})
    );
    app.check_in(&class.students[1], &code).await.problem(422, "invalid_code");
    app.post(&format!("/api/v1/lessons/{}/checkin/close", class.lesson_id), &class.teacher, json!({}))
        .await
        .problem(409, "checkin_not_open");
}

#[tokio::test]
async fn reopening_starts_a_new_window_with_a_new_secret_and_keeps_records() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({"duration_seconds": 30})).await;
    let first_code = app.current_code(&class).await;
    app.check_in(&class.students[0], &first_code).await.ok(201);
    app.advance(31);
    let state = app.open_checkin(&class, json!({"rotation_seconds": 20})).await;
    assert_eq!((state["state"].as_str(), state["rotation_seconds"].as_i64()), (Some("open"), Some(20)));
    let second_code = app.current_code(&class).await;
    app.check_in(&class.students[1], &second_code).await.ok(201);
    app.check_in(&class.students[0], &second_code).await.ok(200);
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    assert_eq!(results.ok(200)["summary"]["present"], 2);
}

#[tokio::test]
async fn the_code_frame_describes_the_current_step() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"rotation_seconds": 15, "code_length": 8, "duration_seconds": 40})).await;
    app.advance(17);
    let frame = app.get(&format!("/api/v1/lessons/{}/checkin/code", class.lesson_id), &class.teacher).await;
    let frame = frame.ok(200);
    assert_eq!(frame["lesson_id"], class.lesson_id);
    assert_eq!(frame["code"].as_str().unwrap().len(), 8);
    assert_eq!(frame["valid_from"], "2026-11-25T08:00:15Z");
    assert_eq!(frame["expires_at"], "2026-11-25T08:00:30Z");
    assert_eq!(frame["server_time"], "2026-11-25T08:00:17Z");
    assert_eq!(frame["rotation_seconds"], 15);
    app.advance(20);
    let last = app.get(&format!("/api/v1/lessons/{}/checkin/code", class.lesson_id), &class.teacher).await;
    assert_eq!(last.ok(200)["expires_at"], "2026-11-25T08:00:40Z", "never later than closes_at");
    assert_ne!(last.body["code"], frame["code"]);
}

#[tokio::test]
async fn only_the_lessons_teacher_controls_check_in() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let other = app.class("o", 0).await;
    let base = format!("/api/v1/lessons/{}/checkin", class.lesson_id);
    for token in [&other.teacher, &class.students[0].token, &app.admin_token] {
        app.post(&format!("{base}/open"), token, json!({})).await.problem(403, "forbidden");
        app.post(&format!("{base}/close"), token, json!({})).await.problem(403, "forbidden");
        app.get(&format!("{base}/code"), token).await.problem(403, "forbidden");
    }
    app.post("/api/v1/lessons/999999/checkin/open", &class.teacher, json!({}))
        .await
        .problem(404, "not_found");
}
