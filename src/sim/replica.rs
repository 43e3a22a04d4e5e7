//! The replicas: each a process with its own adapters (one [`Node`]), its own skewed clock, and
//! the production sweeper loop ([`sweep_loop`]) and reconciler ([`run_reconciler`]), as
//! `powerpole serve` runs them. A crash kills the node (every call of it
//! pends forever) and its sweeper; a restart is a new node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::{AbortHandle, Abortable, RemoteHandle};
use tokio::sync::Notify;

use super::rng::Rng;
use super::World;
use crate::memory::{lock, MemBastions, MemGrants, MemNotifier, MemStore, Node, VirtualTime};
use crate::workflow::{run_reconciler, sweep_loop, Clock, Lifecycle, Workflow};

/// True time plus a fixed skew, on the world's virtual time.
pub struct SkewedClock {
    time: Arc<VirtualTime>,
    start_utc: DateTime<Utc>,
    skew_ms: i64,
}

impl SkewedClock {
    /// A clock that read `start_utc` (plus `skew_ms`) when `time` started.
    pub fn new(time: Arc<VirtualTime>, start_utc: DateTime<Utc>, skew_ms: i64) -> SkewedClock {
        SkewedClock { time, start_utc, skew_ms }
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.time.now()).unwrap_or_default();
        self.start_utc + elapsed + chrono::Duration::milliseconds(self.skew_ms)
    }

    fn sleep(&self, by: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.time.sleep(by))
    }
}

struct Slot {
    node: Node,
    lifecycle: Lifecycle,
    sweeper: AbortHandle,
    generation: u32,
}

/// Every replica, alive or dead.
#[derive(Clone)]
pub struct Replicas {
    world: Arc<World>,
    skews: Arc<Vec<i64>>,
    slots: Arc<Mutex<Vec<Slot>>>,
    scheduled: Arc<AtomicU64>,
}

impl Replicas {
    pub fn start(world: Arc<World>, skews: Vec<i64>) -> Replicas {
        let slots = (0..skews.len()).map(|i| spawn(&world, i, skews[i], 0)).collect();
        Replicas { world, skews: Arc::new(skews), slots: Arc::new(Mutex::new(slots)), scheduled: Arc::default() }
    }

    /// A live replica's lifecycle, chosen at random (a person's click reaches any of them).
    pub fn any_live(&self, rng: &mut Rng) -> Option<Lifecycle> {
        let slots = lock(&self.slots);
        let live: Vec<&Slot> = slots.iter().filter(|s| !s.node.is_dead()).collect();
        rng.pick(&live).map(|s| s.lifecycle.clone())
    }

    /// Kills replica `i` wherever its tasks are.
    pub fn crash(&self, i: usize) {
        let slots = lock(&self.slots);
        if let Some(slot) = slots.get(i % slots.len().max(1)) {
            if !slot.node.is_dead() {
                self.scheduled.fetch_add(1, Ordering::Relaxed);
                slot.node.crash();
                slot.sweeper.abort();
            }
        }
    }

    pub fn scheduled_crashes(&self) -> u64 {
        self.scheduled.load(Ordering::Relaxed)
    }

    fn restart(&self, i: usize) {
        let mut slots = lock(&self.slots);
        let generation = slots[i].generation + 1;
        slots[i].sweeper.abort();
        slots[i] = spawn(&self.world, i, self.skews[i], generation);
    }

    /// Restarts every dead replica at once.
    pub fn revive_all(&self) {
        let dead: Vec<usize> = lock(&self.slots).iter().enumerate().filter(|(_, s)| s.node.is_dead()).map(|(i, _)| i).collect();
        dead.into_iter().for_each(|i| self.restart(i));
    }

    /// Restarts dead replicas some seconds after they died, as an orchestrator would.
    pub fn restart_dead(self, seed: u64) -> RemoteHandle<()> {
        let spawner = self.world.spawner.clone();
        spawner.spawn(async move {
            let mut rng = Rng::new(seed ^ 0x5eed);
            loop {
                self.world.time.sleep(Duration::from_secs(15)).await;
                let dead: Vec<usize> = lock(&self.slots).iter().enumerate().filter(|(_, s)| s.node.is_dead()).map(|(i, _)| i).collect();
                for i in dead {
                    if rng.chance(300) {
                        self.restart(i);
                    }
                }
            }
        })
    }

    /// Stops every sweeper (the end of a schedule).
    pub fn stop(&self) {
        lock(&self.slots).iter().for_each(|s| s.sweeper.abort());
    }
}

fn spawn(world: &Arc<World>, i: usize, skew_ms: i64, generation: u32) -> Slot {
    let node = Node::new(format!("replica-{i}.{generation}"), world.faults.clone());
    let clock = Arc::new(SkewedClock::new(world.time.clone(), world.start_utc, skew_ms));
    let wake = Arc::new(Notify::new());
    let workflow = Workflow {
        config: world.config.clone(),
        store: Arc::new(MemStore::new(world.store.clone(), node.clone())),
        clock,
        wake: wake.clone(),
    };
    let lifecycle = Lifecycle {
        workflow,
        bastions: Arc::new(MemBastions::new(world.bastions.clone(), node.clone())),
        grants: Arc::new(MemGrants::new(world.grants.clone(), node.clone())),
        notifier: Arc::new(MemNotifier::new(world.slack.clone(), node.clone())),
        region: "eu-west-1".into(),
        transcripts: None,
        claims: Default::default(),
        dependencies: Default::default(),
    };
    let tick = world.config.scheduler.tick.to_std();
    let reconcile_every = world.config.scheduler.reconcile_every.to_std();
    let (time, steps) = (world.time.clone(), world.spawner.clone());
    let (sweeper, handle) = AbortHandle::new_pair();
    // What `serve` runs: `run_sweeper_with` (its scheduler job wakes `sweep_loop` every tick; each
    // due step in a task of its own) and `run_reconciler`, on this replica's clock.
    let lookahead = chrono::Duration::from_std(tick).unwrap_or_default();
    let sweeping = Box::pin(sweep_loop(lifecycle.clone(), lookahead, wake.clone(), Arc::new(|| {}), move |_, step| steps.detach(step)));
    let periodic = async move {
        loop {
            time.sleep(tick).await;
            wake.notify_one();
        }
    };
    let reconciling = Box::pin(run_reconciler(lifecycle.clone(), reconcile_every));
    let replica = async move {
        futures::join!(sweeping, periodic, reconciling);
    };
    world.spawner.detach(async move {
        let _aborted = Abortable::new(replica, handle).await;
    });
    Slot { node, lifecycle, sweeper, generation }
}
