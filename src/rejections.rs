//! Turns actix's extractor failures, unknown routes and wrong methods into problem+json,
//! so no client ever sees actix's default plain-text errors.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

use crate::domain::text::FieldError;
use crate::error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Largest accepted total of header names and values. (actix itself drops a request whose
/// headers exceed 128 KiB before any middleware sees it.)
pub const HEADER_LIMIT: usize = 16 * 1024;

/// Middleware: answers 431 problem+json for headers over [`HEADER_LIMIT`], before any
/// handler runs.
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let size: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if size > HEADER_LIMIT {
        let response = ApiError::HeadersTooLarge { limit: HEADER_LIMIT }.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(BODY_LIMIT).error_handler(|err, _req| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        // `PUT /lessons/1/attendance/bulk` reaches `PUT …/attendance/{student_id}` and fails to
        // read "bulk" as an id; the path is a route of its own, under another method: 405.
        if let Some(routes) = req.app_data::<web::Data<RouteTable>>()
            && let Some(methods) = routes.static_methods(req.path())
            && !methods.iter().any(|m| m == req.method().as_str())
        {
            return actix_web::error::InternalError::from_response(err, method_not_allowed(&methods)).into();
        }
        path_error(err).into()
    })
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
/// Three gaps between serde and JSON Schema are closed here, once for every body: serde would
/// read a struct from a JSON array (`[null, null]` as `{"real_name": null, …}`), which the
/// documented `type: object` forbids; JSON Schema counts `47.0` as an integer, which serde
/// refuses for an `i64` field; and a key given twice (`{"a": 1, "a": 2}`) is refused rather
/// than silently resolved. Everything else (limit, content type, nesting depth, error shape)
/// is actix's `Json` with [`json_config`].
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
        let body = web::Json::<Strict>::from_request(req, payload);
        Box::pin(async move {
            let Strict(value) = body.await?.into_inner();
            Ok(JsonObject(from_object(value)?))
        })
    }
}

fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|err| deserialize_error(&err))
}

/// A JSON value read strictly: a repeated object key is an error, and a number with a zero
/// fraction (`47.0`) becomes an integer.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        input.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Below 2^53 every integral f64 is exactly an integer.
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(Value::from(v as i64))
        } else {
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
        Some(methods) => method_not_allowed(&methods),
        None => ApiError::NotFound("no route matches this path").error_response(),
    }
}

/// 405 with `Allow` naming `methods`.
fn method_not_allowed(methods: &[String]) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed.error_response();
    if let Ok(value) = header::HeaderValue::from_str(&methods.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The known path patterns and the methods each accepts.
pub struct RouteTable(Vec<(ResourceDef, Vec<String>)>);

impl RouteTable {
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self(routes.into_iter().map(|(pattern, methods)| (ResourceDef::new(pattern), methods)).collect())
    }

    /// The methods of the patterns that match `path`; the most specific pattern (fewest
    /// parameters: `/users/import` over `/users/{user_id}`) wins over the others.
    fn allowed_methods(&self, path: &str) -> Option<Vec<String>> {
        let (_, methods) = self.most_specific(path)?;
        Some(methods)
    }

    /// The methods of the most specific patterns matching `path`, if a less specific one
    /// matches too: the request may have been routed to the wrong one by its method.
    fn static_methods(&self, path: &str) -> Option<Vec<String>> {
        let (shadowing, methods) = self.most_specific(path)?;
        shadowing.then_some(methods)
    }

    /// Whether less specific patterns match as well, and the most specific ones' methods.
    fn most_specific(&self, path: &str) -> Option<(bool, Vec<String>)> {
        let parameters = |def: &ResourceDef| def.pattern().map_or(usize::MAX, |p| p.matches('{').count());
        let matching: Vec<&(ResourceDef, Vec<String>)> =
            self.0.iter().filter(|(def, _)| def.is_match(path)).collect();
        let fewest = matching.iter().map(|(def, _)| parameters(def)).min()?;
        let shadowing = matching.iter().any(|(def, _)| parameters(def) > fewest);
        let methods: Vec<String> = matching
            .iter()
            .filter(|(def, _)| parameters(def) == fewest)
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        (!methods.is_empty()).then_some((shadowing, methods))
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>`: a field
/// sent as `null` is `Some(None)` (clear it), one left out stays `None` (keep it).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    input: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(input).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        n: Option<i64>,
        tags: Option<Vec<i64>>,
    }

    fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
        let Strict(value) = serde_json::from_str(text).map_err(|err| deserialize_error(&err))?;
        from_object(value)
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert!(matches!(from_text::<Body>(r#"{"n": 1, "n": 2}"#), Err(ApiError::BadRequest(_))));
        assert!(from_text::<Value>(r#"{"a": {"b": 1, "b": 1}}"#).is_err());
        assert_eq!(from_text::<Body>(r#"{"n": 1}"#).unwrap(), Body { n: Some(1), tags: None });
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
        let body: Body = from_text(r#"{"n": 47.0, "tags": [1.0, -2.0]}"#).unwrap();
        assert_eq!(body, Body { n: Some(47), tags: Some(vec![1, -2]) });
        assert!(matches!(from_text::<Body>(r#"{"n": 47.5}"#), Err(ApiError::BadRequest(_))));
        assert!(from_text::<Body>(r#"{"n": 1.0e300}"#).is_err());
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
        let shadowed = RouteTable::new([
            ("/api/v1/users/{user_id}".to_string(), vec!["GET".to_string()]),
            ("/api/v1/users/import".to_string(), vec!["POST".to_string()]),
        ]);
        assert_eq!(shadowed.allowed_methods("/api/v1/users/import"), Some(vec!["POST".to_string()]));
        assert_eq!(shadowed.static_methods("/api/v1/users/import"), Some(vec!["POST".to_string()]));
        assert_eq!(shadowed.static_methods("/api/v1/users/7"), None, "only one pattern matches");
        let nested = RouteTable::new([
            ("/api/v1/lessons/{lesson_id}/attendance/{student_id}".to_string(), vec!["PUT".to_string()]),
            ("/api/v1/lessons/{lesson_id}/attendance/bulk".to_string(), vec!["POST".to_string()]),
        ]);
        assert_eq!(
            nested.static_methods("/api/v1/lessons/1/attendance/bulk"),
            Some(vec!["POST".to_string()])
        );
    }
}
