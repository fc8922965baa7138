//! Single sign-on's configuration: `ROLLCALL_OIDC_PROVIDERS` and each listed provider's
//! `ROLLCALL_OIDC_<ID>_*` variables, `ROLLCALL_PUBLIC_URL` and `ROLLCALL_SPA_URL`.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::ConfigError;
use crate::domain::identity::ClaimMap;

/// How long any call to a provider may take, by the contract.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct SsoSettings {
    pub providers: Vec<ProviderSettings>,
    /// The server's external base URL (no trailing slash); `None`: `http://` and the address
    /// the server listens on, which suits a local try.
    pub public_url: Option<Url>,
    /// Where the browser goes after a callback; `None`: the public URL's root.
    pub spa_url: Option<Url>,
}

/// Which existing account a first sign-in may link to when its username is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkExisting {
    Username,
    StudentNumber,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `[a-z0-9_]+`, in the provider's routes.
    pub id: String,
    /// What the sign-in button says.
    pub name: String,
    /// Exactly as the provider's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE alone).
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub claims: ClaimMap,
    pub link_existing: Option<LinkExisting>,
    /// How long a call to this provider may take ([`PROVIDER_TIMEOUT`]; tests shorten it).
    pub timeout: Duration,
}

fn invalid(variable: String, message: impl Into<String>) -> ConfigError {
    // Configuration is read once at startup; the few bytes of a dynamic name in an error
    // are not worth a second error type.
    ConfigError { variable: Box::leak(variable.into_boxed_str()), message: message.into() }
}

impl SsoSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let url = |name: &'static str| -> Result<Option<Url>, ConfigError> {
            let Some(raw) = var(name) else { return Ok(None) };
            let url = Url::parse(&raw).map_err(|e| invalid(name.into(), format!("`{raw}`: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some()
            {
                return Err(invalid(
                    name.into(),
                    format!("`{raw}` is not an http(s) URL without query or fragment"),
                ));
            }
            Ok(Some(url))
        };
        let public_url = url("ROLLCALL_PUBLIC_URL")?.map(|mut url| {
            let trimmed = url.path().trim_end_matches('/').to_owned();
            url.set_path(&trimmed);
            url
        });
        let spa_url = url("ROLLCALL_SPA_URL")?;
        let mut providers: Vec<ProviderSettings> = Vec::new();
        for id in var("ROLLCALL_OIDC_PROVIDERS").unwrap_or_default().split(',').map(str::trim) {
            if id.is_empty() {
                continue;
            }
            if !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(invalid(
                    "ROLLCALL_OIDC_PROVIDERS".into(),
                    format!("`{id}`: a provider id is made of a-z, 0-9 and _"),
                ));
            }
            if providers.iter().any(|p| p.id == id) {
                return Err(invalid("ROLLCALL_OIDC_PROVIDERS".into(), format!("`{id}` is listed twice")));
            }
            providers.push(provider(id, &var)?);
        }
        Ok(Self { providers, public_url, spa_url })
    }
}

