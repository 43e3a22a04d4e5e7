//! How the outside systems answered lately: for each [`Dependency`], when a call last succeeded
//! and when one last failed, with the error. The lifecycle records what its steps see (teardown,
//! provisioning, the outbox, the sweeper's store reads); `/readyz` shows it, so an operator sees
//! which system a stuck teardown waits on without reading logs.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Dependency;

/// One dependency's last answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// The last failure's error (never carries a secret: adapters' errors do not).
    pub last_error: Option<String>,
}

impl Observed {
    /// Whether the last call seen failed.
    pub fn failing(&self) -> bool {
        match (self.last_success, self.last_failure) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(ok), Some(failed)) => failed > ok,
        }
    }
}

/// Every dependency's last answers, shared by the lifecycle and `/readyz`.
#[derive(Debug, Default)]
pub struct DependencyLog {
    seen: RwLock<BTreeMap<Dependency, Observed>>,
}

impl DependencyLog {
    /// Records the outcome of one call to `dependency` at `at`.
    pub fn record<T, E: std::fmt::Display>(&self, dependency: Dependency, at: DateTime<Utc>, result: &Result<T, E>) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        let entry = seen.entry(dependency).or_default();
        match result {
            Ok(_) => entry.last_success = Some(at),
            Err(e) => {
                entry.last_failure = Some(at);
                entry.last_error = Some(e.to_string());
            }
        }
    }

    /// What was seen of each dependency (`None`: not called yet).
    pub fn snapshot(&self) -> Vec<(Dependency, Option<Observed>)> {
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        Dependency::ALL.iter().map(|d| (*d, seen.get(d).cloned())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_dependency_is_failing_until_a_later_call_succeeds() {
        let log = DependencyLog::default();
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        log.record::<(), _>(Dependency::Database, t(10), &Err("connection refused"));
        let db = |log: &DependencyLog| log.snapshot().into_iter().find(|(d, _)| *d == Dependency::Database).and_then(|(_, o)| o).unwrap();
        assert!(db(&log).failing());
        assert_eq!(db(&log).last_error.as_deref(), Some("connection refused"));
        log.record::<(), &str>(Dependency::Database, t(20), &Ok(()));
        assert!(!db(&log).failing());
        assert!(log.snapshot().iter().any(|(d, o)| *d == Dependency::Slack && o.is_none()));
    }
}
