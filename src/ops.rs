//! Operator endpoints: liveness, readiness and metrics.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::password::Hasher;
use crate::db::{self, DbPool};
use crate::error::{ApiError, problems};
use crate::live::hub::Hub;
use crate::metrics::{Gauges, Metrics};

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

problems!(ReadyzProblems {
    ApiError::DatabaseUnavailable => "The database is unreachable",
});

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
        ReadyzProblems,
    )
)]
#[get("/readyz")]
pub async fn readyz(pool: web::Data<DbPool>) -> Result<HttpResponse, ApiError> {
    db::run(&pool, |conn| -> Result<_, ApiError> {
        diesel::sql_query("SELECT 1").execute(conn).map_err(|_| ApiError::DatabaseUnavailable)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Prometheus metrics, in the text exposition format.
///
/// No token needed; meant for a Prometheus scraper, not the SPA. Covers HTTP requests by
/// method, route pattern and status with their latency, check-in attempts by result, open
/// live WebSocket connections, lessons with live subscribers, password hashes running and
/// queued, and database pool use. Counts
/// are per server instance.
#[utoipa::path(
    tag = "operations",
    security(()),
    responses((status = 200, description = "Metrics in Prometheus text format", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    hub: web::Data<Hub>,
    pool: web::Data<DbPool>,
    hasher: web::Data<Hasher>,
) -> HttpResponse {
    let gauges = Gauges {
        connections: hub.open_connections(),
        live_lessons: hub.live_lessons(),
        pool: pool.state(),
        hashes_running: hasher.running(),
        hashes_queued: hasher.queued(),
    };
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render(gauges))
}
