//! The whole check-in story over HTTP, as the frontend would drive it.

use crate::helpers::{PASSWORD, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_lesson_from_opening_check_in_to_the_course_report() {
    let app = spawn_app().await;
    let admin = &app.admin_token;

    // The admin creates a teacher and five students; everyone logs in.
    app.post(
        "/api/v1/users",
        admin,
        json!({"username": "prof", "password": PASSWORD, "role": "teacher", "real_name": "Prof. X"}),
    )
    .await
    .ok(201);
    let mut students = Vec::new();
    for (i, name) in ["ana", "ben", "cai", "dee", "eve"].iter().enumerate() {
        let body = json!({"username": name, "password": PASSWORD, "role": "student", "real_name": name.to_uppercase(), "student_number": format!("S{i}")});
        let id = app.post("/api/v1/users", admin, body).await.ok(201)["id"].as_i64().unwrap();
        let token = app.login(name, PASSWORD).await.ok(200)["access_token"].as_str().unwrap().to_owned();
        students.push((id, token));
    }
    let teacher = app.login("prof", PASSWORD).await.ok(200)["access_token"].as_str().unwrap().to_owned();

    // The teacher sets up a course, its roster and a lesson.
    let course = app
        .post("/api/v1/courses", &teacher, json!({"title": "Algorithms", "code": "ALG"}))
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    let enrolled = app
        .post(
            &format!("/api/v1/courses/{course}/students"),
            &teacher,
            json!({"usernames": ["ana", "ben", "cai"], "student_numbers": ["S3", "S4"]}),
        )
        .await;
    assert_eq!(enrolled.ok(200)["enrolled"].as_array().unwrap().len(), 5);
    let lesson = app
        .post(
            &format!("/api/v1/courses/{course}/lessons"),
            &teacher,
            json!({"title": "Sorting", "starts_at": "2026-11-25T08:00:00Z"}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();

    // Check-in opens; codes rotate every 10 s; after 60 s arrivals are late.
    app.post(
        &format!("/api/v1/lessons/{lesson}/checkin/open"),
        &teacher,
        json!({"rotation_seconds": 10, "late_after_seconds": 60}),
    )
    .await
    .ok(200);
    let first_code = app.code_of(&teacher, lesson).await;
    assert_eq!(check_in(&app, &students[0].1, &first_code).await.ok(201)["status"], "present");
    app.advance(30);
    // ben types a code from 30 s ago: expired.
    check_in(&app, &students[1].1, &first_code).await.problem(422, "code_expired");
    let now_code = app.code_of(&teacher, lesson).await;
    assert_eq!(check_in(&app, &students[1].1, &now_code).await.ok(201)["status"], "present");
    // cai mistypes.
    let wrong = if now_code == "000000" { "111111" } else { "000000" };
    check_in(&app, &students[2].1, wrong).await.problem(422, "invalid_code");
    app.advance(45);
    let late_code = app.code_of(&teacher, lesson).await;
    assert_eq!(check_in(&app, &students[3].1, &late_code).await.ok(201)["status"], "late");

    // The teacher excuses eve, then closes check-in.
    app.send(
        Method::PUT,
        &format!("/api/v1/lessons/{lesson}/attendance/{}", students[4].0),
        Some(&teacher),
        Some(json!({"status": "excused", "note": "sick"})),
    )
    .await
    .ok(200);
    let closed = app.post(&format!("/api/v1/lessons/{lesson}/checkin/close"), &teacher, json!({})).await;
    assert_eq!(closed.ok(200)["state"], "closed");
    check_in(&app, &students[2].1, &late_code).await.problem(422, "invalid_code");

    // Results: ana and ben present, dee late, eve excused, cai absent.
    let results = app.get(&format!("/api/v1/lessons/{lesson}/attendance"), &teacher).await;
    assert_eq!(
        results.ok(200)["summary"],
        json!({"enrolled": 5, "present": 2, "late": 1, "excused": 1, "absent": 1, "pending": 0})
    );
    let csv = app.get(&format!("/api/v1/lessons/{lesson}/attendance?format=csv"), &teacher).await;
    let rows: Vec<&str> = csv.text.lines().collect();
    assert_eq!(rows.len(), 6);
    assert!(rows[3].starts_with("S2,cai,CAI,absent,,"), "{}", rows[3]);
    assert!(rows[5].starts_with("S4,eve,EVE,excused,,manual"), "{}", rows[5]);

    let report = app.get(&format!("/api/v1/courses/{course}/attendance"), &teacher).await;
    let rates: Vec<f64> =
        report.ok(200).as_array().unwrap().iter().map(|r| r["attendance_rate"].as_f64().unwrap()).collect();
    assert_eq!(rates, [1.0, 1.0, 0.0, 1.0, 0.0]);

    // Each student sees their own status.
    let mine = app.get("/api/v1/me/attendance", &students[2].1).await;
    assert_eq!(mine.ok(200)[0]["status"], "absent");
    let lesson_for_eve = app.get(&format!("/api/v1/lessons/{lesson}"), &students[4].1).await;
    assert_eq!(lesson_for_eve.ok(200)["my_status"], "excused");
}

async fn check_in(app: &crate::helpers::TestApp, token: &str, code: &str) -> crate::helpers::http::Response {
    app.post("/api/v1/checkins", token, json!({"code": code})).await
}
