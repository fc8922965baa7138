//! The live check-in stream: a WebSocket per teacher dashboard, fed by one task per lesson
//! and by change events that cross server instances through PostgreSQL.

mod connection;
pub mod hub;
mod lesson_task;
pub mod limits;
pub mod listener;
pub mod messages;
pub mod tickets;

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::attendance::lesson_attendance;
use crate::auth::extract::bearer_token;
use crate::auth::sessions::{self, SessionCheck};
use crate::auth::{Authenticator, Caller};
use crate::clock::Clock;
use crate::courses::access;
use crate::db::{self, DbPool};
use crate::domain::window::CodeFrame;
use crate::error::{ApiError, problems};
use connection::Connection;
use hub::Hub;
use messages::ServerMessage;

/// How the live stream treats its connections: where they may come from and how often they
/// are pinged. The contract's timing is the default; tests shorten it.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Origins allowed to open the live stream from a browser (`ROLLCALL_CORS_ORIGINS`).
    pub allowed_origins: Vec<String>,
    pub heartbeat: Heartbeat,
}

/// Connection timing.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub ping_every: Duration,
    pub drop_after: Duration,
    /// How long a dashboard may take to accept one message before it is dropped as too slow.
    pub send_timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(15),
            drop_after: Duration::from_secs(45),
            send_timeout: Duration::from_secs(5),
        }
    }
}

/// Largest frame a client may send.
const MAX_CLIENT_FRAME: usize = 4 * 1024;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveAuth {
    /// A ticket from `POST /api/v1/ws-tickets` (instead of an `Authorization` header).
    pub ticket: Option<String>,
}

problems!(LiveCheckinProblems {
    ApiError::Unauthorized("") => "Missing or invalid token or ticket",
    ApiError::Forbidden("") => "Not the lesson's teacher or an admin, or an origin not allowed",
    ApiError::NotFound("") => "No such lesson",
    ApiError::UpgradeRequired => "Not a WebSocket upgrade request",
    ApiError::TooManyConnections { limit: 1 } => "The caller already has `ROLLCALL_WS_MAX_PER_USER` live connections open",
    ApiError::ServerBusy("") => "This instance holds `ROLLCALL_WS_MAX_CONNECTIONS` live connections",
    ApiError::DatabaseUnavailable => "The database is unavailable",
});

/// Watch a lesson's check-in live (WebSocket; the lesson's teacher, admin).
///
/// Upgrade to a WebSocket, authenticated by `Authorization: Bearer <token>` or by
/// `?ticket=<ticket>` (browsers cannot set headers on a WebSocket). The request is
/// authenticated first (no credentials: 401), then the lesson is checked (403/404), then the
/// upgrade is required (a plain request: 426 with `Upgrade: websocket`). A request with an
/// `Origin` header not listed in `ROLLCALL_CORS_ORIGINS` is refused. The server sends JSON
/// text frames with a `type`: `snapshot` first, then `code` (immediately while open and at
/// every rotation), `checkin` for every check-in or teacher change, and `state` when check-in
/// opens or closes (it may repeat what the dashboard shows). A second `snapshot` follows a
/// moment in which the server lost its event feed or its database. It pings every 15 s and
/// drops a client silent for 45 s; client messages are ignored, but a flood is closed with
/// 1008, as is the stream of a session that is revoked; shutdown closes with 1001. The full
/// protocol is in `openapi/asyncapi.yaml`.
#[utoipa::path(
    tag = "live",
    params(("lesson_id" = i64, Path, description = "Lesson id"), LiveAuth),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        LiveCheckinProblems,
    )
)]
#[get("/lessons/{lesson_id}/checkin/live")]
#[allow(clippy::too_many_arguments)]
pub async fn live_checkin(
    req: HttpRequest,
    body: web::Payload,
    auth: web::Data<Authenticator>,
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    hub: web::Data<Hub>,
    settings: web::Data<LiveSettings>,
    path: web::Path<i64>,
    query: web::Query<LiveAuth>,
) -> Result<HttpResponse, ApiError> {
    let lesson_id = path.into_inner();
    let caller = match (query.ticket.as_deref(), bearer_token(&req)) {
        (Some(ticket), header) => {
            let caller = tickets::redeem(&pool, clock.now(), ticket, lesson_id).await?;
            // A ticket and a token must not name two different people.
            if let Some(token) = header
                && auth.authenticate(token).await?.user.id != caller.user.id
            {
                return Err(ApiError::Unauthorized("the ticket belongs to someone else"));
            }
            caller
        }
        (None, Some(token)) => auth.authenticate(token).await?,
        (None, None) => {
            return Err(ApiError::Unauthorized("send `?ticket=` or `Authorization: Bearer <token>`"));
        }
    };
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed =
            origin.to_str().is_ok_and(|origin| settings.allowed_origins.iter().any(|o| o == origin));
        if !allowed {
            return Err(ApiError::Forbidden("this origin may not open the live stream"));
        }
    }
    let Caller { user, session_id } = caller;
    // Counted from here until the connection ends: a caller over a cap costs no database work.
    let permit = hub.admit(user.id)?;
    // Watched from here: a revocation from now on closes the stream, and the check below
    // catches one that came since the session was checked.
    let revoked = hub.watch_session(session_id);
    let (check_user, checked_at) = (user.clone(), clock.now());
    let course_id = db::run(&pool, move |conn| -> Result<_, ApiError> {
        let course_id = access::check_lesson(conn, lesson_id, &check_user, access::STAFF)?.0;
        match sessions::load(conn, session_id)? {
            Some((_, state)) if state.check(checked_at) == SessionCheck::Live => Ok(course_id),
            _ => Err(ApiError::SessionRevoked),
        }
    })
    .await?;
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|_| ApiError::UpgradeRequired)?;

    // Subscribe before reading the snapshot, so nothing that happens in between is missed.
    let mut subscription = hub.subscribe(lesson_id);
    let now = clock.now();
    let (snapshot, window) =
        db::run(&pool, move |conn| Ok::<_, ApiError>(lesson_attendance(conn, course_id, lesson_id, now)?))
            .await?;
    let mut initial = vec![ServerMessage::Snapshot(snapshot)];
    if let Some(open) = window.as_ref().filter(|w| w.is_open(now)) {
        initial.push(ServerMessage::Code(CodeFrame::current(open, now, hub.link())));
    }
    subscription.seed(window, now);
    tracing::info!(lesson_id, user_id = user.id, "dashboard connected");
    let connection = Connection {
        session,
        stream: stream.max_frame_size(MAX_CLIENT_FRAME),
        subscription,
        initial: initial.iter().map(ServerMessage::to_text).collect(),
        heartbeat: settings.heartbeat,
        shutdown: hub.shutdown_signal(),
        revoked,
        permit,
    };
    actix_web::rt::spawn(connection.run());
    Ok(response)
}
