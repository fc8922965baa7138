//! Two servers on one database behave as one service: logins, live dashboards and codes
//! work across them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::Server;
use crate::{call, database, fresh_dir, login, rollcall, run};

fn instance(database_url: &str, data: &Path) -> Server {
    let mut command = rollcall(data);
    command.env("DATABASE_URL", database_url).env("ROLLCALL_JWT_SECRET", "s".repeat(40)).arg("serve");
    Server::start(command)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_database_behave_as_one_service() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("instances");
    let a = instance(&database.url, &data);
    let b = instance(&database.url, &data);
    for (name, role) in [("prof", "teacher"), ("stu", "student")] {
        let added = run(rollcall(&data)
            .env("DATABASE_URL", &database.url)
            .env("ROLLCALL_JWT_SECRET", "s".repeat(40))
            .args(["user", "add", "--username", name, "--password", "password-1", "--role", role]));
        assert!(added.status.success());
    }
    let post = reqwest::Method::POST;
    let teacher = login(&b.base, "prof", "password-1").await.1["access_token"].as_str().unwrap().to_owned();
    let student = login(&a.base, "stu", "password-1").await.1["access_token"].as_str().unwrap().to_owned();
    let course =
        call(post.clone(), format!("{}/api/v1/courses", b.base), Some(&teacher), json!({"title": "Two"}))
            .await;
    let course = course["id"].as_i64().unwrap();
    call(
        post.clone(),
        format!("{}/api/v1/courses/{course}/students", a.base),
        Some(&teacher),
        json!({"usernames": ["stu"]}),
    )
    .await;
    let lesson = call(
        post.clone(),
        format!("{}/api/v1/courses/{course}/lessons", a.base),
        Some(&teacher),
        json!({"title": "L"}),
    )
    .await;
    let lesson = lesson["id"].as_i64().unwrap();

    // A dashboard on instance A, through `rollcall watch`.
    let mut watch = rollcall(&data)
        .args([
            "watch",
            "--lesson",
            &lesson.to_string(),
            "--username",
            "prof",
            "--password",
            "password-1",
            "--server",
            &a.base,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    });
    let next = |kind: &str| -> Value {
        loop {
            let message =
                rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no {kind} message"));
            if message["type"] == kind {
                return message;
            }
        }
    };
    assert_eq!(next("snapshot")["lesson"]["checkin"]["state"], "not_started");

    // Opened through B: A's dashboard sees the state and the code B would show.
    call(
        post.clone(),
        format!("{}/api/v1/lessons/{lesson}/checkin/open", b.base),
        Some(&teacher),
        json!({"rotation_seconds": 300}),
    )
    .await;
    assert_eq!(next("state")["checkin"]["state"], "open");
    let code_on_a = next("code")["code"].as_str().unwrap().to_owned();
    let frame_on_b = reqwest::Client::new()
        .get(format!("{}/api/v1/lessons/{lesson}/checkin/code", b.base))
        .bearer_auth(&teacher)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(frame_on_b["code"].as_str(), Some(code_on_a.as_str()), "both instances derive the same code");

    // A check-in handled by B reaches the dashboard on A.
    call(post, format!("{}/api/v1/checkins", b.base), Some(&student), json!({"code": code_on_a})).await;
    let checkin = next("checkin");
    assert_eq!(checkin["record"]["student"]["username"], "stu");
    assert_eq!(checkin["summary"]["present"], 1);

    let _ = watch.kill();
    let _ = watch.wait();
    assert!(a.terminate().success() && b.terminate().success());
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}
