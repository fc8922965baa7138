//! The one task per live lesson: it owns the lesson's rotation clock (every subscriber
//! gets the same frame at the same step boundary), wakes when an automatic window opens,
//! and turns change events into messages.

use std::collections::BTreeSet;

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::hub::{Command, Seed};
use super::messages::ServerMessage;
use crate::attendance::{LessonAttendance, lesson_attendance};
use crate::clock::SharedClock;
use crate::db::{self, DbPool};
use crate::domain::window::{CheckinLink, CheckinState, CodeFrame, Window};
use crate::error::ApiError;
use crate::lessons::queries as lessons;

/// The one task per live lesson.
pub(super) struct LessonTask {
    lesson_id: i64,
    messages: broadcast::Sender<ByteString>,
    commands: mpsc::UnboundedReceiver<Command>,
    pool: DbPool,
    clock: SharedClock,
    /// The (window, step) whose code subscribers were last given.
    announced: Option<(i64, i64)>,
    link: Option<CheckinLink>,
}

impl LessonTask {
    pub(super) fn new(
        lesson_id: i64,
        messages: broadcast::Sender<ByteString>,
        commands: mpsc::UnboundedReceiver<Command>,
        pool: DbPool,
        clock: SharedClock,
        link: Option<CheckinLink>,
    ) -> Self {
        Self { lesson_id, messages, commands, pool, clock, announced: None, link }
    }

    /// Runs until the last subscriber leaves (the hub aborts it), starting from what the
    /// first subscriber's snapshot showed.
    pub(super) async fn run(mut self, seed: oneshot::Receiver<Seed>) {
        let (mut window, started) = match seed.await {
            Ok(Seed { window, at }) => (window, at),
            // The first subscriber left without a snapshot; anyone still here read their own.
            Err(_) => (self.load_window().await.unwrap_or_default(), self.clock.now()),
        };
        self.announced =
            window.as_ref().filter(|w| w.is_open(started)).map(|w| (w.id, w.schedule().step_at(started)));
        loop {
            let clock = self.clock.clone();
            let now = clock.now();
            // Catch up if a boundary passed while this task was busy or starting (a slow
            // database read, say): subscribers must never be left showing an old code.
            if let Some(open) = window.as_ref().filter(|w| w.is_open(now))
                && self.announced != Some((open.id, open.schedule().step_at(now)))
            {
                self.announce(open, now);
            }
            // While open, wake at the next step boundary (or the close, if sooner); before an
            // automatic window opens, wake when it does.
            let wake_at = window.as_ref().and_then(|w| {
                if w.is_open(now) {
                    Some(w.schedule().next_boundary(now).min(w.closes_at))
                } else {
                    (!w.has_opened(now)).then_some(w.opened_at)
                }
            });
            tokio::select! {
                () = sleep_until(&clock, wake_at) => {
                    let now = clock.now();
                    if let Some(window) = &window {
                        if window.is_open(now) {
                            self.announce(window, now);
                        } else {
                            self.send_state(Some(window), now);
                        }
                    }
                }
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    let mut pending = vec![command];
                    while let Ok(more) = self.commands.try_recv() {
                        pending.push(more);
                    }
                    self.handle(pending, &mut window).await;
                }
            }
        }
    }

    /// Handles a batch of commands with as few database round trips as possible.
    async fn handle(&mut self, commands: Vec<Command>, window: &mut Option<Window>) {
        tracing::debug!(
            lesson_id = self.lesson_id,
            commands = commands.len(),
            "live lesson handles commands"
        );
        let mut students = BTreeSet::new();
        let (mut window_changed, mut resync) = (false, false);
        for command in commands {
            match command {
                Command::WindowChanged => window_changed = true,
                Command::Record(student) => {
                    students.insert(student);
                }
                Command::Resync => resync = true,
            }
        }
        let before = window.as_ref().map(|w| (w.id, w.closed_at));
        if (window_changed || resync)
            && let Some(loaded) = self.load_window().await
        {
            *window = loaded;
        }
        // An event can announce a window the subscribers' snapshot already showed (it was
        // committed just before the first dashboard read it): nothing changed, say nothing.
        let window_changed = window_changed && window.as_ref().map(|w| (w.id, w.closed_at)) != before;
        let now = self.clock.now();
        if resync || !students.is_empty() {
            let Some(results) = self.load_results(now).await else { return };
            if resync {
                self.send(&ServerMessage::Snapshot(results.clone()));
            } else {
                for record in results.records.iter().filter(|r| students.contains(&r.student.id)) {
                    self.send(&ServerMessage::Checkin {
                        lesson_id: self.lesson_id,
                        record: record.clone(),
                        summary: results.summary.clone(),
                    });
                }
            }
        }
        if window_changed || resync {
            self.send_state(window.as_ref(), now);
            if let Some(open) = window.as_ref().filter(|w| w.is_open(now)) {
                self.send_code(open, now);
            }
        }
    }

    fn send(&self, message: &ServerMessage) {
        // No receivers means the last subscriber just left; nothing to do.
        let _ = self.messages.send(message.to_text());
    }

    /// The current code of an open window; the first of a window that opened by itself
    /// (automatic check-in) comes after the state that says it is open.
    fn announce(&mut self, window: &Window, now: DateTime<Utc>) {
        if self.announced.is_none_or(|(id, _)| id != window.id) {
            self.send_state(Some(window), now);
        }
        self.send_code(window, now);
    }

    fn send_code(&mut self, window: &Window, now: DateTime<Utc>) {
        let frame = CodeFrame::current(window, now, self.link.as_ref());
        self.announced = Some((window.id, window.schedule().step_at(now)));
        self.send(&ServerMessage::Code(frame));
    }

    fn send_state(&self, window: Option<&Window>, now: DateTime<Utc>) {
        self.send(&ServerMessage::State {
            lesson_id: self.lesson_id,
            checkin: CheckinState::of(window, now),
        });
    }

    /// The lesson's latest window; `None` if the database could not be asked.
    async fn load_window(&self) -> Option<Option<Window>> {
        let lesson_id = self.lesson_id;
        match db::run(&self.pool, move |conn| Ok::<_, ApiError>(lessons::latest_window(conn, lesson_id)?))
            .await
        {
            Ok(window) => Some(window),
            Err(err) => {
                tracing::warn!(lesson_id, error = %err, "live lesson could not load its window");
                None
            }
        }
    }

    async fn load_results(&self, now: DateTime<Utc>) -> Option<LessonAttendance> {
        let lesson_id = self.lesson_id;
        let loaded = db::run(&self.pool, move |conn| -> Result<_, ApiError> {
            let course_id = lessons::get(conn, lesson_id)?.course_id;
            Ok(lesson_attendance(conn, course_id, lesson_id, now)?.0)
        })
        .await;
        loaded
            .map_err(|err| tracing::warn!(lesson_id, error = %err, "live lesson could not load its results"))
            .ok()
    }
}

/// Sleeps until `deadline` on `clock`, or forever without one.
async fn sleep_until(clock: &SharedClock, deadline: Option<DateTime<Utc>>) {
    match deadline {
        Some(deadline) => clock.sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
