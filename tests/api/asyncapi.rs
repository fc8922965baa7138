//! `openapi/asyncapi.yaml` must describe exactly the messages the server sends.

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::spawn_app;
use crate::helpers::websocket::next_message;

/// (message type → required fields) as documented: each payload's `required: [..]` line
/// followed by its `type: { const: .. }` line.
fn documented() -> BTreeMap<String, Vec<String>> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/asyncapi.yaml")).unwrap();
    let mut messages = BTreeMap::new();
    let mut required = None;
    for line in text.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("required: [").and_then(|l| l.strip_suffix(']')) {
            required = Some(list.split(',').map(|f| f.trim().to_owned()).collect::<Vec<_>>());
        }
        if let Some(kind) = line.strip_prefix("type: { const: ").and_then(|l| l.strip_suffix(" }")) {
            messages.insert(kind.to_owned(), required.take().expect("required fields before the type"));
        }
    }
    messages
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
        let fields =
            documented.get(&kind).unwrap_or_else(|| panic!("the server sent an undocumented `{kind}`"));
        for field in fields {
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
