//! The policy (`crate::policy`) in the request step: the role's maximum when a request is
//! checked, eligibility before anything is stored, and auto-approval right after the request is
//! stored (a conditional write, like every decision), bounded by the per-person cap.

use tracing::{info, warn};

use super::decide::ActionError;
use super::request::{RequestDraft, RequestError, RequestProblem};
use super::Workflow;
use crate::config::Config;
use crate::domain::{Actor, AuditEvent, AuditKind, Event, Session, SlackUserId, State};
use crate::notify::Notifier;
use crate::policy::live::{Auto, Through};
use crate::policy::{evaluate, Directory, Verdict};
use crate::store::StoreError;

/// A checked request over its role's maximum on the target is refused.
pub(super) fn check_role_max(config: &Config, draft: RequestDraft) -> Result<RequestDraft, RequestProblem> {
    let Some(target) = config.target(&draft.target) else { return Ok(draft) };
    let max = crate::policy::role_max(target, draft.role).min(config.access.max_duration);
    if crate::policy::has_role_max(target, draft.role) && draft.duration > max {
        return Err(RequestProblem::RoleTooLong { target: draft.target, role: draft.role, max });
    }
    Ok(draft)
}

impl Workflow {
    /// How many auto-approved sessions `user` holds now (not closed).
    pub async fn auto_approved_held(&self, user: &SlackUserId) -> Result<usize, StoreError> {
        Ok(self.store.by_requester(user, 50).await?.iter().filter(|s| !s.state.is_closed() && s.auto_approved.is_some()).count())
    }

    /// What the target's policy says of `user` asking for `draft`, groups read live from Slack;
    /// refused (nothing stored) when they are not eligible.
    pub async fn policy_verdict(&self, notifier: &dyn Notifier, user: &SlackUserId, draft: &RequestDraft) -> Result<Verdict, RequestError> {
        let target = self
            .config
            .target(&draft.target)
            .ok_or_else(|| RequestError::Store(StoreError::Corrupt(format!("target {} vanished from the configuration", draft.target))))?;
        let held = match crate::policy::auto_rule(target, draft.role) {
            Some(_) => self.auto_approved_held(user).await.map_err(RequestError::Store)?,
            None => 0,
        };
        let mut dir = Directory::new(notifier);
        let now = self.clock.now();
        let verdict = evaluate(&mut dir, target, self.config.access.max_duration, draft.role, Some(draft.duration), user, now, held)
            .await
            .map_err(|e| {
                warn!(%user, target = %draft.target, error = %e, "the policy's user groups could not be read from Slack; the request was refused");
                RequestError::PolicyUnreadable
            })?;
        if let Some(refusal) = verdict.refusal() {
            info!(%user, target = %draft.target, role = %draft.role, "request refused: not eligible");
            return Err(RequestError::NotEligible(refusal));
        }
        Ok(verdict)
    }

    /// Approves a just-stored pending `session` when `verdict` says a rule does: first a place
    /// under the target's `max_auto_sessions` (one conditional marker per place, held for the
    /// session's time, so two requests at once cannot both take the last place), then the
    /// approval itself as a conditional write with an `approved` event by the system naming the
    /// rule. Anything that does not hold leaves the request pending for the approvers.
    pub(super) async fn auto_approve(&self, session: Session, verdict: &Verdict) -> Session {
        let Auto::Approves { rule, through } = &verdict.auto else { return session };
        if session.state != State::Pending || !session.approvals.is_empty() {
            return session;
        }
        if let Some(cap) = verdict.cap {
            let hold = session.duration.to_chrono() + self.config.bastion.ssm_online_timeout.to_chrono() + chrono::Duration::minutes(10);
            let mut placed = false;
            for place in 0..cap {
                match self.store.remember_once(&format!("auto-approved#{}#{place}", session.requester.slack_id), hold).await {
                    Ok(true) => {
                        placed = true;
                        break;
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        warn!(session = %session.id, error = %e, "no place under the auto-approval cap could be taken; left to the approvers");
                        return session;
                    }
                }
            }
            if !placed {
                info!(session = %session.id, "every place under the auto-approval cap is taken; left to the approvers");
                return session;
            }
        }
        let now = self.clock.now();
        let how = match through {
            Through::Listed => "listed by user id".to_string(),
            Through::Group(g) => format!("a member of {g}"),
        };
        let detail = format!("auto-approved by {rule} ({how}): {} on {} for {}", session.role, session.target, session.duration);
        let stored = self
            .change(&session.id, |s| {
                if s.state != State::Pending || !s.approvals.is_empty() {
                    return Err(ActionError::AlreadyDecided(super::decide::already_decided(s)));
                }
                let mut next = s.clone();
                next.apply(Event::Approved).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                next.approved_at = Some(now);
                next.auto_approved = Some(rule.clone());
                Ok((next, Some(AuditEvent::ok(AuditKind::Approved, Actor::System, now, detail.clone()))))
            })
            .await;
        match stored {
            Ok(stored) => {
                info!(session = %stored.id, rule = %rule, "auto-approved");
                self.wake.notify_one();
                stored
            }
            Err(e) => {
                warn!(session = %session.id, error = %e, "the auto-approval was not stored; left to the approvers");
                session
            }
        }
    }
}

/// What one person may ask for on one target: each role with its longest session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub target: crate::domain::TargetName,
    pub roles: Vec<(crate::domain::Role, crate::domain::AccessDuration)>,
}

impl Workflow {
    /// Every target and role `user` may ask for (groups read live), for the request form and App
    /// Home. Targets where they may ask for nothing are left out.
    pub async fn offers(&self, notifier: &dyn Notifier, user: &SlackUserId) -> Result<Vec<Offer>, crate::notify::NotifyError> {
        let mut dir = Directory::new(notifier);
        let now = self.clock.now();
        let mut out = Vec::new();
        for target in self.config.targets.values() {
            let mut roles = Vec::new();
            for role in crate::domain::Role::ALL {
                let verdict = evaluate(&mut dir, target, self.config.access.max_duration, role, None, user, now, 0).await?;
                if verdict.eligible() {
                    roles.push((role, verdict.max));
                }
            }
            if !roles.is_empty() {
                out.push(Offer { target: target.name.clone(), roles });
            }
        }
        Ok(out)
    }
}
