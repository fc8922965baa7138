//! The OpenAPI document: its fixed parts (info, security, tags) live here; its paths and
//! schemas come from the route registration in `startup::routes`, so they cannot drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rollcall",
        description = "Classroom check-in: a teacher opens check-in for a lesson, the dashboard \
            shows a rotating code, students submit it, and everyone sees the results.\n\n\
            Every `/api/v1` route except `POST /api/v1/auth/login` needs `Authorization: Bearer <token>`; \
            get a token from the login route and paste it into **Authorize**.\n\n\
            Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Logging in"),
        (name = "users", description = "The caller's profile and user administration"),
        (name = "operations", description = "Health and readiness for operators"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from `POST /api/v1/auth/login`"))
                    .build(),
            ),
        );
    }
}

/// The complete document as served at `/api-docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::startup::document()
}

/// The document as committed in `openapi/openapi.json`: pretty JSON with a final newline.
pub fn to_pretty_json() -> String {
    // unwrap: the document is plain data that always serialises.
    let mut json = document().to_pretty_json().expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
