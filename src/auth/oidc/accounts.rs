//! Which rollcall user an identity `(provider, sub)` signs in as: the one it is linked to,
//! else a user the first sign-in creates (or, when the operator allows it, an existing
//! account it links to). E-mail never links anything; no claim makes an admin.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::SignInError;
use crate::auth::queries as auth_queries;
use crate::config::sso::{LinkExisting, ProviderSettings};
use crate::domain::identity::Profile;
use crate::domain::user::{Role, User};
use crate::schema::{oidc_identities, users};

/// Signs `subject` of `provider` in: the user id a login code may be issued for, or why not.
/// Runs in the caller's transaction.
pub fn sign_in(
    conn: &mut PgConnection,
    provider: &ProviderSettings,
    subject: &str,
    profile: &Profile,
    now: DateTime<Utc>,
) -> QueryResult<Result<i64, SignInError>> {
    // Two first sign-ins of one identity (two tabs, two instances) must not both create.
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('oidc:' || $1 || ':' || $2, 0))")
        .bind::<diesel::sql_types::Text, _>(&provider.id)
        .bind::<diesel::sql_types::Text, _>(subject)
        .execute(conn)?;
    if let Some(user) = linked_user(conn, &provider.id, subject)? {
        if user.disabled {
            return Ok(Err(SignInError::AccountDisabled));
        }
        refresh_profile(conn, &user, profile)?;
        diesel::update(oidc_identities::table.find((&provider.id, subject)))
            .set(oidc_identities::last_login_at.eq(now))
            .execute(conn)?;
        return Ok(Ok(user.id));
    }
    // A first sign-in: only for a role the claims map to, never admin.
    let (Some(role), Some(username)) = (profile.role, profile.username.as_ref()) else {
        return Ok(Err(SignInError::NoAccount));
    };
    let username_owner = auth_queries::find_credentials(conn, username.as_str())?.map(|(user, _)| user);
    let candidate = match provider.link_existing {
        None => None,
        Some(LinkExisting::Username) => username_owner.clone(),
        Some(LinkExisting::StudentNumber) => match &profile.student_number {
            None => None,
            Some(number) => users::table
                .filter(users::student_number.eq(number.clone().into_inner()))
                .select(User::as_select())
                .first(conn)
                .optional()?,
        },
    };
    let user = match candidate {
        Some(existing) => {
            let has_identity_here = oidc_identities::table
                .filter(oidc_identities::provider.eq(&provider.id))
                .filter(oidc_identities::user_id.eq(existing.id))
                .count()
                .get_result::<i64>(conn)?
                > 0;
            if existing.role == Role::Admin || existing.role != role || has_identity_here {
                return Ok(Err(SignInError::NoAccount));
            }
            if existing.disabled {
                return Ok(Err(SignInError::AccountDisabled));
            }
            existing
        }
        None if username_owner.is_some() => return Ok(Err(SignInError::NoAccount)),
        None => match create(conn, username.as_str(), role, profile, now)? {
            Some(user) => user,
            // Taken meanwhile, or its student number belongs to someone else.
            None => return Ok(Err(SignInError::NoAccount)),
        },
    };
    let linked = savepoint(conn, |conn| {
        diesel::insert_into(oidc_identities::table)
            .values((
                oidc_identities::provider.eq(&provider.id),
                oidc_identities::subject.eq(subject),
                oidc_identities::user_id.eq(user.id),
                oidc_identities::created_at.eq(now),
                oidc_identities::last_login_at.eq(now),
            ))
            .execute(conn)
    })?;
    if linked.is_none() {
        // Another identity linked to this account meanwhile (two people, one account).
        return Ok(Err(SignInError::NoAccount));
    }
    // A linked account takes the claims' name and number like any later sign-in.
    refresh_profile(conn, &user, profile)?;
    tracing::info!(provider = provider.id, user_id = user.id, "single sign-on identity linked");
    Ok(Ok(user.id))
}

fn linked_user(conn: &mut PgConnection, provider: &str, subject: &str) -> QueryResult<Option<User>> {
    oidc_identities::table
        .inner_join(users::table)
        .filter(oidc_identities::provider.eq(provider))
        .filter(oidc_identities::subject.eq(subject))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// A new account that signs in only at its provider: no password, no activation pending.
/// `None` when a uniqueness rule refused it.
fn create(
    conn: &mut PgConnection,
    username: &str,
    role: Role,
    profile: &Profile,
    now: DateTime<Utc>,
) -> QueryResult<Option<User>> {
    let real_name = profile.real_name.clone().map_or_else(|| username.to_owned(), |name| name.into_inner());
    let student_number = match role {
        Role::Student => profile.student_number.clone().map(|number| number.into_inner()),
        _ => None,
    };
    savepoint(conn, |conn| {
        diesel::insert_into(users::table)
            .values((
                users::username.eq(username),
                users::password_hash.eq(None::<String>),
                users::role.eq(role),
                users::real_name.eq(&real_name),
                users::student_number.eq(&student_number),
                users::created_at.eq(now),
                users::sso_only.eq(true),
            ))
            .returning(User::as_returning())
            .get_result(conn)
    })
}

/// Later sign-ins bring the real name and (for students) the student number up to date
/// from the claims; a claim that is missing, invalid or someone else's changes nothing.
fn refresh_profile(conn: &mut PgConnection, user: &User, profile: &Profile) -> QueryResult<()> {
    let real_name = profile.real_name.clone().map(|name| name.into_inner()).filter(|n| *n != user.real_name);
    let student_number = match user.role {
        Role::Student => profile
            .student_number
            .clone()
            .map(|number| number.into_inner())
            .filter(|n| user.student_number.as_deref() != Some(n.as_str())),
        _ => None,
    };
    if real_name.is_none() && student_number.is_none() {
        return Ok(());
    }
    let changed = savepoint(conn, |conn| {
        diesel::update(users::table.find(user.id))
            .set((
                real_name.as_ref().map(|name| users::real_name.eq(name)),
                student_number.as_ref().map(|number| users::student_number.eq(number)),
            ))
            .execute(conn)
    })?;
    if changed.is_none() {
        // The number belongs to another user: keep the name change at least.
        tracing::warn!(user_id = user.id, "single sign-on: the student number claim is another user's; kept");
        if let Some(name) = real_name {
            diesel::update(users::table.find(user.id)).set(users::real_name.eq(name)).execute(conn)?;
        }
    }
    Ok(())
}

/// Runs `write` in a savepoint; a uniqueness violation rolls just it back and gives `None`.
fn savepoint<T>(
    conn: &mut PgConnection,
    write: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<Option<T>> {
    match conn.transaction(write) {
        Ok(value) => Ok(Some(value)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(other) => Err(other),
    }
}
