//! Test databases: one PostgreSQL server for the whole test run (the one in
//! `ROLLCALL_TEST_DATABASE_URL`/`DATABASE_URL`, or a private cluster this harness starts),
//! one migrated template per test process, and a fresh clone of it for every test.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel::sql_types::Text;
use rollcall::embedded::EmbeddedPostgres;

struct Server {
    location: Location,
    template: String,
    /// Held (shared) for this process's lifetime; the private cluster's watchdog stops
    /// the cluster once no test process holds it any more.
    _lease: Option<File>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

enum Location {
    /// A server named by URL.
    External(url::Url),
    /// The private cluster this harness runs.
    Private(EmbeddedPostgres),
}

impl Server {
    fn url(&self, database: &str) -> String {
        match &self.location {
            Location::External(url) => {
                let mut url = url.clone();
                url.set_path(database);
                url.to_string()
            }
            Location::Private(cluster) => cluster.url(database),
        }
    }
}

/// A database that is dropped when this value is.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Self {
        let server = server();
        let name = format!("rollcall_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut conn = connect(&server.url("postgres"));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", server.template))
            .execute(&mut conn)
            .expect("create the test database");
        Self { url: server.url(&name), name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = server();
        if let Ok(mut conn) = PgConnection::establish(&server.url("postgres")) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                .execute(&mut conn);
        }
    }
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let configured = std::env::var("ROLLCALL_TEST_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .ok()
            .filter(|u| !u.is_empty());
        let (location, lease) = match configured {
            Some(url) => {
                (Location::External(url::Url::parse(&url).expect("the test database URL is a URL")), None)
            }
            None => {
                let (cluster, lease) = private_cluster();
                (Location::Private(cluster), Some(lease))
            }
        };
        let template = format!("rollcall_tpl_{}", std::process::id());
        let server = Server { location, template, _lease: lease };
        let mut conn = connect(&server.url("postgres"));
        sweep_leftovers(&mut conn);
        diesel::sql_query(format!("CREATE DATABASE \"{}\"", server.template))
            .execute(&mut conn)
            .expect("create template");
        let mut template_conn = connect(&server.url(&server.template));
        rollcall::db::migrate(&mut template_conn).expect("migrate the template database");
        server
    })
}

/// Starts (or joins) the private cluster shared by all test processes of this user.
fn private_cluster() -> (EmbeddedPostgres, File) {
    let uid = nix::unistd::geteuid();
    // Under the system temp dir, not target/: short enough for a Unix socket path, and
    // reachable by the unprivileged user the cluster runs as when tests run as root.
    let dir = std::env::temp_dir().join(format!("rollcall-tests-{uid}"));
    std::fs::create_dir_all(&dir).expect("create the test cluster directory");
    let lease_path = dir.join("lease.lock");
    let lease =
        OpenOptions::new().create(true).truncate(false).write(true).open(&lease_path).expect("open lease");
    lease.lock_shared().expect("take the test cluster lease");
    let mut cluster = EmbeddedPostgres::new(&dir).expect("PostgreSQL server binaries are installed");
    // Durability settings only cost time in tests; everything else is a stock server.
    cluster
        .start("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n")
        .expect("start the test PostgreSQL cluster");
    if cluster.started_here() {
        spawn_watchdog(&lease_path, &cluster.cluster_dir().join("postmaster.pid"));
    }
    (cluster, lease)
}

/// A detached shell loop that fast-stops the cluster once every test process (each holds
/// a shared lease) has exited, so a test run leaves no server behind. It outlives us on
/// purpose, so it is never waited for.
#[allow(clippy::zombie_processes)]
fn spawn_watchdog(lease: &Path, pid_file: &Path) {
    const SCRIPT: &str = r#"
while sleep 2; do
  flock -n -x "$1" sh -c '
    pid=$(head -n 1 "$1" 2>/dev/null) || exit 0
    kill -INT "$pid" 2>/dev/null
    # The postmaster removes its pid file last thing on a clean shutdown.
    n=0; while [ -e "$1" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done' _ "$2" && exit 0
done"#;
    Command::new("sh")
        .args(["-c", SCRIPT, "rollcall-test-watchdog"])
        .arg(lease)
        .arg(pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the test cluster watchdog");
}

/// Drops test databases and templates left by test processes that no longer run.
fn sweep_leftovers(conn: &mut PgConnection) {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    let names: Vec<Name> = diesel::sql_query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'rollcall\\_test\\_%' OR datname LIKE 'rollcall\\_tpl\\_%'",
    )
    .load(conn)
    .expect("list leftover databases");
    for Name { datname } in names {
        let pid = datname.split('_').nth(2).and_then(|p| p.parse::<i32>().ok());
        let alive =
            pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        if !alive {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"))
                .execute(conn);
        }
    }
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|e| panic!("connect to the test server: {e}"))
}

#[allow(dead_code)]
pub fn test_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rollcall-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}
