//! Backpressure for follow-ups under `powerpole serve` and Socket Mode.
//!
//! Each follow-up (store writes, Slack posts, DMs) holds memory, descriptors and outbound
//! connections while it runs. Spawning each at once lets a burst grow the process without bound
//! (hundreds of MB, thousands of sockets) and slows every follow-up down together. Instead, at
//! most `workers` follow-ups run at once and at most `queue` more wait for a worker; a follow-up
//! beyond that is refused *before* the answer goes out, so the person is told powerpole is busy
//! (and that nothing was done) instead of being promised work that will not happen.
//!
//! Once accepted, a follow-up always runs: it is a task on the runtime that waits for a worker,
//! and a follow-up that panics frees its worker for the next one. A handler spawns at most one
//! follow-up, so "refused" never leaves half of a request done.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slack_morphism::prelude::{SlackBlock, SlackInteractionEvent, SlackView};
use tokio::sync::Semaphore;

use super::deferred::{FollowUp, FollowUps};
use super::{Ack, Reply, RequestId};
use crate::notify::messages;

/// The pool's defaults are `[server]`'s (`config.rs`), so that config does not import slack/.
pub use crate::config::{DEFAULT_FOLLOW_UP_QUEUE as DEFAULT_QUEUE, DEFAULT_FOLLOW_UP_WORKERS as DEFAULT_WORKERS};

/// What a person is told when the pool is full. Nothing was stored or sent.
pub const BUSY: &str = "powerpole is busy right now and did nothing with this; please try again in a minute";

/// A bounded pool for follow-ups: `workers` run at once, `queue` more wait, the rest are refused.
pub struct FollowUpPool {
    workers: Arc<Semaphore>,
    max_workers: usize,
    max_queue: usize,
    counts: Arc<Counts>,
    /// Requests whose follow-up was refused, until their answer takes the refusal.
    refused: Mutex<HashSet<RequestId>>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    waiting: AtomicUsize,
    most_running: AtomicUsize,
    most_waiting: AtomicUsize,
    done: AtomicUsize,
    refused: AtomicUsize,
}

/// How full the pool is now, and the most it has been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub workers: usize,
    pub queue: usize,
    /// Follow-ups running now (at most `workers`).
    pub running: usize,
    /// Follow-ups waiting for a worker now (at most `queue`).
    pub waiting: usize,
    /// The most that ever ran at once / waited at once.
    pub most_running: usize,
    pub most_waiting: usize,
    /// Follow-ups finished (including those that panicked) and refused, since the start.
    pub done: usize,
    pub refused: usize,
}

impl FollowUpPool {
    /// A pool of `workers` (at least 1) with room for `queue` waiting follow-ups.
    pub fn new(workers: usize, queue: usize) -> FollowUpPool {
        let workers = workers.max(1);
        FollowUpPool {
            workers: Arc::new(Semaphore::new(workers)),
            max_workers: workers,
            max_queue: queue,
            counts: Arc::new(Counts::default()),
            refused: Mutex::new(HashSet::new()),
        }
    }

    pub fn stats(&self) -> PoolStats {
        let c = &self.counts;
        PoolStats {
            workers: self.max_workers,
            queue: self.max_queue,
            running: c.running.load(Ordering::SeqCst),
            waiting: c.waiting.load(Ordering::SeqCst),
            most_running: c.most_running.load(Ordering::SeqCst),
            most_waiting: c.most_waiting.load(Ordering::SeqCst),
            done: c.done.load(Ordering::SeqCst),
            refused: c.refused.load(Ordering::SeqCst),
        }
    }

    /// Follow-ups running or waiting now.
    pub fn in_flight(&self) -> usize {
        self.counts.running.load(Ordering::SeqCst) + self.counts.waiting.load(Ordering::SeqCst)
    }

    /// Whether every accepted follow-up (running or waiting) finished within `bound`: what a
    /// stopping `serve` waits for.
    pub async fn drained(&self, bound: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        while self.in_flight() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Takes a place in the queue if one is free.
    fn reserve_place(&self) -> bool {
        let waiting = &self.counts.waiting;
        let mut now = waiting.load(Ordering::SeqCst);
        loop {
            if now >= self.max_queue {
                return false;
            }
            match waiting.compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.counts.most_waiting.fetch_max(now + 1, Ordering::SeqCst);
                    return true;
                }
                Err(actual) => now = actual,
            }
        }
    }

    fn refuse(&self, follow_up: FollowUp) {
        self.counts.refused.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(request_id = %follow_up.request_id(), what = follow_up.what(), workers = self.max_workers, queue = self.max_queue, "follow-up refused: every worker is busy and the queue is full; the person is told to try again");
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).insert(follow_up.request_id().clone());
    }
}

