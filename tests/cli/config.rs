//! What the binary is configured with: invalid values, an external `DATABASE_URL`, and the
//! `openapi` subcommand that needs no configuration at all.

use std::process::Command;

use crate::{database, fresh_dir, rollcall, run};

#[test]
fn invalid_configuration_exits_with_one_line_naming_the_variable() {
    let data = fresh_dir("config");
    for (variable, value) in [("ROLLCALL_BIND", "not-an-address"), ("ROLLCALL_JWT_SECRET", "short")] {
        let output = run(rollcall(&data).env(variable, value).arg("migrate"));
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable) && !stderr.contains("panicked"), "{stderr}");
    }
    let output = run(rollcall(&data).env("DATABASE_URL", "postgres://localhost/x").arg("serve"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ROLLCALL_JWT_SECRET: is required"));
    assert!(!data.exists(), "nothing was created for a configuration that was refused");
}

#[test]
fn with_database_url_everything_uses_that_server() {
    let database = database::TestDatabase::create();
    let data = fresh_dir("external");
    let output = run(rollcall(&data)
        .env("DATABASE_URL", &database.url)
        .env("ROLLCALL_JWT_SECRET", "x".repeat(32))
        .args(["user", "add", "--username", "ext.admin", "--password", "ext-admin-pw", "--role", "admin"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!data.exists(), "no embedded cluster was created");
    use diesel::prelude::*;
    let mut conn = PgConnection::establish(&database.url).unwrap();
    let count: i64 = rollcall::schema::users::table
        .filter(rollcall::schema::users::username.eq("ext.admin"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn the_openapi_subcommand_prints_the_committed_document() {
    let output = run(Command::new(env!("CARGO_BIN_EXE_rollcall")).arg("openapi"));
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), committed);
}
