//! The simulator's executor: one thread, tasks polled in the order they were woken, and time
//! ([`VirtualTime`]) that jumps to the next timer whenever no task can run. Nothing here depends
//! on the machine's clock or a thread's scheduling, so a seed replays exactly.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use futures::executor::{LocalPool, LocalSpawner};
use futures::future::RemoteHandle;
use futures::task::LocalSpawnExt;
use futures::FutureExt;

use crate::memory::VirtualTime;

pub struct Executor {
    pool: RefCell<LocalPool>,
    spawner: LocalSpawner,
    pub time: Arc<VirtualTime>,
}

impl Default for Executor {
    fn default() -> Self {
        Executor::new()
    }
}

impl Executor {
    pub fn new() -> Executor {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        Executor { pool: RefCell::new(pool), spawner, time: VirtualTime::new() }
    }

    /// Something that starts tasks on this executor (cheap to clone).
    pub fn spawner(&self) -> Spawner {
        Spawner(self.spawner.clone())
    }

    /// Runs `future` (and every task) until it completes, moving time as needed. Panics if
    /// nothing can run and no timer is set: the world deadlocked.
    pub fn block_on<F: Future + 'static>(&self, future: F) -> F::Output {
        let mut done = self.spawner().spawn(future);
        let mut pool = self.pool.borrow_mut();
        loop {
            pool.run_until_stalled();
            if let Some(out) = (&mut done).now_or_never() {
                return out;
            }
            match self.time.next_deadline() {
                Some(at) => self.time.advance_to(at),
                None => panic!("the simulated world deadlocked: no task can run and no timer is set"),
            }
        }
    }
}

/// Starts tasks on an [`Executor`].
#[derive(Clone)]
pub struct Spawner(LocalSpawner);

impl Spawner {
    /// Starts `future`; its handle gives its output (dropping the handle cancels the task).
    pub fn spawn<F: Future + 'static>(&self, future: F) -> RemoteHandle<F::Output> {
        self.0.spawn_local_with_handle(future).expect("the simulator's executor is running")
    }

    /// Starts `future` and lets it run on its own until it ends.
    pub fn detach<F: Future<Output = ()> + 'static>(&self, future: F) {
        self.spawn(future).forget();
    }
}
