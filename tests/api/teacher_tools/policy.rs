//! A course's attendance policy: the rate formula, the threshold and its filter, and a
//! student's own view per course.

use reqwest::Method;
use serde_json::{Value, json};

use super::{another_lesson, close, put_status};
use crate::helpers::fixtures::Class;
use crate::helpers::{TestApp, spawn_app};

/// Two held lessons: s0 present then late, s1 late then excused, s2 absent then excused.
async fn term(app: &TestApp) -> Class {
    let class = app.class("c", 3).await;
    app.open_checkin(&class, json!({"late_after_seconds": 30, "duration_seconds": 600})).await;
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    app.advance(40);
    let code = app.current_code(&class).await;
    app.check_in(&class.students[1], &code).await.ok(201);
    close(app, &class, class.lesson_id).await;
    let second = another_lesson(app, &class, "Week 2").await;
    app.open_lesson(&class.teacher, second, json!({"late_after_seconds": 0})).await;
    app.advance(5);
    let code = app.code_of(&class.teacher, second).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    put_status(app, &class, second, class.students[1].id, json!({"status": "excused"})).await;
    put_status(app, &class, second, class.students[2].id, json!({"status": "excused"})).await;
    close(app, &class, second).await;
    class
}

async fn rates(app: &TestApp, class: &Class, query: &str) -> Vec<(String, Value, bool)> {
    let path = format!("/api/v1/courses/{}/attendance{query}", class.course_id);
    app.get(&path, &class.teacher)
        .await
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["student"]["username"].as_str().unwrap().to_owned(),
                r["attendance_rate"].clone(),
                r["below_threshold"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn set_policy(app: &TestApp, class: &Class, policy: Value) -> crate::helpers::http::Response {
    let path = format!("/api/v1/courses/{}", class.course_id);
    app.send(Method::PATCH, &path, Some(&class.teacher), Some(json!({ "policy": policy }))).await
}

#[tokio::test]
async fn the_default_policy_gives_v1s_rates_and_each_setting_changes_them() {
    let app = spawn_app().await;
    let class = term(&app).await;
    let course = app.get(&format!("/api/v1/courses/{}", class.course_id), &class.teacher).await;
    assert_eq!(
        course.ok(200)["policy"],
        json!({"late_weight": 1.0, "excused": "absent", "warn_below": null})
    );
    // v1: (present + late) / lessons counted.
    assert_eq!(
        rates(&app, &class, "").await,
        [
            ("c.s000".into(), json!(1.0), false),
            ("c.s001".into(), json!(0.5), false),
            ("c.s002".into(), json!(0.0), false)
        ]
    );
    let changed = set_policy(&app, &class, json!({"late_weight": 0.5})).await;
    assert_eq!(changed.ok(200)["policy"]["late_weight"], 0.5);
    assert_eq!(rates(&app, &class, "").await[0].1, json!(0.75), "present + 0.5 × late over 2");
    set_policy(&app, &class, json!({"excused": "exclude"})).await.ok(200);
    let excluded = rates(&app, &class, "").await;
    assert_eq!(excluded[1].1, json!(0.5), "0.5 × late over 2 - 1 excused");
    assert_eq!(excluded[2].1, json!(0.0), "absent over 2 - 1 excused");
    set_policy(&app, &class, json!({"excused": "present", "late_weight": 1.0})).await.ok(200);
    assert_eq!(rates(&app, &class, "").await[1].1, json!(1.0), "late + excused as present over 2");
}

#[tokio::test]
async fn a_threshold_flags_and_filters_students_and_a_patch_names_only_what_changes() {
    let app = spawn_app().await;
    let class = term(&app).await;
    let set = set_policy(&app, &class, json!({"warn_below": 0.6})).await;
    assert_eq!(set.ok(200)["policy"], json!({"late_weight": 1.0, "excused": "absent", "warn_below": 0.6}));
    let flagged: Vec<String> =
        rates(&app, &class, "?below_threshold=true").await.into_iter().map(|r| r.0).collect();
    assert_eq!(flagged, ["c.s001", "c.s002"]);
    assert_eq!(rates(&app, &class, "?below_threshold=false").await.len(), 1);
    let csv = app
        .get(
            &format!("/api/v1/courses/{}/attendance?format=csv&below_threshold=true", class.course_id),
            &class.teacher,
        )
        .await;
    assert_eq!(csv.text.lines().count(), 3, "header and the two flagged: {}", csv.text);
    assert!(csv.text.lines().skip(1).all(|line| line.ends_with(",true")), "{}", csv.text);

    // Out of range or unknown: refused whole, and nothing changes.
    let bad = set_policy(&app, &class, json!({"late_weight": 1.5, "warn_below": -0.1})).await;
    let fields: Vec<&str> = bad.problem(422, "validation_failed")["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["policy.late_weight", "policy.warn_below"]);
    set_policy(&app, &class, json!({"excused": "sometimes"})).await.problem(400, "bad_request");
    let course = app.get(&format!("/api/v1/courses/{}", class.course_id), &class.teacher).await;
    assert_eq!(course.ok(200)["policy"]["warn_below"], 0.6);
    let cleared = set_policy(&app, &class, json!({"warn_below": null})).await;
    assert_eq!(cleared.ok(200)["policy"]["warn_below"], Value::Null);
    assert!(rates(&app, &class, "").await.iter().all(|r| !r.2), "no threshold: nobody flagged");
}

#[tokio::test]
async fn a_student_sees_their_rate_in_every_course_they_are_or_were_in() {
    let app = spawn_app().await;
    let class = term(&app).await;
    let student = &class.students[1];
    set_policy(&app, &class, json!({"warn_below": 0.9})).await.ok(200);
    // A course they left before it held anything, and a course they are not in.
    let other = app.class("o", 0).await;
    let path = format!("/api/v1/courses/{}/students", other.course_id);
    app.post(&path, &other.teacher, json!({"usernames": ["c.s001"]})).await.ok(200);
    let leave = format!("{path}/{}", student.id);
    app.send(Method::DELETE, &leave, Some(&other.teacher), None).await;
    app.class("x", 0).await;

    let mine = app.get("/api/v1/me/courses/attendance", &student.token).await;
    let mine = mine.ok(200).as_array().unwrap().clone();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0]["course"], json!({"id": class.course_id, "title": "c course"}));
    assert_eq!(
        (mine[0]["late"].as_i64(), mine[0]["excused"].as_i64(), mine[0]["lessons_counted"].as_i64()),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(
        (mine[0]["attendance_rate"].clone(), mine[0]["below_threshold"].clone()),
        (json!(0.5), json!(true))
    );
    assert_eq!(
        (mine[1]["lessons_counted"].as_i64(), mine[1]["attendance_rate"].clone()),
        (Some(0), Value::Null)
    );
    app.get("/api/v1/me/courses/attendance", &class.teacher).await.problem(403, "forbidden");
}
