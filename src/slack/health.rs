//! Which targets powerpole refuses requests for right now, and why: one whose admin credential
//! has not been read yet (the check runs in the background from start-up) or could not be read
//! (found at start-up or by a later check). The service keeps running and answering; people
//! asking for such a target are told when powerpole tries again and whom to tell, instead of
//! getting a request no one could fulfil.
//!
//! A target with no entry is accepted: only `serve` checks targets (the Lambda entry points
//! do not; a target whose secret is unreadable fails at provisioning there, rolled back).

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::domain::TargetName;

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
                "powerpole has just started and could not check this database's admin credential yet; it tries again at {}. {tell}",
                at(next_try)
            ),
            Status::Refused { next_try } => format!(
                "powerpole cannot read this database's admin credential; it tries again at {}. {tell} (`powerpole doctor` shows the cause.)",
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
        assert!(health.refusal(&billing).unwrap().contains("cannot read"));
        assert!(health.is_refused(&billing));
        health.accept(&billing);
        assert_eq!(health.refusal(&billing), None);
    }
}
