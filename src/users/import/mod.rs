//! `POST /users/import` and `rollcall user import`: a term's people in one go, from a CSV
//! export or JSON. A dry run only reports; a real import is all or nothing: one row error
//! and nothing is written. Users created without a password get an activation code, shown
//! once in the report and stored only as a SHA-256.

pub mod parse;
mod plan;
mod route;

pub use parse::MAX_ROWS;
pub use plan::{Action, ImportReport, ImportedUser, RowError};
pub use route::import_users;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use futures_util::StreamExt;

use super::queries::{self, NewUserRow, Taken};
use crate::auth::password::{HashError, Hasher};
use crate::auth::sessions::{digest, random_secret};
use crate::db::{self, DbError, DbPool};
use crate::error::ApiError;
use crate::schema::activation_codes;
use parse::Unreadable;
use plan::Plan;

/// Largest import file.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// How the file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Malformed(String),
    #[error("the file lacks required columns")]
    MissingColumns(Box<ImportReport>),
    #[error("the file has more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("{} rows have errors; nothing was imported", .0.errors.len())]
    Failed(Box<ImportReport>),
    #[error("{}", .0.message())]
    Taken(Taken),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        let report = |report: &ImportReport| Box::new(serde_json::to_value(report).unwrap_or_default());
        match error {
            ImportError::Malformed(message) => ApiError::BadRequest(message),
            ImportError::MissingColumns(r) | ImportError::Failed(r) => ApiError::ImportFailed(report(&r)),
            ImportError::TooManyRows => ApiError::TooManyRows { limit: MAX_ROWS },
            ImportError::Taken(taken) => taken.into(),
            ImportError::Database(error) => error.into(),
            ImportError::Query(error) => error.into(),
            ImportError::Hash(error) => error.into(),
        }
    }
}

/// What an import needs beyond the file.
pub struct Import<'a> {
    pub pool: &'a DbPool,
    pub hasher: &'a Hasher,
    pub now: DateTime<Utc>,
    pub activation_ttl: Duration,
    pub dry_run: bool,
    /// Called as passwords are hashed: (done, of).
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
}

impl Import<'_> {
    pub async fn run(&self, bytes: &[u8], format: Format) -> Result<ImportReport, ImportError> {
        let parsed = match format {
            Format::Csv => parse::csv(bytes),
            Format::Json => parse::json(bytes),
        };
        let rows = parsed.map_err(|unreadable| match unreadable {
            Unreadable::Malformed(message) => ImportError::Malformed(message),
            Unreadable::TooManyRows => ImportError::TooManyRows,
            Unreadable::MissingColumns(missing) => ImportError::MissingColumns(Box::new(ImportReport {
                errors: missing
                    .into_iter()
                    .map(|f| RowError { row: 0, field: Some(f.field), message: f.message })
                    .collect(),
                ..ImportReport::default()
            })),
        })?;
        let Plan { mut report, creates, updates } =
            db::run(self.pool, move |conn| Ok::<_, ImportError>(plan::plan(conn, rows)?)).await?;
        if self.dry_run {
            return Ok(report);
        }
        if !report.errors.is_empty() {
            return Err(ImportError::Failed(Box::new(report)));
        }
        let hashes = self.hash_passwords(&creates).await?;
        report.hashed = hashes.iter().flatten().count();
        let codes: Vec<Option<String>> =
            hashes.iter().map(|hash| hash.is_none().then(random_secret::<16>)).collect();
        let (now, expires_at) = (self.now, self.now + self.activation_ttl);
        let rows: Vec<usize> = creates.iter().map(|c| c.row).collect();
        let stored_codes = codes.clone();
        db::run(self.pool, move |conn| -> Result<(), ImportError> {
            conn.transaction(|conn| {
                let new: Vec<_> = creates
                    .iter()
                    .zip(&hashes)
                    .map(|(c, hash)| NewUserRow {
                        username: &c.username,
                        password_hash: hash.as_deref(),
                        role: c.role,
                        real_name: &c.real_name,
                        student_number: c.student_number.as_deref(),
                        created_at: now,
                    })
                    .collect();
                let inserted = match queries::insert_many(conn, &new)? {
                    Ok(inserted) => inserted,
                    Err(taken) => return Err(ImportError::Taken(taken)),
                };
                // Matched by username, not by position: RETURNING promises no order.
                let code_of: std::collections::HashMap<String, &String> = creates
                    .iter()
                    .zip(&stored_codes)
                    .filter_map(|(c, code)| code.as_ref().map(|code| (c.username.to_lowercase(), code)))
                    .collect();
                let activations: Vec<_> = inserted
                    .iter()
                    .filter_map(|(id, username)| {
                        code_of.get(&username.to_lowercase()).map(|code| (*id, digest(code)))
                    })
                    .map(|(id, hash)| {
                        (
                            activation_codes::user_id.eq(id),
                            activation_codes::code_hash.eq(hash),
                            activation_codes::expires_at.eq(expires_at),
                        )
                    })
                    .collect();
                diesel::insert_into(activation_codes::table).values(&activations).execute(conn)?;
                for update in &updates {
                    let change = queries::AccountChange {
                        real_name: update.real_name.clone(),
                        student_number: update.student_number.clone().map(Some),
                        disabled: None,
                    };
                    queries::update_account(conn, update.user_id, &change)?.map_err(ImportError::Taken)?;
                }
                Ok(())
            })
        })
        .await?;
        for (row, code) in rows.into_iter().zip(codes) {
            if let Some(user) = report.users.iter_mut().find(|u| u.row == row) {
                user.activation_code = code;
            }
        }
        Ok(report)
    }

    /// The password hashes of the rows that give one, a few at a time on the bounded hasher.
    async fn hash_passwords(&self, creates: &[plan::NewRow]) -> Result<Vec<Option<String>>, HashError> {
        let total = creates.iter().filter(|c| c.password.is_some()).count();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let hashes = futures_util::stream::iter(creates)
            .map(|create| async {
                let Some(password) = &create.password else { return Ok::<_, HashError>(None) };
                let hash = self.hasher.hash(password.expose().to_owned()).await?;
                (self.progress)(done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1, total);
                Ok(Some(hash))
            })
            .buffered(4);
        // Stops at the first failure (a full queue): the import is refused anyway.
        futures_util::pin_mut!(hashes);
        let mut done_hashes = Vec::with_capacity(creates.len());
        while let Some(hash) = hashes.next().await {
            done_hashes.push(hash?);
        }
        Ok(done_hashes)
    }
}
