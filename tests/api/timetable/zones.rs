//! A course's time zone: chosen, validated, changed, and used by exports.

use super::{invalid, set_time_zone};
use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_course_has_a_time_zone_that_its_teacher_can_change() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/courses/{}", class.course_id);
    assert_eq!(app.get(&path, &class.teacher).await.ok(200)["time_zone"], "UTC", "the default");
    let vienna = app
        .post("/api/v1/courses", &class.teacher, json!({"title": "Wien", "time_zone": "Europe/Vienna"}))
        .await;
    assert_eq!(vienna.ok(201)["time_zone"], "Europe/Vienna");
    let unknown =
        app.post("/api/v1/courses", &class.teacher, json!({"title": "X", "time_zone": "Mars/Olympus"}));
    invalid(&unknown.await, &["time_zone"]);

    let patch = |body| app.send(reqwest::Method::PATCH, &path, Some(&class.teacher), Some(body));
    let changed = patch(json!({"time_zone": "America/New_York", "code": "CS1"})).await;
    let changed = changed.ok(200);
    assert_eq!(
        (changed["time_zone"].as_str(), changed["code"].as_str()),
        (Some("America/New_York"), Some("CS1"))
    );
    assert_eq!(changed["title"], "c course", "fields left out stay");
    invalid(&patch(json!({"time_zone": "Europe/Viena", "title": ""})).await, &["title", "time_zone"]);
    let after = app.get(&path, &class.teacher).await;
    assert_eq!(after.ok(200)["time_zone"], "America/New_York", "a refused change changes nothing");
    assert_eq!(patch(json!({"code": null})).await.ok(200)["code"], serde_json::Value::Null);
    app.send(reqwest::Method::PATCH, &path, Some(&app.admin_token), Some(json!({"title": "Mine"})))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn exports_write_times_on_the_courses_clock_and_json_stays_utc() {
    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    app.open_checkin(&class, json!({})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    let results = format!("/api/v1/lessons/{}/attendance", class.lesson_id);
    let utc_csv = app.get(&format!("{results}?format=csv"), &class.teacher).await;
    assert!(utc_csv.text.contains(",2026-11-25T08:00:00Z,code"), "{}", utc_csv.text);

    let course = format!("/api/v1/courses/{}", class.course_id);
    set_time_zone(&app, &class, "Europe/Vienna").await;
    let csv = app.get(&format!("{results}?format=csv"), &class.teacher).await;
    assert!(csv.text.contains(",2026-11-25T09:00:00+01:00,code"), "{}", csv.text);
    let report = app.get(&format!("{course}/attendance?format=csv"), &class.teacher).await;
    assert!(report.text.contains(",2026-11-25T09:00:00+01:00,1,"), "{}", report.text);
    let json = app.get(&results, &class.teacher).await;
    assert_eq!(json.ok(200)["records"][0]["checked_in_at"], "2026-11-25T08:00:00Z");
}
