//! WebSocket fan-out: 10,000 dashboard connections (`BENCH_CONNECTIONS`) spread over 1,000
//! open lessons (10 per lesson, one teacher per lesson), a new code every 5 s. Reports the
//! server's resident memory per connection, how late code frames are sent after each step
//! boundary (over every connection and `BENCH_STEPS` steps, and per boundary), and how long
//! a check-in takes from the server to the dashboards while check-ins run at a steady rate.
//!
//! "Sent" is when a message reached the dashboard's socket: the kernel's receive timestamp,
//! which on loopback is when the server's `send` delivered it (the contract: "sent within
//! 100 ms of the step boundary"). The dashboards' reader (`support/dashboards.rs`) runs at
//! `SCHED_IDLE`, so that the load generator does not take the two cores from the server
//! during a burst, as remote browsers would not; when it read each code frame is reported
//! too, and that includes waiting for the server to leave it a core.
//!
//! With `BENCH_OPENING=automatic` no lesson is opened by hand: every lesson gets automatic
//! check-in opening at one instant a little ahead (`BENCH_LEAD_SECONDS`, default 90), the
//! dashboards connect while the lessons are still `not_started`, and the run also reports
//! how late each dashboard got the opening's `state` event and first code.
//!
//! Run: `cargo bench --bench live` (or `BENCH_OPENING=automatic cargo bench --bench live`).

#[path = "support/dashboards.rs"]
mod dashboards;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use dashboards::Received;
use support::{CpuSplit, Database, machine, open_all, raise_fd_limit, schedule_all, seed, serve, summary};

const LESSONS: i64 = 1000;
const STUDENTS_PER_LESSON: i64 = 20;
const ROTATION: u32 = 5;

#[derive(Default)]
struct Observed {
    /// Per code frame, after the step boundary (`valid_from`): when it reached the dashboard's
    /// socket (the server sent it), when the load generator read it, and when the server made
    /// it (`server_time`).
    /// (The arrivals by step boundary, in Unix seconds.)
    code_arrivals: Mutex<std::collections::BTreeMap<i64, Vec<Duration>>>,
    code_reads: Mutex<Vec<Duration>>,
    code_made: Mutex<Vec<Duration>>,
    /// When the check-in event reached the dashboard's socket, after the check-in's
    /// `checked_in_at`, per dashboard that got it.
    checkin_delays: Mutex<Vec<Duration>>,
    /// Automatic opening, per dashboard, after the opening: when its first code frame reached
    /// the socket, and when the load generator read the `state` event and that frame.
    opening_arrivals: Mutex<Vec<Duration>>,
    opening_states: Mutex<Vec<Duration>>,
    opening_codes: Mutex<Vec<Duration>>,
    opens_at: Mutex<Option<DateTime<Utc>>>,
    /// The latest code seen for each lesson, for the check-in driver.
    codes: Mutex<HashMap<i64, String>>,
    measuring: AtomicBool,
    connected: AtomicUsize,
    closed: AtomicUsize,
}

/// A time a message carries.
fn time(at: Option<&str>) -> Option<DateTime<Utc>> {
    at?.parse().ok()
}

/// How long after `then` came `now`.
fn since(then: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (now - then).to_std().ok()
}

/// The fields of a live message the benchmark reads.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    lesson_id: Option<i64>,
    code: Option<&'a str>,
    valid_from: Option<&'a str>,
    server_time: Option<&'a str>,
    #[serde(borrow)]
    checkin: Option<Opened<'a>>,
    #[serde(borrow)]
    record: Option<Checked<'a>>,
}

#[derive(Clone, Copy, serde::Deserialize)]
struct Opened<'a> {
    opened_at: Option<&'a str>,
}

#[derive(Clone, Copy, serde::Deserialize)]
struct Checked<'a> {
    checked_in_at: Option<&'a str>,
}

