//! A term's timetable: course time zones, lesson series, editing and cancelling lessons,
//! and automatic check-in seen by every reader (with the injectable clock, no sleeping).

mod automatic;
mod edits;
mod series;
mod zones;

use crate::helpers::TestApp;
use crate::helpers::fixtures::Class;
use serde_json::Value;

/// How many lessons the course has, straight from the database.
fn lesson_count(app: &TestApp, course_id: i64) -> i64 {
    use diesel::prelude::*;
    use rollcall::schema::lessons;
    let mut conn = app.pool.get().unwrap();
    lessons::table.filter(lessons::course_id.eq(course_id)).count().get_result(&mut conn).unwrap()
}

/// Asserts a 422 naming exactly these fields.
#[track_caller]
fn invalid(response: &crate::helpers::http::Response, fields: &[&str]) {
    let body = response.problem(422, "validation_failed");
    let named: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(named, fields, "{body}");
}

async fn lesson(app: &TestApp, token: &str, lesson_id: i64) -> Value {
    app.get(&format!("/api/v1/lessons/{lesson_id}"), token).await.ok(200).clone()
}

/// Moves the class's course to another time zone.
async fn set_time_zone(app: &TestApp, class: &Class, zone: &str) {
    let course = format!("/api/v1/courses/{}", class.course_id);
    let body = serde_json::json!({ "time_zone": zone });
    let changed = app.send(reqwest::Method::PATCH, &course, Some(&class.teacher), Some(body)).await;
    assert_eq!(changed.ok(200)["time_zone"], zone);
}
