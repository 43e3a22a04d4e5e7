//! What a provisioning worker does when it loses its claim.
//!
//! A lost claim means one of two things, and undoing blindly is wrong in one of them:
//! - the session was ended, revoked or failed (it is tearing down or closed): the teardown only
//!   knows what was recorded, so this worker removes what it made and had not recorded yet (an
//!   instance whose launch answered late, an account created after the teardown's revoke);
//! - another worker resumed the session after this one's lease ran out: it uses the same tagged
//!   instance and account, so this worker leaves them alone.
//!
//! Either way a hand-over DM this worker sent is not the one the session recorded, so it is
//! redacted: the password in it is, or soon will be, dead.
//!
//! What is undone is audited: an `undone` event in the session's trail
//! ([`Lifecycle::record_undone`]), unless another worker holds the session (a write then would
//! take its claim): that case is logged only.

use std::time::Duration;

use tracing::{error, info, warn};

use super::lifecycle::{Lifecycle, ProvisionError};
use crate::bastion::Instance;
use crate::config::TargetConfig;
use crate::domain::{Actor, AuditEvent, AuditKind, Session, SessionId, State};
use crate::notify::messages;
use crate::notify::{NotifyError, Posted};

/// What one provisioning worker made so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Made {
    pub instance: Option<Instance>,
    /// The host of the account it created (or may have created).
    pub account: Option<String>,
    pub dm: Option<Posted>,
}

/// Reads, undoes and redacts are tried this often before the worker gives up (a teardown or
/// reconcile then covers what is recorded; the rest is logged as an error).
const TRIES: u32 = 5;

/// Looks at a session held by another worker's claim before the `undone` event is given up (1 +
/// 2 + 4 s of waits): the step that undid something must not hold its session, or the sweep,
/// for long.
const UNDONE_TRIES: u32 = 4;

