//! The private PostgreSQL cluster used when `DATABASE_URL` is unset: created under the data
//! directory on first use, reachable only through a Unix socket inside its own directory,
//! run as an unprivileged user when we are root, and stopped by whoever started it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use nix::unistd::{Uid, User, chown, geteuid};

/// Name of the superuser and of the application database inside the cluster.
const ROLE: &str = "rollcall";
pub const DATABASE: &str = "rollcall";
const PORT: u16 = 5432;
/// Settings appended to the cluster's postgresql.conf when it is created. The socket
/// directory is relative to the cluster directory, so the cluster can be moved.
const BASE_CONF: &str = "\n# rollcall: a private cluster, reachable only through the socket in this directory\n\
listen_addresses = ''\nunix_socket_directories = '.'\nunix_socket_permissions = 0700\n";

pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    cluster_dir: PathBuf,
    bin_dir: PathBuf,
    /// Set when we are root: PostgreSQL refuses to run as root.
    run_as: Option<User>,
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Finds the server binaries and prepares the data directory; starts nothing.
    pub fn new(data_dir: &Path) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir()?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let run_as = if geteuid().is_root() { Some(unprivileged_user()?) } else { None };
        Ok(Self { cluster_dir: data_dir.join("postgres"), data_dir, bin_dir, run_as, started_here: false })
    }

    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// The operating-system user the database processes run as.
    pub fn os_user(&self) -> String {
        match &self.run_as {
            Some(user) => user.name.clone(),
            None => {
                User::from_uid(geteuid()).ok().flatten().map_or_else(|| geteuid().to_string(), |u| u.name)
            }
        }
    }

    /// A PostgreSQL URL for `database` in this cluster, through its Unix socket. It names
    /// no TCP host at all, so no client library can try `localhost` first.
    pub fn url(&self, database: &str) -> String {
        let socket_dir: String =
            url::form_urlencoded::byte_serialize(self.cluster_dir.as_os_str().as_encoded_bytes()).collect();
        format!("postgresql://{ROLE}@/{database}?host={socket_dir}&port={PORT}")
    }

    /// Starts the cluster unless it already runs (say, under a running `rollcall serve`),
    /// creating it and the application database on first use. `extra_conf` lines are
    /// added to postgresql.conf only when the cluster is created.
    pub fn start(&mut self, extra_conf: &str) -> anyhow::Result<()> {
        let _lock = lock_file(&self.data_dir.join("postgres.lock"))?;
        if !self.cluster_dir.join("PG_VERSION").exists() {
            self.init(extra_conf)?;
        }
        if !self.is_running()? {
            let log = self.data_dir.join("postgres.log");
            self.prepare_log(&log)?;
            let status = self
                .command("pg_ctl")
                .args(["start", "--wait", "--timeout=60", "--silent", "-D"])
                .arg(&self.cluster_dir)
                .arg("-l")
                .arg(&log)
                .status()
                .context("cannot run pg_ctl")?;
            if !status.success() {
                bail!("the embedded PostgreSQL did not start; see {}{}", log.display(), tail(&log));
            }
            self.started_here = true;
        }
        self.create_database(DATABASE)
    }

    /// Whether this process started the cluster (rather than finding it running).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    pub fn is_running(&self) -> anyhow::Result<bool> {
        let status = self
            .command("pg_ctl")
            .args(["status", "-D"])
            .arg(&self.cluster_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run pg_ctl")?;
        Ok(status.success())
    }

    /// Fast shutdown: open sessions are ended, then the cluster stops cleanly.
    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.is_running()? {
            return Ok(());
        }
        let status = self
            .command("pg_ctl")
            .args(["stop", "--wait", "--timeout=60", "--silent", "--mode=fast", "-D"])
            .arg(&self.cluster_dir)
            .status()
            .context("cannot run pg_ctl")?;
        if !status.success() {
            bail!("the embedded PostgreSQL did not stop cleanly");
        }
        Ok(())
    }

    /// Creates the cluster in a scratch directory and renames it into place, so a crash
    /// half-way never leaves a broken cluster behind.
    fn init(&self, extra_conf: &str) -> anyhow::Result<()> {
        let scratch = self.data_dir.join("postgres.init");
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir(&scratch)?;
        self.give_to_db_user(&scratch)?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&scratch)
            .args(["-U", ROLE, "--auth=trust", "--encoding=UTF8", "--no-locale"])
            .output()
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}{}", String::from_utf8_lossy(&output.stderr).trim(), self.access_hint());
        }
        let mut conf = OpenOptions::new().append(true).open(scratch.join("postgresql.conf"))?;
        conf.write_all(BASE_CONF.as_bytes())?;
        conf.write_all(extra_conf.as_bytes())?;
        fs::rename(&scratch, &self.cluster_dir)?;
        Ok(())
    }

    fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(&self.url("postgres"))
            .context("cannot connect to the embedded PostgreSQL")?;
        let exists = diesel::select(
            diesel::dsl::sql::<diesel::sql_types::Bool>("EXISTS (SELECT 1 FROM pg_database WHERE datname = ")
                .bind::<diesel::sql_types::Text, _>(name)
                .sql(")"),
        )
        .get_result::<bool>(&mut conn)?;
        if !exists {
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn)?;
        }
        Ok(())
    }

    fn prepare_log(&self, log: &Path) -> anyhow::Result<()> {
        if !log.exists() {
            File::create(log)?;
        }
        self.give_to_db_user(log)
    }

    fn give_to_db_user(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = &self.run_as {
            chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("cannot hand {} to user {}", path.display(), user.name))?;
        }
        Ok(())
    }

    fn access_hint(&self) -> String {
        match &self.run_as {
            Some(user) => format!(
                "\n(the database runs as user `{}`, who must be able to reach {}; \
                 choose a ROLLCALL_DATA_DIR outside private home directories)",
                user.name,
                self.data_dir.display()
            ),
            None => String::new(),
        }
    }

    /// A server binary, run as the unprivileged user when we are root.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.env("LC_ALL", "C").current_dir(&self.data_dir);
        if let Some(user) = &self.run_as {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command
    }
}

