//! Single-use WebSocket tickets, for browsers that cannot set an `Authorization` header on
//! a WebSocket. Only a SHA-256 of each ticket is stored, in PostgreSQL, so any instance
//! can redeem it, once.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::auth::extract::Authenticated;
use crate::auth::sessions::{self, SessionCheck, digest, random_secret};
use crate::clock::Clock;
use crate::courses::access;
use crate::db::{self, DbPool};
use crate::error::{ApiError, problems};
use crate::rejections::JsonObject;
use crate::schema::ws_tickets;

pub const TICKET_LIFETIME_SECS: i64 = 30;

/// Which lesson's live stream the ticket is for.
#[derive(Deserialize, ToSchema)]
pub struct CreateTicket {
    /// The lesson whose live stream the ticket opens.
    pub lesson_id: i64,
}

/// A single-use ticket that opens one lesson's live stream.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// Pass as `?ticket=` on `GET /api/v1/lessons/{lesson_id}/checkin/live`. Single use.
    pub ticket: String,
    /// Seconds until the ticket expires.
    #[schema(example = 30)]
    pub expires_in: i64,
}

problems!(CreateWsTicketProblems {
    ApiError::BadRequest(String::new()) => "Malformed body",
    ApiError::Forbidden("") => "Not the lesson's teacher or an admin",
    ApiError::NotFound("") => "No such lesson",
    ApiError::Validation(Vec::new()) => "`lesson_id` missing",
});

/// Get a WebSocket ticket (the lesson's teacher, admin).
///
/// Browsers cannot send an `Authorization` header with a WebSocket, so the dashboard first
/// gets a ticket here and opens the live stream with `?ticket=<ticket>`. A ticket works
/// once, for 30 seconds, for this user and this lesson, on any server instance.
#[utoipa::path(
    tag = "live",
    request_body(content = CreateTicket, example = json!({"lesson_id": 12})),
    responses(
        (status = 201, description = "A fresh ticket", body = Ticket),
        CreateWsTicketProblems,
    )
)]
#[post("/ws-tickets")]
pub async fn create_ws_ticket(
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    caller: Authenticated,
    body: JsonObject<CreateTicket>,
) -> Result<HttpResponse, ApiError> {
    let ticket = random_secret::<32>();
    let hash = digest(&ticket);
    let (lesson_id, user, session_id, now) = (body.lesson_id, caller.user, caller.session_id, clock.now());
    db::run(&pool, move |conn| -> Result<_, ApiError> {
        access::check_lesson(conn, lesson_id, &user, access::STAFF)?;
        diesel::delete(ws_tickets::table.filter(ws_tickets::expires_at.le(now))).execute(conn)?;
        diesel::insert_into(ws_tickets::table)
            .values((
                ws_tickets::ticket_hash.eq(hash.as_slice()),
                ws_tickets::user_id.eq(user.id),
                ws_tickets::session_id.eq(session_id),
                ws_tickets::lesson_id.eq(lesson_id),
                ws_tickets::expires_at.eq(now + Duration::seconds(TICKET_LIFETIME_SECS)),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(Ticket { ticket, expires_in: TICKET_LIFETIME_SECS }))
}

/// Redeems a ticket for `lesson_id`: it is deleted whatever the outcome, so it never
/// works twice. Returns its user and session if it was valid for this lesson, still fresh,
/// and its session still live.
pub async fn redeem(
    pool: &DbPool,
    now: DateTime<Utc>,
    ticket: &str,
    lesson_id: i64,
) -> Result<Caller, ApiError> {
    let invalid = || ApiError::Unauthorized("the ticket is invalid, used, expired, or for another lesson");
    if ticket.len() > 128 {
        return Err(invalid());
    }
    let hash = digest(ticket);
    let user = db::run(pool, move |conn| -> Result<_, ApiError> {
        let redeemed: Option<(Option<i64>, i64, DateTime<Utc>)> =
            diesel::delete(ws_tickets::table.find(hash))
                .returning((ws_tickets::session_id, ws_tickets::lesson_id, ws_tickets::expires_at))
                .get_result(conn)
                .optional()?;
        let Some((Some(session_id), for_lesson, expires_at)) = redeemed else { return Ok(None) };
        if for_lesson != lesson_id || now >= expires_at {
            return Ok(None);
        }
        match sessions::load(conn, session_id)? {
            Some((user, state)) if state.check(now) == SessionCheck::Live && !user.disabled => {
                Ok(Some(Caller { user, session_id }))
            }
            Some(_) => Err(ApiError::SessionRevoked),
            None => Ok(None),
        }
    })
    .await?;
    user.ok_or_else(invalid)
}
