//! Requests nobody decides: approvers are reminded in the approval card's thread every
//! `scheduler.renotify_after`, and once a request has waited `scheduler.escalate_after`, the
//! `slack.escalation_group` is mentioned there too (once).
//!
//! The reminder is a due step like the others: [`crate::domain::Session::next_action_at`] of a
//! pending session is its next reminder (or its timeout, if sooner). The step first writes the
//! next reminder time (conditioned on the version read, with a `reminded` audit event), then
//! posts, so two sweepers never remind twice for the same moment.

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::lifecycle::{Lifecycle, StepError, StepOutcome};
use crate::config::Config;
use crate::domain::{Actor, AuditEvent, AuditKind, Session, State};
use crate::notify::messages;
use crate::store::StoreError;

/// When a request filed at `now` is first due for a reminder (or its escalation, if sooner).
pub fn first_reminder(config: &Config, now: DateTime<Utc>) -> DateTime<Utc> {
    let remind = now + config.scheduler.renotify_after.to_chrono();
    match escalation_at(config, now) {
        Some(escalate) => remind.min(escalate),
        None => remind,
    }
}

/// When a request created at `created` escalates, if an escalation is configured.
fn escalation_at(config: &Config, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
    config.slack.escalation_group.as_ref()?;
    Some(created + config.scheduler.escalate_after?.to_chrono())
}

/// The next reminder time after one sent at `now`.
fn next_reminder(config: &Config, session: &Session, now: DateTime<Utc>, escalated: bool) -> DateTime<Utc> {
    let remind = now + config.scheduler.renotify_after.to_chrono();
    match escalation_at(config, session.created_at) {
        Some(escalate) if !escalated && escalate > now => remind.min(escalate),
        _ => remind,
    }
}

impl Lifecycle {
    /// Reminds the approvers of a pending request whose reminder is due (and escalates once it
    /// has waited `escalate_after`). Not due, or no longer pending: nothing.
    pub async fn remind(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.workflow.clock.now();
        if read.state != State::Pending || read.reminders.next_at.is_none_or(|at| at > now) {
            return Ok(StepOutcome::NotDue);
        }
        let config = &self.workflow.config;
        let target = config.target(&read.target).cloned().ok_or_else(|| StepError::UnknownTarget(read.target.to_string()))?;
        let escalate = !read.reminders.escalated && escalation_at(config, read.created_at).is_some_and(|at| at <= now);
        let mut next = read.clone();
        next.reminders.sent += 1;
        next.reminders.escalated |= escalate;
        next.reminders.next_at = Some(next_reminder(config, &read, now, next.reminders.escalated));
        let group = config.slack.escalation_group.as_deref().filter(|_| escalate);
        let detail = match group {
            Some(g) => format!("reminder {} in the card's thread; escalated to <!subteam^{g}>", next.reminders.sent),
            None => format!("reminder {} in the card's thread", next.reminders.sent),
        };
        let event = AuditEvent::ok(AuditKind::Reminded, Actor::System, now, detail);
        let stored = match self.workflow.store.update(read.state, &next, Some(&event)).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict(_)) => return Ok(StepOutcome::Skipped),
            Err(e) => return Err(e.into()),
        };
        let message = messages::approval_reminder(&stored, &target, now, group);
        let result = match &stored.slack.approval_ts {
            Some(ts) => self.notifier.post(&target.approvals_channel, &message.in_thread(ts.clone())).await.map(|_| ()),
            // The card was never posted: remind in the channel itself rather than not at all.
            None => self.notifier.post(&target.approvals_channel, &message).await.map(|_| ()),
        };
        if let Err(e) = result {
            error!(session = %stored.id, error = %e, "the reminder could not be posted");
        }
        info!(session = %stored.id, escalated = escalate, "approvers reminded");
        Ok(StepOutcome::Reminded)
    }
}
