//! `rollcall serve`: the server on an opened database, until SIGINT or SIGTERM.

use std::sync::Arc;

use secrecy::ExposeSecret;

use super::database::Database;
use super::secret;
use crate::auth::password::Hasher;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::demo;
use crate::startup::Application;

/// Seeds the demo data if asked, then serves until stopped.
pub async fn serve(settings: &Settings, database: &Database, with_demo: bool) -> anyhow::Result<()> {
    return_large_blocks_to_the_os();
    if with_demo {
        print!("{}", demo::seed(&database.pool, &Hasher::new(1, 3)).await?);
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

/// Every allocation of 1 MiB or more gets its own mapping, returned to the OS when freed.
///
/// glibc otherwise raises its mmap threshold to the size of the largest block freed (up to
/// 32 MiB), after which each Argon2 hash's 19 MiB comes from, and stays in, the allocating
/// thread's arena: a login storm left the server gigabytes larger. With a fixed threshold
/// the 19 MiB blocks are mapped per hash and unmapped after it (a few hundred microseconds of
/// page faults against tens of milliseconds of hashing), so resident memory falls back after
/// a storm. Setting the threshold explicitly also turns off glibc's dynamic adjustment.
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; glibc takes its own lock to do so.
        let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024) };
        if applied != 1 {
            tracing::warn!("could not set the allocator's mmap threshold");
        }
    }
}
