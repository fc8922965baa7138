//! Operator endpoints: liveness and readiness.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How the service is doing.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process runs.
///
/// No token needed. It checks nothing beyond the process answering (not the database), so
/// use it to decide whether to restart the process, and `/readyz` to decide whether to
/// send it traffic.
#[utoipa::path(tag = "operations", security(()), responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: 200 when the database answers, 503 otherwise.
///
/// No token needed. Runs a trivial query on the database, so a load balancer can stop
/// sending traffic to an instance that cannot reach it; `rollcall healthcheck` calls this
/// route.
#[utoipa::path(
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database is unreachable (`database_unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    db::run(&state.pool, |conn| {
        diesel::sql_query("SELECT 1").execute(conn).map_err(|_| ApiError::DatabaseUnavailable)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