fn provider(id: &str, var: &impl Fn(&str) -> Option<String>) -> Result<ProviderSettings, ConfigError> {
    let name = |suffix: &str| format!("ROLLCALL_OIDC_{}_{suffix}", id.to_uppercase());
    let get = |suffix: &str| var(&name(suffix));
    let required =
        |suffix: &str| get(suffix).ok_or_else(|| invalid(name(suffix), "is required for a listed provider"));
    let list = |suffix: &str| -> Vec<String> {
        get(suffix)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let issuer = required("ISSUER")?;
    match Url::parse(&issuer) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.query().is_none() => {}
        _ => return Err(invalid(name("ISSUER"), format!("`{issuer}` is not an http(s) URL"))),
    }
    let mut scopes = match get("SCOPES") {
        None => vec!["openid".into(), "profile".into(), "email".into()],
        Some(raw) => raw.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    };
    // The crate adds `openid` itself.
    scopes.retain(|scope| scope != "openid");
    let link_existing = match get("LINK_EXISTING").as_deref() {
        None => None,
        Some("username") => Some(LinkExisting::Username),
        Some("student_number") => Some(LinkExisting::StudentNumber),
        Some(other) => {
            return Err(invalid(
                name("LINK_EXISTING"),
                format!("`{other}`: must be `username` or `student_number`"),
            ));
        }
    };
    let defaults = ClaimMap::default();
    let claims = ClaimMap {
        username: get("USERNAME_CLAIM").unwrap_or(defaults.username),
        name: get("NAME_CLAIM").unwrap_or(defaults.name),
        student_number: get("STUDENT_NUMBER_CLAIM"),
        role: get("ROLE_CLAIM"),
        teacher_values: list("TEACHER_VALUES"),
        student_values: list("STUDENT_VALUES"),
    };
    Ok(ProviderSettings {
        id: id.to_owned(),
        name: get("NAME").unwrap_or_else(|| id.to_owned()),
        issuer,
        client_id: required("CLIENT_ID")?,
        client_secret: get("CLIENT_SECRET").map(SecretString::from),
        scopes,
        claims,
        link_existing,
        timeout: PROVIDER_TIMEOUT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sso(vars: &[(&str, &str)]) -> Result<SsoSettings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SsoSettings::from_lookup(|name| map.get(name).cloned())
    }

    const UNI: [(&str, &str); 4] = [
        ("ROLLCALL_OIDC_PROVIDERS", "uni"),
        ("ROLLCALL_OIDC_UNI_ISSUER", "https://login.uni.example/realms/main"),
        ("ROLLCALL_OIDC_UNI_CLIENT_ID", "rollcall"),
        ("ROLLCALL_OIDC_UNI_CLIENT_SECRET", "s3cret"),
    ];

    #[test]
    fn a_provider_takes_the_documented_defaults() {
        let settings = sso(&UNI).unwrap();
        let uni = &settings.providers[0];
        assert_eq!((uni.id.as_str(), uni.name.as_str()), ("uni", "uni"));
        assert_eq!(uni.scopes, ["profile", "email"]);
        assert_eq!(uni.claims, ClaimMap::default());
        assert_eq!((uni.link_existing, uni.timeout), (None, PROVIDER_TIMEOUT));
        assert!(format!("{uni:?}").contains("REDACTED") && !format!("{uni:?}").contains("s3cret"));
        assert!(sso(&[]).unwrap().providers.is_empty());
    }

    #[test]
    fn mapping_and_links_are_read_per_provider() {
        let mut vars = UNI.to_vec();
        vars.extend([
            ("ROLLCALL_OIDC_UNI_NAME", "University login"),
            ("ROLLCALL_OIDC_UNI_ROLE_CLAIM", "roles"),
            ("ROLLCALL_OIDC_UNI_TEACHER_VALUES", "teacher, faculty"),
            ("ROLLCALL_OIDC_UNI_STUDENT_VALUES", "student"),
            ("ROLLCALL_OIDC_UNI_STUDENT_NUMBER_CLAIM", "matrikel"),
            ("ROLLCALL_OIDC_UNI_LINK_EXISTING", "student_number"),
            ("ROLLCALL_PUBLIC_URL", "https://rollcall.uni.example/"),
        ]);
        let settings = sso(&vars).unwrap();
        let uni = &settings.providers[0];
        assert_eq!(uni.name, "University login");
        assert_eq!(uni.claims.teacher_values, ["teacher", "faculty"]);
        assert_eq!(uni.claims.student_number.as_deref(), Some("matrikel"));
        assert_eq!(uni.link_existing, Some(LinkExisting::StudentNumber));
        assert_eq!(settings.public_url.unwrap().as_str(), "https://rollcall.uni.example/");
    }

    #[test]
    fn bad_providers_name_their_variable() {
        let missing = sso(&[("ROLLCALL_OIDC_PROVIDERS", "uni")]).unwrap_err();
        assert_eq!(missing.variable, "ROLLCALL_OIDC_UNI_ISSUER");
        let mut no_client = UNI.to_vec();
        no_client.retain(|(k, _)| *k != "ROLLCALL_OIDC_UNI_CLIENT_ID");
        assert_eq!(sso(&no_client).unwrap_err().variable, "ROLLCALL_OIDC_UNI_CLIENT_ID");
        assert_eq!(
            sso(&[("ROLLCALL_OIDC_PROVIDERS", "Uni")]).unwrap_err().variable,
            "ROLLCALL_OIDC_PROVIDERS"
        );
        let mut link = UNI.to_vec();
        link.push(("ROLLCALL_OIDC_UNI_LINK_EXISTING", "email"));
        assert_eq!(sso(&link).unwrap_err().variable, "ROLLCALL_OIDC_UNI_LINK_EXISTING");
        assert_eq!(sso(&[("ROLLCALL_SPA_URL", "ftp://x")]).unwrap_err().variable, "ROLLCALL_SPA_URL");
    }
}