impl Lifecycle {
    /// Undoes what `made` holds if the session is ending, redacts this worker's DM, and returns
    /// the lost claim for the caller to pass on.
    pub(crate) async fn abandon(&self, session: &Session, target: &TargetConfig, made: Made) -> ProvisionError {
        let mut current = None;
        for attempt in 0..TRIES {
            match self.workflow.store.get(&session.id).await {
                Ok(found) => {
                    current = Some(found);
                    break;
                }
                Err(e) => {
                    warn!(session = %session.id, error = %e, "a worker that lost its claim could not read the session; trying again");
                    self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        }
        let Some(current) = current else {
            error!(session = %session.id, ?made, "a worker that lost its claim could not read the session; what it made is left to the teardown and reconcile");
            return ProvisionError::LostClaim;
        };
        if let Some(dm) = &made.dm {
            let recorded = current.as_ref().is_some_and(|s| s.slack.handover_ts.as_deref() == Some(dm.ts.as_str()));
            if !recorded {
                self.redact(session, target, dm).await;
            }
        }
        let ending = current.as_ref().is_none_or(|s| matches!(s.state, State::TearingDown(_) | State::Closed(_)));
        if !ending || !crate::sim::fixes::on(crate::sim::fixes::Fix::AbandonUndoes) {
            info!(session = %session.id, "another worker resumed this session; leaving the instance and account to it");
            return ProvisionError::LostClaim;
        }
        info!(session = %session.id, ?made, "the session ended while it was provisioned; undoing what this worker made");
        let mut undone = Vec::new();
        if let Some(host) = &made.account {
            for attempt in 0..TRIES {
                match self.grants.revoke(target, &session.requester.db_user, host).await {
                    Ok(report) => {
                        info!(session = %session.id, %report, "account made by a worker that lost its claim revoked");
                        undone.push(format!("account {}@{host} dropped", session.requester.db_user));
                        break;
                    }
                    Err(e) if attempt + 1 == TRIES => error!(session = %session.id, error = %e, "could not revoke the account this worker made; reconcile must"),
                    Err(_) => self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await,
                }
            }
        }
        let mut terminated = None;
        if let Some(instance) = &made.instance {
            self.hand_to_teardown(&session.id, instance).await;
            let id = &instance.id;
            for attempt in 0..TRIES {
                match self.bastions.terminate(id).await {
                    Ok(()) => {
                        undone.push(format!("instance {id} terminated"));
                        terminated = Some(instance);
                        break;
                    }
                    Err(e) if attempt + 1 == TRIES => error!(session = %session.id, error = %e, "could not terminate the instance this worker launched; reconcile must"),
                    Err(_) => self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await,
                }
            }
        }
        if !undone.is_empty() {
            self.record_undone(&session.id, format!("the session ended while it was provisioned: {}", undone.join(", ")), session.lease_until, terminated).await;
        }
        ProvisionError::LostClaim
    }

    /// Records `instance` in session `id` if it is being torn down without knowing it, before this
    /// worker terminates it: a worker that dies between the termination and its `undone` event
    /// then leaves the instance to the teardown, which terminates it again and names it (its tag
    /// lookup no longer shows a terminated instance). The teardown's claim is left as it is (its
    /// next write is refused, and it runs again once the claim runs out). Best effort, tried a few
    /// times at once (the termination is not held up for it): a store that refuses leaves the
    /// `undone` event to say it.
    pub(crate) async fn hand_to_teardown(&self, id: &SessionId, instance: &Instance) {
        if !crate::sim::fixes::on(crate::sim::fixes::Fix::RecordBeforeTerminate) {
            return;
        }
        for _ in 0..TRIES {
            let read = match self.workflow.store.get(id).await {
                Ok(Some(read)) if read.torn_down_without_bastion() => read,
                Ok(_) => return,
                Err(e) => {
                    warn!(session = %id, error = %e, "could not read the session to hand it the instance being undone; trying again");
                    continue;
                }
            };
            let mut next = read.clone();
            next.record_instance(&instance.id, instance.private_ip);
            match self.save(&read, &next, None).await {
                Ok(Some(_)) => return,
                Ok(None) => continue,
                Err(e) => warn!(session = %id, error = %e, "could not hand the instance being undone to the teardown; trying again"),
            }
        }
    }

    /// Appends an `undone` event saying `detail` to the trail of session `id`. `ours`: the lease
    /// of this worker's claim. A session that still carries it is written at once, and the claim
    /// given back in the same write (so its teardown, held back by the claim, starts now), as is
    /// one that is closed or that nobody holds. One that another worker holds (its teardown) is
    /// not written, since that would take the claim from it: looked at again a few times, then
    /// the event is given up with the detail in the log; except a teardown that knows no bastion
    /// while this worker undoes one, which is written (below). `instance`: the bastion undone,
    /// recorded in that same write when the session knows none and this worker holds it (so that
    /// its teardown need not wait for the tag lookup to settle) or is being torn down.
    pub(crate) async fn record_undone(&self, id: &SessionId, detail: String, ours: Option<chrono::DateTime<chrono::Utc>>, instance: Option<&Instance>) {
        for attempt in 0..UNDONE_TRIES {
            match self.workflow.store.get(id).await {
                Ok(None) => return,
                Ok(Some(read)) => {
                    let holds_our_claim = ours.is_some() && read.lease_until == ours;
                    // A teardown that knows no bastion cannot name this one (its tag lookup no
                    // longer shows a terminated instance): it is handed the instance, its claim
                    // left as it is. Its next write is then refused and it runs again once that
                    // claim runs out, naming the instance; what it was removing is removed already.
                    let teardown_without_it = read.torn_down_without_bastion()
                        && instance.is_some()
                        && crate::sim::fixes::on(crate::sim::fixes::Fix::RecordBeforeTerminate);
                    if matches!(read.state, State::Closed(_)) || holds_our_claim || teardown_without_it || read.unclaimed(self.now()) {
                        let mut next = read.clone();
                        if holds_our_claim {
                            next.lease_until = None;
                        }
                        if holds_our_claim || teardown_without_it {
                            if let (None, Some(instance)) = (&next.instance_id, instance) {
                                next.record_instance(&instance.id, instance.private_ip);
                            }
                        }
                        let event = AuditEvent::ok(AuditKind::Undone, Actor::System, self.now(), detail.clone());
                        match self.save(&read, &next, Some(event)).await {
                            Ok(Some(_)) => {
                                if holds_our_claim {
                                    self.workflow.wake.notify_one();
                                }
                                return;
                            }
                            // Another write came first: read again.
                            Ok(None) => continue,
                            Err(e) => warn!(session = %id, error = %e, "could not record what was undone; trying again"),
                        }
                    }
                }
                Err(e) => warn!(session = %id, error = %e, "could not read the session to record what was undone; trying again"),
            }
            if attempt + 1 < UNDONE_TRIES {
                self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
        error!(session = %id, %detail, "what a worker undid could not be recorded in the session's trail (another worker held it, or the store failed)");
    }

    /// Replaces a hand-over DM with its redacted form, retrying a few times. `true` once done (a
    /// message that is gone counts as done).
    pub(crate) async fn redact(&self, session: &Session, target: &TargetConfig, at: &Posted) -> bool {
        let instance = session.instance_id.clone().unwrap_or_default();
        let redacted = messages::redacted_handover(session, target, &self.region, &instance, &self.workflow.config.bastion.session_document);
        for attempt in 0..TRIES {
            match self.notifier.update(at, &redacted).await {
                Ok(()) => return true,
                Err(NotifyError::Refused { code, .. }) if code == "message_not_found" => return true,
                Err(e) if attempt + 1 == TRIES => {
                    error!(session = %session.id, error = %e, "could not redact a hand-over DM");
                }
                Err(_) => self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await,
            }
        }
        false
    }
}
