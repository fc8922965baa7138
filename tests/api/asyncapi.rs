//! `openapi/asyncapi.yaml` must describe exactly the messages the server sends.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::helpers::websocket::next_message;

/// (message type → (required fields, all fields)), from the payload each message of
/// `openapi/asyncapi.yaml` references in the generated OpenAPI document: the schemas come
/// from the server's own message type, not from the AsyncAPI file.
fn documented() -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/asyncapi.yaml")).unwrap();
    let document = serde_json::to_value(rollcall::startup::document()).unwrap();
    let mut messages = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let Some(pointer) = line
            .strip_prefix("$ref: 'openapi.json#")
            .and_then(|l| l.strip_suffix('\''))
            .filter(|p| p.starts_with("/components/schemas/ServerMessage/"))
        else {
            continue;
        };
        let payload = document.pointer(pointer).unwrap_or_else(|| panic!("no schema at {pointer}"));
        let (mut required, mut fields) = (Vec::new(), Vec::new());
        collect(&document, payload, &mut required, &mut fields);
        let kind =
            payload_type(&document, payload).unwrap_or_else(|| panic!("{pointer} has no `type` const"));
        messages.insert(kind, (required, fields));
    }
    messages
}

/// The required and known fields of an object schema, through `allOf` and local `$ref`s.
fn collect(document: &Value, schema: &Value, required: &mut Vec<String>, fields: &mut Vec<String>) {
    if let Some(target) = schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        return collect(document, document.pointer(target).unwrap(), required, fields);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        collect(document, part, required, fields);
    }
    required
        .extend(schema["required"].as_array().into_iter().flatten().map(|f| f.as_str().unwrap().to_owned()));
    fields.extend(schema["properties"].as_object().into_iter().flatten().map(|(name, _)| name.clone()));
}

/// The one value the payload's `type` property allows.
fn payload_type(document: &Value, schema: &Value) -> Option<String> {
    if let Some(target) = schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        return payload_type(document, document.pointer(target)?);
    }
    let own = schema["properties"]["type"]["enum"][0].as_str().map(str::to_owned);
    own.or_else(|| schema["allOf"].as_array()?.iter().find_map(|part| payload_type(document, part)))
}

#[tokio::test]
async fn every_documented_message_is_sent_with_its_required_fields() {
    let documented = documented();
    assert_eq!(documented.keys().collect::<Vec<_>>(), ["checkin", "code", "snapshot", "state"]);

    let app = spawn_app().await;
    let class = app.class("c", 1).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    let mut received = vec![next_message(&mut socket).await];
    app.open_checkin(&class, json!({})).await;
    received.push(next_message(&mut socket).await);
    received.push(next_message(&mut socket).await);
    let code = app.current_code(&class).await;
    app.check_in(&class.students[0], &code).await.ok(201);
    received.push(next_message(&mut socket).await);

    let mut seen = BTreeMap::new();
    for message in &received {
        let kind = message["type"].as_str().unwrap().to_owned();
        let (required, fields) =
            documented.get(&kind).unwrap_or_else(|| panic!("the server sent an undocumented `{kind}`"));
        for field in required {
            assert!(message.get(field).is_some(), "`{kind}` lacks documented field `{field}`: {message}");
        }
        let extra: Vec<&String> =
            message.as_object().unwrap().keys().filter(|k| !fields.contains(k)).collect();
        assert!(extra.is_empty(), "`{kind}` has undocumented fields {extra:?}");
        seen.insert(kind, ());
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "every documented message was seen"
    );
}
