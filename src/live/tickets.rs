//! Single-use WebSocket tickets, for browsers that cannot set an `Authorization` header on
//! a WebSocket. Only a SHA-256 of each ticket is stored, in PostgreSQL, so any instance
//! can redeem it, once.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::extract::Authenticated;
use crate::courses::access;
use crate::db;
use crate::error::{ApiError, Problem};
use crate::rejections::JsonObject;
use crate::schema::ws_tickets;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::queries as users;

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
        (status = 400, description = "Malformed body (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the lesson's teacher or an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lesson (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`lesson_id` missing (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/ws-tickets")]
pub async fn create_ws_ticket(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: JsonObject<CreateTicket>,
) -> Result<HttpResponse, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("no OS randomness: {e}")))?;
    let ticket = hex::encode(bytes);
    let hash = digest(&ticket);
    let (lesson_id, user, now) = (body.lesson_id, caller.user, state.clock.now());
    db::run(&state.pool, move |conn| {
        access::check_lesson(conn, lesson_id, &user, access::STAFF)?;
        diesel::delete(ws_tickets::table.filter(ws_tickets::expires_at.le(now))).execute(conn)?;
        diesel::insert_into(ws_tickets::table)
            .values((
                ws_tickets::ticket_hash.eq(hash.as_slice()),
                ws_tickets::user_id.eq(user.id),
                ws_tickets::lesson_id.eq(lesson_id),
                ws_tickets::expires_at.eq(now + Duration::seconds(TICKET_LIFETIME_SECS)),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(Ticket { ticket, expires_in: TICKET_LIFETIME_SECS }))
}

fn digest(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}

/// Redeems a ticket for `lesson_id`: it is deleted whatever the outcome, so it never
/// works twice. Returns its user if it was valid for this lesson and still fresh.
pub async fn redeem(state: &AppState, ticket: &str, lesson_id: i64) -> Result<User, ApiError> {
    let invalid = || ApiError::Unauthorized("the ticket is invalid, used, expired, or for another lesson");
    if ticket.len() > 128 {
        return Err(invalid());
    }
    let (hash, now) = (digest(ticket), state.clock.now());
    let user = db::run(&state.pool, move |conn| {
        let redeemed: Option<(i64, i64, DateTime<Utc>)> = diesel::delete(ws_tickets::table.find(hash))
            .returning((ws_tickets::user_id, ws_tickets::lesson_id, ws_tickets::expires_at))
            .get_result(conn)
            .optional()?;
        match redeemed {
            Some((user_id, for_lesson, expires_at)) if for_lesson == lesson_id && now < expires_at => {
                Ok(users::find(conn, user_id)?)
            }
            _ => Ok(None),
        }
    })
    .await?;
    user.ok_or_else(invalid)
}
