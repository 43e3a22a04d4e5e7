//! The request state machine. [`transition`] is the single table of every allowed move; nothing
//! else in powerpole changes a state, and the store persists only what it returns.
//!
//! ```text
//! pending ──approved──▶ approved ──provisioning started──▶ provisioning ──handed over──▶ active
//!    │ denied / timed out / cancelled   │ cancelled / revoked     │ failed / ended / revoked   │ expired / ended / revoked
//!    ▼                                  ▼                          ▼                            ▼
//!  closed(outcome)  ◀────────────── torn down ────────────── tearing down(outcome) ◀──────────┘
//! ```
//!
//! Anything that may have created a resource (an instance, a database account) happens only in
//! `provisioning` or later, and every way out of those states goes through `tearing down`, so a
//! closed session never leaves anything behind. The one exception is a launch-on-request session,
//! whose bastion (never its account) is launched while it is pending: `Session::apply` sends every
//! way it closes through `tearing down` too.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Expired,
    EndedByRequester,
    RevokedByApprover,
    Denied,
    PendingTimedOut,
    Cancelled,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Expired,
        Outcome::EndedByRequester,
        Outcome::RevokedByApprover,
        Outcome::Denied,
        Outcome::PendingTimedOut,
        Outcome::Cancelled,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Expired => "expired",
            Outcome::EndedByRequester => "ended_by_requester",
            Outcome::RevokedByApprover => "revoked_by_approver",
            Outcome::Denied => "denied",
            Outcome::PendingTimedOut => "pending_timed_out",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", content = "outcome", rename_all = "snake_case")]
pub enum State {
    /// Waiting for approvers.
    Pending,
    /// Approved; nothing has been created yet.
    Approved,
    /// The instance and the database account are being created.
    Provisioning,
    /// Handed over: the requester can connect.
    Active,
    /// Removing the account and the instance; retried until done, then closed with the outcome.
    TearingDown(Outcome),
    /// Finished. Nothing leaves this state.
    Closed(Outcome),
}

impl State {
    /// The name stored in the `state` attribute (the outcome is stored beside it).
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Provisioning => "provisioning",
            State::Active => "active",
            State::TearingDown(_) => "tearing_down",
            State::Closed(_) => "closed",
        }
    }

    pub fn outcome(self) -> Option<Outcome> {
        match self {
            State::TearingDown(o) | State::Closed(o) => Some(o),
            _ => None,
        }
    }

    /// Rebuilds a state from its stored name and outcome; `None` if they do not fit together.
    pub fn from_parts(name: &str, outcome: Option<&str>) -> Option<State> {
        let outcome = outcome.map(Outcome::parse);
        match (name, outcome) {
            ("pending", None) => Some(State::Pending),
            ("approved", None) => Some(State::Approved),
            ("provisioning", None) => Some(State::Provisioning),
            ("active", None) => Some(State::Active),
            ("tearing_down", Some(Some(o))) => Some(State::TearingDown(o)),
            ("closed", Some(Some(o))) => Some(State::Closed(o)),
            _ => None,
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, State::Closed(_))
    }

    /// True where an instance or an account may exist, so closing needs a teardown first.
    pub fn may_hold_resources(self) -> bool {
        matches!(self, State::Provisioning | State::Active | State::TearingDown(_))
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome() {
            Some(o) => write!(f, "{} ({})", self.name().replace('_', " "), o.as_str().replace('_', " ")),
            None => f.write_str(self.name()),
        }
    }
}

/// Something that happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// One approval that does not yet reach the required number.
    ApprovalRecorded,
    /// The approval that reaches the required number.
    Approved,
    Denied,
    PendingTimedOut,
    /// The requester withdrew before anything was created.
    Cancelled,
    ProvisioningStarted,
    HandedOver,
    ProvisioningFailed,
    Warned,
    Extended,
    Expired,
    EndedByRequester,
    Revoked,
    /// A teardown attempt failed; it will be retried.
    TeardownFailed,
    TornDown,
}

impl Event {
    pub const ALL: [Event; 15] = [
        Event::ApprovalRecorded,
        Event::Approved,
        Event::Denied,
        Event::PendingTimedOut,
        Event::Cancelled,
        Event::ProvisioningStarted,
        Event::HandedOver,
        Event::ProvisioningFailed,
        Event::Warned,
        Event::Extended,
        Event::Expired,
        Event::EndedByRequester,
        Event::Revoked,
        Event::TeardownFailed,
        Event::TornDown,
    ];
}

/// An event that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event:?} a session that is {from}")]
pub struct TransitionError {
    pub from: State,
    pub event: Event,
}

