//! The committed OpenAPI document must be exactly what the code generates.

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let generated = rollcall::openapi::to_pretty_json();
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", i + 1))
            .unwrap_or_else(|| "one document is a prefix of the other".into());
        panic!(
            "openapi/openapi.json is out of date ({first_difference}).\n\
             Regenerate it with: cargo run -- openapi > openapi/openapi.json"
        );
    }
}

#[test]
fn every_operation_id_is_its_handler_name_and_every_route_is_documented() {
    let doc = serde_json::to_value(rollcall::startup::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id =
                op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{id} documents no responses"
            );
            ids.push(id.to_owned());
        }
    }
    for expected in ["login", "get_me", "update_me", "create_user", "list_users", "healthz", "readyz"] {
        assert!(ids.iter().any(|id| id == expected), "missing {expected} in {ids:?}");
    }
}
