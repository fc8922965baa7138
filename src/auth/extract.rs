//! Extractors that authenticate a request and enforce its role. A handler states who may
//! call it in its signature (`Authenticated<TeacherOnly>`), never with an `if`.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::Authenticator;
use crate::domain::user::{Role, User};
use crate::error::ApiError;

/// Which roles an extractor lets through.
pub trait RoleRule {
    const ALLOWED: &'static [Role];
    const DENIED: &'static str;
}

pub struct AnyRole;
pub struct AdminOnly;
pub struct TeacherOnly;
pub struct StudentOnly;
pub struct TeacherOrAdmin;

impl RoleRule for AnyRole {
    const ALLOWED: &'static [Role] = Role::ALL;
    const DENIED: &'static str = "";
}
impl RoleRule for AdminOnly {
    const ALLOWED: &'static [Role] = &[Role::Admin];
    const DENIED: &'static str = "only administrators may do this";
}
impl RoleRule for TeacherOnly {
    const ALLOWED: &'static [Role] = &[Role::Teacher];
    const DENIED: &'static str = "only teachers may do this";
}
impl RoleRule for StudentOnly {
    const ALLOWED: &'static [Role] = &[Role::Student];
    const DENIED: &'static str = "only students may do this";
}
impl RoleRule for TeacherOrAdmin {
    const ALLOWED: &'static [Role] = &[Role::Teacher, Role::Admin];
    const DENIED: &'static str = "only teachers and administrators may do this";
}

/// The caller, authenticated by bearer token (with a live session) and allowed by `R`.
pub struct Authenticated<R: RoleRule = AnyRole> {
    pub user: User,
    /// The session the token belongs to.
    pub session_id: i64,
    rule: PhantomData<R>,
}

impl<R: RoleRule> Deref for Authenticated<R> {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl<R: RoleRule> FromRequest for Authenticated<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = authenticator(req).clone();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized("send `Authorization: Bearer <token>`"))?;
            let caller = auth.authenticate(&token).await?;
            if !R::ALLOWED.contains(&caller.user.role) {
                return Err(ApiError::Forbidden(R::DENIED));
            }
            Ok(Self { user: caller.user, session_id: caller.session_id, rule: PhantomData })
        })
    }
}

/// The caller as their token states them, verified but not looked up: for a route that
/// confirms the user and session in its own query (a check-in confirms its student and
/// session in the batch that stores it, answering 401 if either is gone). `R` applies to
/// the token's role.
pub struct Claimed<R: RoleRule> {
    pub id: i64,
    pub session_id: i64,
    rule: PhantomData<R>,
}

impl<R: RoleRule> FromRequest for Claimed<R> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let token =
                bearer_token(req).ok_or(ApiError::Unauthorized("send `Authorization: Bearer <token>`"))?;
            let claimed = authenticator(req).verify(token)?;
            if !R::ALLOWED.contains(&claimed.role) {
                return Err(ApiError::Forbidden(R::DENIED));
            }
            Ok(Self { id: claimed.user_id, session_id: claimed.session_id, rule: PhantomData })
        })())
    }
}

/// The token from an `Authorization: Bearer` header, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn authenticator(req: &HttpRequest) -> &web::Data<Authenticator> {
    // unwrap: the application always registers the authenticator.
    req.app_data::<web::Data<Authenticator>>().expect("the Authenticator is registered")
}
