//! Builds the application: the route table (which is also the OpenAPI document), the
//! middleware, and a server bound to a listener so tests can use port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServiceFactory, ServiceRequest};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::Authenticator;
use crate::auth::jwt::TokenKeys;
use crate::auth::oidc::Sso;
use crate::auth::password::Hasher;
use crate::auth::revoked::RevokedSessions;
use crate::checkins::batch::Checkins;
use crate::checkins::codes::OpenCodes;
use crate::client::TrustedProxies;
use crate::clock::{Clock, SharedClock};
use crate::config::Settings;
use crate::courses::DefaultTimeZone;
use crate::db::DbPool;
use crate::lessons::checkin_control::CheckinLinks;
use crate::live::limits::ConnectionLimits;
use crate::live::{self, Heartbeat, LiveSettings, hub::Hub};
use crate::metrics::Metrics;
use crate::openapi::{self, ApiDoc};
use crate::rejections::{self, RouteTable};
use crate::{attendance, auth, checkins, courses, lessons, ops, telemetry, users};

/// Every route, registered once. The OpenAPI document is collected from this list.
fn api(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(auth::login::login)
        .service(auth::session_routes::refresh)
        .service(auth::session_routes::logout)
        .service(auth::activation::activate)
        .service(auth::sso::list_providers)
        .service(auth::sso::exchange)
        .service(auth::oidc::start)
        .service(auth::oidc::callback)
        .service(users::get_me)
        .service(users::update_me)
        .service(auth::change_password::change_my_password)
        .service(auth::session_routes::list_my_sessions)
        .service(auth::session_routes::end_my_session)
        .service(users::import::import_users)
        .service(users::create_user)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::create_activation)
        .service(courses::create_course)
        .service(courses::list_courses)
        .service(courses::get_course)
        .service(courses::update_course)
        .service(courses::list_students)
        .service(courses::enroll_students)
        .service(courses::unenroll_student)
        .service(lessons::create_lesson)
        .service(lessons::create_series)
        .service(lessons::list_lessons)
        .service(lessons::get_lesson)
        .service(lessons::update_lesson)
        .service(lessons::delete_lesson)
        .service(lessons::checkin_control::open_checkin)
        .service(lessons::checkin_control::close_checkin)
        .service(lessons::checkin_control::get_checkin_code)
        .service(lessons::checkin_control::get_checkin_qr)
        .service(checkins::create_checkin)
        .service(attendance::list_my_attendance)
        .service(attendance::list_my_courses_attendance)
        .service(attendance::get_lesson_attendance)
        .service(attendance::set_attendance)
        .service(attendance::mark_many)
        .service(attendance::get_record_history)
        .service(attendance::get_course_attendance)
        .service(live::tickets::create_ws_ticket)
        .service(live::live_checkin);
}

fn operations(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(ops::healthz).service(ops::readyz).service(ops::metrics);
}

/// Registers the routes on `app` and returns it with the document collected from them.
fn with_routes<T>(app: App<T>) -> (App<T>, utoipa::openapi::OpenApi)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope::scope("/api/v1").configure(api))
        .configure(operations)
        .split_for_parts()
}

/// The OpenAPI document, built from the same registration the server uses.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = with_routes(App::new()).1;
    openapi::add_common_responses(&mut document);
    openapi::apply_input_rules(&mut document);
    document
}

/// The document as committed in `openapi/openapi.json`: pretty JSON with a final newline.
pub fn document_json() -> String {
    // unwrap: the document is plain data that always serialises.
    let mut json = document().to_pretty_json().expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// (pattern, methods) for each documented path, for 404-versus-405 answers.
fn route_table(doc: &utoipa::openapi::OpenApi) -> RouteTable {
    RouteTable::new(doc.paths.paths.iter().map(|(path, item)| {
        let methods = item_methods(item);
        (path.clone(), methods)
    }))
}

fn item_methods(item: &utoipa::openapi::PathItem) -> Vec<String> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ]
    .into_iter()
    .filter(|(_, op)| op.is_some())
    .map(|(method, _)| method.to_owned())
    .collect()
}

/// CORS for the SPA: exactly the configured origins, no credentials (tokens travel in
/// the `Authorization` header), and the headers the frontend reads exposed.
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header::{self, HeaderName};
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-device-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600)
}

/// The shared pieces handlers take as `web::Data`, built once and cloned into each worker.
#[derive(Clone)]
struct State {
    pool: web::Data<DbPool>,
    clock: web::Data<dyn Clock>,
    authenticator: web::Data<Authenticator>,
    checkins: web::Data<Checkins>,
    hub: web::Data<Hub>,
    live: web::Data<LiveSettings>,
    proxies: web::Data<TrustedProxies>,
    metrics: web::Data<Metrics>,
    hasher: web::Data<Hasher>,
    time_zone: web::Data<DefaultTimeZone>,
    links: web::Data<CheckinLinks>,
    sso: web::Data<Sso>,
}

