//! Turns actix's extractor failures, unknown routes and wrong methods into problem+json,
//! so no client ever sees actix's default plain-text errors.

use actix_web::dev::ResourceDef;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::error::{ApiError, FieldError};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(BODY_LIMIT).error_handler(|err, _req| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| path_error(err).into())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("send the body as application/json".into())
        }
        JsonPayloadError::Deserialize(err) => deserialize_error(&err),
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    }
}

/// A missing field is a broken rule (422); anything else serde rejects (bad syntax,
/// wrong type, unknown enum value) is a malformed request (400).
fn deserialize_error(err: &serde_json::Error) -> ApiError {
    let message = err.to_string();
    if let Some(field) = missing_field(&message) {
        return ApiError::Validation(vec![FieldError::new(field, "this field is required")]);
    }
    ApiError::BadRequest(format!("malformed JSON body: {message}"))
}

/// serde's wording for a missing field is "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

fn query_error(err: QueryPayloadError) -> ApiError {
    ApiError::BadRequest(format!("malformed query string: {err}"))
}

fn path_error(err: PathError) -> ApiError {
    ApiError::BadRequest(format!("malformed path parameter: {err}"))
}

/// Answers requests that matched no route: 405 with `Allow` when the path exists under
/// another method, 404 otherwise. `routes` is the list of (pattern, methods) that the
/// OpenAPI document was generated from, so this cannot disagree with the route table.
pub async fn fallback(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    let path = req.path();
    match routes.allowed_methods(path) {
        Some(methods) => {
            let mut response = ApiError::MethodNotAllowed.error_response();
            if let Ok(value) = header::HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        None => ApiError::NotFound("no route matches this path").error_response(),
    }
}

/// The known path patterns and the methods each accepts.
pub struct RouteTable(Vec<(ResourceDef, Vec<String>)>);

impl RouteTable {
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self(routes.into_iter().map(|(pattern, methods)| (ResourceDef::new(pattern), methods)).collect())
    }

    fn allowed_methods(&self, path: &str) -> Option<Vec<String>> {
        let methods: Vec<String> = self
            .0
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        (!methods.is_empty()).then_some(methods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_read_from_serde_wording() {
        let err = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(missing_field(&err.to_string()), None);
        assert_eq!(missing_field("missing field `title` at line 1 column 2"), Some("title"));
    }

    #[test]
    fn route_table_lists_methods_of_matching_patterns() {
        let table = RouteTable::new([
            ("/api/v1/courses/{course_id}".to_string(), vec!["GET".to_string()]),
            ("/api/v1/courses".to_string(), vec!["GET".to_string(), "POST".to_string()]),
        ]);
        assert_eq!(table.allowed_methods("/api/v1/courses/7"), Some(vec!["GET".to_string()]));
        assert_eq!(table.allowed_methods("/api/v1/courses").map(|m| m.len()), Some(2));
        assert_eq!(table.allowed_methods("/api/v1/nope"), None);
    }
}
