//! Password hashing with Argon2id. Hashing is slow and memory-hard on purpose, so it runs on
//! a few threads of its own, each reusing its Argon2 memory from one run to the next.

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};

use crate::config::PasswordHashConfig;

/// Shortest and longest passwords accepted (in characters). The upper bound keeps a request
/// from making the server hash megabytes.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// How long a request waits in the queue for a hashing slot before being told to come back
/// later: a login answers within a few seconds, or says when to retry.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue for hashing slots is full (or did not move in time): a flood of logins or
    /// registrations. Retry after about `retry_after_s` seconds.
    #[error("too many password checks at once; retry in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasherConfig {
    params: Params,
    /// Argon2 is memory- and CPU-hard on purpose; unauthenticated callers must not be able to
    /// start more of it at once than there are cores (each one takes `memory_kib`). Callers
    /// wait their turn in order (tokio's semaphore is fair).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Callers waiting for a slot, and the most that may: as many as the slots can serve
    /// within [`HASHING_WAIT`] at the measured cost of one hash.
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
    /// How long one hash took at start, for the queue's bound and Retry-After.
    hash_time: std::time::Duration,
    /// A hash of nothing anyone knows, checked when the account does not exist, so that a
    /// login for an unknown name takes as long as one for a known name.
    decoy: std::sync::Arc<String>,
    workers: HashingThreads,
}

/// The longest queue for hashing slots, however cheap hashing is.
const MAX_WAITING: usize = 10_000;

/// A caller's place in the hashing queue, given up when dropped.
struct QueuePlace<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashing runs on a few threads of its own, one per slot, each keeping its Argon2 memory
/// (`memory_kib`) for the next run. Allocating it afresh each time, on tokio's blocking pool,
/// left hundreds of MB resident: 250 MB after 20 logins, 455 MB after importing 300 players,
/// for 2 x 19 MiB of hashing at any moment (the allocator kept the freed blocks).
#[derive(Clone)]
struct HashingThreads {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl HashingThreads {
    /// The threads end when the last clone of the hasher is dropped.
    fn start(count: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job, not to run it.
                        let next = queue.lock().map(|q| q.recv());
                        match next {
                            Ok(Ok(job)) => job(),
                            _ => return,
                        }
                    }
                })
                .expect("a password hashing thread starts");
        }
        Self { jobs }
    }

    /// Runs `work` on a hashing thread; `None` if the threads are gone.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

impl PasswordHasherConfig {
    pub fn new(config: &PasswordHashConfig) -> Result<Self, String> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| format!("players.password_hash: {e}"))?;
        let started = std::time::Instant::now();
        let decoy = hash_with(&params, &crate::store::random_token(""))?;
        let hash_time = started.elapsed().max(std::time::Duration::from_micros(100));
        // Made on the caller's thread: give that memory back (the hashing threads keep theirs).
        BLOCKS.with_borrow_mut(|blocks| *blocks = Vec::new());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let per_slot = (HASHING_WAIT.as_micros() / hash_time.as_micros()).max(1) as usize;
        Ok(Self {
            params,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
            waiting: std::sync::Arc::default(),
            max_waiting: (cores * per_slot).clamp(cores, MAX_WAITING),
            hash_time,
            decoy: std::sync::Arc::new(decoy),
            workers: HashingThreads::start(cores),
        })
    }

    /// A hashing slot, after the callers already waiting; refused at once when the queue is
    /// as long as the slots can serve in [`HASHING_WAIT`].
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        use std::sync::atomic::Ordering;
        let ahead = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _queued = QueuePlace(&self.waiting);
        if ahead >= self.max_waiting {
            return Err(self.busy(ahead));
        }
        let acquire = self.slots.clone().acquire_owned();
        match tokio::time::timeout(HASHING_WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.busy(self.waiting.load(Ordering::Acquire))),
        }
    }

    /// Busy, with how long the `waiting` callers ahead will take to be served.
    fn busy(&self, waiting: usize) -> HashError {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u128;
        let wait_us = (waiting as u128 + 1) * self.hash_time.as_micros() / cores;
        HashError::Busy {
            retry_after_s: (wait_us.div_ceil(1_000_000) as u64).max(1),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=...`), with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let permit = self.slot().await?;
        let params = self.params.clone();
        let hashed = self
            .workers
            .run(move || {
                let _permit = permit;
                hash_with(&params, &password)
            })
            .await
            .ok_or_else(|| HashError::Failed("the hashing threads have stopped".into()))?;
        hashed.map_err(HashError::Failed)
    }

    /// Whether `password` matches `phc` (or the decoy, when there is no account).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        let permit = self.slot().await?;
        let exists = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.decoy.as_ref().clone());
        let matched = self
            .workers
            .run(move || {
                let _permit = permit;
                verify_with(&password, &phc)
            })
            .await
            .unwrap_or(false);
        Ok(matched && exists)
    }
}

thread_local! {
    /// This thread's Argon2 memory, kept between runs (see [`HashingThreads`]).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The most memory a stored hash may ask for when verified (1 GiB): hashes are made by this
/// module, so a larger one is not ours.
const MAX_VERIFY_KIB: u32 = 1 << 20;

/// Runs Argon2 with this thread's memory, grown to `params` if needed.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    BLOCKS.with_borrow_mut(|blocks| {
        let count = params.block_count();
        if blocks.len() < count {
            blocks.resize(count, Block::new());
        }
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..count])
            .map_err(|e| e.to_string())
    })
}

/// A PHC string for `password` with a fresh 16-byte salt.
fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2_into(&argon2, params, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string, with the hash's own parameters (older hashes
/// keep verifying after the configured cost changes). Compared in constant time.
fn verify_with(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(&parsed)) else {
        return false;
    };
    if parsed.algorithm != ARGON2ID_IDENT || params.m_cost() > MAX_VERIFY_KIB {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    argon2_into(&argon2, &params, password, salt.as_ref(), &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasherConfig {
        PasswordHasherConfig::new(&PasswordHashConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_and_the_other_way_round() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = Params::new(64, 1, 1, None).unwrap();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // Hashes stored before Coffer reused its hashing memory.
        let before = standard
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_with("correct horse", &before));
        assert!(!verify_with("correct horse!", &before));
        let ours = hash_with(&params, "correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(standard.verify_password(b"correct horse", &parsed).is_ok());
        // Not ours: another algorithm, or a cost no hash of ours has.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(!verify_with("correct horse", &argon2i));
        let huge = ours.replace("m=64", "m=4194304");
        assert!(!verify_with("correct horse", &huge));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify_only_the_password() {
        let hasher = cheap();
        let a = hasher.hash("correct horse".into()).await.unwrap();
        let b = hasher.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        let verify = |password: &str, phc: Option<String>| hasher.verify(password.into(), phc);
        assert!(verify("correct horse", Some(a.clone())).await.unwrap());
        assert!(!verify("correct horse!", Some(a)).await.unwrap());
        assert!(!verify("anything", None).await.unwrap());
        assert!(!verify("x", Some("not a hash".into())).await.unwrap());
    }
}
