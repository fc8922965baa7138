//! The database a command works on: the configured PostgreSQL, or the embedded cluster
//! (started, claimed for `serve`, migrated, and stopped again when the command ends).

use std::fs::File;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::embedded::{self, EmbeddedPostgres};

/// The database a command works on: the configured server, or the embedded cluster.
pub struct Database {
    pub pool: DbPool,
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
    _serve_claim: Option<File>,
}

impl Database {
    pub fn open(settings: &Settings, serving: bool) -> anyhow::Result<Self> {
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
    pub fn close(self, serving: bool) -> anyhow::Result<()> {
        drop(self.pool);
        match &self.embedded {
            Some(cluster) if serving => cluster.stop(),
            Some(cluster) => cluster.stop_if_unused(),
            None => Ok(()),
        }
    }
}
