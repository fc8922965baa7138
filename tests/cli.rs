//! The real `rollcall` binary: the embedded database's whole life (create, persist, share
//! with one-shot commands, refuse a second server, stop on SIGTERM), root handling,
//! configuration errors, and an external `DATABASE_URL`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, geteuid};
use serde_json::{Value, json};

#[path = "support/binary.rs"]
mod binary;
#[path = "support/database.rs"]
mod database;

use binary::Server;

fn rollcall(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROLLCALL_DATA_DIR", data_dir)
        .env("ROLLCALL_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .current_dir(data_dir.parent().unwrap());
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run rollcall")
}

/// A PostgreSQL cluster of one test's own, stopped and removed even if the test fails.
struct OwnCluster {
    cluster: rollcall::embedded::EmbeddedPostgres,
    dir: PathBuf,
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn login(base: &str, username: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Running, as opposed to gone or a zombie nobody reaped (PID 1 in a container may not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(')').next().map(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn fresh_dir(label: &str) -> PathBuf {
    database::test_dir(label).join("data")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_runs_a_private_database_that_persists_and_stops_with_the_server() {
    let data = fresh_dir("serve");
    let mut command = rollcall(&data);
    command.args(["serve", "--demo"]);
    let server = Server::start(command);
    server.stdout_containing("demo.teacher / demo-teacher-pw");

    let (status, body) = login(&server.base, "demo.teacher", "demo-teacher-pw").await;
    assert_eq!(status, 200, "{body}");
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("demo.teacher"), Some("teacher")));

    // The cluster listens on a socket in its own directory only, as an unprivileged user.
    let cluster = data.join("postgres");
    assert!(cluster.join(".s.PGSQL.5432").exists());
    let conf = std::fs::read_to_string(cluster.join("postgresql.conf")).unwrap();
    assert!(conf.contains("listen_addresses = ''"));
    let owner = std::fs::metadata(&cluster).unwrap().uid();
    if geteuid().is_root() {
        assert_ne!(owner, 0, "PostgreSQL must not run as root");
        assert_eq!(Some(owner), User::from_name("postgres").unwrap().map(|u| u.uid.as_raw()));
    } else {
        assert_eq!(owner, geteuid().as_raw());
    }

    // A second server on the same directory is refused with a clear message.
    let mut second = rollcall(&data);
    let refused = run(second.arg("serve"));
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("already running on data directory"), "{message}");

    // One-shot commands use the running cluster and leave it running.
    let pid = postmaster_pid(&data).expect("cluster is running");
    assert!(run(rollcall(&data).arg("migrate")).status.success());
    let added = run(rollcall(&data).args([
        "user",
        "add",
        "--username",
        "late.joiner",
        "--password",
        "joiner-pw-1",
        "--role",
        "student",
        "--student-number",
        "LJ1",
    ]));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert_eq!(postmaster_pid(&data), Some(pid));
    assert_eq!(login(&server.base, "late.joiner", "joiner-pw-1").await.0, 200);

    // SIGTERM closes live dashboards with 1001, stops the server, then the cluster:
    // nothing is left running.
    let teacher = login(&server.base, "demo.teacher", "demo-teacher-pw").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/api/v1/lessons/1/checkin/live", server.base.replace("http://", "ws://")),
    )
    .unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {teacher}").parse().unwrap());
    let (mut dashboard, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let close_code = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(frame)) = dashboard.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    });
    assert!(server.terminate().success());
    assert_eq!(close_code.await.unwrap(), Some(1001), "dashboards hear the server go away");
    assert!(!alive(pid), "postgres {pid} outlived the server");
    assert_eq!(postmaster_pid(&data), None);

    // The data persists into the next run.
    let again = Server::start({
        let mut c = rollcall(&data);
        c.arg("serve");
        c
    });
    assert_eq!(login(&again.base, "late.joiner", "joiner-pw-1").await.0, 200);
    assert!(again.terminate().success());
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

#[test]
fn one_shot_commands_start_and_stop_the_cluster_themselves_and_demo_is_idempotent() {
    let data = fresh_dir("oneshot");
    let migrated = run(rollcall(&data).arg("migrate"));
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(data.join("postgres/PG_VERSION").exists());
    assert_eq!(postmaster_pid(&data), None, "migrate left the cluster running");

    let first = run(rollcall(&data).arg("demo"));
    let second = run(rollcall(&data).arg("demo"));
    assert!(first.status.success() && second.status.success());
    let first = String::from_utf8_lossy(&first.stdout);
    assert!(first.contains("demo.teacher / demo-teacher-pw") && first.contains("demo.student30"), "{first}");
    assert_eq!(first, String::from_utf8_lossy(&second.stdout), "a second demo run creates nothing new");
    let duplicate = run(rollcall(&data).args([
        "user",
        "add",
        "--username",
        "demo.teacher",
        "--password",
        "whatever-1",
        "--role",
        "teacher",
    ]));
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already taken"));
    let _ = std::fs::remove_dir_all(data.parent().unwrap());
}

#[test]
fn as_an_unprivileged_user_the_cluster_runs_as_that_user() {
    let dir = database::test_dir("unprivileged");
    let data = dir.join("data");
    let mut command = rollcall(&data);
    let expected_owner = if geteuid().is_root() {
        // Exercise the non-root path too: run the binary itself as `nobody`.
        let nobody = User::from_name("nobody").unwrap().expect("a `nobody` user exists");
        nix::unistd::chown(&dir, Some(nobody.uid), Some(nobody.gid)).unwrap();
        command.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
        nobody.uid.as_raw()
    } else {
        geteuid().as_raw()
    };
    let output = run(command.arg("migrate"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::metadata(data.join("postgres")).unwrap().uid(), expected_owner);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_configuration_exits_with_one_line_naming_the_variable() {
    let data = fresh_dir("config");
    for (variable, value) in [("ROLLCALL_BIND", "not-an-address"), ("ROLLCALL_JWT_SECRET", "short")] {
        let output = run(rollcall(&data).env(variable, value).arg("migrate"));
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable) && !stderr.contains("panicked"), "{stderr}");
    }
    let output = run(rollcall(&data).env("DATABASE_URL", "postgres://localhost/x").arg("serve"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ROLLCALL_JWT_SECRET: is required"));
    assert!(!data.exists(), "nothing was created for a configuration that was refused");
}

#[test]
fn with_database_url_everything_uses_that_server() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("external");
    let output = run(rollcall(&data)
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", "x".repeat(32))
        .args(["user", "add", "--username", "ext.admin", "--password", "ext-admin-pw", "--role", "admin"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!data.exists(), "no embedded cluster was created");
    use diesel::prelude::*;
    let mut conn = PgConnection::establish(&database.url).unwrap();
    let count: i64 = rollcall::schema::users::table
        .filter(rollcall::schema::users::username.eq("ext.admin"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn the_openapi_subcommand_prints_the_committed_document() {
    let output = run(Command::new(env!("CARGO_BIN_EXE_rollcall")).arg("openapi"));
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), committed);
}

fn instance(database_url: &str, data: &Path) -> Server {
    let mut command = rollcall(data);
    command.env("DATABASE_URL", database_url).env("ROLLCALL_JWT_SECRET", "s".repeat(40)).arg("serve");
    Server::start(command)
}

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new().request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
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

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("inflight");
    let secret = "f".repeat(40);
    let added = run(rollcall(&data)
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", &secret)
        .args(["user", "add", "--username", "busy", "--password", "busy-password", "--role", "teacher"]));
    assert!(added.status.success());
    let mut command = rollcall(&data);
    command.env("DATABASE_URL", &database.url).env("ROLLCALL_JWT_SECRET", &secret).arg("serve");
    let server = Server::start(command);
    let client = reqwest::Client::new();
    // Hold the lock that serialises logins of one username: every login below then waits
    // inside the server, holding its request open, until we let go.
    use diesel::prelude::*;
    let mut lock = PgConnection::establish(&database.url).unwrap();
    let login_lock = "hashtextextended('login:busy', 0)";
    diesel::sql_query(format!("SELECT pg_advisory_lock({login_lock})")).execute(&mut lock).unwrap();
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let request = client
                .post(format!("{}/api/v1/auth/login", server.base))
                .json(&json!({"username": "busy", "password": "busy-password"}));
            tokio::spawn(async move {
                request.send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
            })
        })
        .collect();
    let waiting = || -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        ))
        .get_result(&mut PgConnection::establish(&database.url).unwrap())
        .unwrap()
    };
    for _ in 0..500 {
        if waiting() == 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (Sessions, not lock rows, of this test's database only: each waiting login is one.)
    assert_eq!(waiting(), 16, "all 16 logins are in flight inside the server");

    let pid = Pid::from_raw(server.child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = server;
    assert!(server.child.try_wait().unwrap().is_none(), "the server waits for its in-flight requests");
    diesel::sql_query(format!("SELECT pg_advisory_unlock({login_lock})")).execute(&mut lock).unwrap();
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await.unwrap());
    }
    assert_eq!(answers, vec![Ok(200); 16], "every in-flight request is answered after SIGTERM");
    assert!(server.terminate_wait().success());
}

