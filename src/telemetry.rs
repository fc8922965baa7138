//! Logging: tracing output (text or JSON), and one log line per request that carries a
//! request id and the route pattern, never the query string (it may hold a ticket).

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber; `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests build several apps) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The id of the request being handled, as stored in its extensions.
#[derive(Clone)]
pub struct RequestId(pub String);

/// Middleware: assigns a request id (keeping a sane incoming `X-Request-Id`), echoes it in
/// the response, and logs method, route pattern, status and latency.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map_or_else(new_request_id, str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.call(req).instrument(span.clone()).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| "(unmatched)".into());
    let status = response.status().as_u16();
    if let Some(metrics) = response.request().app_data::<actix_web::web::Data<crate::metrics::Metrics>>() {
        metrics.observe_request(method.as_str(), &route, status, started.elapsed().as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request handled"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

fn is_sane_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 12];
    // A request id needs uniqueness, not secrecy; fall back to zeros rather than fail.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_echoed() {
        assert!(is_sane_request_id("abc-123_x.y"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id(&"a".repeat(65)));
        assert!(!is_sane_request_id("new\nline"));
        assert_eq!(new_request_id().len(), 24);
    }
}
