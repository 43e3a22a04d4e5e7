//! Virtual time for the in-memory world: a clock that moves only when the executor
//! ([`crate::sim::Executor`]) finds every task waiting, straight to the next timer. An hour of
//! leases and boot delays costs nothing, and the order of wake-ups is fixed, so runs replay.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::lock;

/// The world's clock: time since the start, and the timers waiting on it.
#[derive(Default)]
pub struct VirtualTime {
    inner: Mutex<Timers>,
}

#[derive(Default)]
struct Timers {
    now: Duration,
    next_key: u64,
    waiting: BTreeMap<(Duration, u64), Waker>,
}

impl VirtualTime {
    pub fn new() -> Arc<VirtualTime> {
        Arc::new(VirtualTime::default())
    }

    /// Time since the world started.
    pub fn now(&self) -> Duration {
        lock(&self.inner).now
    }

    /// Completes once `by` has passed.
    pub fn sleep(self: &Arc<Self>, by: Duration) -> Sleep {
        Sleep { time: self.clone(), until: self.now() + by, key: None }
    }

    /// Completes at `at` (time since the start).
    pub fn sleep_until(self: &Arc<Self>, at: Duration) -> Sleep {
        Sleep { time: self.clone(), until: at, key: None }
    }

    /// The earliest timer, if any is set.
    pub fn next_deadline(&self) -> Option<Duration> {
        lock(&self.inner).waiting.keys().next().map(|(at, _)| *at)
    }

    /// Moves to `to` and wakes every timer due by then, earliest first.
    pub fn advance_to(&self, to: Duration) {
        let due: Vec<Waker> = {
            let mut t = lock(&self.inner);
            t.now = t.now.max(to);
            let now = t.now;
            let later = t.waiting.split_off(&(now, u64::MAX));
            std::mem::replace(&mut t.waiting, later).into_values().collect()
        };
        due.into_iter().for_each(Waker::wake);
    }
}

/// A timer on [`VirtualTime`].
pub struct Sleep {
    time: Arc<VirtualTime>,
    until: Duration,
    key: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let time = self.time.clone();
        let mut t = lock(&time.inner);
        if t.now >= self.until {
            if let Some(key) = self.key.take() {
                t.waiting.remove(&(self.until, key));
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                t.next_key += 1;
                t.next_key
            }
        };
        self.key = Some(key);
        t.waiting.insert((self.until, key), cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            lock(&self.time.inner).waiting.remove(&(self.until, key));
        }
    }
}
