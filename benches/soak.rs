//! Soak: `SOAK_SECONDS` (default 600) of mixed traffic against the release binary — steady
//! check-ins (right codes, repeats, the odd wrong code), code reads, result reads as JSON and
//! CSV, and dashboards connecting and leaving all the time — while the server's resident memory is
//! sampled every 10 s. Fails (exit 1) on any unexpected answer or if memory after warm-up
//! (the first 10% of the run, at least 60 s) grows more than 10%.
//!
//! Run: `cargo bench --bench soak` (not part of `cargo test` or CI).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use support::{Database, machine, open_all, raise_fd_limit, seed, serve};

const LESSONS: i64 = 50;
const PER_LESSON: i64 = 40;

#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    unexpected: AtomicUsize,
    dashboards: AtomicUsize,
    dashboard_failures: AtomicUsize,
}

impl Tally {
    fn answer(&self, what: &str, status: u16, allowed: &[u16]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !allowed.contains(&status) {
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!("unexpected answer to {what}: {status}");
        }
    }
}

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    raise_fd_limit();
    println!("soak on {} for {seconds} s", machine());
    let database = Database::start("soak");
    let world = Arc::new(seed(&database, LESSONS, PER_LESSON));
    let server = serve(&database, &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let ok = runtime.block_on(async {
        let client = reqwest::Client::new();
        let codes = Arc::new(std::sync::Mutex::new(open_all(&client, &server.base, &world, 300).await));
        let tally = Arc::new(Tally::default());
        let running = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();

        // The teachers' screens: every 2 s each lesson's current code is read (the polling
        // fallback), so the check-ins below always send a code that is current or within its
        // 5 s grace period.
        tasks.push(tokio::spawn({
            let (client, base, world, codes, tally, running) =
                (client.clone(), server.base.clone(), world.clone(), codes.clone(), tally.clone(), running.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                while running.load(Ordering::Relaxed) {
                    tick.tick().await;
                    for (i, (lesson, teacher)) in world.lessons.iter().zip(&world.teachers).enumerate() {
                        let frame = client
                            .get(format!("{base}/api/v1/lessons/{lesson}/checkin/code"))
                            .bearer_auth(teacher)
                            .send()
                            .await;
                        let status = frame.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                        tally.answer("a code read", status, &[200]);
                        if let Ok(frame) = frame
                            && let Ok(frame) = frame.json::<serde_json::Value>().await
                            && let Some(code) = frame["code"].as_str()
                        {
                            codes.lock().unwrap()[i] = code.to_owned();
                        }
                    }
                }
            }
        }));

        // Check-ins, 20/s: every student in turn (first 201, later 200), one in 25 wrong.
        tasks.push(tokio::spawn({
            let (client, base, world, codes, tally, running) =
                (client.clone(), server.base.clone(), world.clone(), codes.clone(), tally.clone(), running.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                let mut n = 0usize;
                while running.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let (_, token, lesson) = &world.students[n % world.students.len()];
                    let wrong = n.is_multiple_of(25);
                    let code = if wrong { "000000".to_owned() } else { codes.lock().unwrap()[*lesson].clone() };
                    n += 1;
                    let status = client
                        .post(format!("{base}/api/v1/checkins"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({"code": code}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    // A wrong code may by chance be a lesson's real one.
                    let allowed: &[u16] = if wrong { &[422, 200, 201] } else { &[200, 201] };
                    tally.answer("a check-in", status, allowed);
                }
            }
        }));
        // Result reads, 5/s, every fifth as CSV.
        tasks.push(tokio::spawn({
            let (client, base, world, tally, running) =
                (client.clone(), server.base.clone(), world.clone(), tally.clone(), running.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                let mut n = 0usize;
                while running.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let lesson = n % world.lessons.len();
                    let csv = if n.is_multiple_of(5) { "?format=csv" } else { "" };
                    n += 1;
                    let status = client
                        .get(format!("{base}/api/v1/lessons/{}/attendance{csv}", world.lessons[lesson]))
                        .bearer_auth(&world.teachers[lesson])
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    tally.answer("a result read", status, &[200]);
                }
            }
        }));
        // Dashboards: every 200 ms one connects, watches for 5 s, and leaves (about 25 open).
        tasks.push(tokio::spawn({
            let (base, world, tally, running) =
                (server.base.replace("http://", "ws://"), world.clone(), tally.clone(), running.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                let mut n = 0usize;
                while running.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let lesson = n % world.lessons.len();
                    n += 1;
                    let mut request = format!("{base}/api/v1/lessons/{}/checkin/live", world.lessons[lesson])
                        .into_client_request()
                        .unwrap();
                    let auth = format!("Bearer {}", world.teachers[lesson]);
                    request.headers_mut().insert("authorization", auth.parse().unwrap());
                    let tally = tally.clone();
                    tokio::spawn(async move {
                        match tokio_tungstenite::connect_async(request).await {
                            Ok((mut socket, _)) => {
                                tally.dashboards.fetch_add(1, Ordering::Relaxed);
                                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                                    while let Some(Ok(_)) = socket.next().await {}
                                })
                                .await;
                            }
                            Err(err) => {
                                tally.dashboard_failures.fetch_add(1, Ordering::Relaxed);
                                eprintln!("a dashboard could not connect: {err}");
                            }
                        }
                    });
                }
            }
        }));

        let started = Instant::now();
        let warm_up = Duration::from_secs((seconds / 10).max(60).min(seconds));
        let mut baseline = None;
        let mut peak = 0;
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let rss = server.rss_kib();
            let past_warm_up = started.elapsed() >= warm_up;
            if past_warm_up {
                baseline.get_or_insert(rss);
                peak = peak.max(rss);
            }
            println!(
                "{:>4} s: RSS {:.1} MiB, {} requests, {} dashboards{}",
                started.elapsed().as_secs(),
                rss as f64 / 1024.0,
                tally.requests.load(Ordering::Relaxed),
                tally.dashboards.load(Ordering::Relaxed),
                if past_warm_up { "" } else { " (warming up)" }
            );
        }
        running.store(false, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let baseline = baseline.unwrap_or(peak).max(1);
        let growth = 100.0 * (peak as f64 - baseline as f64) / baseline as f64;
        let unexpected = tally.unexpected.load(Ordering::Relaxed);
        let failed_dashboards = tally.dashboard_failures.load(Ordering::Relaxed);
        println!(
            "soak: {} requests ({unexpected} unexpected answers), {} dashboards ({failed_dashboards} failed); \
             RSS after warm-up {:.1} MiB, peak {:.1} MiB ({growth:+.1}%)",
            tally.requests.load(Ordering::Relaxed),
            tally.dashboards.load(Ordering::Relaxed),
            baseline as f64 / 1024.0,
            peak as f64 / 1024.0,
        );
        unexpected == 0 && failed_dashboards == 0 && growth <= 10.0
    });
    drop(server);
    drop(database);
    if !ok {
        println!("soak: FAILED");
        std::process::exit(1);
    }
    println!("soak: passed");
}
