//! `rollcall user import FILE [--dry-run]`: the import of `POST /users/import` from the
//! command line, with a progress bar on a terminal while passwords are hashed.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::auth::password::Hasher;
use crate::config::Settings;
use crate::db::DbPool;
use crate::users::import::{Action, Format, Import, ImportError, ImportReport, MAX_BYTES};

pub async fn run(pool: &DbPool, settings: &Settings, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    anyhow::ensure!(bytes.len() <= MAX_BYTES, "{} is larger than {MAX_BYTES} bytes", file.display());
    let format = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        Format::Json
    } else {
        Format::Csv
    };
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("hashing passwords {bar:40} {pos}/{len} ({eta})")
                .expect("unwrap: a valid template"),
        );
        bar
    });
    let progress = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let hasher = Hasher::for_this_machine();
    let import = Import {
        pool,
        hasher: &hasher,
        now: chrono::Utc::now(),
        activation_ttl: chrono::Duration::from_std(settings.activation_ttl)?,
        dry_run,
        progress: &progress,
    };
    let result = import.run(&bytes, format).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => {
            print!("{}", describe(&report, dry_run));
            Ok(())
        }
        Err(ImportError::Failed(report) | ImportError::MissingColumns(report)) => {
            for error in &report.errors {
                let field = error.field.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
                println!("row {}{field}: {}", error.row, error.message);
            }
            anyhow::bail!("refused: {} errors; nothing was imported", report.errors.len())
        }
        Err(other) => Err(other.into()),
    }
}

/// The report for a person: totals, errors by row, and the activation codes to hand out.
fn describe(report: &ImportReport, dry_run: bool) -> String {
    let mut out = format!(
        "{}{} created, {} updated, {} unchanged, {} passwords hashed, {} errors\n",
        if dry_run { "dry run (nothing written): " } else { "" },
        report.created,
        report.updated,
        report.unchanged,
        report.hashed,
        report.errors.len()
    );
    for error in &report.errors {
        let field = error.field.as_deref().map(|f| format!(" {f}")).unwrap_or_default();
        out.push_str(&format!("row {}{field}: {}\n", error.row, error.message));
    }
    for user in report.users.iter().filter(|u| u.action == Action::Create) {
        if let Some(code) = &user.activation_code {
            out.push_str(&format!("activation code for `{}`: {code}\n", user.username));
        }
    }
    out
}