impl State {
    fn register<T>(self, app: App<T>) -> App<T>
    where
        T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
    {
        app.app_data(self.pool)
            .app_data(self.clock)
            .app_data(self.authenticator)
            .app_data(self.checkins)
            .app_data(self.hub)
            .app_data(self.live)
            .app_data(self.proxies)
            .app_data(self.metrics)
            .app_data(self.hasher)
            .app_data(self.time_zone)
            .app_data(self.links)
            .app_data(self.sso)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    hub: Hub,
    hasher: web::Data<Hasher>,
}

impl Application {
    /// Binds `settings.bind` (port 0 picks a free port), starts the change-event listener
    /// on `database_url`, and prepares the server.
    pub fn build(
        settings: &Settings,
        jwt_secret: &[u8],
        pool: DbPool,
        database_url: &str,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (ROLLCALL_BIND): {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let limits = ConnectionLimits::new(settings.ws_max_connections, settings.ws_max_per_user);
        let revoked = Arc::new(RevokedSessions::new());
        let codes = Arc::new(OpenCodes::new());
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(
            pool.clone(),
            clock.clone(),
            limits,
            revoked.clone(),
            codes.clone(),
            settings.checkin_link.clone(),
        );
        tokio::spawn(live::listener::listen(database_url.to_owned(), hub.clone()));
        let keys =
            TokenKeys::new(jwt_secret, &settings.jwt_issuer, &settings.jwt_audience, settings.token_ttl);
        // Each handler takes the pieces it needs; nothing holds them all.
        let state = State {
            authenticator: web::Data::new(Authenticator {
                keys,
                pool: pool.clone(),
                clock: clock.clone(),
                session_ttl: chrono::Duration::from_std(settings.session_ttl)?,
                activation_ttl: chrono::Duration::from_std(settings.activation_ttl)?,
            }),
            checkins: web::Data::new(Checkins::start(checkins::batch::Views {
                pool: pool.clone(),
                revoked,
                codes,
                metrics: metrics.clone(),
            })),
            pool: web::Data::new(pool),
            clock: web::Data::from(clock),
            hub: web::Data::new(hub.clone()),
            live: web::Data::new(LiveSettings {
                allowed_origins: settings.cors_origins.clone(),
                heartbeat: Heartbeat {
                    ping_every: settings.ws_ping_interval,
                    drop_after: settings.ws_client_timeout,
                    ..Heartbeat::default()
                },
            }),
            proxies: web::Data::new(TrustedProxies(settings.trusted_proxies.clone())),
            metrics: web::Data::from(metrics),
            hasher: web::Data::new(Hasher::for_this_machine()),
            time_zone: web::Data::new(DefaultTimeZone(settings.default_time_zone)),
            links: web::Data::new(CheckinLinks(settings.checkin_link.clone())),
            sso: web::Data::new(Sso::new(&settings.sso, listener.local_addr()?)?),
        };
        let hasher = state.hasher.clone();
        let cors_origins = settings.cors_origins.clone();
        let document = document();
        let routes = web::Data::new(route_table(&document));
        let document = Arc::new(document);
        let server = HttpServer::new(move || {
            let (app, _) = with_routes(App::new());
            let state = state.clone();
            state
                .register(app)
                .app_data(routes.clone())
                .app_data(rejections::json_config())
                .app_data(rejections::query_config())
                .app_data(rejections::path_config())
                .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", (*document).clone()))
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
                    }),
                )
                .default_service(web::to(rejections::fallback))
                .wrap(from_fn(rejections::limit_headers))
                .wrap(cors(&cors_origins))
                .wrap(from_fn(telemetry::request_log))
        })
        // Live messages leave at once: with Nagle's algorithm (actix leaves it on) a message
        // written while the previous one awaits its ACK waits for it, up to the client's
        // delayed ACK. Set before `listen`, which takes the hook.
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .listen(listener)?
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // A client that trickles its headers (slowloris) is answered 408 and dropped.
        .client_request_timeout(settings.request_header_timeout)
        // Signals are handled in `run_until_stopped`, so live connections can be told first.
        .disable_signals()
        .run();
        Ok(Self { port, server, hub, hasher })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn hub(&self) -> Hub {
        self.hub.clone()
    }

    /// The password-hashing executor, to observe its load.
    pub fn hasher(&self) -> web::Data<Hasher> {
        self.hasher.clone()
    }

    /// A handle that shuts the server down the way a signal does.
    pub fn stopper(&self) -> Stopper {
        Stopper { server: self.server.handle(), hub: self.hub.clone() }
    }

    /// Serves until SIGINT or SIGTERM (or a `Stopper`), then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        let mut server = self.server;
        tokio::select! {
            result = &mut server => return result,
            () = termination() => tracing::info!("shutdown requested"),
        }
        // The server future must keep running to carry out the stop it is asked for.
        let ((), result) = tokio::join!(stopper.stop(), server);
        result
    }
}

#[derive(Clone)]
pub struct Stopper {
    server: actix_web::dev::ServerHandle,
    hub: Hub,
}

impl Stopper {
    /// Closes live connections with 1001, stops accepting, and waits (up to the shutdown
    /// timeout) for in-flight requests.
    pub async fn stop(&self) {
        self.hub.shut_down();
        // Let the connections send their close frames before the sockets go away
        // (bounded: a client that stopped reading is not waited for).
        for _ in 0..100 {
            if self.hub.open_connections() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.server.stop(true).await;
    }
}

async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
