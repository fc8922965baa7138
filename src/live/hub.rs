//! This instance's live state, behind one cloneable handle: for every lesson with at least
//! one dashboard connected, a broadcast channel and one task that drives it. The task owns
//! the lesson's rotation clock (so every subscriber gets the same frame at the same step
//! boundary, whatever the number of connections), turns change events into messages, and
//! is stopped when the last subscriber leaves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::lesson_task::LessonTask;
use super::limits::{ConnectionLimits, Permit};
use crate::auth::revoked::RevokedSessions;
use crate::checkins::codes::OpenCodes;
use crate::clock::SharedClock;
use crate::db::DbPool;
use crate::domain::window::{CheckinLink, Window};
use crate::error::ApiError;
use crate::events::Event;

/// Messages a subscriber may fall behind by before it is dropped as too slow.
const CHANNEL_CAPACITY: usize = 64;

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    lessons: Mutex<HashMap<i64, LiveLesson>>,
    pool: DbPool,
    clock: SharedClock,
    /// The caps on live connections, and so the one count of them.
    limits: ConnectionLimits,
    /// This instance's view of revoked sessions, kept current by the event feed.
    revoked: Arc<RevokedSessions>,
    /// This instance's index of the codes in force, reloaded when a window changes.
    codes: Arc<OpenCodes>,
    listener_up: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// Sessions with a dashboard connected here: a revocation flips the flag, and every
    /// stream of that session closes.
    sessions: Mutex<HashMap<i64, (watch::Sender<bool>, usize)>>,
    /// The check-in link code frames carry (`ROLLCALL_CHECKIN_URL`), if any.
    link: Option<CheckinLink>,
}

struct LiveLesson {
    messages: broadcast::Sender<ByteString>,
    commands: mpsc::UnboundedSender<Command>,
    subscribers: usize,
    task: JoinHandle<()>,
}

pub(super) enum Command {
    WindowChanged,
    Record(i64),
    Resync,
}

impl Hub {
    pub fn new(
        pool: DbPool,
        clock: SharedClock,
        limits: ConnectionLimits,
        revoked: Arc<RevokedSessions>,
        codes: Arc<OpenCodes>,
        link: Option<CheckinLink>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                lessons: Mutex::new(HashMap::new()),
                pool,
                clock,
                limits,
                revoked,
                codes,
                listener_up: AtomicBool::new(false),
                shutdown: watch::Sender::new(false),
                sessions: Mutex::new(HashMap::new()),
                link,
            }),
        }
    }

    fn lessons(&self) -> MutexGuard<'_, HashMap<i64, LiveLesson>> {
        // A panic while holding this lock leaves the map consistent (single operations).
        self.inner.lessons.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to a lesson's messages, starting its task if it is the first subscriber.
    /// The first subscriber then owes the task its snapshot's window: see
    /// [`Subscription::seed`].
    pub fn subscribe(&self, lesson_id: i64) -> Subscription {
        let mut lessons = self.lessons();
        let mut seed = None;
        let lesson = lessons.entry(lesson_id).or_insert_with(|| {
            let (sender, receiver) = oneshot::channel();
            seed = Some(sender);
            self.start(lesson_id, receiver)
        });
        lesson.subscribers += 1;
        Subscription { hub: self.clone(), lesson_id, messages: lesson.messages.subscribe(), seed }
    }

    fn start(&self, lesson_id: i64, seed: oneshot::Receiver<Seed>) -> LiveLesson {
        let (messages, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = LessonTask::new(
            lesson_id,
            messages.clone(),
            receiver,
            self.inner.pool.clone(),
            self.inner.clock.clone(),
            self.inner.link.clone(),
        );
        LiveLesson { messages, commands, subscribers: 0, task: tokio::spawn(task.run(seed)) }
    }

    fn unsubscribe(&self, lesson_id: i64) {
        let mut lessons = self.lessons();
        if let Some(lesson) = lessons.get_mut(&lesson_id) {
            lesson.subscribers -= 1;
            if lesson.subscribers == 0 {
                lesson.task.abort();
                lessons.remove(&lesson_id);
            }
        }
    }

    /// Routes a change event to its lesson's task, if anyone here watches that lesson, or
    /// closes the streams of a revoked session.
    pub fn dispatch(&self, event: Event) {
        tracing::debug!(?event, "change event");
        let (lesson_id, command) = match event {
            Event::Window { lesson_id } => {
                self.inner.codes.invalidate();
                (lesson_id, Command::WindowChanged)
            }
            Event::Record { lesson_id, student_id } => (lesson_id, Command::Record(student_id)),
            Event::SessionRevoked { session_id } => return self.session_revoked(session_id),
        };
        if let Some(lesson) = self.lessons().get(&lesson_id) {
            let _ = lesson.commands.send(command);
        }
    }

    /// Makes every live lesson send a fresh snapshot (after events may have been missed).
    pub fn resync_all(&self) {
        for lesson in self.lessons().values() {
            let _ = lesson.commands.send(Command::Resync);
        }
    }

    /// The event feed connected (having read the revoked sessions: `revoked`) or went down
    /// (from then on events may be missed, so the view of revoked sessions is not trusted).
    pub fn set_listener_up(&self, up: bool) {
        if !up {
            self.inner.revoked.distrust();
        }
        // Window events may have been missed (down), or the index loaded before (up).
        self.inner.codes.invalidate();
        self.inner.listener_up.store(up, Ordering::SeqCst);
    }

    /// The revoked sessions read when the event feed (re)connected: the view is complete
    /// again, and streams of sessions revoked while the feed was down are closed now.
    pub fn reload_revoked(&self, session_ids: Vec<i64>) {
        let watched = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for id in &session_ids {
            if let Some((sender, _)) = watched.get(id) {
                sender.send_replace(true);
            }
        }
        drop(watched);
        self.inner.revoked.reload(session_ids);
    }

    /// Whether the cross-instance event feed is connected.
    pub fn listener_up(&self) -> bool {
        self.inner.listener_up.load(Ordering::SeqCst)
    }

    /// Admits one more connection for `user_id` under the caps; it counts as open until the
    /// permit is dropped.
    pub fn admit(&self, user_id: i64) -> Result<Permit, ApiError> {
        self.inner.limits.acquire(user_id)
    }

    /// Live connections open on this instance.
    /// The check-in link code frames carry, if one is configured.
    pub fn link(&self) -> Option<&CheckinLink> {
        self.inner.link.as_ref()
    }

    pub fn open_connections(&self) -> i64 {
        self.inner.limits.open_total() as i64
    }

    /// Lessons with at least one subscriber on this instance.
    pub fn live_lessons(&self) -> usize {
        self.lessons().len()
    }

    /// Watches a session for revocation while the returned guard lives.
    pub fn watch_session(&self, session_id: i64) -> SessionWatch {
        let mut sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let (sender, watchers) = sessions.entry(session_id).or_insert_with(|| (watch::Sender::new(false), 0));
        *watchers += 1;
        SessionWatch { hub: self.clone(), session_id, revoked: sender.subscribe() }
    }

    fn session_revoked(&self, session_id: i64) {
        self.inner.revoked.record(session_id);
        let sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sender, _)) = sessions.get(&session_id) {
            sender.send_replace(true);
        }
    }

    /// Tells every connection to close with 1001 (going away).
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}

