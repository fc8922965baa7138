//! Typed configuration from environment variables (and `.env`). Every invalid value is
//! reported as one line naming the variable; secrets never reach `Debug` output.

pub mod sso;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::window::CheckinLink;
use crate::domain::zone::Zone;
use sso::SsoSettings;

/// Shortest JWT secret we accept, in bytes (HS256 wants at least its output size).
pub const MIN_JWT_SECRET_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct Settings {
    /// External PostgreSQL; `None` means the embedded cluster under `data_dir`.
    pub database_url: Option<SecretString>,
    pub bind: SocketAddr,
    /// `None` only in embedded mode, where a generated secret is kept in `data_dir`.
    pub jwt_secret: Option<SecretString>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub token_ttl: Duration,
    /// How long a session lasts from its login, however it is used.
    pub session_ttl: Duration,
    /// How long an activation code (a password reset) stays valid.
    pub activation_ttl: Duration,
    /// The time zone of a course created without one.
    pub default_time_zone: Zone,
    /// The check-in link (with `{code}`) that code frames and QR codes carry, if any.
    pub checkin_link: Option<CheckinLink>,
    pub data_dir: PathBuf,
    pub cors_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` we believe.
    pub trusted_proxies: Vec<IpAddr>,
    pub db_pool_size: u32,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    /// How often the live stream pings a dashboard, and how long one may stay silent.
    /// Fixed by the contract (15 s / 45 s); only tests change them.
    pub ws_ping_interval: Duration,
    pub ws_client_timeout: Duration,
    /// Live-stream connections this instance accepts in total, and per user.
    pub ws_max_connections: usize,
    pub ws_max_per_user: usize,
    /// How long a client may take to send a request's headers (slow-header clients are
    /// dropped with 408 after it). Only tests change it.
    pub request_header_timeout: Duration,
    /// Single sign-on: the identity providers, and the URLs their callbacks need.
    pub sso: SsoSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported like any bad variable.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            return Err(ConfigError { variable: ".env", message: err.to_string() });
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = var("DATABASE_URL").map(SecretString::from);
        let jwt_secret = match var("ROLLCALL_JWT_SECRET") {
            Some(secret) if secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError {
                    variable: "ROLLCALL_JWT_SECRET",
                    message: format!("must be at least {MIN_JWT_SECRET_LEN} bytes long"),
                });
            }
            Some(secret) => Some(SecretString::from(secret)),
            None if database_url.is_some() => {
                return Err(ConfigError {
                    variable: "ROLLCALL_JWT_SECRET",
                    message: "is required when DATABASE_URL is set (e.g. `openssl rand -hex 32`)".into(),
                });
            }
            None => None,
        };
        let log_format = match var("ROLLCALL_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(ConfigError {
                    variable: "ROLLCALL_LOG_FORMAT",
                    message: "must be `text` or `json`".into(),
                });
            }
        };
        let ttl_seconds: u64 = parse(&var, "ROLLCALL_TOKEN_TTL_SECONDS", 3600)?;
        if !(60..=86_400).contains(&ttl_seconds) {
            return Err(ConfigError {
                variable: "ROLLCALL_TOKEN_TTL_SECONDS",
                message: "must be between 60 and 86400".into(),
            });
        }
        let db_pool_size: u32 = parse(&var, "ROLLCALL_DB_POOL_SIZE", 16)?;
        if !(1..=500).contains(&db_pool_size) {
            return Err(ConfigError {
                variable: "ROLLCALL_DB_POOL_SIZE",
                message: "must be between 1 and 500".into(),
            });
        }
        Ok(Self {
            database_url,
            bind: parse(&var, "ROLLCALL_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            jwt_secret,
            jwt_issuer: var("ROLLCALL_JWT_ISSUER").unwrap_or_else(|| "rollcall".into()),
            jwt_audience: var("ROLLCALL_JWT_AUDIENCE").unwrap_or_else(|| "rollcall-api".into()),
            token_ttl: Duration::from_secs(ttl_seconds),
            session_ttl: Duration::from_secs(
                positive(&var, "ROLLCALL_SESSION_TTL_SECONDS", 14 * 86_400)? as u64
            ),
            activation_ttl: Duration::from_secs(positive(
                &var,
                "ROLLCALL_ACTIVATION_TTL_SECONDS",
                14 * 86_400,
            )? as u64),
            default_time_zone: match var("ROLLCALL_DEFAULT_TIME_ZONE") {
                None => Zone::UTC,
                Some(name) => Zone::parse(name.trim())
                    .map_err(|message| ConfigError { variable: "ROLLCALL_DEFAULT_TIME_ZONE", message })?,
            },
            checkin_link: var("ROLLCALL_CHECKIN_URL")
                .filter(|url| !url.trim().is_empty())
                .map(|url| CheckinLink::parse(&url))
                .transpose()
                .map_err(|message| ConfigError { variable: "ROLLCALL_CHECKIN_URL", message })?,
            data_dir: var("ROLLCALL_DATA_DIR").map_or_else(|| PathBuf::from(".rollcall"), PathBuf::from),
            cors_origins: list(&var, "ROLLCALL_CORS_ORIGINS", |origin| {
                let url = url::Url::parse(origin).map_err(|e| e.to_string())?;
                if url.origin().is_tuple() && url.path() == "/" && !origin.ends_with('/') {
                    Ok(origin.to_string())
                } else {
                    Err(format!("`{origin}` is not an origin like https://app.example.edu"))
                }
            })?,
            trusted_proxies: list(&var, "ROLLCALL_TRUSTED_PROXIES", |ip| {
                IpAddr::from_str(ip).map_err(|e| format!("`{ip}`: {e}"))
            })?,
            db_pool_size,
            log_format,
            shutdown_timeout: Duration::from_secs(parse(&var, "ROLLCALL_SHUTDOWN_TIMEOUT_SECONDS", 30)?),
            ws_ping_interval: Duration::from_secs(15),
            ws_client_timeout: Duration::from_secs(45),
            ws_max_connections: positive(&var, "ROLLCALL_WS_MAX_CONNECTIONS", 10_000)?,
            ws_max_per_user: positive(&var, "ROLLCALL_WS_MAX_PER_USER", 10)?,
            request_header_timeout: Duration::from_secs(5),
            sso: SsoSettings::from_lookup(&lookup)?,
        })
    }
}

fn positive(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    match parse(var, name, default)? {
        0 => Err(ConfigError { variable: name, message: "must be at least 1".into() }),
        n => Ok(n),
    }
}

fn parse<T>(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError { variable: name, message: format!("`{raw}`: {e}") }),
    }
}

fn list<T>(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    item: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| item(s).map_err(|message| ConfigError { variable: name, message }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_describe_a_local_embedded_setup() {
        let s = settings(&[]).unwrap();
        assert!(s.database_url.is_none());
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from(".rollcall"));
        assert_eq!(s.token_ttl, Duration::from_secs(3600));
        assert_eq!(
            (s.session_ttl, s.activation_ttl),
            (Duration::from_secs(1_209_600), Duration::from_secs(1_209_600))
        );
        assert_eq!((s.jwt_issuer.as_str(), s.jwt_audience.as_str()), ("rollcall", "rollcall-api"));
    }

    #[test]
    fn an_external_database_requires_a_jwt_secret() {
        let err = settings(&[("DATABASE_URL", "postgres://db/x")]).unwrap_err();
        assert_eq!(err.variable, "ROLLCALL_JWT_SECRET");
        let ok = settings(&[("DATABASE_URL", "postgres://db/x"), ("ROLLCALL_JWT_SECRET", &"k".repeat(32))]);
        assert_eq!(ok.unwrap().jwt_secret.unwrap().expose_secret(), "k".repeat(32));
    }

    #[test]
    fn short_secrets_and_bad_values_name_their_variable() {
        assert_eq!(
            settings(&[("ROLLCALL_JWT_SECRET", "short")]).unwrap_err().variable,
            "ROLLCALL_JWT_SECRET"
        );
        assert_eq!(settings(&[("ROLLCALL_BIND", "nope")]).unwrap_err().variable, "ROLLCALL_BIND");
        assert_eq!(
            settings(&[("ROLLCALL_CORS_ORIGINS", "https://a.edu/path")]).unwrap_err().variable,
            "ROLLCALL_CORS_ORIGINS"
        );
        assert_eq!(
            settings(&[("ROLLCALL_TRUSTED_PROXIES", "10.0.0.1,x")]).unwrap_err().variable,
            "ROLLCALL_TRUSTED_PROXIES"
        );
        assert_eq!(settings(&[("ROLLCALL_LOG_FORMAT", "xml")]).unwrap_err().variable, "ROLLCALL_LOG_FORMAT");
        assert_eq!(
            settings(&[("ROLLCALL_DEFAULT_TIME_ZONE", "Europe/Viena")]).unwrap_err().variable,
            "ROLLCALL_DEFAULT_TIME_ZONE"
        );
        assert_eq!(
            settings(&[("ROLLCALL_CHECKIN_URL", "https://x.edu/checkin")]).unwrap_err().variable,
            "ROLLCALL_CHECKIN_URL"
        );
        assert_eq!(
            settings(&[("ROLLCALL_OIDC_PROVIDERS", "uni")]).unwrap_err().variable,
            "ROLLCALL_OIDC_UNI_ISSUER"
        );
        assert_eq!(
            settings(&[("ROLLCALL_TOKEN_TTL_SECONDS", "5")]).unwrap_err().variable,
            "ROLLCALL_TOKEN_TTL_SECONDS"
        );
    }

    #[test]
    fn lists_are_comma_separated() {
        let s = settings(&[
            ("ROLLCALL_CORS_ORIGINS", "https://a.edu, http://localhost:5173"),
            ("ROLLCALL_TRUSTED_PROXIES", "127.0.0.1,::1"),
        ])
        .unwrap();
        assert_eq!(s.cors_origins, vec!["https://a.edu", "http://localhost:5173"]);
        assert_eq!(s.trusted_proxies.len(), 2);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("ROLLCALL_JWT_SECRET", &"s3cr3t".repeat(8)),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("s3cr3t"), "{debug}");
    }
}
