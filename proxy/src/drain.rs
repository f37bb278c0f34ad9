//! Graceful shutdown: stop accepting, let in-flight work finish, up to a grace period.

use std::{sync::Arc, time::Duration};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Held by every connection task: tells it when to wind down.
#[derive(Clone, Debug)]
pub struct Drain {
    signal: watch::Receiver<bool>,
    tracker: TaskTracker,
}

/// Starts the drain and waits for it.
#[derive(Debug)]
pub struct Trigger {
    signal: Arc<watch::Sender<bool>>,
    tracker: TaskTracker,
}

/// A new drain pair.
pub fn channel() -> (Trigger, Drain) {
    let (tx, rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    (
        Trigger {
            signal: Arc::new(tx),
            tracker: tracker.clone(),
        },
        Drain {
            signal: rx,
            tracker,
        },
    )
}

impl Drain {
    /// Completes once draining has started.
    pub async fn signaled(&self) {
        let mut rx = self.signal.clone();
        // An error means the trigger is gone, which only happens at exit: drain then too.
        let _ = rx.wait_for(|draining| *draining).await;
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        *self.signal.borrow()
    }

    /// Spawns a task that the drain waits for.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(fut);
    }
}

impl Trigger {
    /// Signals every task, then waits until they finish or `grace` passes. Returns how many
    /// tasks were still running when the grace period ran out.
    pub async fn drain(self, grace: Duration) -> usize {
        let _ = self.signal.send(true);
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tracker.len(),
        }
    }

    /// A handle that can start the drain from elsewhere (the admin `/shutdown` endpoint).
    pub fn starter(&self) -> Starter {
        Starter(self.signal.clone())
    }
}

/// Starts a drain; the process's main task notices and finishes it.
#[derive(Clone, Debug)]
pub struct Starter(Arc<watch::Sender<bool>>);

impl Starter {
    /// Starts draining.
    pub fn start(&self) {
        let _ = self.0.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_tasks_then_gives_up_at_the_grace() {
        let (trigger, drain) = channel();
        let d = drain.clone();
        drain.spawn(async move {
            d.signaled().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        drain.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
        assert!(!drain.is_draining());
        let left = trigger.drain(Duration::from_secs(1)).await;
        assert!(drain.is_draining());
        assert_eq!(left, 1, "the hour-long task outlives the grace period");
    }
}
