//! Launch on request (a target's `launch_on_request`): the bastion is launched while the request
//! waits for approvers, so that it is online by the time one clicks Approve.
//!
//! What keeps this safe:
//! - the early instance carries no `powerpole:identity` tag, and the engineer policy lets a
//!   person start a session only on a bastion whose identity tag is theirs: nobody can enter it
//!   before approval. Provisioning sets the tag ([`crate::bastion::Bastions::set_identity`]) after
//!   the approval is stored;
//! - the database account is still created only by provisioning, after approval;
//! - the launch is claimed like every step (a conditional write with a lease, which also sets
//!   `launch_window_end`), so of two replicas one launches, and a teardown that knows no instance
//!   looks it up by tag until the launch has settled;
//! - every way such a session ends goes through `tearing down` (`Session::apply`), so a denied,
//!   timed-out or withdrawn request's instance is terminated by the ordinary, retried teardown.
//!   A launch that answers after the session ended terminates its instance itself.
//!
//! The launch uses the same [`LaunchSpec`] (no identity tag) as provisioning does for such a
//! session, so `RunInstances`' `ClientToken` (the session id) makes the two one instance.

use chrono::Duration;
use tracing::{info, warn};

use super::lifecycle::{Lifecycle, StepError, StepOutcome};
use crate::bastion::{Instance, LaunchSpec};
use crate::domain::{Actor, AuditEvent, AuditKind, Session, State};

/// How long an early launch is claimed. A launch that fails is tried again when it runs out.
const EARLY_LAUNCH_LEASE_SECS: i64 = 120;

/// Tries at claiming the launch and at recording the instance against concurrent writes (a
/// reminder, a card reference).
const RECORD_TRIES: u32 = 5;

impl Lifecycle {
    /// The launch spec of `session`: without the identity tag for launch on request.
    pub(crate) fn launch_spec(&self, session: &Session, target: &crate::config::TargetConfig) -> LaunchSpec {
        let spec = LaunchSpec::new(session.id.clone(), session.requester.slack_id.clone(), &session.requester.email, target);
        if session.launch_on_request {
            spec.without_identity()
        } else {
            spec
        }
    }

    /// Launches a pending launch-on-request session's bastion and records it.
    pub(crate) async fn launch_early(&self, read: Session) -> Result<StepOutcome, StepError> {
        if !read.needs_early_launch() {
            return Ok(StepOutcome::NotDue);
        }
        let target = self.target(&read)?;
        // The request's own follow-up writes the session right after filing it (the card's
        // reference), the moment this claim is made: a claim that loses to such a write is made
        // again on what was written, at once, while the session still needs its launch and
        // nobody holds it (another replica's claim is left alone).
        let mut read = read;
        let mut claimed = None;
        for _ in 0..RECORD_TRIES {
            let now = self.now();
            let mut claim = read.clone();
            claim.claim(now, Duration::seconds(EARLY_LAUNCH_LEASE_SECS));
            claim.launch_window_end = claim.lease_until;
            if let Some(stored) = self.save(&read, &claim, None).await? {
                claimed = Some(stored);
                break;
            }
            match self.workflow.store.get(&read.id).await? {
                Some(current) if current.needs_early_launch() && current.unclaimed(self.now()) => read = current,
                _ => return Ok(StepOutcome::Skipped),
            }
        }
        let Some(claimed) = claimed else {
            return Ok(StepOutcome::Skipped);
        };
        let spec = self.launch_spec(&claimed, &target);
        let instance = match self.bastions.launch(&spec).await {
            Ok(instance) => instance,
            Err(e) => {
                // Not a failure of the request: approval provisions as usual (and launches then).
                warn!(session = %claimed.id, error = %e, "the early launch failed; trying again when its claim runs out");
                self.give_back_if_approved(&claimed).await?;
                return Ok(StepOutcome::EarlyLaunchFailed(e.to_string()));
            }
        };
        info!(session = %claimed.id, instance = %instance.id, "bastion launched at request, without an identity tag");
        self.record_early_launch(claimed, instance).await
    }

    /// Records the early instance on the pending session. If the session moved on meanwhile:
    /// approved or provisioning sessions find it themselves (same `ClientToken`, same tag); an
    /// ended one must not leave it running, so it is terminated here (the teardown may have
    /// looked before it existed).
    async fn record_early_launch(&self, mut read: Session, instance: Instance) -> Result<StepOutcome, StepError> {
        let claimed_until = read.lease_until;
        for _ in 0..RECORD_TRIES {
            // Approved while it launched: the instance is recorded and the claim given back in
            // the same write, so provisioning starts now instead of when the claim runs out.
            let approved_meanwhile = read.state == State::Approved && read.lease_until == claimed_until;
            match read.state {
                State::Pending if read.instance_id.is_none() => {}
                State::Approved if approved_meanwhile && read.instance_id.is_none() => {}
                State::Approved if approved_meanwhile => {
                    self.give_back_if_approved(&read).await?;
                    return Ok(StepOutcome::LaunchedEarly);
                }
                State::Pending | State::Approved | State::Provisioning | State::Active => return Ok(StepOutcome::LaunchedEarly),
                State::TearingDown(_) | State::Closed(_) => {
                    self.hand_to_teardown(&read.id, &instance).await;
                    self.bastions.terminate(&instance.id).await?;
                    info!(session = %read.id, instance = %instance.id, "the request ended while its bastion was launching; terminated it");
                    let detail = format!("instance {} ({}) launched at request answered after the request ended ({}); terminated, nobody could enter it", instance.id, instance.private_ip, read.state);
                    self.record_undone(&read.id, detail, claimed_until, Some(&instance)).await;
                    return Ok(StepOutcome::Skipped);
                }
            }
            let mut next = read.clone();
            next.record_instance(&instance.id, instance.private_ip);
            next.lease_until = None;
            let detail = format!("instance {} ({}) launched at request; nobody can enter it before approval", instance.id, instance.private_ip);
            let event = AuditEvent::ok(AuditKind::Launched, Actor::System, self.now(), detail);
            if self.save(&read, &next, Some(event)).await?.is_some() {
                if approved_meanwhile {
                    self.workflow.wake.notify_one();
                }
                return Ok(StepOutcome::LaunchedEarly);
            }
            match self.workflow.store.get(&read.id).await? {
                Some(current) => read = current,
                None => return Ok(StepOutcome::Skipped),
            }
        }
        // Still contended: leave it; provisioning or the teardown finds the instance by tag.
        Ok(StepOutcome::LaunchedEarly)
    }

    /// Gives back the early launch's claim of a session approved while it launched (read again
    /// now), so that provisioning, held back by that claim, starts at once; it finds the instance
    /// by its tag. A session written by anyone else since is left as it is.
    async fn give_back_if_approved(&self, claimed: &Session) -> Result<(), StepError> {
        let Some(read) = self.workflow.store.get(&claimed.id).await? else { return Ok(()) };
        if read.state != State::Approved || read.lease_until != claimed.lease_until || read.lease_until.is_none() {
            return Ok(());
        }
        let mut next = read.clone();
        next.lease_until = None;
        if self.save(&read, &next, None).await?.is_some() {
            info!(session = %read.id, "approved while its bastion launched at request: provisioning starts now");
            self.workflow.wake.notify_one();
        }
        Ok(())
    }
}