/// A teacher (id 1), a course with lesson 1, and `count` enrolled students (ids 2…),
/// written directly; returns their tokens.
fn seed_lesson(url: &str, secret: &str, count: i64) -> (String, Vec<(i64, String)>) {
    use diesel::prelude::*;
    use rollcall::auth::jwt::TokenKeys;
    use rollcall::users::model::Role;
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        &format!(
            "INSERT INTO users (username, password_hash, role, real_name, created_at) VALUES \
             ('seed.teacher', 'x', 'teacher', 'T', now()); \
             INSERT INTO users (username, password_hash, role, real_name, student_number, created_at) \
             SELECT 'seed.s' || n, 'x', 'student', 'S' || n, 'c' || n, now() FROM generate_series(1, {count}) n; \
             INSERT INTO courses (title, teacher_id, created_at) SELECT 'C', id, now() FROM users WHERE username = 'seed.teacher'; \
             INSERT INTO lessons (course_id, title, created_at) SELECT id, 'L', now() FROM courses; \
             INSERT INTO enrollments (course_id, student_id, enrolled_at) \
             SELECT c.id, u.id, now() FROM courses c, users u WHERE u.role = 'student'"
        ),
    )
    .unwrap();
    let keys = TokenKeys::new(secret.as_bytes(), "rollcall", "rollcall-api", Duration::from_secs(3600));
    let now = chrono::Utc::now();
    let teacher = keys.issue(1, Role::Teacher, "seed.teacher", now).unwrap();
    let students = (2..2 + count)
        .map(|id| (id, keys.issue(id, Role::Student, &format!("seed.s{}", id - 1), now).unwrap()))
        .collect();
    (teacher, students)
}

