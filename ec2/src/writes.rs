//! The write gate: whether creates may still be sent, and how many INSERTs are running.
//! The server stops it when its shutdown grace ends and waits, bounded, for the running
//! INSERTs' reports; the clients hold it and each create asks it before sending.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Whether creates may still be sent, and how many INSERTs are running: when the server's
/// shutdown grace ends it stops new creates (each running INSERT reports what it created
/// and what it did not send) and waits, bounded, for those reports to leave.
#[derive(Debug, Default)]
pub struct WriteGate {
    stopped: AtomicBool,
    running: AtomicUsize,
    idle: tokio::sync::Notify,
    last_finished: std::sync::Mutex<Option<std::time::Instant>>,
}

/// One running INSERT, counted until dropped.
#[derive(Debug)]
pub struct RunningWrite(Arc<WriteGate>);

impl WriteGate {
    /// No create is sent from now on.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether creates have been stopped.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Counts an INSERT as running until the guard drops.
    pub fn enter(self: &Arc<Self>) -> RunningWrite {
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningWrite(Arc::clone(self))
    }

    /// INSERTs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// When an INSERT last finished.
    pub fn last_finished(&self) -> Option<std::time::Instant> {
        *self.last_finished.lock().expect("write gate lock")
    }

    /// Resolves once no INSERT runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for RunningWrite {
    fn drop(&mut self) {
        *self.0.last_finished.lock().expect("write gate lock") = Some(std::time::Instant::now());
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
