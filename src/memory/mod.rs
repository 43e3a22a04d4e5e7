//! In-memory stand-ins for the workflow's four adapters ([`MemStore`], [`MemBastions`],
//! [`MemGrants`], [`MemNotifier`]), for fast workflow tests and the simulator ([`crate::sim`]).
//!
//! They model what the workflow's correctness depends on, not the services' APIs: conditional
//! writes, index and tag reads that lag behind writes, `ClientToken` idempotency, instances that
//! come online after a boot delay, accounts with live connections, Slack messages and their
//! updates. The stand-in tests against moto and MariaDB remain the proof of the real adapters.
//!
//! Every call goes through a [`Node`]: one process (a replica) as the world sees it. A node may
//! inject a fault into a call ([`Faults`]): an error before the effect, a timeout, a reply lost
//! after the effect happened, or a crash of the whole process. A crashed node never answers again
//! (every call of it, in any of its tasks, pends forever), which is a crash at that await point;
//! the simulator restarts the replica as a new node.
//!
//! Time is virtual ([`VirtualTime`]): every delay is free and exact, and runs replay.

mod bastions;
mod grants;
mod notifier;
mod store;
mod time;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use bastions::{BastionWorld, MemBastions, SimInstance};
pub use grants::{AccountLife, GrantWorld, MemGrants, SimAccount, CONNECT_TIME, CONNECT_TIMEOUT};
pub use notifier::{MemNotifier, SentMessage, SlackWorld};
pub use store::{MemStore, StoreWorld};
pub use time::{Sleep, VirtualTime};

use crate::sim::rng::Rng;

/// What a call is made to suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails before it does anything.
    Error,
    /// The call hangs, then fails; nothing was done.
    Timeout,
    /// The effect happened, but the answer never arrived: the caller sees a timeout.
    LostReply,
    /// The process dies at this await point (before or after the effect).
    Crash,
}

/// What the caller of an adapter sees when a fault was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Error,
    Timeout,
}

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Injected::Error => f.write_str("injected error"),
            Injected::Timeout => f.write_str("injected timeout"),
        }
    }
}

/// How often faults are injected, per call, in thousandths. All zero: a perfect world.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    pub error: u32,
    pub timeout: u32,
    pub lost_reply: u32,
    pub crash: u32,
    /// Each call takes between 1 ms and this long (interleaves the replicas' calls).
    pub max_latency_ms: u64,
}

/// What was injected, for the simulator's summary.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub lost_replies: AtomicU64,
    pub crashes: AtomicU64,
}

impl FaultCounts {
    /// Faults other than crashes.
    pub fn faults(&self) -> u64 {
        self.errors.load(Ordering::Relaxed) + self.timeouts.load(Ordering::Relaxed) + self.lost_replies.load(Ordering::Relaxed)
    }
}

/// The world's fault injector: one seeded RNG, so a seed replays the same faults.
pub struct Faults {
    rng: Mutex<Rng>,
    rates: Mutex<FaultRates>,
    pub counts: FaultCounts,
    /// How long an injected timeout hangs before failing.
    pub timeout: Duration,
    /// The world's clock: latencies and timeouts take virtual time.
    pub time: Arc<VirtualTime>,
}

impl Faults {
    pub fn new(seed: u64, rates: FaultRates, time: Arc<VirtualTime>) -> Arc<Faults> {
        Arc::new(Faults { rng: Mutex::new(Rng::new(seed)), rates: Mutex::new(rates), counts: FaultCounts::default(), timeout: Duration::from_secs(10), time })
    }

    /// No faults at all (unit tests).
    pub fn none(time: Arc<VirtualTime>) -> Arc<Faults> {
        Faults::new(0, FaultRates::default(), time)
    }

    /// Changes the rates from now on (the simulator turns faults off to reach quiescence).
    pub fn set_rates(&self, rates: FaultRates) {
        *lock(&self.rates) = rates;
    }

    fn roll(&self, after_effect: bool) -> (Option<Fault>, Duration) {
        let rates = *lock(&self.rates);
        let mut rng = lock(&self.rng);
        let latency = Duration::from_millis(1 + rng.below(rates.max_latency_ms.max(1)));
        let r = rng.below(1000) as u32;
        let fault = if after_effect {
            if r < rates.lost_reply {
                Some(Fault::LostReply)
            } else if r < rates.lost_reply + rates.crash {
                Some(Fault::Crash)
            } else {
                None
            }
        } else if r < rates.error {
            Some(Fault::Error)
        } else if r < rates.error + rates.timeout {
            Some(Fault::Timeout)
        } else if r < rates.error + rates.timeout + rates.crash {
            Some(Fault::Crash)
        } else {
            None
        };
        (fault, latency)
    }
}

/// One process as the world sees it: its calls, its faults, its death.
#[derive(Clone)]
pub struct Node {
    pub name: Arc<str>,
    dead: Arc<AtomicBool>,
    faults: Arc<Faults>,
}

impl Node {
    pub fn new(name: impl Into<Arc<str>>, faults: Arc<Faults>) -> Node {
        Node { name: name.into(), dead: Arc::new(AtomicBool::new(false)), faults }
    }

    /// The world's clock.
    pub fn time(&self) -> &Arc<VirtualTime> {
        &self.faults.time
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Kills the process: none of its calls answers again.
    pub fn crash(&self) {
        if tracing_calls() && !self.is_dead() {
            eprintln!("t+{:?} {} dies", self.faults.time.now(), self.name);
        }
        self.dead.store(true, Ordering::SeqCst);
    }

    async fn die_here(&self) -> ! {
        self.crash();
        std::future::pending::<()>().await;
        unreachable!("a pending future never completes")
    }

    /// Runs `effect` as one remote call: latency, and maybe a fault before or after it.
    pub async fn call<T>(&self, effect: impl FnOnce() -> T) -> Result<T, Injected> {
        if self.is_dead() {
            self.die_here().await;
        }
        let (before, latency) = self.faults.roll(false);
        if tracing_calls() {
            eprintln!("t+{:?} {} call {:?} {:?} {}", self.faults.time.now(), self.name, before, latency, std::any::type_name::<T>());
        }
        let counts = &self.faults.counts;
        match before {
            Some(Fault::Error) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                self.faults.time.sleep(latency).await;
                return Err(Injected::Error);
            }
            Some(Fault::Timeout) => {
                counts.timeouts.fetch_add(1, Ordering::Relaxed);
                self.faults.time.sleep(self.faults.timeout).await;
                return Err(Injected::Timeout);
            }
            Some(Fault::Crash) => {
                counts.crashes.fetch_add(1, Ordering::Relaxed);
                self.die_here().await;
            }
            _ => {}
        }
        self.faults.time.sleep(latency).await;
        if self.is_dead() {
            self.die_here().await;
        }
        let out = effect();
        if tracing_calls() {
            eprintln!("t+{:?} {} effect {}", self.faults.time.now(), self.name, std::any::type_name::<T>());
        }
        match self.faults.roll(true).0 {
            Some(Fault::LostReply) => {
                counts.lost_replies.fetch_add(1, Ordering::Relaxed);
                self.faults.time.sleep(self.faults.timeout).await;
                Err(Injected::Timeout)
            }
            Some(Fault::Crash) => {
                counts.crashes.fetch_add(1, Ordering::Relaxed);
                self.die_here().await
            }
            _ => Ok(out),
        }
    }
}

/// `POWERPOLE_SIM_TRACE` set: every call and effect is printed (read once; calls are hot).
fn tracing_calls() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("POWERPOLE_SIM_TRACE").is_some())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
