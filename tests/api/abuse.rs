//! Hostile input: every string field of every body gets SQL metacharacters, unicode,
//! control characters and overlong text; bodies get deep nesting, bad UTF-8, absurd numbers
//! and oversized headers. The answer is a 4xx problem (or, for harmless text, the text
//! stored exactly as sent), never a 5xx; a refused request writes nothing; and fields the
//! server controls are never taken from the request.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Rows in the tables a request could write (throttle bookkeeping excluded: counting a
/// failed attempt is the point of it).
async fn written(app: &TestApp) -> Vec<i64> {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        [
            "users",
            "courses",
            "enrollments",
            "lessons",
            "checkin_windows",
            "attendance",
            "attendance_audit",
            "ws_tickets",
        ]
        .iter()
        .map(|table| {
            diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        })
        .collect()
    })
    .await
    .unwrap()
}

const HARMLESS: &[&str] = &[
    "Robert'); DROP TABLE students;--",
    "' OR '1'='1",
    "%_\\ $1 ${x} {{x}} <script>alert(1)</script>",
    "Zoë Ó Briain — 李小龍 🎓 שלום",
    "e\u{301}\u{200d}\u{202e}",
];

fn hostile() -> Vec<(String, bool)> {
    let mut values: Vec<(String, bool)> = HARMLESS.iter().map(|v| (v.to_string(), true)).collect();
    values.push(("a".repeat(5000), false));
    values.push(("nul\u{0}byte".into(), false));
    values.push(("line\nbreak\u{7}".into(), false));
    values.push(("".into(), false));
    values.push((" ".repeat(3), false));
    values
}

