//! QR codes of the check-in link, the link in code frames, and the `stale_code` flag.

use serde_json::json;

use crate::helpers::websocket::next_message;
use crate::helpers::{TestApp, settings, spawn_app, spawn_app_with};

const LINK: &str = "https://checkin.example.edu/c?code={code}";

async fn with_link() -> TestApp {
    let mut settings = settings();
    settings.checkin_link = Some(rollcall::domain::window::CheckinLink::parse(LINK).unwrap());
    spawn_app_with(settings).await
}

/// Decodes a QR code rendered as SVG by reading its dark modules back into a bitmap.
fn decode(svg: &str) -> String {
    // The renderer draws each dark module as `M{x} {y}h{w}v{h}H{x}Z` in one path.
    let path = svg.split(" d=\"").nth(1).expect("a path").split('"').next().unwrap();
    let modules: Vec<(u32, u32, u32)> = path
        .split('M')
        .filter(|m| !m.is_empty())
        .map(|m| {
            let (x, rest) = m.split_once(' ').unwrap();
            let y: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let w: String =
                rest.split('h').nth(1).unwrap().chars().take_while(|c| c.is_ascii_digit()).collect();
            (x.parse().unwrap(), y.parse().unwrap(), w.parse().unwrap())
        })
        .collect();
    let size = modules.iter().map(|(x, y, w)| (x + w).max(y + w)).max().unwrap() + 8;
    let dark =
        |x: u32, y: u32| modules.iter().any(|(mx, my, w)| x >= *mx && x < mx + w && y >= *my && y < my + w);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(size as usize, size as usize, |x, y| {
        if dark(x as u32, y as u32) { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("a readable QR code").1
}

#[tokio::test]
async fn the_qr_code_encodes_the_link_with_the_current_code_and_is_never_cached() {
    let app = with_link().await;
    let class = app.class("c", 0).await;
    let path = format!("/api/v1/lessons/{}/checkin/qr.svg", class.lesson_id);
    app.get(&path, &class.teacher).await.problem(409, "checkin_not_open");
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    let frame = app.get(&format!("/api/v1/lessons/{}/checkin/code", class.lesson_id), &class.teacher).await;
    let code = frame.ok(200)["code"].as_str().unwrap().to_owned();
    assert_eq!(frame.ok(200)["checkin_url"], format!("https://checkin.example.edu/c?code={code}"));

    let qr = app.get(&path, &class.teacher).await;
    assert_eq!(qr.status, 200);
    assert_eq!(qr.headers["content-type"], "image/svg+xml");
    assert_eq!(qr.headers["cache-control"], "no-store");
    assert_eq!(decode(&qr.text), format!("https://checkin.example.edu/c?code={code}"));
    app.get(&path, &app.admin_token).await.ok(200);
    app.get(&path, &app.class("o", 0).await.teacher).await.problem(403, "forbidden");

    app.advance(10);
    let next = app.current_code(&class).await;
    assert_ne!(next, code);
    assert_eq!(
        decode(&app.get(&path, &class.teacher).await.text),
        format!("https://checkin.example.edu/c?code={next}")
    );

    // The live stream's frames carry the link too.
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    let frame = next_message(&mut socket).await;
    assert_eq!(frame["checkin_url"], format!("https://checkin.example.edu/c?code={next}"));
}

#[tokio::test]
async fn without_a_link_the_qr_code_is_the_bare_code_and_frames_have_no_link() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    let frame = app.get(&format!("/api/v1/lessons/{}/checkin/code", class.lesson_id), &class.teacher).await;
    assert!(frame.ok(200).get("checkin_url").is_none(), "{}", frame.text);
    let qr = app.get(&format!("/api/v1/lessons/{}/checkin/qr.svg", class.lesson_id), &class.teacher).await;
    assert_eq!(decode(&qr.text), frame.ok(200)["code"].as_str().unwrap());
}

#[tokio::test]
async fn a_check_in_with_the_previous_code_in_its_grace_period_is_flagged_stale() {
    let app = spawn_app().await;
    let class = app.class("c", 2).await;
    app.open_checkin(&class, json!({"rotation_seconds": 10})).await;
    let first = app.current_code(&class).await;
    app.check_in(&class.students[0], &first).await.ok(201);
    app.advance(12);
    let stale = app.check_in(&class.students[1], &first).await;
    assert_eq!(stale.ok(201)["status"], "present", "accepted: the flag is a hint, not a verdict");
    let results = app.get(&format!("/api/v1/lessons/{}/attendance", class.lesson_id), &class.teacher).await;
    let flags: Vec<serde_json::Value> =
        results.ok(200)["records"].as_array().unwrap().iter().map(|r| r["flags"].clone()).collect();
    assert_eq!(flags, [json!([]), json!(["stale_code"])]);
}
