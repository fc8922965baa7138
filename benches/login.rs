//! A lecture hall logging in at once: 300 students with real Argon2id passwords log in
//! through 64 concurrent clients, then 1,000 logins for unknown usernames; meanwhile a few
//! students keep checking in, to show the check-in path does not starve. Prints logins/s,
//! latency, answers by status, the server's resident memory (idle before, peak, 2 s and 10 s
//! after) and the check-in latency before and during the storm.
//!
//! Run: `cargo bench --bench login` (release build of the server and of this client).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::binary::rss_kib;
use support::{Database, World, machine, open_all, seed, serve, summary};

const CLASS: i64 = 300;
const CLIENTS: usize = 64;
const UNKNOWN: usize = 1000;
const PASSWORD: &str = "lecture-hall-pw";

fn main() {
    println!("login storm benchmark on {} ({CLIENTS} clients)", machine());
    let database = Database::start("login");
    // 4 lessons of 100: students 1..=300 log in, and everyone checks in during the storm.
    let world = seed(&database, 4, 100);
    let hash = rollcall::auth::password::hash(PASSWORD).unwrap();
    database.execute(&format!("UPDATE users SET password_hash = '{hash}' WHERE role = 'student'"));
    let server = serve(&database, &[]);
    let pid = server.child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().unwrap();
        let codes = open_all(&client, &server.base, &world, 300).await;
        // Warm up: one login (the first hash builds the dummy hash for unknown users too).
        login(&client, &server.base, "student1").await;
        let quiet = check_ins(&client, &server.base, &world, &codes, Duration::from_secs(3)).await;
        // Let the warm-up's hashing memory go (each worker frees it after 5 idle seconds, in
        // turn), so `before` is the idle server.
        tokio::time::sleep(Duration::from_secs(11)).await;
        let rss_before = rss_kib(pid);

        let peak = Arc::new(AtomicU64::new(rss_before));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            std::thread::spawn(move || {
                while sampling.load(Ordering::SeqCst) {
                    peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let storming = Arc::new(AtomicBool::new(true));
        let during = {
            let (client, base, storming) = (client.clone(), server.base.clone(), storming.clone());
            let (world, codes) = (world.students.clone(), codes.clone());
            tokio::spawn(async move { check_ins_while(&client, &base, &world, &codes, &storming).await })
        };
        let class: Vec<String> = (1..=CLASS).map(|n| format!("student{n}")).collect();
        let class_run = storm(&client, &server.base, class).await;
        let unknown: Vec<String> = (1..=UNKNOWN).map(|n| format!("nobody{n}")).collect();
        let flood_run = storm(&client, &server.base, unknown).await;
        storming.store(false, Ordering::SeqCst);
        let during = during.await.unwrap();
        sampling.store(false, Ordering::SeqCst);
        sampler.join().unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = rss_kib(pid);
        // The hashing threads keep their memory until idle for 5 s (each, in turn).
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss_idle = rss_kib(pid);

        class_run.print("class logins (300 students, right passwords)");
        flood_run.print("flood (1,000 unknown usernames)");
        let peak = peak.load(Ordering::SeqCst);
        println!(
            "server RSS: before {} MiB, peak {} MiB (+{} MiB), 2 s after {} MiB (+{} MiB), 12 s after {} MiB (+{} MiB)",
            rss_before / 1024,
            peak / 1024,
            peak.saturating_sub(rss_before) / 1024,
            rss_after / 1024,
            rss_after.saturating_sub(rss_before) / 1024,
            rss_idle / 1024,
            rss_idle.saturating_sub(rss_before) / 1024,
        );
        println!("check-ins before the storm: {}", quiet.describe());
        println!("check-ins during the storm: {}", during.describe());
    });
}

struct Storm {
    elapsed: Duration,
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
}

impl Storm {
    fn print(&self, label: &str) {
        println!(
            "{label}: {} logins in {:.2} s = {:.1} logins/s; answers {:?}",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.statuses
        );
        println!("  {}", summary("latency", self.latencies.clone()));
    }
}

async fn login(client: &reqwest::Client, base: &str, username: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Every username once, `CLIENTS` at a time.
async fn storm(client: &reqwest::Client, base: &str, usernames: Vec<String>) -> Storm {
    let queue = Arc::new(Mutex::new(usernames));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (queue, client, base) = (queue.clone(), client.clone(), base.to_owned());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let Some(username) = queue.lock().unwrap().pop() else { break };
                    let sent = Instant::now();
                    let status = login(&client, &base, &username).await;
                    seen.push((status, sent.elapsed()));
                }
                seen
            })
        })
        .collect();
    let (mut latencies, mut statuses) = (Vec::new(), BTreeMap::new());
    for worker in workers {
        for (status, latency) in worker.await.unwrap() {
            *statuses.entry(status).or_insert(0) += 1;
            latencies.push(latency);
        }
    }
    Storm { elapsed: started.elapsed(), latencies, statuses }
}

/// Check-in latencies and answers, one student at a time every 10 ms.
struct CheckIns {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
}

impl CheckIns {
    fn describe(&self) -> String {
        format!("{:?}; {}", self.statuses, summary("latency", self.latencies.clone()))
    }
}

async fn check_ins(
    client: &reqwest::Client,
    base: &str,
    world: &World,
    codes: &[String],
    lasting: Duration,
) -> CheckIns {
    let running = Arc::new(AtomicBool::new(true));
    let stop = running.clone();
    tokio::spawn(async move {
        tokio::time::sleep(lasting).await;
        stop.store(false, Ordering::SeqCst);
    });
    // The last students, so the storm's own check-ins use different ones.
    let students: Vec<_> = world.students.iter().rev().cloned().collect();
    check_ins_while(client, base, &students, codes, &running).await
}

async fn check_ins_while(
    client: &reqwest::Client,
    base: &str,
    students: &[(i64, String, usize)],
    codes: &[String],
    running: &AtomicBool,
) -> CheckIns {
    let (mut latencies, mut statuses) = (Vec::new(), BTreeMap::new());
    for (_, token, lesson) in students {
        if !running.load(Ordering::SeqCst) {
            break;
        }
        let sent = Instant::now();
        let status = client
            .post(format!("{base}/api/v1/checkins"))
            .bearer_auth(token)
            .json(&json!({"code": codes[*lesson]}))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        latencies.push(sent.elapsed());
        *statuses.entry(status).or_insert(0) += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    CheckIns { latencies, statuses }
}
