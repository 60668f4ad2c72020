//! The call log writer: requests hand their [`CallRecord`] to a channel and go on; one background task
//! writes them in batches, so logging adds no disk write to any request's critical path.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::model::CallRecord;
use crate::store::DurableStore;

/// Records waiting beyond this make `record` wait: back-pressure rather than loss.
const QUEUE_CAPACITY: usize = 65_536;
/// The most records written in one transaction.
const BATCH_MAX: usize = 1_000;
/// How long the writer gathers records before a write, so a busy minute costs few transactions.
const LINGER: Duration = Duration::from_millis(50);

enum Message {
    Record(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

/// The handle requests log through. Cheap to clone.
#[derive(Clone)]
pub struct CallLogWriter {
    sender: mpsc::Sender<Message>,
}

impl std::fmt::Debug for CallLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLogWriter").finish_non_exhaustive()
    }
}

impl CallLogWriter {
    /// Starts the background writer on the current tokio runtime. It ends when every handle is dropped,
    /// after writing what it holds.
    pub fn start(store: Arc<dyn DurableStore>) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(write_batches(store, receiver));
        (CallLogWriter { sender }, task)
    }

    /// Queues one record. Waits only when the queue is full (the store is far behind).
    pub async fn record(&self, call: CallRecord) {
        if self.sender.send(Message::Record(Box::new(call))).await.is_err() {
            tracing::warn!("call log writer has stopped; a call record was not written");
        }
    }

    /// Waits until everything queued before this call is written (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Arc<dyn DurableStore>, mut receiver: mpsc::Receiver<Message>) {
    let mut batch: Vec<CallRecord> = Vec::with_capacity(BATCH_MAX);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let Some(first) = receiver.recv().await else { break };
        take(first, &mut batch, &mut waiters);
        // Gather more for a short while, unless someone waits for a flush.
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH_MAX && waiters.is_empty() {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(message)) => take(message, &mut batch, &mut waiters),
                Ok(None) | Err(_) => break,
            }
        }
        write_with_retry(store.as_ref(), &mut batch).await;
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
    write_with_retry(store.as_ref(), &mut batch).await;
}

fn take(message: Message, batch: &mut Vec<CallRecord>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Record(call) => batch.push(*call),
        Message::Flush(done) => waiters.push(done),
    }
}

/// Writes the batch, retrying with backoff while the store is down; a batch is dropped (and said so)
/// only after about a minute of failures, so a dead store cannot grow memory without bound.
async fn write_with_retry(store: &dyn DurableStore, batch: &mut Vec<CallRecord>) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=10 {
        match store.append_calls(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, attempt, n_calls = batch.len(), "call log write failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::error!(n_calls = batch.len(), "call log batch dropped after repeated storage failures");
    batch.clear();
}
