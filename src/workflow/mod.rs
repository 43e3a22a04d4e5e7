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
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
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

pub mod decide;
pub mod request;

pub use decide::{already_decided, ActionError, Decision, Done};
pub use request::{RequestDraft, RequestError, RequestProblem};