/// Holds an exclusive lock on `path` until the returned file is dropped.
pub fn lock_file(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    file.lock()?;
    Ok(file)
}

/// The user the database runs as when we are root: `postgres` if it exists, else `nobody`.
fn unprivileged_user() -> anyhow::Result<User> {
    for name in ["postgres", "nobody"] {
        if let Some(user) = User::from_name(name)?
            && user.uid != Uid::from_raw(0)
        {
            return Ok(user);
        }
    }
    bail!("running as root, but neither a `postgres` nor a `nobody` user exists to run PostgreSQL")
}

/// Where the PostgreSQL server binaries are: `pg_config --bindir`, then the newest
/// `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_server = |dir: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file());
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().map(|(_, dir)| dir))
        .chain(on_path)
        .find(|dir| has_server(dir))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no PostgreSQL server binaries found (looked at `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin and PATH). Install them (Debian/Ubuntu: \
                 `apt-get install postgresql`) or set DATABASE_URL to an existing server"
            )
        })
}

/// The last lines of the server log, to explain a failed start.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(":\n  {}", lines.into_iter().rev().collect::<Vec<_>>().join("\n  "))
    }
}

impl EmbeddedPostgres {
    /// Claims the data directory for one `rollcall serve`. A second server on the same
    /// directory gets a clear error instead of sharing (and later stopping) the cluster.
    pub fn claim_for_serve(&self) -> anyhow::Result<File> {
        let path = self.data_dir.join("serve.lock");
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `rollcall serve` is already running on data directory {}; \
                 stop it first or set ROLLCALL_DATA_DIR to another directory",
                self.data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }

    /// For one-shot commands: stops the cluster if this process started it and no
    /// `rollcall serve` has claimed the directory meanwhile.
    pub fn stop_if_unused(&self) -> anyhow::Result<()> {
        if !self.started_here {
            return Ok(());
        }
        match self.claim_for_serve() {
            Ok(_claim) => self.stop(),
            Err(_) => Ok(()),
        }
    }
}