/// What the first subscriber's snapshot showed: the lesson's latest window, read at that
/// instant. The lesson's task starts from it, so every change committed after that snapshot
/// is announced, and one the snapshot already showed is not announced again, unless the
/// subscriber was not `alone`: others that subscribed before it seeded may have read older
/// snapshots, so the task states the window once as it starts.
pub(super) struct Seed {
    pub window: Option<Window>,
    pub at: DateTime<Utc>,
    pub alone: bool,
}

/// A lesson's messages for one connection; unsubscribes when dropped.
pub struct Subscription {
    hub: Hub,
    lesson_id: i64,
    pub messages: broadcast::Receiver<ByteString>,
    /// For the subscriber that started the lesson's task: where to hand its snapshot.
    seed: Option<oneshot::Sender<Seed>>,
}

impl Subscription {
    /// Tells the lesson's task what this subscriber's snapshot showed (`window`, read at
    /// `at`), if this subscriber started the task; a no-op for the others. Until then the
    /// task holds the events it hears. Were the task to read the window itself instead, a
    /// change committed between the snapshot and that read would be in neither the
    /// snapshot nor any message. A subscription dropped unseeded lets the task read the
    /// window itself, and state it to whoever else is subscribed.
    pub fn seed(&mut self, window: Option<Window>, at: DateTime<Utc>) {
        if let Some(seed) = self.seed.take() {
            // Counted now, under the hub's lock: one who leaves before the task reads the
            // seed does not make the others' older snapshots current.
            let alone = self.hub.lessons().get(&self.lesson_id).is_none_or(|lesson| lesson.subscribers == 1);
            let _ = seed.send(Seed { window, at, alone });
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.lesson_id);
    }
}

/// A connection's watch on its session; stops watching when dropped.
pub struct SessionWatch {
    hub: Hub,
    session_id: i64,
    pub revoked: watch::Receiver<bool>,
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut sessions = self.hub.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, watchers)) = sessions.get_mut(&self.session_id) {
            *watchers -= 1;
            if *watchers == 0 {
                sessions.remove(&self.session_id);
            }
        }
    }
}
