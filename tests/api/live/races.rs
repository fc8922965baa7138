//! Changes that race a dashboard's snapshot. A dashboard subscribes, then reads its snapshot;
//! the lesson's task starts from the first dashboard's snapshot (its seed). Whatever the
//! interleaving, no dashboard may be left showing a window state or a code that no longer
//! holds. These tests drive the hub directly, to fix the order the server leaves to chance.

use std::time::Duration;

use rollcall::clock::Clock;
use rollcall::domain::window::Window;
use rollcall::live::hub::Subscription;
use serde_json::{Value, json};

use crate::helpers::fixtures::Class;
use crate::helpers::websocket::next_message;
use crate::helpers::{TestApp, spawn_app};

/// The lesson's latest window and the instant it was read, as a dashboard's snapshot reads it.
fn snapshot(app: &TestApp, class: &Class) -> (Option<Window>, chrono::DateTime<chrono::Utc>) {
    let mut conn = app.pool.get().unwrap();
    let now = app.clock.now();
    (rollcall::lessons::queries::latest_window(&mut conn, class.lesson_id).unwrap(), now)
}

/// A snapshot taken while check-in is open, as each test's first dashboard sees it.
fn open_snapshot(app: &TestApp, class: &Class) -> (Option<Window>, chrono::DateTime<chrono::Utc>) {
    let (shown, read_at) = snapshot(app, class);
    assert!(shown.as_ref().is_some_and(|window| window.is_open(read_at)), "the snapshot shows check-in open");
    (shown, read_at)
}

/// The next message the subscription gets, within 5 s.
async fn next(subscription: &mut Subscription) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(5), subscription.messages.recv())
        .await
        .expect("a message within 5 s")
        .expect("the lesson's stream is open");
    serde_json::from_str(&text).unwrap()
}

/// Reads messages until a `state` one, and returns it.
async fn next_state(subscription: &mut Subscription) -> Value {
    loop {
        let message = next(subscription).await;
        if message["type"] == "state" {
            return message;
        }
    }
}

async fn close(app: &TestApp, class: &Class) {
    app.post(&format!("/api/v1/lessons/{}/checkin/close", class.lesson_id), &class.teacher, json!({}))
        .await
        .ok(200);
}

#[tokio::test]
async fn a_change_right_after_the_first_snapshot_is_announced() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.wait_for_listener().await;
    app.open_checkin(&class, json!({})).await;
    let mut first = app.hub.subscribe(class.lesson_id);
    let (shown, read_at) = open_snapshot(&app, &class);

    close(&app, &class).await;
    first.seed(shown, read_at);
    assert_eq!(next_state(&mut first).await["checkin"]["state"], "closed");
}

#[tokio::test]
async fn a_dashboard_whose_snapshot_is_older_than_the_seed_is_brought_up_to_date() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    let mut first = app.hub.subscribe(class.lesson_id);
    // A second dashboard joins while the first one's snapshot is still being read, and reads
    // its own first: open.
    let mut second = app.hub.subscribe(class.lesson_id);
    open_snapshot(&app, &class);
    close(&app, &class).await;
    // The first dashboard's snapshot, read after the close, seeds the task; and that
    // dashboard hangs up at once, perhaps before the task has read the seed.
    let (newer, read_at) = snapshot(&app, &class);
    assert!(newer.as_ref().is_some_and(|window| !window.is_open(read_at)));
    first.seed(newer, read_at);
    drop(first);

    assert_eq!(next_state(&mut second).await["checkin"]["state"], "closed");
}

#[tokio::test]
async fn when_the_first_dashboard_leaves_before_its_snapshot_the_others_are_told_the_state() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({})).await;
    let first = app.hub.subscribe(class.lesson_id);
    let mut second = app.hub.subscribe(class.lesson_id);
    // The second one's snapshot shows check-in open.
    open_snapshot(&app, &class);
    close(&app, &class).await;
    // The first one's snapshot fails (or it hangs up): the task reads the window itself,
    // after the close the second one's snapshot does not show.
    drop(first);

    assert_eq!(next_state(&mut second).await["checkin"]["state"], "closed");
}

#[tokio::test]
async fn a_close_that_passes_before_the_task_starts_is_announced() {
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.open_checkin(&class, json!({"duration_seconds": 60})).await;
    let mut first = app.hub.subscribe(class.lesson_id);
    let (shown, read_at) = open_snapshot(&app, &class);
    // The window closes by itself while the first dashboard's snapshot is on its way.
    app.advance(61);
    first.seed(shown, read_at);

    let state = next_state(&mut first).await;
    assert_eq!(
        (state["checkin"]["state"].as_str(), state["checkin"]["closed_at"].as_str()),
        (Some("closed"), Some("2026-11-25T08:01:00Z"))
    );
}

#[tokio::test]
async fn a_change_the_task_could_not_read_reaches_the_dashboard_once_the_database_answers() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl};
    let app = spawn_app().await;
    let class = app.class("c", 0).await;
    app.wait_for_listener().await;
    app.open_checkin(&class, json!({})).await;
    let mut socket = app.watch(class.lesson_id, &class.teacher).await;
    assert_eq!(next_message(&mut socket).await["type"], "snapshot");
    assert_eq!(next_message(&mut socket).await["type"], "code");

    // Check-in closes (from outside the server), while the window's table is locked.
    let mut outside = diesel::PgConnection::establish(app.database_url()).unwrap();
    let window = rollcall::lessons::queries::latest_window(&mut outside, class.lesson_id).unwrap().unwrap();
    rollcall::lessons::queries::set_closed_at(&mut outside, window.id, app.clock.now()).unwrap();
    let mut locker = diesel::PgConnection::establish(app.database_url()).unwrap();
    locker.batch_execute("BEGIN; LOCK TABLE checkin_windows IN ACCESS EXCLUSIVE MODE").unwrap();
    rollcall::events::publish(&mut outside, rollcall::events::Event::Window { lesson_id: class.lesson_id })
        .unwrap();
    // The task's read of the window waits for the lock; its connection is cut, so the read
    // fails.
    let mut cut = Vec::new();
    for _ in 0..500 {
        cut = diesel::sql_query(
            "SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%checkin_windows%'",
        )
        .load::<Cut>(&mut outside)
        .unwrap();
        if !cut.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(cut.as_slice(), [Cut { cut: true }]), "the task's read was cut: {cut:?}");
    locker.batch_execute("ROLLBACK").unwrap();

    // A second later: a fresh snapshot, then the state.
    let snapshot = next_message(&mut socket).await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["lesson"]["checkin"]["state"].as_str()),
        (Some("snapshot"), Some("closed"))
    );
    let state = next_message(&mut socket).await;
    assert_eq!((state["type"].as_str(), state["checkin"]["state"].as_str()), (Some("state"), Some("closed")));
}

#[derive(Debug, diesel::QueryableByName)]
struct Cut {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cut: bool,
}
