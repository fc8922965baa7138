//! The command line: `serve` (default), `migrate`, `user add`, `demo`, `openapi`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::embedded::{self, EmbeddedPostgres};
use crate::startup::Application;
use crate::users::{self, CreateUser, model::Role};
use crate::watch::Watch;
use crate::{demo, openapi, telemetry};

#[derive(Parser)]
#[command(name = "rollcall", version, about = "Classroom check-in backend")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Applies pending migrations first.
    Serve {
        /// Create the demo users, course and lesson first (see `rollcall demo`).
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Create (idempotently) a demo teacher, 30 students, a course and a lesson.
    Demo,
    /// Print the OpenAPI document to stdout.
    Openapi,
    /// Exit 0 if the server at ROLLCALL_BIND (or --url) is ready, 1 otherwise (for
    /// container health checks; needs no curl).
    Healthcheck {
        /// Base URL of the server; default: the local address of ROLLCALL_BIND.
        #[arg(long)]
        url: Option<String>,
    },
    /// Follow a lesson's live stream, printing one JSON message per line.
    Watch {
        /// The lesson to watch.
        #[arg(long)]
        lesson: i64,
        /// A teacher of the lesson (or an admin).
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "")]
        real_name: String,
        #[arg(long)]
        student_number: Option<String>,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse()
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve { demo: false });
    match command {
        Command::Openapi => {
            print!("{}", openapi::to_pretty_json());
            return Ok(());
        }
        Command::Healthcheck { url } => return healthcheck(url),
        Command::Watch { lesson, username, password, server } => {
            let watch = Watch { server, lesson, username, password };
            return actix_web::rt::System::new().block_on(watch.run());
        }
        _ => {}
    }
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        let serving = matches!(command, Command::Serve { .. });
        let database = Database::open(&settings, serving)?;
        let result = match command {
            Command::Serve { demo } => serve(&settings, &database, demo).await,
            Command::Migrate => Ok(()),
            Command::User {
                action: UserCommand::Add { username, password, role, real_name, student_number },
            } => {
                let real_name = if real_name.is_empty() { username.clone() } else { real_name };
                let input = CreateUser { username, password, role, real_name, student_number };
                match users::create(&database.pool, input, chrono::Utc::now()).await {
                    Ok(user) => {
                        println!("created {} `{}` (id {})", user.role, user.username, user.id);
                        Ok(())
                    }
                    Err(err) => Err(anyhow::anyhow!("{}", describe(&err))),
                }
            }
            Command::Demo => demo::seed(&database.pool).await.map(|credentials| print!("{credentials}")),
            Command::Openapi | Command::Watch { .. } | Command::Healthcheck { .. } => {
                unreachable!("handled above")
            }
        };
        let finished = database.close(serving);
        result.and(finished)
    })
}

fn healthcheck(url: Option<String>) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None => {
            let bind = Settings::from_env()?.bind;
            // A server bound to every interface is reached through loopback.
            let host =
                if bind.ip().is_unspecified() { "127.0.0.1".to_owned() } else { bind.ip().to_string() };
            format!("http://{host}:{}", bind.port())
        }
    };
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    actix_web::rt::System::new().block_on(async move {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
        let status = client.get(&url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    })
}

async fn serve(settings: &Settings, database: &Database, with_demo: bool) -> anyhow::Result<()> {
    if with_demo {
        print!("{}", demo::seed(&database.pool).await?);
    }
    let secret = jwt_secret(settings)?;
    let app = Application::build(
        settings,
        secret.expose_secret().as_bytes(),
        database.pool.clone(),
        &database.url,
        Arc::new(SystemClock),
    )?;
    let address = format!("http://{}:{}", settings.bind.ip(), app.port());
    tracing::info!("rollcall is listening on {address} (API docs at {address}/docs/)");
    app.run_until_stopped().await?;
    tracing::info!("server stopped");
    Ok(())
}

/// A user-facing description of a rejected CLI input.
fn describe(err: &crate::error::ApiError) -> String {
    match err {
        crate::error::ApiError::Validation(errors) => errors
            .iter()
            .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The JWT secret: from configuration, or (embedded mode only) generated once and kept in
/// the data directory so tokens survive restarts.
fn jwt_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join("jwt-secret");
    load_or_create_secret(&path)
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<SecretString> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let secret = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(SecretString::from(secret))
}

/// The database a command works on: the configured server, or the embedded cluster.
struct Database {
    pool: DbPool,
    url: String,
    embedded: Option<EmbeddedPostgres>,
    _serve_claim: Option<File>,
}

impl Database {
    fn open(settings: &Settings, serving: bool) -> anyhow::Result<Self> {
        let (url, embedded, claim) = match &settings.database_url {
            Some(url) => (url.expose_secret().to_owned(), None, None),
            None => {
                let mut cluster = EmbeddedPostgres::new(&settings.data_dir)?;
                let claim = if serving { Some(cluster.claim_for_serve()?) } else { None };
                cluster.start("")?;
                tracing::info!(
                    cluster = %cluster.cluster_dir().display(),
                    os_user = %cluster.os_user(),
                    started_here = cluster.started_here(),
                    "using the embedded PostgreSQL"
                );
                (cluster.url(embedded::DATABASE), Some(cluster), claim)
            }
        };
        let pool = db::pool(&url, settings.db_pool_size);
        let database = Self { pool, url, embedded, _serve_claim: claim };
        let migrated = database
            .pool
            .get()
            .context("cannot connect to the database")
            .and_then(|mut conn| db::migrate(&mut conn));
        match migrated {
            Ok(count) => {
                if count > 0 {
                    tracing::info!(count, "applied migrations");
                }
                Ok(database)
            }
            Err(err) => {
                let _ = database.close(serving);
                Err(err)
            }
        }
    }

    /// Releases the pool and stops the embedded cluster if this command owns it.
    fn close(self, serving: bool) -> anyhow::Result<()> {
        drop(self.pool);
        match &self.embedded {
            Some(cluster) if serving => cluster.stop(),
            Some(cluster) => cluster.stop_if_unused(),
            None => Ok(()),
        }
    }
}
