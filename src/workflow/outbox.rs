//! The notice outbox: what teardown owes Slack (the requester's ended DM, the redaction of the
//! hand-over DM, the approval and extension cards, the security channel's summary, alerts) is
//! recorded in the session ([`Notice`]) by the same conditional write that moves the session on,
//! and delivered here afterwards. A revocation therefore never waits for Slack: the account is
//! dropped and the instance terminated first, the session closes, and a Slack outage only delays
//! the notices.
//!
//! Delivery runs under the session's claim (a conditional write sets `lease_until`), so of two
//! replicas exactly one delivers; each notice is marked sent, by a conditional write, as soon as
//! Slack accepted it. A closed session whose outbox still owes a notice stays in the due index
//! (`Session::next_action_at`) until it is delivered, so the sweeper retries it with backoff, and
//! the simulator covers it. The one window left is a worker that dies between Slack's answer and
//! the write that marks the notice sent: that notice is delivered again after the lease (updates
//! in place, the redaction and the cards, are harmless to repeat).

use chrono::Duration;
use tracing::{info, warn};

use super::lifecycle::{Lifecycle, StepError, StepOutcome};
use crate::domain::{AccessDuration, Notice, NoticeKind, Session};
use crate::notify::{messages, NotifyError, Posted};
use crate::store::StoreError;

/// How long a claim on a closed session's outbox lasts: a worker that dies mid-delivery leaves
/// its notices due again after this.
pub(crate) const NOTICE_LEASE_SECS: i64 = 60;

/// Writes of a delivery's outcome tried before giving up (1 + 2 + 4 + 8 s of waits: well inside
/// the lease).
const RECORD_TRIES: u32 = 5;

/// Delivery retries back off about 5 s, 10 s, 20 s, ... up to 2 min, and never give up; a
/// Retry-After from Slack is honoured if it is longer. `jitter` (0..1000, from the session and
/// attempt) spreads the retries over half to one and a half times the step, so notices that a
/// rate limit refused together do not all come back in the same second.
pub fn notice_backoff(attempts: u32, retry_after_secs: u64, jitter: u64) -> Duration {
    let step_ms = 5_000i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(5)).min(120_000);
    let spread_ms = step_ms / 2 + step_ms * (jitter % 1000) as i64 / 1000;
    Duration::milliseconds(spread_ms.max(retry_after_secs.min(3600) as i64 * 1000))
}

/// A number in 0..1000 that differs between sessions and attempts, the same on every replay.
fn jitter(session: &Session, attempts: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (session.id.as_str(), attempts).hash(&mut h);
    h.finish() % 1000
}

impl Lifecycle {
    /// Queues `kinds` in `session`'s outbox (the caller writes the session).
    pub(crate) fn queue_notices(&self, session: &mut Session, kinds: impl IntoIterator<Item = NoticeKind>) {
        let now = self.workflow.clock.now();
        session.outbox.extend(kinds.into_iter().map(|kind| Notice::new(kind, now)));
    }

    /// A closed session owes notices: claim its outbox, then deliver what is due.
    pub(crate) async fn drain_outbox(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.workflow.clock.now();
        if !read.outbox.iter().any(|n| n.sent_at.is_none() && n.due_at <= now) {
            return Ok(StepOutcome::NotDue);
        }
        let mut claim = read.clone();
        claim.claim(now, Duration::seconds(NOTICE_LEASE_SECS));
        let Some(claimed) = self.save(&read, &claim, None).await? else {
            return Ok(StepOutcome::Skipped);
        };
        self.deliver_notices(claimed).await
    }

    /// Delivers every due notice of `session`, which this worker holds (its last write), marking
    /// each sent or rescheduled with a conditional write. A closed session's claim is released
    /// with the last write, so its next notice is due at its own time; a tearing-down session
    /// keeps its lease, which spaces the teardown's retries.
    pub(crate) async fn deliver_notices(&self, mut session: Session) -> Result<StepOutcome, StepError> {
        let now = self.workflow.clock.now();
        let due: Vec<usize> = session.outbox.iter().enumerate().filter(|(_, n)| n.sent_at.is_none() && n.due_at <= now).map(|(i, _)| i).collect();
        let (mut sent, mut failed) = (0u32, 0u32);
        for (k, &i) in due.iter().enumerate() {
            let kind = session.outbox[i].kind.clone();
            let result = self.deliver(&session, &kind).await;
            let now = self.workflow.clock.now();
            self.dependencies.record(crate::domain::Dependency::Slack, now, &result);
            let mut next = session.clone();
            let notice = &mut next.outbox[i];
            match result {
                Ok(()) => {
                    notice.sent_at = Some(now);
                    notice.last_error = None;
                    sent += 1;
                }
                Err(e) => {
                    notice.attempts += 1;
                    let retry_after = if let NotifyError::RateLimited { retry_after_secs, .. } = &e { *retry_after_secs } else { 0 };
                    notice.due_at = now + notice_backoff(notice.attempts, retry_after, jitter(&session, notice.attempts));
                    notice.last_error = Some(e.to_string());
                    warn!(session = %session.id, notice = ?kind, attempts = notice.attempts, error = %e, "a notice could not be delivered; it stays in the outbox");
                    failed += 1;
                }
            }
            if k + 1 == due.len() && next.state.is_closed() {
                next.lease_until = None;
            }
            match self.record_delivery(&session, &next).await? {
                Some(stored) => session = stored,
                None => return Ok(StepOutcome::Skipped),
            }
        }
        if sent > 0 {
            info!(session = %session.id, sent, failed, "notices delivered");
        }
        Ok(StepOutcome::Notified { sent, failed })
    }

