//! SIGTERM: requests already taken in are answered, and no acknowledged check-in is lost.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::binary::Server;
use crate::burst::{check_in_once, open_lesson_one, seed_lesson, stored_check_ins};
use crate::{database, fresh_dir, rollcall, run};

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
