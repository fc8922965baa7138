//! The one error type every handler returns, rendered as RFC 9457 problem+json with a
//! stable `code` the frontend switches on. Internal causes are logged, never sent.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The request field, as spelled in the body or query (e.g. `rotation_seconds`).
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

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
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("no open check-in of your courses matches this code")]
    InvalidCode,
    #[error("this code has expired; enter the one shown now")]
    CodeExpired,
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request headers are larger than {limit} bytes in total")]
    HeadersTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
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
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The stable `code` clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. } => code,
            Self::InvalidCode => "invalid_code",
            Self::CodeExpired => "code_expired",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
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
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound(_) => "Not found",
            Self::Conflict { .. } => "Conflict",
            Self::InvalidCode => "Invalid code",
            Self::CodeExpired => "Code expired",
            Self::TooManyAttempts { .. } => "Too many attempts",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::HeadersTooLarge { .. } => "Request header fields too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::MethodNotAllowed => "Method not allowed",
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
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::InvalidCode | Self::CodeExpired => StatusCode::UNPROCESSABLE_ENTITY,
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
            Self::Unauthorized(_) | Self::InvalidCredentials => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::DatabaseUnavailable | Self::ServerBusy(_) => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// Database failures: a missing row is a 404, a lost or exhausted database a 503,
/// anything else a bug.
impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => Self::NotFound("no such resource"),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => Self::DatabaseUnavailable,
            // The database going away mid-query, refusing connections while it restarts, or
            // cancelling a statement that ran past `statement_timeout`: all a 503, retryable.
            Error::DatabaseError(_, info) if is_unavailable(info.message()) => Self::DatabaseUnavailable,
            // PostgreSQL text cannot hold NUL: that is the client's input, not our bug.
            Error::DatabaseError(_, info) if info.message().contains("invalid byte sequence") => {
                Self::BadRequest("text must not contain NUL characters".into())
            }
            other => Self::Unexpected(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

fn is_unavailable(message: &str) -> bool {
    [
        "canceling statement due to statement timeout",
        "terminating connection",
        "the database system is",
        "server closed the connection",
        "connection to server",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Rejects a body that failed validation, or passes the value through.
pub fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(errors)) }
}

/// Parses an optional field, collecting its error under `field`, so one response can
/// report every invalid field at once.
pub fn parse_field<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    match value.map(parse) {
        Some(Ok(parsed)) => Some(parsed),
        Some(Err(message)) => {
            errors.push(FieldError::new(field, message));
            None
        }
        None => None,
    }
}
