//! The OpenAPI document's fixed parts (info, security, tags), and the passes that complete
//! what the route registration in `startup` collects: the problem responses every operation
//! shares, and the input rules of the validated types.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::settings::CheckinSettings;
use crate::domain::text::{
    CheckinCode, CourseCode, Note, Password, RealName, Rule, StudentNumber, Title, Username,
};
use crate::error::Problem;
use crate::live::messages::ServerMessage;

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
    components(schemas(Problem, ServerMessage)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Logging in, sessions (refresh, logout, listing and ending them), password changes and activation codes.\n\n\
            **Sessions.** Every login starts a session; the access token names it (`sid`) and never outlives it. \
            `POST /auth/refresh` trades the refresh token for a new access token and a new refresh token; a refresh \
            token works once, and a used one presented again revokes the whole session. A revoked session answers \
            401 `session_revoked` on every instance, and its live dashboards are closed with 1008."),
        (name = "users", description = "The caller's profile and user administration"),
        (name = "courses", description = "Courses and their rosters. A course that does not exist is 404; one that \
            exists but is not the caller's (not its teacher, not enrolled, not an admin) is 403."),
        (name = "lessons", description = "Lessons of a course, with their check-in state"),
        (name = "check-in", description = "Opening and closing check-in, the rotating code, and students checking in.\n\n\
            **The rotating code.** Each opening of check-in has its own random secret. The code for step \
            `n = floor((now - opened_at) / rotation_seconds)` is HMAC-SHA256(secret, n) shortened to `code_length` \
            digits (RFC 4226 dynamic truncation). A code is accepted while current, and for \
            `min(5, rotation_seconds / 2)` seconds after the next one appears; an older code of a still-open window \
            answers `code_expired`, anything else `invalid_code`. Check-in closes itself at `closes_at`."),
        (name = "attendance", description = "Results for teachers: per lesson (JSON or CSV), teacher changes with an \
            audit trail, and the per-course report.\n\n**Statuses.** `not_started` (check-in never opened), \
            `pending` (open, not checked in yet), `present`, `late` (checked in more than `late_after_seconds` after \
            opening), `excused`, `absent` (closed without a record, or marked absent).\n\n**Flags.** \
            `shared_device`: the same `X-Device-Id` checked in more than one student in the lesson — a hint of \
            proxy attendance to look into, never a verdict."),
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

/// Adds the problem responses every operation can give (malformed input, body limits,
/// missing or bad token, database outage) to each operation that does not document them itself, so they are
/// written once here rather than on every handler.
pub fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let is_operations = !path.starts_with("/api/");
        for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete]
            .into_iter()
            .flatten()
        {
            let has_body = operation.request_body.is_some();
            let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
            };
            if has_body || has_params {
                add("400", "Malformed body, path or query parameter (`bad_request`)");
            }
            add("431", "Request headers over 16 KiB in total (`headers_too_large`)");
            if has_body {
                add("413", "Body over 64 KiB (`payload_too_large`)");
                add("415", "Body not sent as application/json (`unsupported_media_type`)");
            }
            if !is_operations {
                // Every API route but login needs a token (login documents its own 401).
                add(
                    "401",
                    "Missing, invalid or expired token, or its user no longer exists (`unauthorized`)",
                );
                add("503", "The database is unreachable (`database_unavailable`)");
            }
        }
    }
}

/// Which validated type each free-text request field is read as: its pattern and lengths in
/// the document come from that type's [`Rule`], the same one its `parse` applies.
const TEXT_FIELDS: &[(&str, &str, Rule)] = &[
    ("CreateUser", "username", Username::RULE),
    ("CreateUser", "password", Password::RULE),
    ("CreateUser", "real_name", RealName::RULE),
    ("CreateUser", "student_number", StudentNumber::RULE),
    ("UpdateMe", "real_name", RealName::RULE),
    ("UpdateMe", "student_number", StudentNumber::RULE),
    ("CreateCourse", "title", Title::RULE),
    ("CreateCourse", "code", CourseCode::RULE),
    ("CreateLesson", "title", Title::RULE),
    ("SetAttendance", "note", Note::RULE),
    ("CheckinRequest", "code", CheckinCode::RULE),
    ("ChangePassword", "new_password", Password::RULE),
    ("Activate", "new_password", Password::RULE),
    ("UpdateUser", "real_name", RealName::RULE),
    ("UpdateUser", "student_number", StudentNumber::RULE),
];

/// The check-in settings' ranges, from [`CheckinSettings`].
const RANGED_FIELDS: &[(&str, &str, (i64, i64, i64))] = &[
    ("OpenCheckin", "rotation_seconds", CheckinSettings::ROTATION),
    ("OpenCheckin", "code_length", CheckinSettings::CODE_LENGTH),
    ("OpenCheckin", "duration_seconds", CheckinSettings::DURATION),
];

/// Writes each validated field's rule into its request schema.
pub fn apply_input_rules(doc: &mut utoipa::openapi::OpenApi) {
    for (schema, field, rule) in TEXT_FIELDS {
        rule.apply(property(doc, schema, field));
    }
    for (schema, field, (min, max, _)) in RANGED_FIELDS {
        let property = property(doc, schema, field);
        property.minimum = Some((*min).into());
        property.maximum = Some((*max).into());
    }
}

/// A request schema's property, which must exist: a renamed field fails every document build.
fn property<'a>(doc: &'a mut utoipa::openapi::OpenApi, schema: &str, field: &str) -> &'a mut Object {
    let found = doc.components.as_mut().and_then(|components| components.schemas.get_mut(schema)).and_then(
        |schema| match schema {
            RefOr::T(Schema::Object(object)) => object.properties.get_mut(field),
            _ => None,
        },
    );
    match found {
        Some(RefOr::T(Schema::Object(property))) => property,
        _ => panic!("the document has no property {schema}.{field} to apply its input rule to"),
    }
}
