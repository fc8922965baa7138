//! Turns actix's extractor failures, unknown routes and wrong methods into problem+json,
//! so no client ever sees actix's default plain-text errors.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::{Payload, ResourceDef};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

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

/// A JSON request body that must be an object, read into `T`.
///
/// Two gaps between serde and JSON Schema are closed here, once for every body: serde would
/// read a struct from a JSON array (`[null, null]` as `{"real_name": null, …}`), which the
/// documented `type: object` forbids; and JSON Schema counts `47.0` as an integer, which serde
/// refuses for an `i64` field. Everything else (limit, content type, error shape) is actix's
/// `Json` with [`json_config`].
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            Ok(JsonObject(from_object(value)?))
        })
    }
}

fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    };
    serde_json::from_value(Value::Object(integral_numbers(object))).map_err(|err| deserialize_error(&err))
}

/// Rewrites numbers with a zero fraction (`47.0`) as integers, at any depth.
fn integral_numbers(object: Map<String, Value>) -> Map<String, Value> {
    fn walk(value: Value) -> Value {
        match value {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Number(Number::from(f as i64)),
                _ => Value::Number(n),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
            Value::Object(object) => Value::Object(integral_numbers(object)),
            other => other,
        }
    }
    object.into_iter().map(|(key, value)| (key, walk(value))).collect()
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

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        n: Option<i64>,
        tags: Option<Vec<i64>>,
    }

    #[test]
    fn bodies_must_be_objects() {
        let err = from_object::<Body>(serde_json::json!([null, null])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
        assert!(from_object::<Body>(serde_json::json!("text")).is_err());
        assert_eq!(from_object::<Body>(serde_json::json!({})).unwrap(), Body { n: None, tags: None });
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        let body: Body = from_object(serde_json::json!({"n": 47.0, "tags": [1.0, -2.0]})).unwrap();
        assert_eq!(body, Body { n: Some(47), tags: Some(vec![1, -2]) });
        assert!(matches!(from_object::<Body>(serde_json::json!({"n": 47.5})), Err(ApiError::BadRequest(_))));
        assert!(from_object::<Body>(serde_json::json!({"n": 1.0e300})).is_err());
    }

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
