//! What the server logs: never a secret, and one JSON object per line when asked for JSON.

use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::Server;
use crate::{call, database, fresh_dir, login, rollcall, run};

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_contain_passwords_tokens_tickets_or_codes() {
    use futures_util::StreamExt;
    let database = database::TestDatabase::create();
    let data = fresh_dir("logs");
    let secret = "s".repeat(40);
    let mut command = rollcall(&data);
    command
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", &secret)
        .env("RUST_LOG", "debug")
        .arg("serve");
    let server = Server::start(command);
    let (teacher_pw, student_pw) = ("teacher-Secret-1", "student-Secret-2");
    for (name, role, password) in [("prof", "teacher", teacher_pw), ("stu", "student", student_pw)] {
        let added = run(rollcall(&data)
            .env("DATABASE_URL", &database.url)
            .env("ROLLCALL_JWT_SECRET", &secret)
            .args(["user", "add", "--username", name, "--password", password, "--role", role]));
        assert!(added.status.success());
    }
    let post = reqwest::Method::POST;
    let base = server.base.clone();
    let teacher = login(&base, "prof", teacher_pw).await.1["access_token"].as_str().unwrap().to_owned();
    let student = login(&base, "stu", student_pw).await.1["access_token"].as_str().unwrap().to_owned();
    assert_eq!(login(&base, "prof", "wrong-Secret-3").await.0, 401);
    let course =
        call(post.clone(), format!("{base}/api/v1/courses"), Some(&teacher), json!({"title": "Logs"})).await
            ["id"]
            .as_i64()
            .unwrap();
    call(
        post.clone(),
        format!("{base}/api/v1/courses/{course}/students"),
        Some(&teacher),
        json!({"usernames": ["stu"]}),
    )
    .await;
    let lesson = call(
        post.clone(),
        format!("{base}/api/v1/courses/{course}/lessons"),
        Some(&teacher),
        json!({"title": "L"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    call(
        post.clone(),
        format!("{base}/api/v1/lessons/{lesson}/checkin/open"),
        Some(&teacher),
        // Ten digits, so the code cannot coincide with digits of a timestamp or a latency.
        json!({"rotation_seconds": 300, "code_length": 10}),
    )
    .await;
    let ticket =
        call(post.clone(), format!("{base}/api/v1/ws-tickets"), Some(&teacher), json!({"lesson_id": lesson}))
            .await;
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let ws =
        format!("{}/api/v1/lessons/{lesson}/checkin/live?ticket={ticket}", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
    let mut code = String::new();
    while code.is_empty() {
        if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = socket.next().await {
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "code" {
                code = message["code"].as_str().unwrap().to_owned();
            }
        }
    }
    call(post, format!("{base}/api/v1/checkins"), Some(&student), json!({"code": code})).await;
    drop(socket);
    let logs = server.logs.lock().unwrap().clone();
    assert!(server.terminate().success());
    assert!(logs.contains("request handled"), "debug logs were captured");
    for (what, secret) in [
        ("a password", teacher_pw),
        ("a password", student_pw),
        ("a failed password", "wrong-Secret-3"),
        ("the JWT secret", secret.as_str()),
        ("an access token", teacher.as_str()),
        ("an access token", student.as_str()),
        ("a ticket", ticket.as_str()),
        ("a check-in code", code.as_str()),
    ] {
        assert!(!logs.contains(secret), "the logs contain {what}");
    }
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("jsonlogs");
    let mut command = rollcall(&data);
    command
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", "j".repeat(40))
        .env("ROLLCALL_LOG_FORMAT", "json")
        .arg("serve");
    let server = Server::start(command);
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The line is written after the response is sent: wait for it to be read.
    for _ in 0..250 {
        if server.logs.lock().unwrap().contains("request handled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = server.logs.lock().unwrap().clone();
    assert!(server.terminate().success());
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let request = lines.iter().find(|l| l["message"] == "request handled").expect("a request line");
    assert_eq!(request["route"], "/healthz");
    assert_eq!(request["status"], 200);
    assert!(logs.contains("trace-me-42"), "the request id is logged");
}
