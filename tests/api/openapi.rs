//! The committed OpenAPI document must be exactly what the code generates.

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let generated = rollcall::startup::document_json();
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

/// What a frontend developer reading `/docs` relies on: every operation explains itself,
/// every request body comes with an example for "Try it out", every problem response names
/// the `code`s it can carry, and every schema and field is described.
#[test]
fn the_document_is_complete() {
    let doc = serde_json::to_value(rollcall::startup::document()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut gaps = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            for key in ["summary", "description"] {
                if op[key].as_str().is_none_or(|text| text.trim().is_empty()) {
                    gaps.push(format!("{name}: no {key}"));
                }
            }
            if op["tags"].as_array().is_none_or(Vec::is_empty) {
                gaps.push(format!("{name}: no tag"));
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, body) in content {
                    if body.get("example").is_none() && body.get("examples").is_none() {
                        gaps.push(format!("{name}: {media} request body has no example"));
                    }
                }
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let problem = response["content"].get("application/problem+json").is_some();
                let description = response["description"].as_str().unwrap_or("");
                if description.trim().is_empty() {
                    gaps.push(format!("{name} {status}: no description"));
                }
                if problem && !description.contains('`') {
                    gaps.push(format!("{name} {status}: names no problem `code`"));
                }
            }
        }
    }
    for (name, schema) in schemas {
        if schema["description"].as_str().is_none_or(|text| text.trim().is_empty()) {
            gaps.push(format!("schema {name}: no description"));
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let described = property["description"].as_str().is_some_and(|text| !text.trim().is_empty());
            // A bare reference is described by the schema it points to (checked above).
            let bare_reference = property.get("$ref").is_some() && property.as_object().unwrap().len() == 1;
            if !described && !bare_reference {
                gaps.push(format!("schema {name}.{field}: no description"));
            }
        }
    }
    assert!(gaps.is_empty(), "{} documentation gaps:\n{}", gaps.len(), gaps.join("\n"));
}
