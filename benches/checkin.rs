//! Check-in throughput: 100 open lessons of 100 students (10,000 students), C concurrent
//! clients (default 32, `BENCH_CLIENTS`) each sending students' `POST /checkins` with their
//! lesson's current code over real HTTP with real JWTs, every student once; then the same
//! with wrong codes. Against the same PostgreSQL server, pgbench runs the database work of
//! one first check-in with the same client count, and the ratio rollcall / pgbench is printed.
//!
//! `BENCH_SHAPE=many`: the same 100 lessons of 100 students, but each of the 500 students is
//! enrolled in 20 courses, each with an open window, and checks in to all 20 (the wrong-code
//! run sends one wrong code per student: more would be throttled).
//!
//! `BENCH_TERM_LESSONS=N`: each course also has N lessons of a term around the open one,
//! each with the window a term leaves behind: the past half's closed by themselves and never
//! stamped, the future half's planned by automatic check-in. Only the open lessons are
//! checked in to; the others are what the check-in lookup must pass over.
//!
//! Run: `cargo bench --bench checkin` (release build of the server and of this client).

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{CpuSplit, Database, World, machine, open_all, seed_shaped, serve, summary};

const LESSONS: i64 = 100;
const PER_LESSON: i64 = 100;

fn main() {
    let clients: usize = std::env::var("BENCH_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let courses_each: i64 = if std::env::var("BENCH_SHAPE").as_deref() == Ok("many") { 20 } else { 1 };
    println!("checkin benchmark on {} ({clients} clients, {courses_each} course(s) per student)", machine());
    let database = Database::start("checkin");
    let world = seed_shaped(&database, LESSONS, PER_LESSON, courses_each);
    let term_lessons: i64 =
        std::env::var("BENCH_TERM_LESSONS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if term_lessons > 0 {
        println!("each course also has {term_lessons} lessons of a term with their windows");
        // Course n is taught by teacher n (see `seed_shaped`); a lesson k days away from today.
        database.execute(&format!(
            "INSERT INTO lessons (course_id, title, starts_at, created_at) \
             SELECT c, 'Term lesson ' || k, now() + (k - {term_lessons} / 2 - 1) * interval '1 day' \
                       + interval '1 hour', now() \
             FROM generate_series(1, {LESSONS}) c, generate_series(1, {term_lessons}) k;
             INSERT INTO checkin_windows (lesson_id, course_id, secret, opened_at, closes_at, rotation_seconds, code_length, opened_by) \
             SELECT id, course_id, decode(md5(id::text), 'hex'), starts_at, starts_at + interval '10 minutes', 10, 6, course_id \
             FROM lessons WHERE starts_at IS NOT NULL;
             ANALYZE;"
        ));
    }
    let server = serve(&database, &[("ROLLCALL_DB_POOL_SIZE", &(clients + 4).to_string())]);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (right, wrong) = runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
        let codes = open_all(&client, &server.base, &world, 300).await;
        // Statistics that know the windows just opened, as autovacuum's would in a running
        // school (the seed's ANALYZE saw none): else the planner takes a table of 100 rows
        // for an empty one and reads all of it for each enrolment.
        database.execute("ANALYZE checkin_windows");
        database.top_statements(0);
        let cpu = CpuSplit::start(server.child.id());
        let right = burst(&client, &server.base, &world, clients, 201, |i| codes[i].clone()).await;
        println!("{}", cpu.report());
        println!("PostgreSQL time by statement (right codes):\n{}", database.top_statements(8));
        // Wrong codes: a well-formed code that is none of the lessons' current ones.
        let wrong_code =
            (0..1_000_000).map(|n| format!("{n:06}")).find(|candidate| !codes.contains(candidate)).unwrap();
        let cpu = CpuSplit::start(server.child.id());
        // One wrong code per student: the eleventh within a minute would be throttled (429).
        let mut seen = std::collections::HashSet::new();
        let once = World {
            students: world.students.iter().filter(|(id, _, _)| seen.insert(*id)).cloned().collect(),
            teachers: Vec::new(),
            lessons: Vec::new(),
        };
        let wrong = burst(&client, &server.base, &once, clients, 422, |_| wrong_code.clone()).await;
        println!("{}", cpu.report());
        println!("PostgreSQL time by statement (wrong codes):\n{}", database.top_statements(8));
        (right, wrong)
    });
    let stored = count(&database, "SELECT count(*) AS n FROM attendance");
    right.print("right codes");
    println!("  attendance rows stored: {stored} (expected {})", LESSONS * PER_LESSON);
    wrong.print("wrong codes");

    drop(server);
    let students = LESSONS * PER_LESSON / courses_each;
    let pgbench = pgbench(&database, clients, students);
    println!("pgbench (database work of one check-in, {clients} clients, -M prepared): {pgbench:.0} tx/s");
    println!("rollcall / pgbench: {:.2}", right.rate() / pgbench);
}

