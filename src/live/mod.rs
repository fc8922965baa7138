//! The live check-in stream: a WebSocket per teacher dashboard, fed by one task per lesson
//! and by change events that cross server instances through PostgreSQL.

mod connection;
pub mod events;
pub mod hub;
pub mod limits;
pub mod messages;
pub mod tickets;

pub use connection::Heartbeat;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::attendance::lesson_attendance;
use crate::auth::extract::{authenticate, bearer_token};
use crate::courses::access;
use crate::db;
use crate::error::{ApiError, Problem};
use crate::lessons::checkin::CodeFrame;
use crate::state::AppState;
use connection::Connection;
use messages::ServerMessage;

/// Largest frame a client may send.
const MAX_CLIENT_FRAME: usize = 4 * 1024;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveAuth {
    /// A ticket from `POST /api/v1/ws-tickets` (instead of an `Authorization` header).
    pub ticket: Option<String>,
}

/// Watch a lesson's check-in live (WebSocket; the lesson's teacher, admin).
///
/// Upgrade to a WebSocket, authenticated by `Authorization: Bearer <token>` or by
/// `?ticket=<ticket>` (browsers cannot set headers on a WebSocket). A request with an
/// `Origin` header not listed in `ROLLCALL_CORS_ORIGINS` is refused. The server sends JSON
/// text frames with a `type`: `snapshot` first, then `code` (immediately while open and at
/// every rotation), `checkin` for every check-in or teacher change, and `state` when check-in
/// opens or closes. It pings every 15 s and drops a client silent for 45 s; client messages
/// are ignored, but a flood is closed with 1008; shutdown closes with 1001. The full
/// protocol is in `openapi/asyncapi.yaml`.
#[utoipa::path(
    tag = "live",
    params(("lesson_id" = i64, Path, description = "Lesson id"), LiveAuth),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request (`bad_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token or ticket (`unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the lesson's teacher or an admin, or an origin not allowed (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lesson (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller already has `ROLLCALL_WS_MAX_PER_USER` live connections open (`too_many_connections`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This instance holds `ROLLCALL_WS_MAX_CONNECTIONS` live connections (`server_busy`), or the database is unavailable (`database_unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/lessons/{lesson_id}/checkin/live")]
pub async fn live_checkin(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    auth: web::Query<LiveAuth>,
) -> Result<HttpResponse, ApiError> {
    let lesson_id = path.into_inner();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| state.cors_origins.iter().any(|o| o == origin));
        if !allowed {
            return Err(ApiError::Forbidden("this origin may not open the live stream"));
        }
    }
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::BadRequest("this route only answers WebSocket upgrade requests".into()))?;
    let user = match (auth.ticket.as_deref(), bearer_token(&req)) {
        (Some(ticket), header) => {
            let user = tickets::redeem(&state, ticket, lesson_id).await?;
            // A ticket and a token must not name two different people.
            if let Some(token) = header
                && authenticate(&state, token).await?.id != user.id
            {
                return Err(ApiError::Unauthorized("the ticket belongs to someone else"));
            }
            user
        }
        (None, Some(token)) => authenticate(&state, token).await?,
        (None, None) => {
            return Err(ApiError::Unauthorized("send `?ticket=` or `Authorization: Bearer <token>`"));
        }
    };
    // Counted from here: a refused upgrade costs one permit check, not a socket.
    let permit = state.live_limits.acquire(user.id)?;
    let check_user = user.clone();
    let course_id = db::run(&state.pool, move |conn| {
        Ok(access::check_lesson(conn, lesson_id, &check_user, access::STAFF)?.0)
    })
    .await?;

    // Subscribe before reading the snapshot, so nothing that happens in between is missed.
    let subscription = state.hub.subscribe(lesson_id);
    let now = state.clock.now();
    let (snapshot, window) =
        db::run(&state.pool, move |conn| Ok(lesson_attendance(conn, course_id, lesson_id, now)?)).await?;
    let mut initial = vec![ServerMessage::Snapshot(snapshot)];
    if let Some(open) = window.filter(|w| w.is_open(now)) {
        initial.push(ServerMessage::Code(CodeFrame::new(&open, open.schedule().frame(now), now)));
    }
    tracing::info!(lesson_id, user_id = user.id, "dashboard connected");
    let connection = Connection {
        session,
        stream: stream.max_frame_size(MAX_CLIENT_FRAME),
        subscription,
        initial: initial.iter().map(ServerMessage::to_text).collect(),
        heartbeat: state.heartbeat,
        shutdown: state.hub.shutdown_signal(),
        guard: state.hub.connection_opened(),
        permit,
    };
    actix_web::rt::spawn(connection.run());
    Ok(response)
}
