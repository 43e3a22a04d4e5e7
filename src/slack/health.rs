//! The service's health: which targets powerpole refuses requests for right now, and why, and
//! whether it is ready (`GET /readyz`: one [`DependencyState`] per dependency).
//!
//! A target is refused while it has not been checked yet (the check runs in the background from
//! start-up) or its last check failed: powerpole could not log in as a grant does (the admin
//! secret, TLS verified, the admin's right to create accounts, the schemas; `serve::check_once`).
//! The service keeps running and answering; people asking for such a target are told when
//! powerpole tries again and whom to tell, in words for them (the cause is in the log), instead of
//! getting a request no one could fulfil. A target with no entry is accepted: only `serve` checks
//! targets (the Lambda entry points do not; a target that fails there fails at provisioning,
//! rolled back, and the requester reads `ProvisionError::for_people`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::{SessionId, TargetName};
use crate::store::Store;
use crate::workflow::dependencies::DependencyLog;
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

/// What the workflow last saw of one outside system (`observed` in `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedDependency {
    pub name: &'static str,
    /// Whether the last call seen failed (false before any call).
    pub failing: bool,
    #[serde(flatten)]
    pub seen: crate::workflow::dependencies::Observed,
}

/// What `/readyz` reports: ready when every dependency is. `observed` says how the systems the
/// workflow calls (database, EC2, Slack, the store) last answered; it is information for an
/// operator (a teardown stuck on one of them), not a readiness condition: the service still
/// records requests and keeps deadlines while one of them is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    pub dependencies: Vec<DependencyState>,
    pub observed: Vec<ObservedDependency>,
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
    observed: RwLock<Option<Arc<DependencyLog>>>,
}

impl Readiness {
    pub fn new(clock: Arc<dyn Clock>) -> Readiness {
        Readiness { clock, sweeper: RwLock::new(None), observed: RwLock::new(None) }
    }

    /// Shows what the lifecycle records of its dependencies (`serve` passes its lifecycle's log).
    pub fn observe(&self, log: Arc<DependencyLog>) {
        *self.observed.write().unwrap_or_else(|p| p.into_inner()) = Some(log);
    }

    fn observed(&self) -> Vec<ObservedDependency> {
        let Some(log) = self.observed.read().unwrap_or_else(|p| p.into_inner()).clone() else { return Vec::new() };
        log.snapshot()
            .into_iter()
            .map(|(d, seen)| {
                let seen = seen.unwrap_or_default();
                ObservedDependency { name: d.as_str(), failing: seen.failing(), seen }
            })
            .collect()
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
        ReadyReport { ready: dependencies.iter().all(|d| d.ready), dependencies, observed: self.observed() }
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

/// Where a target's check stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// Not checked successfully yet since start-up; the next attempt is at `next_try`.
    Unchecked { next_try: DateTime<Utc> },
    /// The last check failed; the next attempt is at `next_try`.
    Refused { next_try: DateTime<Utc> },
}

/// One refused target: its status and the channel whose people can chase the platform team.
#[derive(Debug, Clone)]
struct Entry {
    status: Status,
    ask_in: String,
}

#[derive(Debug, Default)]
pub struct TargetHealth {
    refused: RwLock<HashMap<TargetName, Entry>>,
}

impl TargetHealth {
    /// `target` has not been checked yet: refuse it until a check succeeds. `ask_in` is the
    /// channel people are pointed to (the target's approvals channel).
    pub fn unchecked(&self, target: &TargetName, ask_in: &str, next_try: DateTime<Utc>) {
        self.set(target, Status::Unchecked { next_try }, ask_in);
    }

    /// Refuses requests for `target` from now on, until a check at `next_try` or later succeeds.
    pub fn refuse(&self, target: &TargetName, ask_in: &str, next_try: DateTime<Utc>) {
        self.set(target, Status::Refused { next_try }, ask_in);
    }

    fn set(&self, target: &TargetName, status: Status, ask_in: &str) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.insert(target.clone(), Entry { status, ask_in: ask_in.to_string() });
    }

    /// Accepts requests for `target` again.
    pub fn accept(&self, target: &TargetName) {
        let mut refused = self.refused.write().unwrap_or_else(|p| p.into_inner());
        refused.remove(target);
    }

    /// Whether `target` is refused now (for logs: "reachable again").
    pub fn is_refused(&self, target: &TargetName) -> bool {
        let refused = self.refused.read().unwrap_or_else(|p| p.into_inner());
        refused.contains_key(target)
    }

    /// Why requests for `target` are refused, if they are: a sentence for the requester that says
    /// when powerpole tries again and whom to tell.
    pub fn refusal(&self, target: &TargetName) -> Option<String> {
        let refused = self.refused.read().unwrap_or_else(|p| p.into_inner());
        let entry = refused.get(target)?;
        let at = |t: &DateTime<Utc>| t.format("%H:%M:%S UTC").to_string();
        let tell = format!("If this lasts, tell the platform team that runs powerpole, or ask in <#{}>.", entry.ask_in);
        Some(match &entry.status {
            Status::Unchecked { next_try } => format!(
                "powerpole has just started and has not yet checked that it can create accounts on this database; it tries again at {}. Nothing was filed. {tell}",
                at(next_try)
            ),
            Status::Refused { next_try } => format!(
                "powerpole cannot log in to this database the way it must to create your account, so nothing was filed and no approver was asked; it tries again at {}. The platform team has the cause in powerpole's log. {tell}",
                at(next_try)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_target_can_be_accepted_again() {
        let health = TargetHealth::default();
        let billing = TargetName::parse("billing").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(health.refusal(&billing), None, "a target never checked by serve is accepted");
        health.unchecked(&billing, "C0APPROVALS", at);
        let why = health.refusal(&billing).unwrap();
        assert!(why.contains("tries again at 10:00:05 UTC") && why.contains("<#C0APPROVALS>"), "{why}");
        health.refuse(&billing, "C0APPROVALS", at);
        assert!(health.refusal(&billing).unwrap().contains("cannot log in"));
        assert!(health.is_refused(&billing));
        health.accept(&billing);
        assert_eq!(health.refusal(&billing), None);
    }
}
