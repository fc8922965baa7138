//! The command line, and only its dispatch: each command's work lives in its own module.

mod database;
mod healthcheck;
mod import;
mod secret;
mod serve;

use clap::{Parser, Subcommand};

use crate::auth::password::Hasher;
use crate::config::Settings;
use crate::domain::user::Role;
use crate::users::{self, CreateUser, CreateUserError};
use crate::watch::Watch;
use crate::{demo, startup, telemetry};
use database::Database;

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
    /// Import users from a CSV export or a JSON file, as `POST /users/import` does; prints
    /// the report (with the activation codes of created users without a password).
    Import {
        /// The file: `.json` is read as JSON, anything else as CSV.
        file: std::path::PathBuf,
        /// Report what would happen, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Reset a user's password: print a fresh activation code for `POST /auth/activate`
    /// (revokes their sessions; how an operator locked out of every admin gets back in).
    Activation {
        #[arg(long)]
        username: String,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse()
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve { demo: false });
    match command {
        Command::Openapi => {
            print!("{}", startup::document_json());
            return Ok(());
        }
        Command::Healthcheck { url } => return healthcheck::check(url),
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
            Command::Serve { demo } => serve::serve(&settings, &database, demo).await,
            Command::Migrate => Ok(()),
            Command::User {
                action: UserCommand::Add { username, password, role, real_name, student_number },
            } => {
                let real_name = if real_name.is_empty() { username.clone() } else { real_name };
                let input = CreateUser { username, password, role, real_name, student_number };
                match users::create(&database.pool, &Hasher::new(1, 1), input, chrono::Utc::now()).await {
                    Ok(user) => {
                        println!("created {} `{}` (id {})", user.role, user.username, user.id);
                        Ok(())
                    }
                    Err(err) => Err(anyhow::anyhow!("{}", describe(&err))),
                }
            }
            Command::User { action: UserCommand::Import { file, dry_run } } => {
                import::run(&database.pool, &settings, &file, dry_run).await
            }
            Command::User { action: UserCommand::Activation { username } } => {
                let ttl = chrono::Duration::from_std(settings.activation_ttl)?;
                let activation = crate::auth::activation::reset(&database.pool, &username, ttl).await?;
                println!("activation code for `{username}`: {}", activation.activation_code);
                println!(
                    "valid until {} (single use; give it to the user)",
                    activation.expires_at.to_rfc3339()
                );
                Ok(())
            }
            Command::Demo => demo::seed(&database.pool, &Hasher::new(1, 3))
                .await
                .map(|credentials| print!("{credentials}")),
            Command::Openapi | Command::Watch { .. } | Command::Healthcheck { .. } => {
                unreachable!("handled above")
            }
        };
        let finished = database.close(serving);
        result.and(finished)
    })
}

/// A user-facing description of a refused `user add`.
fn describe(err: &CreateUserError) -> String {
    match err {
        CreateUserError::Invalid(errors) => errors
            .iter()
            .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
