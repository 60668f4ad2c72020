//! The bounded blocking pool every piece of CPU work (decode, encode, scan, crop, resize) runs on.
//!
//! A [`CpuPool`] holds `N` permits of a [`tokio::sync::Semaphore`]; a job first waits for a permit (at
//! most [`PoolLimits::queue_wait`]), then runs on [`tokio::task::spawn_blocking`] with the permit held,
//! and its caller waits at most [`PoolLimits::run_time`] for the answer. Busy and too slow are typed
//! errors ([`PoolError`]) the HTTP layer turns into a system-busy answer.
//!
//! **An over-time job is abandoned, not killed.** Rust cannot stop a thread from outside: the caller
//! gets [`PoolError::TimedOut`] at the deadline, but the closure runs on to its end and its result is
//! dropped. It keeps its permit until then, so abandoned jobs still count against the bound and a
//! flood of slow inputs turns into [`PoolError::Busy`], never into unbounded threads. Jobs must
//! therefore be bounded themselves (decoding limits in [`crate::image_input`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// The pool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Jobs running at once.
    pub workers: usize,
    /// How long a job may wait for a free worker before [`PoolError::Busy`].
    pub queue_wait: Duration,
    /// How long the caller waits for a running job before [`PoolError::TimedOut`].
    pub run_time: Duration,
}

impl Default for PoolLimits {
    /// As many workers as cores (at least 1), 2 s in the queue, 10 s of work.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        PoolLimits {
            workers: cores.max(1),
            queue_wait: Duration::from_secs(2),
            run_time: Duration::from_secs(10),
        }
    }
}

/// Why a job gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No worker came free within the queue wait.
    #[error("the cpu pool is busy")]
    Busy,
    /// The job ran past its time cap; it was abandoned (see the module docs).
    #[error("the cpu job took longer than {0:?}")]
    TimedOut(Duration),
    /// The job panicked.
    #[error("the cpu job panicked")]
    Panicked,
}

/// A bounded blocking pool; cheap to clone (clones share the permits).
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    limits: PoolLimits,
}

impl Default for CpuPool {
    fn default() -> Self {
        CpuPool::new(PoolLimits::default())
    }
}

impl CpuPool {
    /// A pool with these bounds (`workers` of 0 is taken as 1).
    pub fn new(mut limits: PoolLimits) -> Self {
        limits.workers = limits.workers.max(1);
        CpuPool {
            permits: Arc::new(Semaphore::new(limits.workers)),
            limits,
        }
    }

    /// The pool's bounds.
    pub fn limits(&self) -> PoolLimits {
        self.limits
    }

    /// Runs `job` on a blocking thread once a worker is free, waiting at most the queue wait for a
    /// worker and the run time for the answer.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(self.limits.queue_wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| PoolError::Busy)?
            .map_err(|_| PoolError::Busy)?;
        let handle = tokio::task::spawn_blocking(move || {
            // The permit lives as long as the work, even when the caller has stopped waiting.
            let _permit = permit;
            job()
        });
        match tokio::time::timeout(self.limits.run_time, handle).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(PoolError::Panicked),
            Err(_) => {
                tracing::warn!(limit_ms = self.limits.run_time.as_millis(), "cpu job abandoned past its time cap");
                Err(PoolError::TimedOut(self.limits.run_time))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue_ms: u64, run_ms: u64) -> CpuPool {
        CpuPool::new(PoolLimits {
            workers,
            queue_wait: Duration::from_millis(queue_ms),
            run_time: Duration::from_millis(run_ms),
        })
    }

    #[tokio::test]
    async fn runs_a_job() {
        assert_eq!(pool(1, 100, 1000).run(|| 2 + 2).await, Ok(4));
    }

    #[tokio::test]
    async fn busy_when_no_worker_comes_free() {
        let pool = pool(1, 50, 5000);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = pool.clone();
        let first = tokio::spawn(async move { busy.run(move || wait.recv().is_ok()).await });
        // Let the first job take the only permit.
        while pool.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }

    #[tokio::test]
    async fn slow_jobs_time_out_and_keep_their_permit_until_they_end() {
        let pool = pool(1, 20, 50);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let answer = pool.run(move || wait.recv().is_ok()).await;
        assert_eq!(answer, Err(PoolError::TimedOut(Duration::from_millis(50))));
        // The abandoned job still holds the worker.
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        while pool.permits.available_permits() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.run(|| 3).await, Ok(3));
    }

    #[tokio::test]
    async fn a_panic_is_an_error() {
        let answer: Result<(), _> = pool(1, 50, 1000).run(|| panic!("boom")).await;
        assert_eq!(answer, Err(PoolError::Panicked));
    }
}
