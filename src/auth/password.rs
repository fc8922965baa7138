//! Argon2id password hashing, on a bounded executor of its own.
//!
//! One Argon2id hash takes 19 MiB and tens of milliseconds of one core. Run on the shared
//! blocking pool, a lecture hall logging in at once ran dozens of hashes together: the
//! pooled connections they held ran out, and every thread kept its 19 MiB in its allocator
//! arena (gigabytes in all). So every hash runs on a [`Hasher`]: a few dedicated threads
//! (about one per core, at a lower CPU priority so check-ins stay responsive), fed by a
//! bounded queue; when the queue is full the caller gets 503 `server_busy` at once. Each
//! thread hashes in one 19 MiB block it keeps while busy (and frees after 5 idle seconds),
//! so memory is bounded by the thread count and no hash in a storm pays for allocating and
//! faulting in its memory. Callers hash without holding a
//! database connection or a lock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    self, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt,
    SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
fn argon2() -> ReusedMemory {
    ReusedMemory { algorithm: Algorithm::Argon2id, version: Version::V0x13, params: Params::DEFAULT }
}

thread_local! {
    /// This thread's Argon2 memory, allocated by its first hash and reused by the next ones
    /// until the thread is idle for a while: at most 19 MiB per hashing thread, instead of
    /// 19 MiB allocated, page-faulted in and freed on every hash.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 that hashes in this thread's reused memory; otherwise exactly the `argon2`
/// crate's `PasswordHasher` (and so its constant-time `PasswordVerifier`).
struct ReusedMemory {
    algorithm: Algorithm,
    version: Version,
    params: Params,
}

impl PasswordHasher for ReusedMemory {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let salt = salt.into();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        let output =
            Output::init_with(self.params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
                BLOCKS.with_borrow_mut(|blocks| {
                    blocks.resize(self.params.block_count(), Block::default());
                    Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut blocks[..])?)
                })
            })?;
        Ok(PasswordHash {
            algorithm: self.algorithm.ident(),
            version: Some(self.version.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?.unwrap_or_default();
        let version = version.map(Version::try_from).transpose()?.unwrap_or_default();
        ReusedMemory { algorithm, version, params }.hash_password(password, salt)
    }
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
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    /// Signalled when a job is queued.
    queued: Condvar,
    capacity: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Job>> {
        // Every critical section is one push or pop, so a poisoned lock is consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hasher {
    /// `workers` threads, and at most `queue` jobs waiting for one.
    pub fn new(workers: usize, queue: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::with_capacity(queue)),
            queued: Condvar::new(),
            capacity: queue,
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        for n in 0..workers.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("rollcall-hash-{n}"))
                .spawn(move || work(&shared))
                .expect("unwrap: the OS can start a thread at start-up");
        }
        Self { shared }
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
        let shared = self.shared.clone();
        let job: Job = Box::new(move || {
            let result = f();
            // Counted as done before the caller hears of it.
            shared.running.fetch_sub(1, Ordering::SeqCst);
            let _ = reply.send(result);
        });
        {
            let mut queue = self.shared.queue();
            if queue.len() >= self.shared.capacity {
                return Err(HashError::Busy);
            }
            queue.push_back(job);
        }
        self.shared.queued.notify_one();
        answer.await.map_err(|_| HashError::Failed(anyhow::anyhow!("a hashing job was dropped")))
    }

    /// Hashes running right now.
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.shared.queue().len()
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }
}

/// How long a worker keeps its memory without a job: after a storm, memory goes back.
const KEEP_MEMORY_WHILE_IDLE: Duration = Duration::from_secs(5);

fn work(shared: &Shared) {
    lower_priority();
    loop {
        let job = {
            let mut queue = shared.queue();
            loop {
                if let Some(job) = queue.pop_front() {
                    // Counted as running before the queue lets go of it.
                    let now = shared.running.fetch_add(1, Ordering::SeqCst) + 1;
                    shared.peak.fetch_max(now, Ordering::SeqCst);
                    break job;
                }
                let (next, waited) = shared
                    .queued
                    .wait_timeout(queue, KEEP_MEMORY_WHILE_IDLE)
                    .unwrap_or_else(|e| e.into_inner());
                queue = next;
                if waited.timed_out() && queue.is_empty() {
                    // Idle: give this thread's 19 MiB back (a block that large is its own mapping).
                    BLOCKS.take();
                }
            }
        };
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

    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        // Stored hashes were made by `Argon2::default()` before memory was reused.
        let ours = hash("correct horse").unwrap();
        assert!(
            Argon2::default().verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap()).is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(verify("correct horse", Some(&theirs)));
        assert!(!verify("wrong horse", Some(&theirs)));
        // The same password and salt give the same hash, reused memory or not.
        let again = argon2().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert_eq!(again, theirs);
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
