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

use std::time::Duration;

use tracing::{error, info, warn};

use super::lifecycle::{Lifecycle, ProvisionError};
use crate::config::TargetConfig;
use crate::domain::{Session, State};
use crate::notify::messages;
use crate::notify::{NotifyError, Posted};

/// What one provisioning worker made so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Made {
    pub instance: Option<String>,
    /// The host of the account it created (or may have created).
    pub account: Option<String>,
    pub dm: Option<Posted>,
}

/// Reads, undoes and redacts are tried this often before the worker gives up (a teardown or
/// reconcile then covers what is recorded; the rest is logged as an error).
const TRIES: u32 = 5;

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
        if let Some(host) = &made.account {
            for attempt in 0..TRIES {
                match self.grants.revoke(target, &session.requester.db_user, host).await {
                    Ok(report) => {
                        info!(session = %session.id, %report, "account made by a worker that lost its claim revoked");
                        break;
                    }
                    Err(e) if attempt + 1 == TRIES => error!(session = %session.id, error = %e, "could not revoke the account this worker made; reconcile must"),
                    Err(_) => self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await,
                }
            }
        }
        if let Some(id) = &made.instance {
            for attempt in 0..TRIES {
                match self.bastions.terminate(id).await {
                    Ok(()) => break,
                    Err(e) if attempt + 1 == TRIES => error!(session = %session.id, error = %e, "could not terminate the instance this worker launched; reconcile must"),
                    Err(_) => self.workflow.clock.sleep(Duration::from_secs(1 << attempt)).await,
                }
            }
        }
        ProvisionError::LostClaim
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