/// The transition table: the state after `event`, or why it is not allowed.
pub fn transition(from: State, event: Event) -> Result<State, TransitionError> {
    use Event as E;
    use State as S;
    let to = match (from, event) {
        (S::Pending, E::ApprovalRecorded) => S::Pending,
        (S::Pending, E::Approved) => S::Approved,
        (S::Pending, E::Denied) => S::Closed(Outcome::Denied),
        (S::Pending, E::PendingTimedOut) => S::Closed(Outcome::PendingTimedOut),
        (S::Pending | S::Approved, E::Cancelled) => S::Closed(Outcome::Cancelled),
        (S::Approved, E::Revoked) => S::Closed(Outcome::RevokedByApprover),
        (S::Approved, E::ProvisioningStarted) => S::Provisioning,
        (S::Provisioning, E::HandedOver) => S::Active,
        (S::Provisioning, E::ProvisioningFailed) => S::TearingDown(Outcome::Failed),
        (S::Provisioning | S::Active, E::EndedByRequester) => S::TearingDown(Outcome::EndedByRequester),
        (S::Provisioning | S::Active, E::Revoked) => S::TearingDown(Outcome::RevokedByApprover),
        (S::Active, E::Warned | E::Extended) => S::Active,
        (S::Active, E::Expired) => S::TearingDown(Outcome::Expired),
        (S::TearingDown(o), E::TeardownFailed) => S::TearingDown(o),
        (S::TearingDown(o), E::TornDown) => S::Closed(o),
        _ => return Err(TransitionError { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};

    fn all_states() -> Vec<State> {
        let mut v = vec![State::Pending, State::Approved, State::Provisioning, State::Active];
        for o in Outcome::ALL {
            v.push(State::TearingDown(o));
            v.push(State::Closed(o));
        }
        v
    }

    fn reachable_from(start: State) -> HashSet<State> {
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(s) = queue.pop_front() {
            for e in Event::ALL {
                if let Ok(next) = transition(s, e) {
                    if seen.insert(next) {
                        queue.push_back(next);
                    }
                }
            }
        }
        seen
    }

    #[test]
    fn the_happy_path_is_allowed() {
        let mut s = State::Pending;
        for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver, Event::Warned, Event::Expired, Event::TornDown] {
            s = transition(s, e).unwrap();
        }
        assert_eq!(s, State::Closed(Outcome::Expired));
    }

    #[test]
    fn closed_is_final() {
        for o in Outcome::ALL {
            for e in Event::ALL {
                assert!(transition(State::Closed(o), e).is_err());
            }
        }
    }

    #[test]
    fn a_denied_request_cannot_be_approved_later() {
        let s = transition(State::Pending, Event::Denied).unwrap();
        let err = transition(s, Event::Approved).unwrap_err();
        assert_eq!(err.to_string(), "cannot Approved a session that is closed (denied)");
    }

    #[test]
    fn stored_names_round_trip() {
        for s in all_states() {
            assert_eq!(State::from_parts(s.name(), s.outcome().map(Outcome::as_str)), Some(s));
        }
        assert_eq!(State::from_parts("closed", None), None);
        assert_eq!(State::from_parts("active", Some("expired")), None);
    }

    #[test]
    fn every_state_reached_from_pending_can_still_close() {
        for s in reachable_from(State::Pending) {
            assert!(reachable_from(s).iter().any(|r| r.is_closed()), "{s} cannot close");
        }
    }

    proptest! {
        #[test]
        fn random_event_sequences_keep_the_invariants(events in proptest::collection::vec(proptest::sample::select(Event::ALL.to_vec()), 0..40)) {
            let reachable = reachable_from(State::Pending);
            let mut state = State::Pending;
            let mut provisioned = false;
            let mut torn_down_since_provisioning = false;
            for e in events {
                match transition(state, e) {
                    Ok(next) => {
                        prop_assert!(reachable.contains(&next));
                        prop_assert!(!state.is_closed(), "left a closed state");
                        if next == State::Provisioning { provisioned = true; }
                        if matches!(next, State::TearingDown(_)) { torn_down_since_provisioning = true; }
                        if next.is_closed() && provisioned {
                            prop_assert!(torn_down_since_provisioning, "closed {next} without tearing down");
                        }
                        state = next;
                    }
                    Err(err) => prop_assert_eq!(err.from, state),
                }
            }
            // From wherever the sequence ended, some sequence still closes it.
            prop_assert!(reachable_from(state).iter().any(|s| s.is_closed()));
        }
    }
}
