//! What the benchmarks share: a PostgreSQL cluster of their own, the release `rollcall`
//! binary serving on it, data written straight into the tables, tokens minted with the
//! server's secret, and the figures they print.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rollcall::auth::jwt::{TokenKeys, TokenUser};
use rollcall::domain::user::Role;
use rollcall::embedded::EmbeddedPostgres;

#[path = "../../tests/support/binary.rs"]
pub mod binary;

use binary::Server;

pub const SECRET: &str = "benchmark-secret-benchmark-secret-0123456789";

/// A PostgreSQL cluster in a scratch directory, stopped and removed on drop.
pub struct Database {
    pub cluster: EmbeddedPostgres,
    pub url: String,
    dir: PathBuf,
}

impl Database {
    /// A stock cluster (durable settings) with room for the connections we open.
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rollcall-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The cluster runs as an unprivileged user when we are root: let it in.
        let _ = Command::new("chmod").arg("755").arg(&dir).status();
        let mut cluster = EmbeddedPostgres::new(&dir).expect("PostgreSQL server binaries are installed");
        cluster
            .start(
                "max_connections = 200\nshared_buffers = 256MB\n\
                 shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track_planning = on\n",
            )
            .expect("start PostgreSQL");
        let url = cluster.url("rollcall");
        let mut conn = PgConnection::establish(&url).unwrap();
        rollcall::db::migrate(&mut conn).unwrap();
        conn.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").unwrap();
        Self { cluster, url, dir }
    }

    /// The statements that cost PostgreSQL the most since the last reset, then resets.
    pub fn top_statements(&self, limit: usize) -> String {
        #[derive(QueryableByName)]
        struct Top {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            calls: i64,
            #[diesel(sql_type = diesel::sql_types::Double)]
            ms: f64,
            #[diesel(sql_type = diesel::sql_types::Double)]
            plan_ms: f64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            query: String,
        }
        let mut conn = PgConnection::establish(&self.url).unwrap();
        let top: Vec<Top> = diesel::sql_query(format!(
            "SELECT calls, total_exec_time + total_plan_time AS ms, total_plan_time AS plan_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query \
             FROM pg_stat_statements ORDER BY 2 DESC LIMIT {limit}"
        ))
        .load(&mut conn)
        .unwrap();
        conn.batch_execute("SELECT pg_stat_statements_reset()").unwrap();
        top.iter()
            .map(|t| {
                format!(
                    "  {:>8.0} ms (planning {:>4.0}) {:>7} calls  {}\n",
                    t.ms, t.plan_ms, t.calls, t.query
                )
            })
            .collect()
    }

    pub fn execute(&self, sql: &str) {
        PgConnection::establish(&self.url).unwrap().batch_execute(sql).unwrap();
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The release binary, serving on the benchmark database (see `binary::Server`).
pub fn serve(database: &Database, env: &[(&str, &str)]) -> Server {
    let data = std::env::temp_dir().join(format!("rollcall-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .arg("serve")
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", SECRET)
        .env("ROLLCALL_DATA_DIR", &data)
        // Warnings only, but the harness needs the info line that announces the address.
        .env("RUST_LOG", "warn,rollcall::cli=info");
    for (name, value) in env {
        command.env(name, value);
    }
    Server::start_echoing_logs(command)
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let (user, system) = cpu_split(pid);
    user + system
}

/// CPU time used so far by process `pid`: (in user space, in the kernel on its behalf).
pub fn cpu_split(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // utime and stime, in ticks; _SC_CLK_TCK is 100 on Linux.
    let ticks =
        |n: usize| Duration::from_millis(10 * fields.get(n).and_then(|v| v.parse().ok()).unwrap_or(0));
    (ticks(11), ticks(12))
}

/// CPU time used so far by all processes named `name` (e.g. every `postgres` backend).
pub fn cpu_time_of(name: &str) -> Duration {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(cpu_time)
        .sum()
}

/// Where the CPU went during a run: the server, PostgreSQL, and this load generator.
pub struct CpuSplit {
    server: Duration,
    postgres: Duration,
    client: Duration,
    started: std::time::Instant,
    server_pid: u32,
}

impl CpuSplit {
    pub fn start(server_pid: u32) -> Self {
        Self {
            server: cpu_time(server_pid),
            postgres: cpu_time_of("postgres"),
            client: cpu_time(std::process::id()),
            started: std::time::Instant::now(),
            server_pid,
        }
    }

    pub fn report(&self) -> String {
        let wall = self.started.elapsed().as_secs_f64();
        let share = |used: Duration| 100.0 * used.as_secs_f64() / wall;
        format!(
            "CPU over {wall:.1} s (100% = one core): rollcall {:.0}%, PostgreSQL {:.0}%, load generator {:.0}%",
            share(cpu_time(self.server_pid) - self.server),
            share(cpu_time_of("postgres") - self.postgres),
            share(cpu_time(std::process::id()) - self.client),
        )
    }
}

/// `lessons` teachers, each with a course and one lesson, and `per_lesson` students
/// enrolled in each. Ids: teachers 1..=lessons, lessons 1..=lessons, students after.
pub struct World {
    pub teachers: Vec<String>,
    pub lessons: Vec<i64>,
    /// (student id, token, index of their lesson)
    pub students: Vec<(i64, String, usize)>,
}

pub fn seed(database: &Database, lessons: i64, per_lesson: i64) -> World {
    seed_shaped(database, lessons, per_lesson, 1)
}

/// Like `seed`, with each student enrolled in `courses_each` courses (each course still has
/// `per_lesson` students, so there are `lessons × per_lesson / courses_each` students); the
/// world lists one entry per enrolment, so every (student, lesson) pair checks in once.
pub fn seed_shaped(database: &Database, lessons: i64, per_lesson: i64, courses_each: i64) -> World {
    assert!(lessons % courses_each == 0 && (lessons * per_lesson) % courses_each == 0);
    let students = lessons * per_lesson / courses_each;
    let stride = lessons / courses_each;
    // A student's first course: classes of `per_lesson` in one course each; with several
    // courses each, students take turns over the `stride` residues, so every course gets
    // `per_lesson` students.
    let first_sql =
        if courses_each == 1 { format!("(n - 1) / {per_lesson}") } else { format!("(n - 1) % {stride}") };
    let first_of = move |n: i64| if courses_each == 1 { (n - 1) / per_lesson } else { (n - 1) % stride };
    database.execute(&format!(
        "INSERT INTO users (username, password_hash, role, real_name, created_at) \
         SELECT 'teacher' || n, 'x', 'teacher', 'Teacher ' || n, now() FROM generate_series(1, {lessons}) n;
         INSERT INTO courses (title, teacher_id, created_at) \
         SELECT 'Course ' || n, n, now() FROM generate_series(1, {lessons}) n;
         INSERT INTO lessons (course_id, title, created_at) \
         SELECT n, 'Lesson ' || n, now() FROM generate_series(1, {lessons}) n;
         INSERT INTO users (username, password_hash, role, real_name, student_number, created_at) \
         SELECT 'student' || n, 'x', 'student', 'Student ' || n, 's' || n, now() FROM generate_series(1, {students}) n;
         INSERT INTO enrollments (course_id, student_id, enrolled_at) \
         SELECT 1 + ({first_sql} + k * {stride}) % {lessons}, {lessons} + n, now() \
         FROM generate_series(1, {students}) n, generate_series(0, {courses_each} - 1) k;
         INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) OVERRIDING SYSTEM VALUE \
         SELECT 1000000000 + id, id, now(), now(), now() + interval '1 day' FROM users;
         ANALYZE;"
    ));
    let keys = TokenKeys::new(SECRET.as_bytes(), "rollcall", "rollcall-api", Duration::from_secs(86_400));
    let now = chrono::Utc::now();
    // Every user has a session of id 1,000,000,000 + their id (see the INSERT above).
    let issue = |id: i64, role: Role, username: &str| {
        let user = TokenUser { id, role, username, session_id: 1_000_000_000 + id };
        keys.issue(user, now, now + chrono::Duration::days(1)).unwrap()
    };
    World {
        teachers: (1..=lessons).map(|id| issue(id, Role::Teacher, &format!("teacher{id}"))).collect(),
        lessons: (1..=lessons).collect(),
        students: (1..=students)
            .flat_map(|n| {
                let id = lessons + n;
                let token = issue(id, Role::Student, &format!("student{n}"));
                // The same courses as the enrolment INSERT above.
                let first = first_of(n);
                (0..courses_each).map(move |k| (id, token.clone(), ((first + k * stride) % lessons) as usize))
            })
            .collect(),
    }
}

/// Opens check-in on every lesson through the API; returns each lesson's current code.
pub async fn open_all(
    client: &reqwest::Client,
    base: &str,
    world: &World,
    rotation_seconds: u32,
) -> Vec<String> {
    let mut codes = Vec::new();
    for (lesson, teacher) in world.lessons.iter().zip(&world.teachers) {
        let opened = client
            .post(format!("{base}/api/v1/lessons/{lesson}/checkin/open"))
            .bearer_auth(teacher)
            .json(&serde_json::json!({"rotation_seconds": rotation_seconds, "duration_seconds": 14400}))
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status(), 200, "open lesson {lesson}");
        let frame: serde_json::Value = client
            .get(format!("{base}/api/v1/lessons/{lesson}/checkin/code"))
            .bearer_auth(teacher)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        codes.push(frame["code"].as_str().unwrap().to_owned());
    }
    codes
}

/// Gives every lesson automatic check-in, opening at `opens_at` (its start) with these
/// settings, through `PATCH /lessons/{id}`: nothing is opened by hand.
pub async fn schedule_all(
    client: &reqwest::Client,
    base: &str,
    world: &World,
    rotation_seconds: u32,
    opens_at: chrono::DateTime<chrono::Utc>,
) {
    let body = serde_json::json!({
        "starts_at": opens_at,
        "auto_checkin": {"open_offset_minutes": 0, "rotation_seconds": rotation_seconds, "duration_seconds": 14400},
    });
    for (lesson, teacher) in world.lessons.iter().zip(&world.teachers) {
        let planned = client
            .patch(format!("{base}/api/v1/lessons/{lesson}"))
            .bearer_auth(teacher)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(planned.status(), 200, "plan lesson {lesson}");
    }
}

/// p-th percentile (0..=100) of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

pub fn summary(label: &str, mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    format!(
        "{label}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
        latencies.len()
    )
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kib| kib / 1024 / 1024)
        .unwrap_or(0);
    format!("{cores} cores, {memory} GiB memory")
}