/// Opens check-in on lesson 1 for an hour (one code for five minutes) and returns the code.
async fn open_lesson_one(base: &str, teacher: &str) -> String {
    let opened = call(
        reqwest::Method::POST,
        format!("{base}/api/v1/lessons/1/checkin/open"),
        Some(teacher),
        json!({"rotation_seconds": 300, "duration_seconds": 3600}),
    )
    .await;
    assert_eq!(opened["state"], "open");
    let frame =
        call(reqwest::Method::GET, format!("{base}/api/v1/lessons/1/checkin/code"), Some(teacher), json!({}))
            .await;
    frame["code"].as_str().unwrap().to_owned()
}

/// The students with an attendance row for lesson 1.
fn stored_check_ins(url: &str) -> std::collections::BTreeSet<i64> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        student_id: i64,
    }
    let mut conn = PgConnection::establish(url).unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT student_id FROM attendance WHERE lesson_id = 1").load(&mut conn).unwrap();
    rows.into_iter().map(|r| r.student_id).collect()
}

/// Kills every process of a PostgreSQL cluster with SIGKILL, postmaster first: a crash, not
/// a shutdown.
fn crash_postgres(cluster_dir: &Path) {
    let text = std::fs::read_to_string(cluster_dir.join("postmaster.pid")).expect("postmaster.pid");
    let postmaster: i32 = text.lines().next().unwrap().trim().parse().unwrap();
    let children: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(postmaster)
        })
        .collect();
    let _ = kill(Pid::from_raw(postmaster), Signal::SIGKILL);
    for child in children {
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
    for _ in 0..500 {
        if !alive(postmaster) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("postgres survived SIGKILL");
}

/// One student's check-in, as the client saw it.
async fn check_in_once(client: &reqwest::Client, base: &str, token: &str, code: &str) -> (u16, Duration) {
    let started = std::time::Instant::now();
    let status = client
        .post(format!("{base}/api/v1/checkins"))
        .bearer_auth(token)
        .json(&json!({"code": code}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_crash_mid_burst_loses_no_acknowledged_check_in_and_the_service_recovers() {
    use futures_util::StreamExt;

    // A cluster of its own, since this test kills it.
    let dir = database::test_dir("crash");
    let mut own =
        OwnCluster { cluster: rollcall::embedded::EmbeddedPostgres::new(&dir).unwrap(), dir: dir.clone() };
    let cluster = &mut own.cluster;
    cluster.start("").unwrap();
    let url = cluster.url("rollcall");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secret = "c".repeat(40);
    assert!(
        run(rollcall(&data).env("DATABASE_URL", &url).env("ROLLCALL_JWT_SECRET", &secret).arg("migrate"))
            .status
            .success()
    );

    const STUDENTS: i64 = 300;
    let (teacher, students) = seed_lesson(&url, &secret, STUDENTS);

    let mut command = rollcall(&data);
    command.env("DATABASE_URL", &url).env("ROLLCALL_JWT_SECRET", &secret).arg("serve");
    let server = Server::start(command);
    let base = server.base.clone();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let code = open_lesson_one(&base, &teacher).await;
    // A dashboard watches throughout.
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/api/v1/lessons/1/checkin/live", base.replace("http://", "ws://")),
    )
    .unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {teacher}").parse().unwrap());
    let (mut dashboard, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // The burst: 8 clients work through the students; the database dies a little way in.
    let queue = Arc::new(Mutex::new(students.clone()));
    let outcomes = Arc::new(Mutex::new(Vec::<(i64, u16, Duration)>::new()));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (queue, outcomes, client, base, code) =
                (queue.clone(), outcomes.clone(), client.clone(), base.clone(), code.clone());
            tokio::spawn(async move {
                loop {
                    let Some((id, token)) = queue.lock().unwrap().pop() else { break };
                    let (status, took) = check_in_once(&client, &base, &token, &code).await;
                    outcomes.lock().unwrap().push((id, status, took));
                    // Paced, so the burst spans the crash.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    while outcomes.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    crash_postgres(cluster.cluster_dir());
    let crashed_at = std::time::Instant::now();
    // Down for three seconds: long enough for every kind of failure to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted_at = std::time::Instant::now();
    cluster.start("").unwrap();
    for task in clients {
        task.await.unwrap();
    }

    // Serving again within 10 s of the database coming back, without a restart.
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16());
        if matches!(ready, Ok(200)) {
            break;
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(10),
            "not ready 10 s after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = restarted_at.elapsed();
    let outcomes = outcomes.lock().unwrap().clone();
    let unavailable = outcomes.iter().filter(|(_, status, _)| *status == 503).count();
    let slowest_refusal = outcomes.iter().filter(|(_, s, _)| *s == 503).map(|(_, _, t)| *t).max();
    eprintln!(
        "crash test: {} requests in the burst, {unavailable} answered 503 (slowest {slowest_refusal:?}), \
         database down for {:?}, ready again {ready_after:?} after its restart began",
        outcomes.len(),
        restarted_at - crashed_at,
    );
    assert!(unavailable > 0, "the burst did span the outage: {outcomes:?}");
    for (id, status, took) in &outcomes {
        assert!(
            matches!(status, 200 | 201 | 503),
            "student {id}: {status} after {took:?} (0 = no answer); only success or 503 are acceptable"
        );
        if *status == 503 {
            assert!(*took < Duration::from_millis(2500), "a 503 took {took:?}: requests hung on the outage");
        }
    }
    // Those refused during the outage check in now.
    let acknowledged: std::collections::BTreeSet<i64> =
        outcomes.iter().filter(|(_, status, _)| *status < 300).map(|(id, _, _)| *id).collect();
    let mut late = 0;
    for (id, token) in students.iter().filter(|(id, _)| !acknowledged.contains(id)) {
        let (status, _) = check_in_once(&client, &base, token, &code).await;
        assert!(status == 201 || status == 200, "student {id} after recovery: {status}");
        late += 1;
    }

    // Every acknowledged check-in is in the table; nobody is missing or doubled.
    let stored = stored_check_ins(&url);
    assert!(acknowledged.is_subset(&stored), "acknowledged but lost: {:?}", acknowledged.difference(&stored));
    assert_eq!(
        stored.len() as i64,
        STUDENTS,
        "{} acknowledged in the burst, {late} after",
        acknowledged.len()
    );

    // The dashboard's event feed recovered: it ends up showing every student present.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut present = 0;
    while present < STUDENTS {
        let message = tokio::time::timeout_at(deadline, dashboard.next())
            .await
            .unwrap_or_else(|_| panic!("the dashboard saw {present} present, not {STUDENTS}"));
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = message else { continue };
        let message: Value = serde_json::from_str(&text).unwrap();
        if let Some(n) = message["summary"]["present"].as_i64() {
            present = n;
        }
    }
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_in_a_check_in_burst_loses_nothing_acknowledged() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("termburst");
    let secret = "t".repeat(40);
    assert!(
        run(rollcall(&data)
            .env("DATABASE_URL", &database.url)
            .env("ROLLCALL_JWT_SECRET", &secret)
            .arg("migrate"))
        .status
        .success()
    );
    let (teacher, students) = seed_lesson(&database.url, &secret, 200);
    let mut command = rollcall(&data);
    command.env("DATABASE_URL", &database.url).env("ROLLCALL_JWT_SECRET", &secret).arg("serve");
    let server = Server::start(command);
    let base = server.base.clone();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let code = open_lesson_one(&base, &teacher).await;

    let attempts: Vec<_> = students
        .iter()
        .map(|(id, token)| {
            let (client, base, token, code, id) =
                (client.clone(), base.clone(), token.clone(), code.clone(), *id);
            tokio::spawn(async move { (id, check_in_once(&client, &base, &token, &code).await.0) })
        })
        .collect();
    // SIGTERM while the 200 requests are arriving.
    tokio::time::sleep(Duration::from_millis(50)).await;
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    assert!(server.terminate_wait().success());
    let acknowledged: std::collections::BTreeSet<i64> =
        outcomes.iter().filter(|(_, status)| (200..300).contains(status)).map(|(id, _)| *id).collect();
    let stored = stored_check_ins(&database.url);
    eprintln!(
        "sigterm burst: {} acknowledged, {} refused or cut off before being read, {} stored",
        acknowledged.len(),
        outcomes.len() - acknowledged.len(),
        stored.len()
    );
    assert!(!acknowledged.is_empty(), "some check-ins were answered before the stop");
    assert_eq!(acknowledged, stored, "every acknowledged check-in is stored, and nothing else");
    for (id, status) in &outcomes {
        // Answered in full, or never taken in (connection refused = 0): nothing in between.
        assert!(matches!(status, 0 | 200 | 201 | 503), "student {id}: {status}");
    }
}
