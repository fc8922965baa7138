//! Argon2id password hashing, on a bounded executor of its own.
//!
//! One Argon2id hash takes 19 MiB and tens of milliseconds of one core. Run on the shared
//! blocking pool, a lecture hall logging in at once ran dozens of hashes together: the
//! pooled connections they held ran out, and every thread kept its 19 MiB in its allocator
//! arena (gigabytes in all). So every hash runs on a [`Hasher`]: a few dedicated threads
//! (about one per core, at a lower CPU priority so check-ins stay responsive), fed by a
//! bounded queue; when the queue is full the caller gets 503 `server_busy` at once. Callers
//! hash without holding a database connection or a lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Checks `password` against a stored hash; `None` (no such user) burns the same time
/// against a dummy hash and fails.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("not a real password").expect("unwrap: hashing a constant cannot fail"));
    let candidate = stored.unwrap_or(DUMMY.as_str());
    let matches = PasswordHash::new(candidate)
        .map(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false);
    matches && stored.is_some()
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: come back shortly.
    #[error("password hashing is at capacity")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => ApiError::ServerBusy("too many passwords are being checked at once"),
            HashError::Failed(cause) => ApiError::Unexpected(cause),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The bounded executor every password hash and verification runs on.
pub struct Hasher {
    jobs: SyncSender<Job>,
    load: Arc<Load>,
}

#[derive(Default)]
struct Load {
    running: AtomicUsize,
    peak: AtomicUsize,
    queued: AtomicUsize,
}

impl Hasher {
    /// `workers` threads, and at most `queue` jobs waiting for one.
    pub fn new(workers: usize, queue: usize) -> Self {
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let load = Arc::new(Load::default());
        for n in 0..workers.max(1) {
            let (receiver, load) = (receiver.clone(), load.clone());
            std::thread::Builder::new()
                .name(format!("rollcall-hash-{n}"))
                .spawn(move || work(&receiver, &load))
                .expect("unwrap: the OS can start a thread at start-up");
        }
        Self { jobs, load }
    }

    /// One worker per core the process may use, and a queue of 32 per worker: a lecture hall
    /// of 300 at 64 concurrent logins waits its turn instead of being refused.
    pub fn for_this_machine() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(workers, workers * 32)
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        Ok(self.run(move || hash(&password)).await??)
    }

    /// Verifies a password against a stored hash (`None`: an unknown user, same cost).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        self.run(move || verify(&password, stored.as_deref())).await
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let (reply, answer) = oneshot::channel();
        let load = self.load.clone();
        let job: Job = Box::new(move || {
            let result = f();
            // Counted as done before the caller hears of it.
            load.running.fetch_sub(1, Ordering::SeqCst);
            load.queued.fetch_sub(1, Ordering::SeqCst);
            let _ = reply.send(result);
        });
        self.load.queued.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.load.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.load.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(HashError::Failed(anyhow::anyhow!("the hashing threads have stopped")));
            }
        }
        answer.await.map_err(|_| HashError::Failed(anyhow::anyhow!("a hashing job was dropped")))
    }

    /// Hashes running right now.
    pub fn running(&self) -> usize {
        self.load.running.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.load.queued.load(Ordering::SeqCst).saturating_sub(self.running())
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.load.peak.load(Ordering::SeqCst)
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, load: &Load) {
    lower_priority();
    loop {
        // unwrap_or_else: a worker that panicked while holding the lock left it consistent.
        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { return };
        let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
        load.peak.fetch_max(now, Ordering::SeqCst);
        job();
    }
}

/// Runs this thread at nice 10: a hash may wait a few milliseconds more, a check-in should not.
fn lower_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and who = 0 changes only the calling thread on
    // Linux (each thread has its own nice value); it reads and writes no memory of ours.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "OWASP minimum: {stored}");
        assert!(verify("correct horse", Some(&stored)));
        assert!(!verify("wrong horse", Some(&stored)));
        assert!(!verify("correct horse", None));
        assert!(!verify("correct horse", Some("not a hash")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sixty_four_concurrent_verifications_never_run_more_hashes_than_workers() {
        let hasher = Arc::new(Hasher::new(2, 64));
        let stored = hash("correct horse").unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                let password = if n % 2 == 0 { "correct horse" } else { "wrong horse" };
                tokio::spawn(async move { hasher.verify(password.into(), Some(stored)).await.unwrap() })
            })
            .collect();
        let mut verified = 0;
        for task in tasks {
            verified += usize::from(task.await.unwrap());
        }
        assert_eq!(verified, 32);
        assert_eq!(hasher.peak(), 2, "both workers were used, and never more");
        assert_eq!((hasher.running(), hasher.queued()), (0, 0));
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_instead_of_waiting() {
        let hasher = Arc::new(Hasher::new(1, 1));
        // Hold the only worker, then fill the one place in the queue.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let worker = hasher.clone();
        let busy = tokio::spawn(async move { worker.run(move || held.recv().ok()).await });
        while hasher.running() == 0 {
            tokio::task::yield_now().await;
        }
        let waiter = hasher.clone();
        let queued = tokio::spawn(async move { waiter.run(|| ()).await });
        while hasher.queued() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify("pw".into(), None).await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
    }
}
