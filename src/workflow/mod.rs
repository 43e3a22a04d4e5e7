//! The one place that decides what happens next in a session's life. Reading it top to bottom
//! tells the whole lifecycle; it talks to the world only through the adapters' traits.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::Config;
use crate::store::Store;

/// Where "now" comes from, so that tests decide what time it is instead of sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Waits `by` (a lease renewal, a retry's backoff). tokio's timer, unless the clock is
    /// virtual (the simulator's, `crate::memory::VirtualTime`).
    fn sleep(&self, by: std::time::Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(by))
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: tests and the benchmark decide what time it is.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the request and decision steps need. Provisioning and teardown add the bastion and
/// grants adapters on top of this.
#[derive(Clone)]
pub struct Workflow {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the sweeper at once when work became due (an approval), instead of at the next tick.
    pub wake: Arc<Notify>,
}

mod abandon;
pub mod claims;
pub mod audit;
pub mod breakglass;
pub mod decide;
pub mod dependencies;
pub mod lifecycle;
mod measure;
pub mod outbox;
pub mod patience;
pub mod policy;
mod prelaunch;
pub mod reconcile;
pub mod remind;
pub mod summary;
pub mod request;
pub mod sweep;
#[cfg(test)]
mod words;

pub use audit::{audit_json, audit_line, AuditQuery};
pub use breakglass::{check_breakglass, BreakGlassError, BreakGlassProblem};
pub use decide::{already_decided, ActionError, Decision, Done};
pub use lifecycle::{Lifecycle, StepError, StepOutcome};
pub use patience::Transient;
pub use reconcile::{run_reconciler, Finding, Fixed, ReconcileError, ReconcileSummary};
pub use request::{RequestDraft, RequestError, RequestProblem};
pub use sweep::{run_sweeper, run_sweeper_with, sweep_loop, InFlight, Plan, Step, TickReport, INDEX_SETTLE, LOST_RACE_RETRY};
