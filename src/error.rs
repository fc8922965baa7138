//! The one error type every handler returns, rendered as RFC 9457 problem+json with a
//! stable `code` the frontend switches on. Internal causes are logged, never sent.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, DbError};
use crate::domain::text::{FieldError, Invalid};

/// RFC 9457 problem details, as sent on every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:rollcall:problem:<code>`.
    #[schema(example = "urn:rollcall:problem:validation_failed")]
    pub r#type: String,
    /// Short, human-readable summary of the kind of problem.
    #[schema(example = "Validation failed")]
    pub title: &'static str,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong with this request, for a human.
    pub detail: String,
    /// Stable snake_case identifier to switch on.
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// Present on `validation_failed`: one entry per offending field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Present on `import_failed`: the import's report (an `ImportReport`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("wrong username or password")]
    InvalidCredentials,
    /// `POST /me/password` with a wrong current password: 403, unlike a failed login.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("this session has been revoked; log in again")]
    SessionRevoked,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    /// A username or student number someone else has, or a change the rules forbid (`conflict`).
    #[error("{0}")]
    Conflict(&'static str),
    #[error("check-in is already open for this lesson")]
    CheckinAlreadyOpen,
    #[error("check-in is not open for this lesson")]
    CheckinNotOpen,
    #[error("this lesson is cancelled; un-cancel it first")]
    LessonCancelled,
    #[error("check-in for this lesson has been opened; cancel it instead")]
    LessonHasAttendance,
    #[error("this route only answers WebSocket upgrade requests")]
    UpgradeRequired,
    #[error("no open check-in of your courses matches this code")]
    InvalidCode,
    #[error("this code has expired; enter the one shown now")]
    CodeExpired,
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("an import holds at most {limit} rows")]
    TooManyRows { limit: usize },
    /// An import refused as a whole; the problem carries its report under `report`.
    #[error("rows of the import have errors; nothing was imported")]
    ImportFailed(Box<serde_json::Value>),
    #[error("the request headers are larger than {limit} bytes in total")]
    HeadersTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error(
        "this route answers application/json, text/csv or an Excel workbook; the Accept header names none of them"
    )]
    NotAcceptable,
    #[error("you already have {limit} live connections open; close one first")]
    TooManyConnections { limit: usize },
    #[error("{0}; try again shortly")]
    ServerBusy(&'static str),
    #[error("the database is unavailable; try again shortly")]
    DatabaseUnavailable,
    #[error("an unexpected error occurred")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// The stable `code` clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::SessionRevoked => "session_revoked",
            Self::WrongCurrentPassword => "invalid_credentials",
            Self::AccountDisabled => "account_disabled",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::CheckinAlreadyOpen => "checkin_already_open",
            Self::CheckinNotOpen => "checkin_not_open",
            Self::LessonCancelled => "lesson_cancelled",
            Self::LessonHasAttendance => "lesson_has_attendance",
            Self::UpgradeRequired => "upgrade_required",
            Self::InvalidCode => "invalid_code",
            Self::CodeExpired => "code_expired",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => "payload_too_large",
            Self::ImportFailed(_) => "import_failed",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotAcceptable => "not_acceptable",
            Self::TooManyConnections { .. } => "too_many_connections",
            Self::ServerBusy(_) => "server_busy",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Bad request",
            Self::Validation(_) => "Validation failed",
            Self::Unauthorized(_) => "Unauthorized",
            Self::InvalidCredentials => "Invalid credentials",
            Self::SessionRevoked => "Session revoked",
            Self::WrongCurrentPassword => "Invalid credentials",
            Self::AccountDisabled => "Account disabled",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound(_) => "Not found",
            Self::Conflict(_)
            | Self::CheckinAlreadyOpen
            | Self::CheckinNotOpen
            | Self::LessonCancelled
            | Self::LessonHasAttendance => "Conflict",
            Self::UpgradeRequired => "Upgrade required",
            Self::InvalidCode => "Invalid code",
            Self::CodeExpired => "Code expired",
            Self::TooManyAttempts { .. } => "Too many attempts",
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => "Payload too large",
            Self::ImportFailed(_) => "Import failed",
            Self::HeadersTooLarge { .. } => "Request header fields too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::MethodNotAllowed => "Method not allowed",
            Self::NotAcceptable => "Not acceptable",
            Self::TooManyConnections { .. } => "Too many connections",
            Self::ServerBusy(_) => "Server busy",
            Self::DatabaseUnavailable => "Service unavailable",
            Self::Unexpected(_) => "Internal server error",
        }
    }

    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            r#type: format!("urn:rollcall:problem:{code}"),
            title: self.title(),
            status: self.status_code().as_u16(),
            detail: self.to_string(),
            code,
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            report: match self {
                Self::ImportFailed(report) => Some((**report).clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidCredentials | Self::SessionRevoked => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) | Self::AccountDisabled | Self::WrongCurrentPassword => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_)
            | Self::CheckinAlreadyOpen
            | Self::CheckinNotOpen
            | Self::LessonCancelled
            | Self::LessonHasAttendance => StatusCode::CONFLICT,
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::InvalidCode | Self::CodeExpired | Self::ImportFailed(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::TooManyAttempts { .. } | Self::TooManyConnections { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::DatabaseUnavailable | Self::ServerBusy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "request failed unexpectedly");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            Self::TooManyAttempts { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Unauthorized(_) | Self::InvalidCredentials | Self::SessionRevoked => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::DatabaseUnavailable | Self::ServerBusy(_) => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            Self::UpgradeRequired => {
                response.insert_header((header::UPGRADE, "websocket"));
                response.insert_header((header::CONNECTION, "Upgrade"));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// Database failures: a missing row is a 404, a lost or exhausted database a 503, text
/// PostgreSQL cannot store the client's fault, anything else a bug.
impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::NotFound("no such resource"),
            error if db::is_unavailable(&error) => Self::DatabaseUnavailable,
            error if db::is_invalid_text(&error) => {
                Self::BadRequest("text must not contain NUL characters".into())
            }
            other => Self::Unexpected(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) => Self::DatabaseUnavailable,
            DbError::Task(cause) => {
                Self::Unexpected(anyhow::Error::new(cause).context("blocking task failed"))
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(Invalid(errors): Invalid) -> Self {
        Self::Validation(errors)
    }
}

/// The problem responses of an operation, from the errors its handler returns: status,
/// `code` and headers come from each `ApiError` itself, so the document cannot name a status
/// or code the handler does not send. Errors with the same status share one response.
pub fn problem_responses(
    errors: &[(ApiError, &str)],
) -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let mut by_status: BTreeMap<u16, Vec<&(ApiError, &str)>> = BTreeMap::new();
    for entry in errors {
        by_status.entry(entry.0.status_code().as_u16()).or_default().push(entry);
    }
    by_status
        .into_iter()
        .map(|(status, entries)| {
            let mut description = String::new();
            for (i, (error, text)) in entries.iter().enumerate() {
                let text = match i {
                    0 => text.to_string(),
                    // "A (`a`), b (`b`), or c (`c`)": later entries continue the sentence.
                    _ => text[..1].to_lowercase() + &text[1..],
                };
                let separator = match i {
                    0 => "",
                    _ if i + 1 == entries.len() => {
                        if entries.len() == 2 {
                            " or "
                        } else {
                            ", or "
                        }
                    }
                    _ => ", ",
                };
                description.push_str(&format!("{separator}{text} (`{}`)", error.code()));
            }
            let mut response = ResponseBuilder::new().description(description).content(
                "application/problem+json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            );
            for (error, _) in entries {
                if let Some((name, description)) = error.documented_header() {
                    use utoipa::PartialSchema;
                    let schema = if name == "Retry-After" { u64::schema() } else { String::schema() };
                    let header = HeaderBuilder::new().schema(Some(schema)).description(Some(description));
                    response = response.header(name, header.build());
                }
            }
            (status.to_string(), response.build().into())
        })
        .collect()
}

impl ApiError {
    /// The header this error's answer carries that a client acts on, for the document.
    fn documented_header(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::TooManyAttempts { .. } => {
                Some(("Retry-After", "Seconds until attempts are accepted again"))
            }
            Self::UpgradeRequired => Some(("Upgrade", "`websocket`")),
            _ => None,
        }
    }
}

/// Declares the problem responses an operation documents, as the `ApiError`s its handler
/// returns with a description of when: `responses((status = 200, …), OpenCheckinProblems)`.
macro_rules! problems {
    ($(#[$meta:meta])* $name:ident { $($error:expr => $description:literal,)+ }) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::error::problem_responses(&[$(($error, $description)),+])
            }
        }
    };
}
pub(crate) use problems;
