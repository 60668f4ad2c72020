//! A successful sync call's commit, settled after its answer is sent.
//!
//! A successful call's units were taken from its package when it was reserved, before the provider
//! was called; what is left to do once the provider has answered is to mark the charge `committed`
//! and keep the answer for `client_msg_id` retries. That is bookkeeping no answer depends on, so the
//! call answers at once and the commit runs in the background, where a cluster node's store batches
//! it with its neighbours' ([`Souk::settle`](crate::souk::Souk)). A failed call's release (its units
//! go back) is not deferred: when a failure is answered its units are already back.
//!
//! What the deferral changes, and what keeps it exact:
//! - A charge reads `reserved` for the moment between the answer and its commit. A read of the
//!   ledger on the node that served the call first waits for the commits of the calls it answered
//!   before ([`PendingCommits::settled_through_now`]); through another node the commit shows up
//!   within that node's next settlement batch, as the call log does.
//! - A retry with the same `client_msg_id` in that moment finds the key claimed without an answer
//!   and waits for it, as it does for a first call still running.
//! - A commit that fails is tried again in the background, as before; one never made (the process
//!   killed before it) leaves the reservation to the reaper, which releases it: the call is not
//!   charged, never charged twice. `souk serve` waits for the commits in flight when it shuts down.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The commits this process has started and not yet finished, by ticket (in order of start).
#[derive(Debug, Default)]
pub struct PendingCommits {
    next: AtomicU64,
    open: Mutex<BTreeSet<u64>>,
    finished: Notify,
}

/// One commit in flight; finishing it (or dropping it, should its task end early) takes it out.
#[derive(Debug)]
pub struct CommitTicket {
    pending: Arc<PendingCommits>,
    ticket: u64,
}

impl Drop for CommitTicket {
    fn drop(&mut self) {
        self.pending
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.ticket);
        self.pending.finished.notify_waiters();
    }
}

impl PendingCommits {
    /// Registers a commit about to start; it counts as pending until the ticket is dropped.
    pub fn start(self: &Arc<Self>) -> CommitTicket {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Taken under the lock, so a ticket below `next` is always already in `open`.
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        open.insert(ticket);
        CommitTicket {
            pending: self.clone(),
            ticket,
        }
    }

    /// How many commits are in flight.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Whether no commit is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every commit started before this call has finished (later ones are not waited
    /// for, so a busy node cannot keep a reader waiting).
    pub async fn settled_through_now(&self) {
        let through = {
            let _open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.next.load(Ordering::Relaxed)
        };
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            // Registered before the check, so a commit finishing in between still wakes this one.
            finished.as_mut().enable();
            let oldest = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).first().copied();
            if oldest.is_none_or(|oldest| oldest >= through) {
                return;
            }
            finished.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waits_for_the_commits_started_before_and_only_those() {
        let pending = Arc::new(PendingCommits::default());
        let first = pending.start();
        assert_eq!(pending.len(), 1);

        let waiter = {
            let pending = pending.clone();
            tokio::spawn(async move { pending.settled_through_now().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Started after the wait began: not waited for.
        let later = pending.start();
        assert!(!waiter.is_finished(), "returned while a commit started before it was pending");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait ended once the earlier commit finished")
            .unwrap();
        assert_eq!(pending.len(), 1);
        drop(later);
        assert!(pending.is_empty());
        // Nothing pending: no wait at all.
        tokio::time::timeout(Duration::from_millis(100), pending.settled_through_now())
            .await
            .expect("nothing to wait for");
    }
}
