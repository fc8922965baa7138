//! `rollcall serve`: the server on an opened database, until SIGINT or SIGTERM.

use std::sync::Arc;

use secrecy::ExposeSecret;

use super::database::Database;
use super::secret;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::demo;
use crate::startup::Application;

/// Seeds the demo data if asked, then serves until stopped.
pub async fn serve(settings: &Settings, database: &Database, with_demo: bool) -> anyhow::Result<()> {
    if with_demo {
        print!("{}", demo::seed(&database.pool).await?);
    }
    let secret = secret::jwt_secret(settings)?;
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