fn main() {
    let connections: usize =
        std::env::var("BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let steps: u64 = std::env::var("BENCH_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let automatic = std::env::var("BENCH_OPENING").as_deref() == Ok("automatic");
    let lead: i64 = std::env::var("BENCH_LEAD_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(90);
    let fd_limit = raise_fd_limit();
    println!("live benchmark on {} ({connections} connections, open-file limit {fd_limit})", machine());
    let database = Database::start("live");
    let world = seed(&database, LESSONS, STUDENTS_PER_LESSON);
    let server =
        serve(&database, &[("ROLLCALL_WS_MAX_CONNECTIONS", "20000"), ("ROLLCALL_DB_POOL_SIZE", "32")]);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        // Idle connections are dropped before the server's 5 s keep-alive would close them,
        // so a check-in is never sent on a connection the server is closing at that moment.
        let client = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(4)).build().unwrap();
        let observed = Arc::new(Observed::default());
        if automatic {
            let opens_at = Utc::now() + chrono::Duration::seconds(lead);
            // On a step boundary of the wall clock, like the measuring below.
            let opens_at = DateTime::from_timestamp(opens_at.timestamp() / ROTATION as i64 * ROTATION as i64, 0).unwrap();
            schedule_all(&client, &server.base, &world, ROTATION, opens_at).await;
            *observed.opens_at.lock().unwrap() = Some(opens_at);
            println!("every lesson opens automatically at {opens_at}");
        } else {
            let codes = open_all(&client, &server.base, &world, ROTATION).await;
            observed.codes.lock().unwrap().extend(world.lessons.iter().copied().zip(codes));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = server.rss_kib();
        database.top_statements(0);

        // Connect, 200 handshakes at a time; one thread then reads every dashboard.
        let started = Instant::now();
        let connect_cpu = CpuSplit::start(server.child.id());
        let opens_at = *observed.opens_at.lock().unwrap();
        let dashboards = dashboards::start_reader(
            {
                let observed = observed.clone();
                move |keeps_code: &bool, text: &str, at| observe(&observed, *keeps_code, opens_at, text, at)
            },
            {
                let observed = observed.clone();
                move |_: &bool| {
                    observed.closed.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        let gate = Arc::new(tokio::sync::Semaphore::new(200));
        let host = server.base.trim_start_matches("http://").to_owned();
        for n in 0..connections {
            let lesson = n % world.lessons.len();
            let (path, token) =
                (format!("/api/v1/lessons/{}/checkin/live", world.lessons[lesson]), world.teachers[lesson].clone());
            let (observed, permit) = (observed.clone(), gate.clone().acquire_owned().await.unwrap());
            let (host, dashboards) = (host.clone(), dashboards.clone());
            // One dashboard per lesson keeps the lesson's code for the check-in driver.
            let keeps_code = n < world.lessons.len();
            tokio::spawn(async move {
                match dashboards::connect(&host, &path, &token).await {
                    Ok((stream, received)) => {
                        observed.connected.fetch_add(1, Ordering::SeqCst);
                        let _ = dashboards.send(dashboards::Dashboard { stream, received, tag: keeps_code });
                    }
                    Err(err) => {
                        eprintln!("dashboard not connected: {err}");
                        observed.closed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                drop(permit);
            });
        }
        while observed.connected.load(Ordering::SeqCst) + observed.closed.load(Ordering::SeqCst) < connections {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let connect_time = started.elapsed();
        println!("while connecting: {}", connect_cpu.report());
        let connected = observed.connected.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = server.rss_kib();
        println!("PostgreSQL time by statement while connecting:\n{}", database.top_statements(6));
        println!(
            "connected {connected} of {connections} in {:.1} s; server RSS {} MiB -> {} MiB: {:.1} KiB per connection",
            connect_time.as_secs_f64(),
            rss_before / 1024,
            rss_after / 1024,
            (rss_after.saturating_sub(rss_before)) as f64 / connected.max(1) as f64,
        );

        let planned_opening = *observed.opens_at.lock().unwrap();
        if let Some(opens_at) = planned_opening {
            let wait = (opens_at - Utc::now()).to_std().unwrap_or_default();
            println!("waiting {:.0} s for the automatic opening (raise BENCH_LEAD_SECONDS if 0)", wait.as_secs_f64());
            tokio::time::sleep(wait + Duration::from_secs(2)).await;
            let states = observed.opening_states.lock().unwrap().clone();
            let codes = observed.opening_codes.lock().unwrap().clone();
            println!("automatic opening seen by {} state events and {} first codes", states.len(), codes.len());
            let arrivals = observed.opening_arrivals.lock().unwrap().clone();
            println!("{}", summary("automatic opening: first code sent (at the dashboard's socket)", arrivals));
            println!("  {}", summary("state event read by the load generator", states));
            println!("  {}", summary("first code read by the load generator", codes));
        }

        // Measure from a step boundary on, with check-ins at a steady rate that started two
        // seconds or more before it: the check-in driver's own start (new HTTP connections,
        // the server's first check-ins) is not part of any boundary's burst.
        let rate = 50;
        let boundary = ((Utc::now().timestamp() + 2) / ROTATION as i64 + 1) * ROTATION as i64;
        // Counting starts a second early, so that no frame of the first boundary is missed.
        let until_boundary =
            Duration::from_millis(((boundary * 1000 - 1000) - Utc::now().timestamp_millis()).max(0) as u64);
        let measure_for = Duration::from_secs(steps * ROTATION as u64);
        let (sent, (cpu, bursts)) = tokio::join!(
            check_in_steadily(&client, &server.base, &world, &observed, rate, until_boundary + measure_for),
            async {
                tokio::time::sleep(until_boundary).await;
                observed.measuring.store(true, Ordering::SeqCst);
                database.top_statements(0);
                let cpu = CpuSplit::start(server.child.id());
                // CPU per frame is only meaningful when every lesson shares the boundaries, as
                // when they opened automatically.
                let bursts = planned_opening
                    .map(|_| tokio::spawn(burst_cpu(server.child.id(), boundary, steps.saturating_sub(1))));
                tokio::time::sleep(measure_for).await;
                observed.measuring.store(false, Ordering::SeqCst);
                (cpu, bursts)
            }
        );
        println!("{}", cpu.report());
        if let Some(bursts) = bursts {
            let (server_burst, client_burst, boundaries) = bursts.await.unwrap();
            let frames = (boundaries as usize * connected).max(1) as f64;
            let per_frame = |cpu: Duration| cpu.as_secs_f64() * 1e6 / frames;
            println!(
                "CPU from 50 ms before to 450 ms after a step boundary, per code frame ({boundaries} boundaries): \
                 rollcall {:.1} µs ({:.1} user, {:.1} kernel), load generator {:.1} µs ({:.1} user, {:.1} kernel)",
                per_frame(server_burst.0 + server_burst.1),
                per_frame(server_burst.0),
                per_frame(server_burst.1),
                per_frame(client_burst.0 + client_burst.1),
                per_frame(client_burst.0),
                per_frame(client_burst.1),
            );
        }
        println!("PostgreSQL time by statement while measuring:\n{}", database.top_statements(6));
        println!("check-ins sent at {rate}/s: {sent:?}");
        let dropped = observed.closed.load(Ordering::SeqCst);
        println!("connections dropped during the run: {}", dropped.saturating_sub(connections - connected));
        let by_boundary = observed.code_arrivals.lock().unwrap().clone();
        let arrivals: Vec<Duration> = by_boundary.values().flatten().copied().collect();
        let per_connection = arrivals.len() as f64 / connected.max(1) as f64;
        println!(
            "{} ({per_connection:.1} step boundaries per connection)",
            summary("code frames sent after the step boundary (at the dashboard's socket)", arrivals)
        );
        for (boundary, arrivals) in &by_boundary {
            let at = DateTime::from_timestamp(*boundary, 0).unwrap_or_default().format("%H:%M:%S");
            println!("    {}", summary(&format!("boundary {at}"), arrivals.clone()));
        }
        println!("  {}", summary("read by the load generator", observed.code_reads.lock().unwrap().clone()));
        println!("  {}", summary("made by the server (server_time)", observed.code_made.lock().unwrap().clone()));
        println!(
            "{}",
            summary("check-in event delay (check-in -> dashboard's socket)", observed.checkin_delays.lock().unwrap().clone())
        );
    });
}

/// Records what one live message says about delays, as the dashboard received it.
fn observe(observed: &Observed, keeps_code: bool, opens_at: Option<DateTime<Utc>>, text: &str, at: Received) {
    // Only the fields read here, borrowed: the load generator shares the two cores with the
    // server, so it should spend as little as it can per frame.
    let Ok(message) = serde_json::from_str::<Incoming<'_>>(text) else { return };
    let push = |into: &Mutex<Vec<Duration>>, delay: Option<Duration>| into.lock().unwrap().extend(delay);
    match message.kind {
        "state" => {
            if let Some(opened) =
                time(message.checkin.and_then(|c| c.opened_at)).filter(|o| Some(*o) == opens_at)
            {
                push(&observed.opening_states, since(opened, at.read));
            }
        }
        "code" => {
            if let (true, Some(code), Some(lesson)) = (keeps_code, message.code, message.lesson_id) {
                observed.codes.lock().unwrap().insert(lesson, code.to_owned());
            }
            let Some(boundary) = time(message.valid_from) else { return };
            if Some(boundary) == opens_at {
                push(&observed.opening_arrivals, since(boundary, at.arrived));
                push(&observed.opening_codes, since(boundary, at.read));
            } else if observed.measuring.load(Ordering::SeqCst) {
                if let Some(delay) = since(boundary, at.arrived) {
                    observed
                        .code_arrivals
                        .lock()
                        .unwrap()
                        .entry(boundary.timestamp())
                        .or_default()
                        .push(delay);
                }
                push(&observed.code_reads, since(boundary, at.read));
                push(&observed.code_made, time(message.server_time).and_then(|made| since(boundary, made)));
            }
        }
        "checkin" if observed.measuring.load(Ordering::SeqCst) => {
            if let Some(checked_in) = time(message.record.and_then(|r| r.checked_in_at)) {
                push(&observed.checkin_delays, since(checked_in, at.arrived));
            }
        }
        _ => {}
    }
}

/// CPU time the server and this load generator spend around each of the `count` step
/// boundaries after `first` (Unix seconds): from 50 ms before to 450 ms after, which holds
/// the burst of code frames (and the few check-ins that fall in it).
/// Each as (user, kernel).
async fn burst_cpu(
    server_pid: u32,
    first: i64,
    count: u64,
) -> ((Duration, Duration), (Duration, Duration), u64) {
    let add = |total: &mut (Duration, Duration), from: (Duration, Duration), to: (Duration, Duration)| {
        total.0 += to.0 - from.0;
        total.1 += to.1 - from.1;
    };
    let (mut server, mut client) = Default::default();
    let mut measured = 0;
    for step in 1..=count as i64 {
        let boundary_ms = (first + step * ROTATION as i64) * 1000;
        let until = |ms: i64| Duration::from_millis((ms - Utc::now().timestamp_millis()).max(0) as u64);
        tokio::time::sleep(until(boundary_ms - 50)).await;
        let before = (support::cpu_split(server_pid), support::cpu_split(std::process::id()));
        tokio::time::sleep(until(boundary_ms + 450)).await;
        add(&mut server, before.0, support::cpu_split(server_pid));
        add(&mut client, before.1, support::cpu_split(std::process::id()));
        measured += 1;
    }
    (server, client, measured)
}

/// Sends `rate` check-ins per second for `duration`, each with its lesson's current code;
/// returns the answers by status.
async fn check_in_steadily(
    client: &reqwest::Client,
    base: &str,
    world: &support::World,
    observed: &Arc<Observed>,
    rate: u64,
    duration: Duration,
) -> std::collections::BTreeMap<u16, usize> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut next = 0;
    while started.elapsed() < duration && next < world.students.len() {
        ticker.tick().await;
        // Spread over lessons: student k of lesson k % LESSONS.
        let (_, token, lesson) = &world.students[(next % LESSONS as usize) * STUDENTS_PER_LESSON as usize
            + (next / LESSONS as usize) % STUDENTS_PER_LESSON as usize];
        next += 1;
        let code = observed.codes.lock().unwrap().get(&world.lessons[*lesson]).cloned().unwrap_or_default();
        let request = client
            .post(format!("{base}/api/v1/checkins"))
            .bearer_auth(token)
            .json(&serde_json::json!({"code": code}));
        pending.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status().as_u16()).unwrap_or_else(|err| {
                eprintln!("check-in not answered: {err:?}");
                0
            })
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for answer in pending {
        *statuses.entry(answer.await.unwrap()).or_insert(0) += 1;
    }
    statuses
}