impl Default for FollowUpPool {
    fn default() -> Self {
        FollowUpPool::new(DEFAULT_WORKERS, DEFAULT_QUEUE)
    }
}

impl std::fmt::Debug for FollowUpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUpPool").field("stats", &self.stats()).finish()
    }
}

/// Counts a follow-up as running until it ends, however it ends (a panic included).
struct Running(Arc<Counts>);

impl Running {
    fn start(counts: &Arc<Counts>) -> Running {
        let now = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
        counts.most_running.fetch_max(now, Ordering::SeqCst);
        Running(counts.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }
}

impl FollowUps for FollowUpPool {
    fn accept(&self, follow_up: FollowUp) {
        let counts = self.counts.clone();
        if let Ok(permit) = self.workers.clone().try_acquire_owned() {
            let running = Running::start(&counts);
            tokio::spawn(async move {
                let _held = (permit, running);
                follow_up.run().await;
            });
        } else if self.reserve_place() {
            let workers = self.workers.clone();
            tokio::spawn(async move {
                // The semaphore is never closed, so this only returns with a permit.
                let permit = workers.acquire_owned().await;
                counts.waiting.fetch_sub(1, Ordering::SeqCst);
                let running = Running::start(&counts);
                let _held = (permit, running);
                follow_up.run().await;
            });
        } else {
            self.refuse(follow_up);
        }
    }

    fn take_refused(&self, id: &RequestId) -> bool {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }
}

/// The answer to a slash command whose follow-up was refused.
pub fn busy_reply() -> Reply {
    Reply::Ephemeral(messages::problem(BUSY, ""))
}

/// The answer to a modal submission whose follow-up was refused: the modal stays open with the
/// reason under its first input, so the person can submit again without retyping.
pub fn busy_ack(first_input: &str) -> Ack {
    Ack::Errors(vec![(first_input.to_string(), BUSY.to_string())])
}

/// The HTTP answer to a click or an event whose follow-up was refused: Slack shows a click as
/// failed, and retries an event later.
pub fn busy_response() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, BUSY).into_response()
}

/// The first input block of a submitted modal (where [`busy_ack`] shows the reason); `None`
/// for anything that is not a modal submission.
pub fn first_input_block(event: &SlackInteractionEvent) -> Option<String> {
    let SlackInteractionEvent::ViewSubmission(submitted) = event else {
        return None;
    };
    let SlackView::Modal(modal) = &submitted.view.view else {
        return None;
    };
    modal.blocks.iter().find_map(|block| match block {
        SlackBlock::Input(input) => input.block_id.as_ref().map(|id| id.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    fn follow_up(id: &RequestId, gate: &watch::Receiver<bool>, done: &Arc<AtomicUsize>) -> FollowUp {
        let (mut gate, done) = (gate.clone(), done.clone());
        FollowUp::new(id, "test", false, async move {
            let _ = gate.wait_for(|open| *open).await;
            done.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[tokio::test]
    async fn past_workers_and_queue_follow_ups_are_refused_and_every_accepted_one_runs() {
        let pool = FollowUpPool::new(2, 3);
        let (open, gate) = watch::channel(false);
        let done = Arc::new(AtomicUsize::new(0));
        let ids: Vec<RequestId> = (0..8).map(|_| RequestId::new()).collect();
        for id in &ids {
            pool.accept(follow_up(id, &gate, &done));
        }
        let refused: Vec<bool> = ids.iter().map(|id| pool.take_refused(id)).collect();
        assert_eq!(refused, [false, false, false, false, false, true, true, true]);
        assert!(!pool.take_refused(&ids[7]), "a refusal is taken once");
        let stats = pool.stats();
        assert_eq!((stats.running, stats.waiting, stats.refused), (2, 3, 3));

        open.send_replace(true);
        while pool.stats().done < 5 {
            tokio::task::yield_now().await;
        }
        let stats = pool.stats();
        assert_eq!(done.load(Ordering::SeqCst), 5);
        assert_eq!((stats.running, stats.waiting, stats.most_running, stats.most_waiting), (0, 0, 2, 3));
    }

    #[tokio::test]
    async fn a_panicking_follow_up_frees_its_worker() {
        let pool = FollowUpPool::new(1, 1);
        let id = RequestId::new();
        pool.accept(FollowUp::new(&id, "panics", false, async { panic!("a bug in a follow-up") }));
        let ran = Arc::new(AtomicUsize::new(0));
        let ran2 = ran.clone();
        pool.accept(FollowUp::new(&id, "after", false, async move {
            ran2.fetch_add(1, Ordering::SeqCst);
        }));
        while pool.stats().done < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(pool.stats().running, 0);
    }
}
