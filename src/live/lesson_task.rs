//! The one task per live lesson: it owns the lesson's rotation clock (every subscriber
//! gets the same frame at the same step boundary), wakes when an automatic window opens,
//! and turns change events into messages.

use std::collections::BTreeSet;
use std::time::Duration;

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::hub::{Command, Seed};
use super::messages::ServerMessage;
use crate::attendance::{LessonAttendance, lesson_attendance};
use crate::clock::SharedClock;
use crate::db::{self, DbPool};
use crate::domain::window::{CheckinLink, CheckinState, CodeFrame, Window};
use crate::error::ApiError;
use crate::lessons::queries as lessons;

/// How long after a failed database read the subscribers are sent everything again.
const RESYNC_RETRY: Duration = Duration::from_secs(1);

/// The one task per live lesson.
pub(super) struct LessonTask {
    lesson_id: i64,
    messages: broadcast::Sender<ByteString>,
    commands: mpsc::UnboundedReceiver<Command>,
    pool: DbPool,
    clock: SharedClock,
    /// The (window, step) whose code subscribers were last given; `None` once they were told
    /// the window is not open.
    announced: Option<(i64, i64)>,
    /// A database read failed, so subscribers may have missed something: everything is sent
    /// again at this instant (`RESYNC_RETRY` after the failure), fixed so that a stream of
    /// events cannot postpone it.
    resync_at: Option<Instant>,
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
        Self { lesson_id, messages, commands, pool, clock, announced: None, resync_at: None, link }
    }

    /// Runs until the last subscriber leaves (the hub aborts it), starting from what the
    /// first subscriber's snapshot showed.
    pub(super) async fn run(mut self, seed: oneshot::Receiver<Seed>) {
        let (mut window, shown_to_all) = match seed.await {
            Ok(Seed { window, at, alone }) => {
                self.announced =
                    window.as_ref().filter(|w| w.is_open(at)).map(|w| (w.id, w.schedule().step_at(at)));
                (window, alone)
            }
            // The first subscriber left without a snapshot; anyone else here read their own,
            // perhaps before this read.
            Err(_) => (self.load_window().await.flatten(), false),
        };
        // Unless the read failed: then the resync says it all, soon.
        if !shown_to_all && self.resync_at.is_none() {
            // Said once, every subscriber's view is this task's: from here on every change
            // to it is announced, whatever each snapshot showed.
            self.tell_state(window.as_ref(), self.clock.now());
        }
        loop {
            let clock = self.clock.clone();
            let now = clock.now();
            match window.as_ref().filter(|w| w.is_open(now)) {
                // At a step boundary, the planned opening, or catching up on one that passed
                // while this task was busy or starting (a slow database read, say):
                // subscribers must never be left showing an old code.
                Some(open) => {
                    if self.announced != Some((open.id, open.schedule().step_at(now))) {
                        self.announce(open, now);
                    }
                }
                // At the close, or after one that passed meanwhile: subscribers were given a
                // code, so they are told it no longer works.
                None => {
                    if self.announced.is_some() {
                        self.send_state(window.as_ref(), now);
                    }
                }
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
                () = sleep_until(&clock, wake_at) => {}
                () = pause_until(self.resync_at) => {
                    // A failure from here on sets a new instant.
                    self.resync_at = None;
                    self.handle(vec![Command::Resync], &mut window).await;
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

    /// Handles a batch of commands with as few database round trips as possible. A read that
    /// fails leaves the subscribers possibly behind, so everything is sent again a little
    /// later (a `Resync`) instead (see `settle`).
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
        if window_changed || resync {
            match self.load_window().await {
                Some(loaded) => *window = loaded,
                None => return,
            }
        }
        // An event can announce a window the subscribers were already shown (it was
        // committed just before the first dashboard read its snapshot): say nothing.
        let window_changed = window_changed && window.as_ref().map(|w| (w.id, w.closed_at)) != before;
        let now = self.clock.now();
        if resync || !students.is_empty() {
            let Some(results) = self.load_results(now).await else { return };
            if resync {
                self.resync_at = None;
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
            self.tell_state(window.as_ref(), now);
        }
    }

    /// Marks that subscribers may be behind: a fresh snapshot and state go out
    /// `RESYNC_RETRY` from now, or sooner if a resync is already due.
    fn resync_later(&mut self) {
        self.resync_at.get_or_insert_with(|| Instant::now() + RESYNC_RETRY);
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

    /// The state, and the current code if the window is open.
    fn tell_state(&mut self, window: Option<&Window>, now: DateTime<Utc>) {
        self.send_state(window, now);
        if let Some(open) = window.filter(|w| w.is_open(now)) {
            self.send_code(open, now);
        }
    }

    fn send_state(&mut self, window: Option<&Window>, now: DateTime<Utc>) {
        if !window.is_some_and(|w| w.is_open(now)) {
            self.announced = None;
        }
        self.send(&ServerMessage::State {
            lesson_id: self.lesson_id,
            checkin: CheckinState::of(window, now),
        });
    }

    /// The lesson's latest window; `None` if it could not be read (a resync is then due).
    async fn load_window(&mut self) -> Option<Option<Window>> {
        let lesson_id = self.lesson_id;
        let loaded =
            db::run(&self.pool, move |conn| Ok::<_, ApiError>(lessons::latest_window(conn, lesson_id)?))
                .await;
        self.settle(loaded, "window")
    }

    /// The lesson's results; `None` if they could not be read (a resync is then due, unless
    /// the lesson is gone).
    async fn load_results(&mut self, now: DateTime<Utc>) -> Option<LessonAttendance> {
        let lesson_id = self.lesson_id;
        let loaded = db::run(&self.pool, move |conn| -> Result<_, ApiError> {
            let course_id = lessons::get(conn, lesson_id)?.course_id;
            Ok(lesson_attendance(conn, course_id, lesson_id, now)?.0)
        })
        .await;
        self.settle(loaded, "results")
    }

    /// A read's result; a failure schedules a resync, except for a lesson that was deleted
    /// (never opened, so nothing to show: retrying would only fail again).
    fn settle<T>(&mut self, loaded: Result<T, ApiError>, what: &'static str) -> Option<T> {
        match loaded {
            Ok(value) => Some(value),
            Err(ApiError::NotFound(_)) => None,
            Err(err) => {
                tracing::warn!(lesson_id = self.lesson_id, error = %err, "live lesson could not load its {what}");
                self.resync_later();
                None
            }
        }
    }
}

/// Waits until `deadline`, or forever without one.
async fn pause_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline` on `clock`, or forever without one.
async fn sleep_until(clock: &SharedClock, deadline: Option<DateTime<Utc>>) {
    match deadline {
        Some(deadline) => clock.sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
