//! A PostgreSQL crash in the middle of a check-in burst: nothing acknowledged is lost, the
//! clients get quick 503s, and the service recovers without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::binary::Server;
use crate::burst::{check_in_once, open_lesson_one, seed_lesson, stored_check_ins};
use crate::{alive, database, rollcall, run};

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
