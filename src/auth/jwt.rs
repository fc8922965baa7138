//! Access tokens: HS256 JWTs with pinned algorithm, issuer, audience and lifetime.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::user::Role;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// The session the token belongs to; a token without one is refused.
    pub sid: i64,
    pub role: Role,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Not issued by us, but honoured if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Whom a token is for.
#[derive(Debug, Clone, Copy)]
pub struct TokenUser<'a> {
    pub id: i64,
    pub role: Role,
    pub username: &'a str,
    pub session_id: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: chrono::Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token is invalid")]
    Invalid,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl: std::time::Duration) -> Self {
        // Validation::new pins the accepted algorithms to exactly this one, which rejects
        // `alg: none` and any HS/RS swap before a signature is even considered.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // `sid` is required by `Claims` itself: a token without one does not deserialise.
        validation.leeway = LEEWAY_SECS;
        // Times are checked against our own clock below, so tests can move time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl.num_seconds()
    }

    /// When a token issued at `now` for a session ending at `session_ends` expires: after
    /// the configured lifetime, but never after its session.
    pub fn expiry(&self, now: DateTime<Utc>, session_ends: DateTime<Utc>) -> DateTime<Utc> {
        (now + self.ttl).min(session_ends)
    }

    pub fn issue(
        &self,
        user: TokenUser<'_>,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user.id.to_string(),
            sid: user.session_id,
            role: user.role,
            username: user.username.to_owned(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            nbf: None,
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Verifies signature, algorithm, issuer, audience and times; returns the user id.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        // Signature, algorithm, issuer and audience; times are checked below.
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        let leeway = LEEWAY_SECS as i64;
        if claims.exp <= now.timestamp() - leeway {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.timestamp() + leeway
            || claims.nbf.is_some_and(|nbf| nbf > now.timestamp() + leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7; 32], "rollcall", "rollcall-api", Duration::from_secs(3600))
    }

    fn issue(keys: &TokenKeys, id: i64, role: Role, now: DateTime<Utc>) -> String {
        let user = TokenUser { id, role, username: "u", session_id: 9 };
        keys.issue(user, now, now + chrono::Duration::seconds(3600)).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let now = Utc::now();
        let token = issue(&keys(), 42, Role::Teacher, now);
        let claims = keys().verify(&token, now).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role, claims.sid), ("42", Role::Teacher, 9));
        assert_eq!(
            keys().verify(&token, now + chrono::Duration::seconds(3599)).map(|c| c.sub),
            Ok("42".into())
        );
        assert_eq!(
            keys().verify(&token, now + chrono::Duration::seconds(3606)).unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_not_yet_valid() {
        let now = Utc::now();
        let token = issue(&keys(), 1, Role::Admin, now + chrono::Duration::minutes(5));
        assert_eq!(keys().verify(&token, now).unwrap_err(), TokenError::NotYetValid);
    }

    #[test]
    fn another_secret_issuer_or_audience_is_rejected() {
        let now = Utc::now();
        let other_secret = TokenKeys::new(&[8; 32], "rollcall", "rollcall-api", Duration::from_secs(60));
        let other_iss = TokenKeys::new(&[7; 32], "evil", "rollcall-api", Duration::from_secs(60));
        let other_aud = TokenKeys::new(&[7; 32], "rollcall", "other", Duration::from_secs(60));
        for issuer in [other_secret, other_iss, other_aud] {
            let token = issue(&issuer, 1, Role::Admin, now);
            assert_eq!(keys().verify(&token, now).unwrap_err(), TokenError::Invalid);
        }
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_token_never_outlives_its_session() {
        let keys = TokenKeys::new(&[7; 32], "rollcall", "rollcall-api", Duration::from_secs(3600));
        let now = Utc::now();
        assert_eq!(keys.expiry(now, now + chrono::Duration::days(14)), now + chrono::Duration::hours(1));
        assert_eq!(keys.expiry(now, now + chrono::Duration::seconds(5)), now + chrono::Duration::seconds(5));
    }

    #[test]
    fn a_token_without_a_session_id_is_invalid() {
        #[derive(Serialize)]
        struct Old<'a> {
            sub: &'a str,
            role: Role,
            username: &'a str,
            iat: i64,
            exp: i64,
            iss: &'a str,
            aud: &'a str,
        }
        let now = Utc::now();
        let old = Old {
            sub: "1",
            role: Role::Admin,
            username: "a",
            iat: now.timestamp(),
            exp: now.timestamp() + 60,
            iss: "rollcall",
            aud: "rollcall-api",
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &EncodingKey::from_secret(&[7; 32]))
                .unwrap();
        let keys = TokenKeys::new(&[7; 32], "rollcall", "rollcall-api", Duration::from_secs(3600));
        assert_eq!(keys.verify(&token, now).unwrap_err(), TokenError::Invalid);
    }
}