#[tokio::test]
async fn hostile_text_in_every_string_field_is_stored_exactly_or_refused_with_nothing_written() {
    let app = spawn_app().await;
    let class = app.class("abuse", 1).await;
    let student = class.students[0].token.clone();
    let course = format!("/api/v1/courses/{}", class.course_id);
    let lesson = format!("/api/v1/lessons/{}", class.lesson_id);
    let put_attendance = format!("{lesson}/attendance/{}", class.students[0].id);
    app.open_checkin(&class, json!({})).await;
    // (method, path, token, body, field): `field` is replaced by each hostile value.
    let cases: Vec<(Method, String, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/users".into(),
            &app.admin_token,
            json!({"username": "x.user", "password": "long enough pw", "role": "student", "real_name": "X", "student_number": "n1"}),
            "real_name",
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            &app.admin_token,
            json!({"username": "x.user", "password": "long enough pw", "role": "student", "real_name": "X", "student_number": "n1"}),
            "username",
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            &app.admin_token,
            json!({"username": "x.user", "password": "long enough pw", "role": "student", "real_name": "X", "student_number": "n1"}),
            "student_number",
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            &app.admin_token,
            json!({"username": "x.user", "password": "long enough pw", "role": "student", "real_name": "X", "student_number": "n1"}),
            "password",
        ),
        (Method::PATCH, "/api/v1/me".into(), &student, json!({}), "real_name"),
        (Method::PATCH, "/api/v1/me".into(), &student, json!({}), "student_number"),
        (Method::POST, "/api/v1/courses".into(), &class.teacher, json!({"title": "T"}), "title"),
        (Method::POST, "/api/v1/courses".into(), &class.teacher, json!({"title": "T"}), "code"),
        (Method::POST, format!("{course}/lessons"), &class.teacher, json!({"title": "T"}), "title"),
        (Method::POST, format!("{course}/lessons"), &class.teacher, json!({"title": "T"}), "starts_at"),
        (Method::PUT, put_attendance.clone(), &class.teacher, json!({"status": "excused"}), "note"),
        (Method::PUT, put_attendance.clone(), &class.teacher, json!({"status": "excused"}), "status"),
        (Method::POST, "/api/v1/checkins".into(), &student, json!({}), "code"),
        (Method::POST, "/api/v1/auth/login".into(), "", json!({"password": "x"}), "username"),
    ];
    let mut wrong = Vec::new();
    for (method, path, token, template, field) in &cases {
        for (value, harmless) in hostile() {
            let mut body = template.clone();
            body[*field] = json!(value);
            let token = (!token.is_empty()).then_some(*token);
            let before = written(&app).await;
            let response = app.send(method.clone(), path, token, Some(body)).await;
            let status = response.status.as_u16();
            let shown = format!("{method} {path} {field}={:?}", value.chars().take(40).collect::<String>());
            if status >= 500 {
                wrong.push(format!("{shown}: {status} {}", response.text));
            } else if status >= 400 {
                let problem =
                    response.headers.get("content-type").is_some_and(|v| v == "application/problem+json");
                if !problem {
                    wrong.push(format!("{shown}: {status} is not problem+json"));
                }
                if written(&app).await != before {
                    wrong.push(format!("{shown}: refused with {status} but wrote rows"));
                }
            } else if *field == "note" && value.trim().is_empty() {
                // A blank note is no note.
                if response.body["note"] != Value::Null {
                    wrong.push(format!("{shown}: blank note stored as {}", response.body["note"]));
                }
            } else if !harmless {
                wrong.push(format!("{shown}: accepted ({status})"));
            } else if let Some(stored) = response.body.get(*field)
                && stored != &json!(value)
            {
                wrong.push(format!("{shown}: stored as {stored}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test]
async fn malformed_bodies_and_absurd_numbers_are_bad_requests_that_write_nothing() {
    let app = spawn_app().await;
    let class = app.class("nums", 0).await;
    let open = app.url(&format!("/api/v1/lessons/{}/checkin/open", class.lesson_id));
    let deep = format!("{{\"rotation_seconds\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let mut invalid_utf8 = b"{\"title\": \"caf".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(b"\"}");
    let bodies: Vec<(Vec<u8>, u16)> = vec![
        (deep.into_bytes(), 400),
        (invalid_utf8, 400),
        (b"{\"rotation_seconds\": NaN}".to_vec(), 400),
        (b"{\"rotation_seconds\": 1e400}".to_vec(), 400),
        (b"{\"rotation_seconds\": 9223372036854775808}".to_vec(), 400),
        (b"{\"rotation_seconds\": -9223372036854775809}".to_vec(), 400),
        (b"{\"rotation_seconds\": \"10\"}".to_vec(), 400),
        (b"{\"rotation_seconds\": 10.5}".to_vec(), 400),
        (b"{\"rotation_seconds\": -10}".to_vec(), 422),
        (b"{\"rotation_seconds\": 9223372036854775807}".to_vec(), 422),
        (b"{\"duration_seconds\": 0}".to_vec(), 422),
        (b"{\"rotation_seconds\": 10, \"rotation_seconds\": 11}".to_vec(), 400),
    ];
    let before = written(&app).await;
    for (body, expected) in bodies {
        let response = app
            .client
            .post(&open)
            .bearer_auth(&class.teacher)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let shown = String::from_utf8_lossy(&body).chars().take(60).collect::<String>();
        assert_eq!(status, expected, "{shown}: {}", response.text().await.unwrap());
        assert_eq!(content_type, "application/problem+json", "{shown}");
    }
    assert_eq!(written(&app).await, before, "a refused body wrote rows");

    // Path and query numbers too.
    for path in ["/api/v1/courses/99999999999999999999", "/api/v1/courses/-1", "/api/v1/courses/1e3"] {
        let status = app.get(path, &class.teacher).await.status.as_u16();
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    for query in ["limit=-1", "limit=100000", "limit=NaN", "offset=-5", "role=superuser"] {
        let response = app.get(&format!("/api/v1/users?{query}"), &app.admin_token).await;
        let status = response.status.as_u16();
        assert!(status == 400 || status == 422, "{query}: {status} {}", response.text);
    }
}

#[tokio::test]
async fn oversized_headers_are_refused_without_reaching_a_handler() {
    let app = spawn_app().await;
    // Each oversized request on its own client: the server may close those connections.
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/courses"))
        .bearer_auth(&app.admin_token)
        .header("x-padding", "a".repeat(20 * 1024))
        .json(&json!({"title": "never created"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "headers_too_large");
    // Past actix's own 128 KiB bound the request is refused (or the connection dropped)
    // before it is parsed.
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .header("x-padding", "a".repeat(200 * 1024))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status().as_u16(), 431);
    }
    // Nothing was written, and the server is still fine.
    let courses = app.get("/api/v1/courses", &app.admin_token).await;
    assert_eq!(courses.ok(200).as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn server_controlled_fields_are_never_taken_from_the_request() {
    let app = spawn_app().await;
    let class = app.class("ctl", 2).await;
    app.open_checkin(&class, json!({"late_after_seconds": 0})).await;
    app.advance(1);
    let code = app.current_code(&class).await;
    let (me, other) = (&class.students[0], &class.students[1]);
    let forged = json!({
        "code": code,
        "student_id": other.id,
        "lesson_id": 999,
        "status": "present",
        "method": "manual",
        "checked_in_at": "2000-01-01T00:00:00Z",
    });
    let result = app.check_in_with(&me.token, forged, &[]).await;
    let result = result.ok(201).clone();
    assert_eq!(result["lesson_id"], class.lesson_id);
    assert_eq!(result["checked_in_at"], "2026-11-25T08:00:01Z", "the server's clock, not the body's");
    let records = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let records = records.ok(200)["records"].as_array().unwrap().clone();
    let record = |id: i64| records.iter().find(|r| r["student"]["id"] == id).unwrap().clone();
    assert_eq!(record(me.id)["status"], "late", "status is computed (late_after 0, one second in)");
    assert_eq!(record(me.id)["method"], "code");
    assert_eq!(record(other.id)["status"], "pending", "the other student was not checked in");

    // A new user's id and creation time are the server's.
    let created = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"id": 1, "created_at": "2000-01-01T00:00:00Z", "username": "ctl.new", "password": "long enough pw", "role": "teacher", "real_name": "N"}),
        )
        .await;
    let created = created.ok(201).clone();
    assert_ne!(created["id"], 1);
    assert_ne!(created["created_at"], "2000-01-01T00:00:00Z");
}