struct Run {
    expected: u16,
    elapsed: Duration,
    latencies: Vec<Duration>,
    unexpected: usize,
    statuses: std::collections::BTreeMap<u16, usize>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str) {
        let expected = self.expected;
        println!(
            "{label}: {} requests in {:.2} s = {:.0} check-ins/s; answers {:?} (expected all {expected}; {} unexpected)",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.statuses,
            self.unexpected,
        );
        println!("  {}", summary("latency", self.latencies.clone()));
    }
}

/// Every student once, `clients` at a time; `code_for(lesson index)` picks the code sent.
async fn burst(
    client: &reqwest::Client,
    base: &str,
    world: &World,
    clients: usize,
    expected: u16,
    code_for: impl Fn(usize) -> String,
) -> Run {
    // Interleave lessons, as a real morning would.
    let mut work: Vec<(String, String)> =
        world.students.iter().map(|(_, token, lesson)| (token.clone(), code_for(*lesson))).collect();
    work.sort_by_key(|(token, _)| token.bytes().rev().take(8).collect::<Vec<_>>());
    let queue = Arc::new(Mutex::new(work));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (queue, client, base) = (queue.clone(), client.clone(), base.to_owned());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let Some((token, code)) = queue.lock().unwrap().pop() else { break };
                    let sent = Instant::now();
                    let status = client
                        .post(format!("{base}/api/v1/checkins"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"code": code}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    seen.push((status, sent.elapsed()));
                }
                seen
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for worker in workers {
        for (status, latency) in worker.await.unwrap() {
            *statuses.entry(status).or_insert(0) += 1;
            latencies.push(latency);
        }
    }
    let elapsed = started.elapsed();
    let unexpected = statuses.iter().filter(|(s, _)| **s != expected).map(|(_, n)| n).sum();
    Run { expected, elapsed, latencies, unexpected, statuses }
}

fn count(database: &Database, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(&database.url).unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut conn).unwrap().n
}

/// pgbench running one first check-in's database work: the student's open windows through
/// their enrolments (all of them read, one picked; by course and opening time, through the
/// same index rollcall's lookup uses), then an attendance row that is really
/// written. `DO UPDATE` makes every transaction write, take a transaction id and wait for
/// its commit record to be flushed, as a first check-in does (a conflicting `DO NOTHING`
/// writes nothing and skips the flush, which made the old yardstick a read-only workload
/// after its first seconds).
fn pgbench(database: &Database, clients: usize, students: i64) -> f64 {
    database.execute("TRUNCATE attendance");
    let first = LESSONS + 1;
    let last = LESSONS + students;
    let script = format!(
        "\\set sid random({first}, {last})
SELECT w.id AS window_id, w.lesson_id AS lesson_id FROM enrollments e \
JOIN checkin_windows w ON w.course_id = e.course_id AND w.closed_at IS NULL \
 AND w.opened_at > now() - interval '4 hours' AND w.opened_at <= now() AND w.closes_at > now() \
JOIN lessons l ON l.id = w.lesson_id \
WHERE e.student_id = :sid AND e.left_at IS NULL ORDER BY random() LIMIT 1 \\gset
INSERT INTO attendance (lesson_id, student_id, status, method, checked_in_at, window_id, updated_at) \
VALUES (:lesson_id, :sid, 'present', 'code', now(), :window_id, now()) \
ON CONFLICT (lesson_id, student_id) DO UPDATE SET updated_at = excluded.updated_at;
"
    );
    let path = std::env::temp_dir().join(format!("rollcall-pgbench-{}.sql", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let bin = rollcall::embedded::find_bin_dir().unwrap().join("pgbench");
    let socket_dir = database.cluster.cluster_dir().to_owned();
    let output = std::process::Command::new(bin)
        .args(["-n", "-M", "prepared", "-T", "15", "-c", &clients.to_string(), "-j", "2", "-f"])
        .arg(&path)
        .args(["-h"])
        .arg(&socket_dir)
        .args(["-p", "5432", "-U", "rollcall", "rollcall"])
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"))
}
