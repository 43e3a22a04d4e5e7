//! The service's health: which targets powerpole refuses requests for right now, and why (an
//! unreadable admin credential, found at start-up or by a later check; the service keeps running
//! and people asking for such a target get the reason), and whether it is ready (`GET /readyz`):
//! one [`DependencyState`] per dependency, so that more can be added beside the two of today.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::{SessionId, TargetName};
use crate::store::Store;
use crate::workflow::Clock;

/// How long the store may take to answer the readiness probe.
const STORE_PROBE_TIMEOUT: StdDuration = StdDuration::from_secs(3);

/// One dependency's state, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyState {
    pub name: &'static str,
    pub ready: bool,
    pub detail: String,
}

/// What `/readyz` reports: ready when every dependency is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    pub dependencies: Vec<DependencyState>,
}

#[derive(Debug, Clone, Copy)]
struct SweeperWatch {
    started: DateTime<Utc>,
    last_tick: Option<DateTime<Utc>>,
    bound: Duration,
}

/// Whether the in-process sweeper keeps ticking, by the workflow's clock (tests inject it). A
/// process that runs no sweeper (a Lambda) never calls [`Readiness::expect_sweeper`] and is not
/// judged by it.
pub struct Readiness {
    clock: Arc<dyn Clock>,
    sweeper: RwLock<Option<SweeperWatch>>,
}

impl Readiness {
    pub fn new(clock: Arc<dyn Clock>) -> Readiness {
        Readiness { clock, sweeper: RwLock::new(None) }
    }

    /// From now on, not ready once the sweeper has not finished a tick within `bound`.
    pub fn expect_sweeper(&self, bound: Duration) {
        let mut sweeper = self.sweeper.write().unwrap_or_else(|p| p.into_inner());
        *sweeper = Some(SweeperWatch { started: self.clock.now(), last_tick: None, bound });
    }

    /// The sweeper finished a tick that read the store.
    pub fn sweeper_ticked(&self) {
        let mut sweeper = self.sweeper.write().unwrap_or_else(|p| p.into_inner());
        if let Some(watch) = sweeper.as_mut() {
            watch.last_tick = Some(self.clock.now());
        }
    }

    fn sweeper_state(&self) -> Option<DependencyState> {
        let watch = (*self.sweeper.read().unwrap_or_else(|p| p.into_inner()))?;
        let now = self.clock.now();
        let since = watch.last_tick.unwrap_or(watch.started);
        let quiet = now - since;
        let ready = quiet <= watch.bound;
        let detail = match (watch.last_tick, ready) {
            (Some(_), true) => format!("last successful tick {}s ago", quiet.num_seconds()),
            (None, true) => "starting; no tick yet".to_string(),
            (Some(_), false) => format!("no successful tick for {}s (bound {}s): deadlines are not being kept; see the logs for the sweeper's error", quiet.num_seconds(), watch.bound.num_seconds()),
            (None, false) => format!("no successful tick in {}s since start (bound {}s): the store may be unreadable; see the logs", quiet.num_seconds(), watch.bound.num_seconds()),
        };
        Some(DependencyState { name: "sweeper", ready, detail })
    }

    /// Every dependency's state now; the store is asked for one item.
    pub async fn report(&self, store: &dyn Store) -> ReadyReport {
        let mut dependencies: Vec<DependencyState> = self.sweeper_state().into_iter().collect();
        dependencies.push(store_state(store).await);
        ReadyReport { ready: dependencies.iter().all(|d| d.ready), dependencies }
    }
}

/// One `GetItem` of an id no session has: cheap, and it needs the table and the credentials.
async fn store_state(store: &dyn Store) -> DependencyState {
    let probe = SessionId::derived_from("powerpole readiness probe");
    let (ready, detail) = match tokio::time::timeout(STORE_PROBE_TIMEOUT, store.get(&probe)).await {
        Ok(Ok(_)) => (true, "answers".to_string()),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (false, format!("no answer within {}s", STORE_PROBE_TIMEOUT.as_secs())),
    };
    DependencyState { name: "store", ready, detail }
}

#[derive(Debug, Default)]
pub struct TargetHealth {
    refused: RwLock<HashMap<TargetName, String>>,
}

impl TargetHealth {
    /// Refuses requests for `target` from now on, for `reason` (shown to requesters).
    pub fn refuse(&self, target: &TargetName, reason: impl Into<String>) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.insert(target.clone(), reason.into());
    }

    /// Accepts requests for `target` again.
    pub fn accept(&self, target: &TargetName) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.remove(target);
    }

    /// Why requests for `target` are refused, if they are.
    pub fn refusal(&self, target: &TargetName) -> Option<String> {
        let refused = self.refused.read().unwrap_or_else(|p| p.into_inner());
        refused.get(target).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_target_can_be_accepted_again() {
        let health = TargetHealth::default();
        let billing = TargetName::parse("billing").unwrap();
        assert_eq!(health.refusal(&billing), None);
        health.refuse(&billing, "its admin credential cannot be read");
        assert_eq!(health.refusal(&billing).as_deref(), Some("its admin credential cannot be read"));
        health.accept(&billing);
        assert_eq!(health.refusal(&billing), None);
    }
}
