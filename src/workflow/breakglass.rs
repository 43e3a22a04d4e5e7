//! Break-glass: a member of a target's on-call user group takes access at once, without an
//! approver, within the target's shorter `breakglass_max_duration` and without DDL unless the
//! target allows it (`breakglass_ddl`). In exchange it is loud and reviewed:
//!
//! - the session is stored already approved, with one `break_glass` audit event (request and
//!   approval in one conditional create, so there is no moment where it waits for approvers);
//! - an alarm goes to the approvals channel and to `slack.security_channel`;
//! - a review card (Acknowledge / Flag with a reason) goes to the security channel (else the
//!   approvals channel). Until someone other than the person who broke the glass, and allowed to
//!   approve on the target, reviews it, the session stays due: every `scheduler.review_within`
//!   the sweeper raises the alert again ([`Lifecycle::review_overdue`]), closed session or not.
//!
//! From `approved` on it is an ordinary session: provisioning, hand-over, expiry and teardown are
//! the lifecycle's.

use tracing::{error, info};

use super::decide::{ActionError, Done};
use super::lifecycle::{Lifecycle, StepError, StepOutcome};
use super::request::{check_request, RequestDraft, RequestError, RequestProblem};
use super::Workflow;
use crate::config::{BreakGlassConfig, Config, TargetConfig};
use crate::domain::{AccessDuration, Actor, AuditEvent, AuditKind, BreakGlass, Event, Review, Role, Session, SessionId, SlackUserId, TargetName};
use crate::notify::messages::breakglass as msg;
use crate::notify::{Notifier, NotifyError, Posted};
use crate::store::StoreError;

/// What is wrong with a typed break-glass, as the person should read it (nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakGlassProblem {
    #[error("{0}")]
    Request(RequestProblem),
    #[error("`{0}` has no on-call break-glass; ask the approvers with `/powerpole request` instead")]
    NotOffered(TargetName),
    #[error("break-glass on `{target}` allows at most {max}; ask for {max} or less, or ask the approvers for longer with `/powerpole request`")]
    TooLong { target: TargetName, max: AccessDuration },
    #[error("break-glass on `{0}` does not allow DDL; take DML or READ, or ask the approvers for DDL with `/powerpole request`")]
    NoDdl(TargetName),
}

/// Why a checked break-glass was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakGlassError {
    #[error("you are not in the on-call group or list of `{target}` ({group}), so you cannot break the glass; ask the approvers with `/powerpole request`")]
    NotOnCall { target: TargetName, group: String },
    #[error("Slack could not tell powerpole who is on call right now, so nothing was granted; try again in a minute or use `/powerpole request`. The cause is in powerpole's log for the platform team.")]
    Directory(NotifyError),
    #[error("{0}")]
    Request(RequestError),
}

impl super::Transient for BreakGlassError {
    fn is_transient(&self) -> bool {
        matches!(self, BreakGlassError::Request(e) if e.is_transient())
    }
}

/// Checks a typed break-glass against `config`, like a request and then against the target's
/// break-glass limits.
pub fn check_breakglass(config: &Config, target: &str, role: &str, duration: &str, reason: &str) -> Result<RequestDraft, BreakGlassProblem> {
    let draft = check_request(config, target, role, duration, reason).map_err(BreakGlassProblem::Request)?;
    let bg = breakglass_of(config, &draft.target)?;
    if draft.role == Role::Ddl && !bg.ddl {
        return Err(BreakGlassProblem::NoDdl(draft.target));
    }
    if draft.duration > bg.max_duration {
        return Err(BreakGlassProblem::TooLong { target: draft.target, max: bg.max_duration });
    }
    Ok(draft)
}

fn breakglass_of<'c>(config: &'c Config, target: &TargetName) -> Result<&'c BreakGlassConfig, BreakGlassProblem> {
    config.target(target).and_then(|t| t.breakglass.as_ref()).ok_or_else(|| BreakGlassProblem::NotOffered(target.clone()))
}

