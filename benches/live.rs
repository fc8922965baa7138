//! WebSocket fan-out: 10,000 dashboard connections (`BENCH_CONNECTIONS`) spread over 1,000
//! open lessons (10 per lesson, one teacher per lesson), a new code every 5 s. Reports the
//! server's resident memory per connection, how late code frames arrive after each step
//! boundary (over every connection and `BENCH_STEPS` steps), and how long a check-in takes
//! from the server to the dashboards while check-ins run at a steady rate.
//!
//! With `BENCH_OPENING=automatic` no lesson is opened by hand: every lesson gets automatic
//! check-in opening at one instant a little ahead (`BENCH_LEAD_SECONDS`, default 90), the
//! dashboards connect while the lessons are still `not_started`, and the run also reports
//! how late each dashboard got the opening's `state` event and first code.
//!
//! Run: `cargo bench --bench live` (or `BENCH_OPENING=automatic cargo bench --bench live`).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use support::{CpuSplit, Database, machine, open_all, raise_fd_limit, schedule_all, seed, serve, summary};

const LESSONS: i64 = 1000;
const STUDENTS_PER_LESSON: i64 = 20;
const ROTATION: u32 = 5;

#[derive(Default)]
struct Observed {
    /// Receive time minus the step boundary (`valid_from`), per code frame.
    code_delays: Mutex<Vec<Duration>>,
    /// Of that, the part after the server made the frame (`server_time`): transport and us.
    code_transit: Mutex<Vec<Duration>>,
    /// Receive time minus the check-in's `checked_in_at`, per dashboard that got it.
    checkin_delays: Mutex<Vec<Duration>>,
    /// Automatic opening: receive time minus the opening, for its `state` event and its
    /// first code frame, per dashboard.
    opening_states: Mutex<Vec<Duration>>,
    opening_codes: Mutex<Vec<Duration>>,
    opens_at: Mutex<Option<DateTime<Utc>>>,
    /// The latest code seen for each lesson, for the check-in driver.
    codes: Mutex<HashMap<i64, String>>,
    measuring: AtomicBool,
    connected: AtomicUsize,
    closed: AtomicUsize,
}

fn since(then: Option<&str>, now: DateTime<Utc>) -> Option<Duration> {
    let then: DateTime<Utc> = then?.parse().ok()?;
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

        // Connect, 200 handshakes at a time.
        let started = Instant::now();
        let connect_cpu = CpuSplit::start(server.child.id());
        let gate = Arc::new(tokio::sync::Semaphore::new(200));
        let ws_base = server.base.replace("http://", "ws://");
        for n in 0..connections {
            let lesson = n % world.lessons.len();
            let (url, token) = (
                format!("{ws_base}/api/v1/lessons/{}/checkin/live", world.lessons[lesson]),
                world.teachers[lesson].clone(),
            );
            let (observed, permit) = (observed.clone(), gate.clone().acquire_owned().await.unwrap());
            // One dashboard per lesson keeps the lesson's code for the check-in driver.
            let keeps_code = n < world.lessons.len();
            let opens_at = *observed.opens_at.lock().unwrap();
            tokio::spawn(async move {
                let mut request = url.into_client_request().unwrap();
                request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                // tungstenite zero-fills its whole read buffer before every read (128 KiB by
                // default): with 10,000 sockets that was most of the load generator's CPU,
                // taken from the server it shares the two cores with. Live messages are
                // small, and the buffer still grows for a larger one.
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let Ok((mut socket, _)) =
                    tokio_tungstenite::connect_async_with_config(request, Some(config), true).await
                else {
                    observed.closed.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                drop(permit);
                observed.connected.fetch_add(1, Ordering::SeqCst);
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else { continue };
                    let now = Utc::now();
                    // Only the fields read here, borrowed: the load generator shares the two
                    // cores with the server, so it should spend as little as it can per frame.
                    let Ok(message) = serde_json::from_str::<Incoming<'_>>(&text) else { continue };
                    let opening = |at: Option<&str>| at.and_then(|at| at.parse::<DateTime<Utc>>().ok()) == opens_at;
                    match message.kind {
                        "state" if opens_at.is_some() && opening(message.checkin.and_then(|c| c.opened_at)) => {
                            if let Some(delay) = since(message.checkin.and_then(|c| c.opened_at), now) {
                                observed.opening_states.lock().unwrap().push(delay);
                            }
                        }
                        "code" => {
                            if let (true, Some(code), Some(lesson)) = (keeps_code, message.code, message.lesson_id) {
                                observed.codes.lock().unwrap().insert(lesson, code.to_owned());
                            }
                            if opens_at.is_some() && opening(message.valid_from) {
                                if let Some(delay) = since(message.valid_from, now) {
                                    observed.opening_codes.lock().unwrap().push(delay);
                                }
                            } else if observed.measuring.load(Ordering::SeqCst) {
                                if let Some(delay) = since(message.valid_from, now) {
                                    observed.code_delays.lock().unwrap().push(delay);
                                }
                                if let Some(transit) = since(message.server_time, now) {
                                    observed.code_transit.lock().unwrap().push(transit);
                                }
                            }
                        }
                        "checkin" if observed.measuring.load(Ordering::SeqCst) => {
                            if let Some(delay) = since(message.record.and_then(|r| r.checked_in_at), now) {
                                observed.checkin_delays.lock().unwrap().push(delay);
                            }
                        }
                        _ => {}
                    }
                }
                observed.closed.fetch_add(1, Ordering::SeqCst);
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
            println!("{}", summary("automatic opening: state event delay", states));
            println!("{}", summary("automatic opening: first code delay", codes));
        }

        // Measure from the next step boundary on, with check-ins at a steady rate.
        let boundary = (Utc::now().timestamp() / ROTATION as i64 + 1) * ROTATION as i64;
        tokio::time::sleep(Duration::from_millis(
            ((boundary * 1000) - Utc::now().timestamp_millis()).max(0) as u64 + 10,
        ))
        .await;
        observed.measuring.store(true, Ordering::SeqCst);
        database.top_statements(0);
        let cpu = CpuSplit::start(server.child.id());
        let measure_for = Duration::from_secs(steps * ROTATION as u64 - 1);
        // CPU per frame is only meaningful when every lesson shares the boundaries, as when
        // they opened automatically.
        let bursts = planned_opening
            .map(|_| tokio::spawn(burst_cpu(server.child.id(), boundary, steps.saturating_sub(1))));
        let rate = 50;
        let sent = check_in_steadily(&client, &server.base, &world, &observed, rate, measure_for).await;
        observed.measuring.store(false, Ordering::SeqCst);
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
        let code_delays = observed.code_delays.lock().unwrap().clone();
        let per_connection = code_delays.len() as f64 / connected.max(1) as f64;
        println!(
            "{} ({per_connection:.1} step boundaries per connection)",
            summary("code frame delay after the step boundary", code_delays)
        );
        println!("  {}", summary("of which after the server sent it", observed.code_transit.lock().unwrap().clone()));
        println!(
            "{}",
            summary("check-in event delay (check-in -> dashboard)", observed.checkin_delays.lock().unwrap().clone())
        );
    });
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
