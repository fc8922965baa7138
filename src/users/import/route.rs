//! The HTTP side of an import: the body (CSV or JSON, at most 2 MiB), `?dry_run=`, and
//! the report.

use actix_web::http::header;
use actix_web::{HttpRequest, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse::JsonImport;
use super::{Format, Import, ImportReport, MAX_BYTES};
use crate::auth::Authenticator;
use crate::auth::extract::{AdminOnly, Authenticated};
use crate::auth::password::Hasher;
use crate::error::{ApiError, problems};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true`: report what the import would do, and write nothing.
    pub dry_run: Option<bool>,
}

problems!(ImportUsersProblems {
    ApiError::BadRequest(String::new()) => "Not UTF-8, not CSV, or malformed JSON",
    ApiError::Forbidden("") => "Caller is not an admin",
    ApiError::ImportFailed(Box::default()) => "A row has an error, or a required column is missing; the problem's `report` says which (nothing was written)",
    ApiError::PayloadTooLarge { limit: MAX_BYTES } => "More than 2 MiB, or more than 5,000 rows",
    ApiError::Conflict("") => "A username or student number was taken meanwhile by another request",
    ApiError::UnsupportedMediaType(String::new()) => "Neither `text/csv` nor `application/json`",
    ApiError::ServerBusy("") => "Too many passwords are being hashed at once",
});

/// Import users (admin).
///
/// A CSV file (`Content-Type: text/csv`, a header row with `username`, `real_name`, `role`
/// and optionally `student_number` and `password`, in any order; `,` or `;`; UTF-8 with or
/// without a byte-order mark; quoted fields may hold commas and line breaks) or JSON
/// `{"users": [{"username", "real_name", "role", "student_number"?, "password"?}]}`. At most
/// 5,000 rows and 2 MiB.
///
/// Rows are matched on username (case-insensitive): new ones are created, existing ones get
/// their `real_name` and `student_number` updated (an empty cell never clears a value; a
/// password for an existing user is ignored; a different role is a row error). A created
/// user without a password gets an activation code, returned only in this report (never on
/// a dry run). All or nothing: any row error answers 422 `import_failed` with the report, and
/// nothing is written. With `?dry_run=true` the answer is always the report (200), and
/// nothing is written. Importing the same file again changes nothing.
#[utoipa::path(
    tag = "users",
    params(ImportQuery),
    request_body(
        description = "The people to import",
        content(
            (String = "text/csv", example = "username;real_name;role;student_number\nada.l;\"Lovelace, Ada\";student;s1001\n"),
            (JsonImport = "application/json", example = json!({"users": [{"username": "ada.l", "real_name": "Ada Lovelace", "role": "student", "student_number": "s1001"}]})),
        )
    ),
    responses((status = 200, description = "The report (for a dry run, what would happen)", body = ImportReport), ImportUsersProblems)
)]
#[post("/users/import")]
pub async fn import_users(
    req: HttpRequest,
    mut body: web::Payload,
    auth: web::Data<Authenticator>,
    hasher: web::Data<Hasher>,
    _admin: Authenticated<AdminOnly>,
    query: web::Query<ImportQuery>,
) -> Result<web::Json<ImportReport>, ApiError> {
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let format = match content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase().as_str()
    {
        "text/csv" => Format::Csv,
        "application/json" => Format::Json,
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "send the file as text/csv or application/json".into(),
            ));
        }
    };
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        if bytes.len() + chunk.len() > MAX_BYTES {
            return Err(ApiError::PayloadTooLarge { limit: MAX_BYTES });
        }
        bytes.extend_from_slice(&chunk);
    }
    let import = Import {
        pool: &auth.pool,
        hasher: &hasher,
        now: auth.clock.now(),
        activation_ttl: auth.activation_ttl,
        dry_run: query.dry_run.unwrap_or(false),
        progress: &|_, _| {},
    };
    let report = import.run(&bytes, format).await?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        "users imported"
    );
    Ok(web::Json(report))
}