/// Where a target's review cards go.
fn review_channel<'a>(config: &'a Config, target: &'a TargetConfig) -> &'a str {
    config.slack.security_channel.as_deref().unwrap_or(&target.approvals_channel)
}

impl Workflow {
    /// `user` breaks the glass on a checked draft as session `id`: refused unless they are in the
    /// target's on-call group (nothing stored); otherwise stored approved, announced in the
    /// approvals and security channels, its review card posted, and the sweeper woken.
    /// Repeated with the same `id` (a replayed follow-up), it carries on from what is stored.
    pub async fn breakglass(&self, notifier: &dyn Notifier, id: SessionId, user: &SlackUserId, draft: RequestDraft) -> Result<Done, BreakGlassError> {
        let unknown = || BreakGlassError::Request(RequestError::Store(StoreError::Corrupt(format!("target {} vanished from the configuration", draft.target))));
        let target = self.config.target(&draft.target).ok_or_else(unknown)?;
        let bg = target.breakglass.as_ref().ok_or_else(unknown)?;
        let oncall = crate::policy::Who { users: bg.oncall_users.clone(), groups: bg.oncall_group.iter().cloned().collect() };
        let Some(through) = crate::policy::Directory::new(notifier).through(&oncall, user).await.map_err(BreakGlassError::Directory)? else {
            return Err(BreakGlassError::NotOnCall { target: target.name.clone(), group: oncall.mentions() });
        };
        let qualified = match through {
            crate::policy::live::Through::Listed => format!("listed by user id in targets.{}.oncall_users", target.name),
            crate::policy::live::Through::Group(g) => format!("a member of <!subteam^{g}>"),
        };
        let session = match self.store.get(&id).await.map_err(|e| BreakGlassError::Request(RequestError::Store(e)))? {
            Some(stored) if stored.requester.slack_id == *user && stored.breakglass.is_some() => stored,
            Some(_) => return Err(BreakGlassError::Request(RequestError::Store(StoreError::AlreadyExists(id)))),
            None => self.store_breakglass(notifier, id, user, draft, bg, qualified).await?,
        };
        let mut done = Done::new(session);
        if done.session.breakglass.as_ref().is_some_and(|b| b.review_ts.is_none()) {
            self.announce(notifier, target, &mut done).await;
        }
        Ok(done)
    }

    async fn store_breakglass(&self, notifier: &dyn Notifier, id: SessionId, user: &SlackUserId, draft: RequestDraft, bg: &BreakGlassConfig, qualified: String) -> Result<Session, BreakGlassError> {
        let requester = self.identify(notifier, user, &draft.target).await.map_err(BreakGlassError::Request)?;
        let now = self.clock.now();
        let mut session = Session::new(id, requester, draft.target, draft.role, draft.duration, draft.reason, now, self.config.scheduler.pending_timeout);
        session.apply(Event::Approved).map_err(|e| BreakGlassError::Request(RequestError::Store(StoreError::Corrupt(e.to_string()))))?;
        session.approved_at = Some(now);
        session.breakglass = Some(BreakGlass {
            oncall_group: bg.oncall_group.clone().unwrap_or_default(),
            qualified: Some(qualified.clone()),
            review_channel: None,
            review_ts: None,
            review_due_at: now + self.config.scheduler.review_within.to_chrono(),
            alerts: 0,
            review: None,
        });
        let detail = format!(
            "break-glass: {} on {} for {}, approved at once (on call: {}): {}",
            session.role, session.target, session.duration, qualified, session.reason
        );
        let event = AuditEvent::ok(AuditKind::BreakGlass, Actor::User(user.clone()), now, detail);
        match self.store.create(&session, &event).await {
            Ok(()) => {}
            Err(e) => return Err(BreakGlassError::Request(RequestError::Store(e))),
        }
        info!(session = %session.id, target = %session.target, role = %session.role, "break-glass taken");
        self.wake.notify_one();
        Ok(session)
    }