    /// Deletes every hand-over DM of `session` that still shows a password and is not the one
    /// the session recorded (that one is redacted by [`NoticeKind::RedactHandover`]).
    pub(crate) async fn remove_stray_handovers(&self, session: &Session) -> Result<(), NotifyError> {
        // From a little before the approval: Slack's clock and this replica's may differ.
        let since = session.approved_at.map(|at| at - Duration::minutes(10));
        let strays = self.notifier.find_dms(&session.requester.slack_id, since, &messages::ready_marker(session)).await?;
        for stray in strays.iter().filter(|p| session.slack.handover_ts.as_deref() != Some(p.ts.as_str())) {
            self.notifier.delete(stray).await?;
            warn!(session = %session.id, ts = %stray.ts, "deleted a hand-over DM that nothing recorded");
        }
        Ok(())
    }

    /// Writes what a delivery attempt did. Slack has acted, so an unavailable store is tried
    /// again (this worker still holds the lease) rather than leaving the notice to be sent twice;
    /// `None`: someone else changed the session (it is theirs now).
    async fn record_delivery(&self, read: &Session, next: &Session) -> Result<Option<Session>, StepError> {
        let mut wait = std::time::Duration::from_secs(1);
        for _ in 1..RECORD_TRIES {
            match self.save(read, next, None).await {
                Err(StepError::Store(StoreError::Unavailable(e))) => {
                    warn!(session = %read.id, error = %e, "a delivered notice could not be recorded yet; trying again");
                    self.workflow.clock.sleep(wait).await;
                    wait *= 2;
                }
                other => return other,
            }
        }
        self.save(read, next, None).await
    }

    /// One delivery attempt. An update of a message Slack no longer has counts as done.
    async fn deliver(&self, session: &Session, kind: &NoticeKind) -> Result<(), NotifyError> {
        let target = self.workflow.config.target(&session.target);
        let result = match kind {
            NoticeKind::Ended => self.notifier.dm(&session.requester.slack_id, &messages::teardown_notice(session)).await.map(drop),
            NoticeKind::RedactHandover => match (&session.slack.handover_channel, &session.slack.handover_ts, target) {
                (Some(channel), Some(ts), Some(target)) => {
                    let at = Posted { channel: channel.clone(), ts: ts.clone() };
                    let instance = session.instance_id.clone().unwrap_or_default();
                    let redacted = messages::redacted_handover(session, target, &self.region, &instance, &self.workflow.config.bastion.session_document);
                    self.notifier.update(&at, &redacted).await
                }
                _ => Ok(()),
            },
            NoticeKind::RemoveStrayHandovers => self.remove_stray_handovers(session).await,
            NoticeKind::ApprovalCard => match (&session.slack.approval_channel, &session.slack.approval_ts, target) {
                (Some(channel), Some(ts), Some(target)) => {
                    let at = Posted { channel: channel.clone(), ts: ts.clone() };
                    self.notifier.update(&at, &messages::approval_card(session, target)).await
                }
                _ => Ok(()),
            },
            NoticeKind::ExtensionCard => match (&session.extension, target) {
                (Some(extension), Some(target)) => match &extension.card_ts {
                    Some(ts) => {
                        let at = Posted { channel: target.approvals_channel.clone(), ts: ts.clone() };
                        self.notifier.update(&at, &messages::extension_card(session, extension.by, None)).await
                    }
                    None => Ok(()),
                },
                _ => Ok(()),
            },
            NoticeKind::SecuritySummary => self.post_security_summary(session).await,
            NoticeKind::KeptLocked { reason } => match target {
                Some(target) => self.notifier.post(&target.approvals_channel, &messages::account_kept_locked(session, reason)).await.map(drop),
                None => Ok(()),
            },
            NoticeKind::StuckTeardown { channel, failing_for_secs } => {
                let failing_for = AccessDuration::from_secs((*failing_for_secs).max(1)).unwrap_or(self.workflow.config.scheduler.teardown_alert_after);
                self.notifier.post(channel, &messages::stuck_teardown_alert(session, failing_for)).await.map(drop)
            }
        };
        match result {
            Err(NotifyError::Refused { code, .. }) if code == "message_not_found" => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_backoff_grows_is_capped_and_honours_retry_after() {
        assert_eq!(notice_backoff(1, 0, 500), Duration::seconds(5));
        assert_eq!(notice_backoff(2, 0, 500), Duration::seconds(10));
        assert_eq!(notice_backoff(40, 0, 500), Duration::seconds(120));
        assert_eq!(notice_backoff(1, 30, 500), Duration::seconds(30));
        // Jitter spreads a step over half to one and a half times it.
        assert_eq!(notice_backoff(2, 0, 0), Duration::seconds(5));
        assert_eq!(notice_backoff(2, 0, 999), Duration::milliseconds(14_990));
    }
}
