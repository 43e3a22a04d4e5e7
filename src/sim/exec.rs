//! The simulator's executor: one thread, tasks polled in the order they were woken, and time
//! ([`VirtualTime`]) that jumps to the next timer whenever no task can run. Nothing here depends
//! on the machine's clock or a thread's scheduling, so a seed replays exactly.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::executor::{LocalPool, LocalSpawner};
use futures::future::RemoteHandle;
use futures::task::LocalSpawnExt;
use futures::FutureExt;

use crate::memory::VirtualTime;

pub struct Executor {
    pool: RefCell<LocalPool>,
    spawner: LocalSpawner,
    pub time: Arc<VirtualTime>,
    panics: Panics,
}

/// What every task that panicked said, in the order they panicked.
pub type Panics = Arc<Mutex<Vec<String>>>;

/// A panic's message, as far as it has one.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic without a message".into())
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
        Executor { pool: RefCell::new(pool), spawner, time: VirtualTime::new(), panics: Panics::default() }
    }

    /// Something that starts tasks on this executor (cheap to clone).
    pub fn spawner(&self) -> Spawner {
        Spawner(self.spawner.clone(), self.panics.clone())
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

/// Starts tasks on an [`Executor`]. A task that panics is recorded ([`Spawner::panics`]) before
/// its panic goes on to its handle: a detached task's panic is never lost, and the invariant
/// checks report it with the seed.
#[derive(Clone)]
pub struct Spawner(LocalSpawner, Panics);

impl Spawner {
    /// Starts `future`; its handle gives its output (dropping the handle cancels the task).
    pub fn spawn<F: Future + 'static>(&self, future: F) -> RemoteHandle<F::Output> {
        let panics = self.1.clone();
        let watched = async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(out) => out,
                Err(panic) => {
                    crate::memory::lock(&panics).push(panic_message(panic.as_ref()));
                    std::panic::resume_unwind(panic)
                }
            }
        };
        self.0.spawn_local_with_handle(watched).expect("the simulator's executor is running")
    }

    /// What every task that panicked so far said.
    pub fn panics(&self) -> Vec<String> {
        crate::memory::lock(&self.1).clone()
    }

    /// Starts `future` and lets it run on its own until it ends.
    pub fn detach<F: Future<Output = ()> + 'static>(&self, future: F) {
        self.spawn(future).forget();
    }
}