    /// The alarm in the approvals and security channels, then the review card (its place stored,
    /// which is what marks the announcement as done).
    async fn announce(&self, notifier: &dyn Notifier, target: &TargetConfig, done: &mut Done) {
        let alarm = msg::alarm(&done.session, target);
        done.note(notifier.post(&target.approvals_channel, &alarm).await);
        if let Some(security) = &self.config.slack.security_channel {
            done.note(notifier.post(security, &alarm).await);
        }
        let channel = review_channel(&self.config, target).to_string();
        let card = match notifier.post(&channel, &msg::review_card(&done.session)).await {
            Ok(card) => card,
            Err(e) => {
                // The review still comes due (review_due_at): the overdue alert carries the buttons.
                error!(session = %done.session.id, error = %e, "the review card could not be posted");
                done.undelivered.push(e);
                return;
            }
        };
        let stored = self
            .change(&done.session.id, |s| {
                let mut next = s.clone();
                let bg = next.breakglass.as_mut().ok_or_else(|| ActionError::AlreadyDecided("not a break-glass session".into()))?;
                bg.review_channel = Some(card.channel.clone());
                bg.review_ts = Some(card.ts.clone());
                Ok((next, None))
            })
            .await;
        match stored {
            Ok(stored) => done.session = stored,
            Err(e) => error!(session = %done.session.id, error = %e, "the review card's place could not be stored"),
        }
    }

    /// `reviewer` reviews break-glass session `id`: acknowledges it (`flag` = `None`) or flags
    /// it with a reason. Only someone who may approve on the target, and not the person who broke
    /// the glass; once. The review card loses its buttons; a flag is posted in the security
    /// channel.
    pub async fn review(&self, notifier: &dyn Notifier, reviewer: &SlackUserId, id: &SessionId, flag: Option<String>) -> Result<Done, ActionError> {
        let (session, target) = self.session(id).await?;
        self.check_reviewer(notifier, &session, target, reviewer).await?;
        let now = self.clock.now();
        let stored = self
            .change(id, |s| {
                let mut next = s.clone();
                let bg = next.breakglass.as_mut().ok_or(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "it is not a break-glass session" })?;
                if let Some(done) = &bg.review {
                    return Err(ActionError::AlreadyDecided(msg::already_reviewed(&s.id, done)));
                }
                bg.review = Some(Review { by: reviewer.clone(), at: now, flag: flag.clone() });
                let event = match &flag {
                    Some(reason) => AuditEvent::ok(AuditKind::ReviewFlagged, Actor::User(reviewer.clone()), now, reason.clone()),
                    None => AuditEvent::ok(AuditKind::ReviewAcknowledged, Actor::User(reviewer.clone()), now, "reviewed: acknowledged"),
                };
                Ok((next, Some(event)))
            })
            .await?;
        let mut done = Done::new(stored);
        if let Some(card) = review_card_of(&done.session) {
            done.note(notifier.update(&card, &msg::review_card(&done.session)).await);
        }
        if flag.is_some() {
            done.note(notifier.post(review_channel(&self.config, target), &msg::flagged(&done.session)).await);
        }
        Ok(done)
    }

    /// Whether `user` may review `session` (for opening the flag form before asking why).
    pub async fn check_reviewer(&self, notifier: &dyn Notifier, session: &Session, target: &TargetConfig, user: &SlackUserId) -> Result<(), ActionError> {
        if session.breakglass.is_none() {
            return Err(ActionError::WrongState { id: session.id.clone(), state: session.state, what: "it is not a break-glass session" });
        }
        if &session.requester.slack_id == user {
            return Err(ActionError::AlreadyDecided("you broke the glass yourself: someone else has to review it".into()));
        }
        if !self.is_approver(notifier, target, user).await? {
            return Err(ActionError::NotAnApprover(target.name.to_string()));
        }
        Ok(())
    }
}

fn review_card_of(session: &Session) -> Option<Posted> {
    let bg = session.breakglass.as_ref()?;
    Some(Posted { channel: bg.review_channel.clone()?, ts: bg.review_ts.clone()? })
}

impl Lifecycle {
    /// Nobody has reviewed a break-glass session within `review_within`: records the alert and
    /// moves the next one on (a conditional write, so two sweepers alert once), then posts it in
    /// the review channel, mentioning the target's approvers, with the review buttons.
    pub async fn review_overdue(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.workflow.clock.now();
        if read.review_due_at().is_none_or(|at| at > now) {
            return Ok(StepOutcome::NotDue);
        }
        let config = &self.workflow.config;
        let target = config.target(&read.target).cloned().ok_or_else(|| StepError::UnknownTarget(read.target.to_string()))?;
        let mut next = read.clone();
        let Some(bg) = next.breakglass.as_mut() else { return Ok(StepOutcome::NotDue) };
        bg.alerts += 1;
        let waited = now - read.created_at;
        bg.review_due_at = now + config.scheduler.review_within.to_chrono();
        let detail = format!("not reviewed {}h after it began: alert {}", waited.num_hours(), bg.alerts);
        let event = AuditEvent::ok(AuditKind::ReviewOverdue, Actor::System, now, detail);
        let stored = match self.workflow.store.update(read.state, &next, Some(&event)).await {
            Ok(stored) => stored,
            Err(StoreError::Conflict(_)) => return Ok(StepOutcome::Skipped),
            Err(e) => return Err(e.into()),
        };
        let channel = review_channel(config, &target);
        if let Err(e) = self.notifier.post(channel, &msg::review_overdue(&stored, &target, now)).await {
            error!(session = %stored.id, error = %e, "the overdue review alert could not be posted");
        }
        info!(session = %stored.id, "break-glass review overdue: alerted");
        Ok(StepOutcome::ReviewOverdue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = crate::notify::messages::fixtures::CONFIG.replace("max_duration = \"4h\"", &format!("max_duration = \"4h\"\n{extra}"));
        Config::from_toml_str(&text).expect("valid")
    }

    #[test]
    fn break_glass_keeps_within_its_own_limits() {
        let c = config("oncall_group = \"S0ONCALL\"\nbreakglass_max_duration = \"30m\"");
        let ok = check_breakglass(&c, "billing", "DML", "30m", "INC-7 outage").unwrap();
        assert_eq!(ok.role, Role::Dml);
        let problem = |r: &str, d: &str| check_breakglass(&c, "billing", r, d, "x").unwrap_err().to_string();
        assert!(problem("DML", "45m").starts_with("break-glass on `billing` allows at most 30m"), "{}", problem("DML", "45m"));
        assert!(problem("DDL", "10m").starts_with("break-glass on `billing` does not allow DDL"));
        let ddl = config("oncall_group = \"S0ONCALL\"\nbreakglass_ddl = true");
        assert!(check_breakglass(&ddl, "billing", "DDL", "1h", "x").is_ok(), "the default maximum is 1h");
    }

    #[test]
    fn a_target_without_an_oncall_group_has_no_break_glass() {
        let c = config("");
        assert_eq!(check_breakglass(&c, "billing", "READ", "10m", "x").unwrap_err(), BreakGlassProblem::NotOffered(TargetName::parse("billing").unwrap()));
        let bad = crate::notify::messages::fixtures::CONFIG.replace("max_duration = \"4h\"", "max_duration = \"4h\"\nbreakglass_ddl = true\nbreakglass_max_duration = \"5h\"");
        let lines = Config::from_toml_str(&bad).unwrap_err().to_string();
        assert!(lines.contains("targets.billing.oncall_group: missing"), "{lines}");
        let long = crate::notify::messages::fixtures::CONFIG.replace("max_duration = \"4h\"", "max_duration = \"4h\"\noncall_group = \"S0ONCALL\"\nbreakglass_max_duration = \"5h\"");
        let lines = Config::from_toml_str(&long).unwrap_err().to_string();
        assert!(lines.contains("targets.billing.breakglass_max_duration"), "{lines}");
    }
}
