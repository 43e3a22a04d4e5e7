//! The request step and the requester's own actions: ask, list, end, ask for more time.
//!
//! [`Workflow::check_request`] is pure (config only), so the Slack handler runs it before it
//! answers and refuses a bad request at once, storing nothing. [`Workflow::request`] does the slow
//! part after the answer: the requester's profile, the stored session, the approval card.

use super::decide::{stored_card, ActionError, Done};
use super::Workflow;
use crate::config::{Config, TargetConfig};
use crate::domain::{
    AccessDuration, Actor, AuditEvent, AuditKind, DbUsername, DurationError, Event, PendingExtension, Requester, Role, Session, SessionId,
    SlackUserId, State, TargetName, UsernameError,
};
use crate::notify::{messages, Notifier, NotifyError, Posted};
use crate::store::StoreError;

/// The longest reason kept (Slack's modal enforces the same).
pub const MAX_REASON: usize = 500;

/// A request that passed every check against the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDraft {
    pub target: TargetName,
    pub role: Role,
    pub duration: AccessDuration,
    pub reason: String,
}

/// What is wrong with a request, as the requester should read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    #[error("there is no target `{given}`; choose one of: {known}")]
    UnknownTarget { given: String, known: String },
    #[error("unknown role `{0}`: use READ, DML or DDL")]
    UnknownRole(String),
    #[error("{0}")]
    Duration(DurationError),
    #[error("`{target}` allows at most {max} per session; ask for {max} or less")]
    TooLong { target: TargetName, max: AccessDuration },
    #[error("`{target}` allows {role} for at most {max} per session; ask for {max} or less")]
    RoleTooLong { target: TargetName, role: Role, max: AccessDuration },
    #[error("give a reason: the ticket and what you need to do")]
    NoReason,
    #[error("the reason is {0} characters long; keep it under {MAX_REASON}")]
    ReasonTooLong(usize),
}

/// Why a checked request could not be filed. Its `Display` is what the requester reads (what
/// happened, what to do, who was told); [`RequestError::cause`] is what the operator's log gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("powerpole could not read your Slack profile (your e-mail address names your database account), so nothing was filed and no approver was asked; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Profile(NotifyError),
    #[error("{0}")]
    Username(UsernameError),
    /// The requester has no identity a bastion can carry under `[bastion] identity_source`:
    /// refused when they ask, before anything is stored or posted.
    #[error("{}", .refusal.for_requester(.email))]
    NoIdentity { email: String, identity_source: crate::config::IdentitySource, refusal: crate::bastion::identity::IdentityRefusal },
    #[error("your request could not be saved, so nothing was filed and no approver was asked; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Store(StoreError),
    #[error("you already have session {session} on `{target}` ({state}), and one database account serves one session at a time; end it with `/powerpole end {session}` (or extend it with `/powerpole extend {session} <duration>`), then ask again")]
    AccountInUse { session: SessionId, target: String, state: String },
    #[error("your e-mail address gives the database user name `{0}`, which belongs to another person; ask a Slack admin or the platform team to change one of the two addresses")]
    NameTaken(String),
    #[error("the approval card could not be posted in <#{channel}>, so the request was withdrawn and no approver was asked; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Card { channel: String, error: NotifyError },
    /// Refused by the target's eligibility rule (`crate::policy`), before anything was stored.
    #[error("{0}")]
    NotEligible(String),
    #[error("who may ask for this could not be read from Slack, so nothing was filed; try again in a minute")]
    PolicyUnreadable,
}

impl RequestError {
    /// The technical cause, for the operator's log (with the request id); the person reads
    /// the `Display` form instead.
    pub fn cause(&self) -> String {
        match self {
            RequestError::Profile(e) => format!("users.info failed: {e}"),
            RequestError::Store(e) => format!("the store failed: {e}"),
            RequestError::Card { channel, error } => format!("the approval card could not be posted in {channel}: {error}"),
            RequestError::NoIdentity { identity_source, refusal, .. } => refusal.cause(*identity_source),
            other => other.to_string(),
        }
    }
}

impl Workflow {
    /// Checks a request against the configuration without any I/O (see [`check_request`]).
    pub fn check_request(&self, target: &str, role: &str, duration: &str, reason: &str) -> Result<RequestDraft, RequestProblem> {
        let draft = check_request(&self.config, target, role, duration, reason)?;
        // The role's own maximum (`[targets.NAME.policy.ROLE] max_duration`); break-glass has its own.
        super::policy::check_role_max(&self.config, draft)
    }

    /// Files a checked request as session `id`: reads the requester's e-mail and time zone from
    /// Slack, stores the session with its `requested` audit event, and posts the approval card in
    /// the target's approvals channel. If the card cannot be posted the request is withdrawn
    /// (audited), so no request waits where no approver can see it.
    pub async fn request(&self, notifier: &dyn Notifier, id: SessionId, user: &SlackUserId, draft: RequestDraft) -> Result<Session, RequestError> {
        let Some(target) = self.config.target(&draft.target) else {
            return Err(RequestError::Store(StoreError::Corrupt(format!("target {} vanished from the configuration", draft.target))));
        };
        // Eligibility first: someone who may not ask is refused before anything is stored.
        let verdict = self.policy_verdict(notifier, user, &draft).await?;
        // A replay of this very request (its follow-up ran before, up to the store write, and its
        // process died) finds its own session live: that one is not "another session".
        let requester = self.identify_filing(notifier, user, &draft.target, Some(&id)).await.inspect_err(|e| {
            if matches!(e, RequestError::NoIdentity { .. }) {
                tracing::error!(session = %id, requester = %user, cause = %e.cause(), "request refused before any card: the requester has no identity a bastion can carry");
            }
        })?;
        let now = self.clock.now();
        let mut session = Session::new(id, requester, draft.target, draft.role, draft.duration, draft.reason, now, self.config.scheduler.pending_timeout);
        session.launch_on_request = target.launch_on_request;
        session.reminders.next_at = Some(super::remind::first_reminder(&self.config, now));
        let detail = format!("{} on {} for {}: {}", session.role, session.target, session.duration, session.reason);
        let event = AuditEvent::ok(AuditKind::Requested, Actor::User(user.clone()), now, detail);
        let session = match self.store.create(&session, &event).await {
            Ok(()) => session,
            // Tried again after an answer that never came: the first attempt stored it. Carry on
            // from what is stored (a card is posted once).
            Err(StoreError::AlreadyExists(_)) => match self.store.get(&session.id).await.map_err(RequestError::Store)? {
                Some(stored) if stored.requester.slack_id == *user => {
                    if stored.slack.approval_ts.is_some() || stored.state != State::Pending {
                        return Ok(stored);
                    }
                    stored
                }
                _ => return Err(RequestError::Store(StoreError::AlreadyExists(session.id))),
            },
            Err(e) => return Err(RequestError::Store(e)),
        };
        if session.launch_on_request {
            // The early launch is due now: the bastion boots while approvers read the card.
            self.wake.notify_one();
        }
        // A rule that approves it without a person: approved now (a conditional write), and the
        // card below announces it as auto-approved, naming the rule.
        let session = self.auto_approve(session, &verdict).await;

        match notifier.post(&target.approvals_channel, &messages::approval_card(&session, target)).await {
            // The card is out: remembering where it is waits out a briefly unavailable store, so a
            // retried request does not post a second card.
            Ok(card) => self.patiently("remember the card", || self.remember_card(&session.id, card.clone()), || async {}).await.map_err(|e| match e {
                ActionError::Store(s) => RequestError::Store(s),
                other => RequestError::Store(StoreError::Unavailable(other.to_string())),
            }),
            Err(error) => {
                let reason = format!("the approval card could not be posted: {error}");
                let withdrawn = self
                    .change(&session.id, |s| {
                        let mut next = s.clone();
                        next.apply(Event::Cancelled).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                        next.decision_reason = Some(reason.clone());
                        if next.state.is_closed() {
                            next.closed_at = Some(now);
                        }
                        Ok((next, Some(AuditEvent::failed(AuditKind::Cancelled, Actor::System, now, reason.clone()))))
                    })
                    .await;
                if let Err(e) = withdrawn {
                    tracing::error!(session = %session.id, error = %e, "a request whose card failed could not be withdrawn; the pending timeout will close it");
                }
                Err(RequestError::Card { channel: target.approvals_channel.clone(), error })
            }
        }
    }

    /// The requester as a session records them: their e-mail and time zone from Slack, and the
    /// database user name it gives, reserved for them; refused while they hold a live session
    /// on `target` (see [`Workflow::one_account_per_session`]).
    pub(super) async fn identify(&self, notifier: &dyn Notifier, user: &SlackUserId, target: &TargetName) -> Result<Requester, RequestError> {
        self.identify_filing(notifier, user, target, None).await
    }

    /// As [`Workflow::identify`], for filing session `filing`, which may exist already.
    async fn identify_filing(&self, notifier: &dyn Notifier, user: &SlackUserId, target: &TargetName, filing: Option<&SessionId>) -> Result<Requester, RequestError> {
        let profile = notifier.profile(user).await.map_err(RequestError::Profile)?;
        let email = profile.email.ok_or(RequestError::Username(UsernameError::Empty))?;
        // Whether a bastion could ever let them in, before anything is stored or posted.
        let source = self.config.bastion.identity_source;
        if let Err(refusal) = crate::bastion::identity::check(source, &self.config.access.usernames.home_domains, user, &email) {
            return Err(RequestError::NoIdentity { email, identity_source: source, refusal });
        }
        let db_user = DbUsername::from_slack_email(&email, &self.config.access.usernames).map_err(RequestError::Username)?;
        // The name first: another person holding it must hear that, not about "their" session.
        self.store.reserve_db_user(&db_user, user).await.map_err(|e| match e {
            StoreError::NameTaken(name) => RequestError::NameTaken(name),
            other => RequestError::Store(other),
        })?;
        self.one_account_per_session(&db_user, target, filing).await?;
        Ok(Requester { slack_id: user.clone(), email, db_user, tz: profile.tz })
    }

    /// One database account per live session: a person's second session on a target would share
    /// (and reset, then drop) the account of the first wherever the account host is a pattern,
    /// so it is refused, naming the session that holds the account. Refusing rather than making
    /// a per-session name keeps one stable name per person in the database's own audit logs.
    async fn one_account_per_session(&self, db_user: &DbUsername, target: &crate::domain::TargetName, filing: Option<&SessionId>) -> Result<(), RequestError> {
        let live = self.store.live().await.map_err(RequestError::Store)?;
        match live.into_iter().find(|s| &s.requester.db_user == db_user && &s.target == target && Some(&s.id) != filing) {
            Some(holder) => Err(RequestError::AccountInUse { session: holder.id.clone(), target: target.to_string(), state: holder.state.name().to_string() }),
            None => Ok(()),
        }
    }

    /// Stores where the approval card is, so later steps can update it.
    async fn remember_card(&self, id: &SessionId, card: Posted) -> Result<Session, ActionError> {
        self.change(id, |s| {
            let mut next = s.clone();
            next.slack.approval_channel = Some(card.channel.clone());
            next.slack.approval_ts = Some(card.ts.clone());
            Ok((next, None))
        })
        .await
    }

    /// The user's sessions, newest first.
    pub async fn list(&self, user: &SlackUserId) -> Result<Vec<Session>, StoreError> {
        self.store.by_requester(user, 20).await
    }

    /// The requester ends `id`: a request not yet running is withdrawn; a running session is torn
    /// down (the sweeper is woken).
    pub async fn end(&self, notifier: &dyn Notifier, user: &SlackUserId, id: &SessionId) -> Result<Done, ActionError> {
        let (_, target) = self.session(id).await?;
        let now = self.clock.now();
        let stored = self
            .change(id, |s| {
                if &s.requester.slack_id != user {
                    return Err(ActionError::NotYours(s.id.clone()));
                }
                let mut next = s.clone();
                let actor = Actor::User(user.clone());
                let event = match s.state {
                    State::Pending | State::Approved => {
                        next.apply(Event::Cancelled).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                        if next.state.is_closed() {
                            next.closed_at = Some(now);
                        }
                        AuditEvent::ok(AuditKind::Cancelled, actor, now, "withdrawn by the requester")
                    }
                    State::Provisioning | State::Active => {
                        next.apply(Event::EndedByRequester).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                        AuditEvent::ok(AuditKind::Ended, actor, now, "ended by the requester")
                    }
                    _ => return Err(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "it has already ended" }),
                };
                Ok((next, Some(event)))
            })
            .await?;
        if matches!(stored.state, State::TearingDown(_)) {
            self.wake.notify_one();
        }
        let mut done = Done::new(stored);
        if let Some(card) = stored_card(&done.session) {
            let update = notifier.update(&card, &messages::approval_card(&done.session, target)).await;
            done.note(update);
        }
        Ok(done)
    }

    /// The requester of active session `id` asks the approvers for `by` more; the total must stay
    /// within the target's maximum. Posts the extension card in the approvals channel.
    pub async fn extend_request(&self, notifier: &dyn Notifier, user: &SlackUserId, id: &SessionId, by: AccessDuration) -> Result<Done, ActionError> {
        let (_, target) = self.session(id).await?;
        let now = self.clock.now();
        let max = target.max_duration.min(self.config.access.max_duration);
        let stored = self
            .change(id, |s| {
                if &s.requester.slack_id != user {
                    return Err(ActionError::NotYours(s.id.clone()));
                }
                if s.state != State::Active {
                    return Err(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "only an active session can be extended" });
                }
                // An extension whose card never made it to Slack (or was never recorded) has no
                // button to decide it: after a minute a new request replaces it.
                let unposted = s.extension.as_ref().is_some_and(|e| e.card_ts.is_none() && now - e.requested_at >= chrono::Duration::minutes(1));
                if s.extension.is_some() && !unposted {
                    return Err(ActionError::AlreadyDecided(format!("an extension of {} is already waiting for the approvers", s.id)));
                }
                check_total(s, by, max, target)?;
                let mut next = s.clone();
                next.extension = Some(PendingExtension { by, requested_at: now, card_ts: None });
                Ok((next, Some(AuditEvent::ok(AuditKind::ExtensionRequested, Actor::User(user.clone()), now, format!("asked for {by} more")))))
            })
            .await?;
        let asked_at = now;
        let card = match notifier.post(&target.approvals_channel, &messages::extension_card(&stored, by, None)).await {
            Ok(card) => card,
            Err(error) => {
                // No approver can see it: withdraw it (if it is still this one), so it does not
                // wait forever and the requester can ask again.
                let withdrawn = self
                    .change(id, |s| {
                        if s.extension.as_ref().is_none_or(|e| e.requested_at != asked_at) {
                            return Err(ActionError::AlreadyDecided(format!("the extension of {} was already decided", s.id)));
                        }
                        // Ended meanwhile (expired, ended, revoked): nothing is left to extend, and
                        // the trail ends with the teardown (simulator seed 5928).
                        if s.state != State::Active && crate::sim::fixes::on(crate::sim::fixes::Fix::WithdrawOnlyActive) {
                            return Err(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "the session ended before its extension was withdrawn" });
                        }
                        let mut next = s.clone();
                        next.extension = None;
                        let why = format!("the extension card could not be posted: {error}");
                        Ok((next, Some(AuditEvent::failed(AuditKind::ExtensionDenied, Actor::System, now, why))))
                    })
                    .await;
                if let Err(e) = withdrawn {
                    tracing::warn!(session = %id, error = %e, "an extension whose card failed was not withdrawn");
                }
                return Err(ActionError::Slack(error));
            }
        };
        let stored = self
            .change(id, |s| {
                let mut next = s.clone();
                // Only the extension this card was posted for gets it.
                match next.extension.as_mut() {
                    Some(ext) if ext.requested_at == asked_at => ext.card_ts = Some(card.ts.clone()),
                    _ => return Err(ActionError::AlreadyDecided(format!("the extension of {} was already decided", s.id))),
                }
                Ok((next, None))
            })
            .await?;
        Ok(Done::new(stored))
    }
}

/// Checks a request against `config`: a configured target, a role, a duration within the
/// target's (and the global) maximum, and a reason.
pub fn check_request(config: &Config, target: &str, role: &str, duration: &str, reason: &str) -> Result<RequestDraft, RequestProblem> {
    let known = || config.targets.keys().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
    let found = TargetName::parse(target)
        .ok()
        .and_then(|name| config.target(&name))
        .ok_or_else(|| RequestProblem::UnknownTarget { given: target.trim().to_string(), known: known() })?;
    let role: Role = role.parse().map_err(|_| RequestProblem::UnknownRole(role.trim().to_string()))?;
    let duration: AccessDuration = duration.parse().map_err(RequestProblem::Duration)?;
    let max = found.max_duration.min(config.access.max_duration);
    if duration > max {
        return Err(RequestProblem::TooLong { target: found.name.clone(), max });
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(RequestProblem::NoReason);
    }
    if reason.chars().count() > MAX_REASON {
        return Err(RequestProblem::ReasonTooLong(reason.chars().count()));
    }
    Ok(RequestDraft { target: found.name.clone(), role, duration, reason: reason.to_string() })
}

fn check_total(s: &Session, by: AccessDuration, max: AccessDuration, target: &TargetConfig) -> Result<(), ActionError> {
    let total = s.duration.plus(by).map_err(|e| ActionError::TooLong(e.to_string()))?;
    if total > max {
        let room = max.as_secs().saturating_sub(s.duration.as_secs());
        let hint = match AccessDuration::from_secs(room) {
            Ok(room) => format!("at most {room} more"),
            Err(_) => "no more time".to_string(),
        };
        return Err(ActionError::TooLong(format!(
            "{} has {} and `{}` allows {max} in all: you can ask for {hint}",
            s.id, s.duration, target.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::messages::fixtures::config;

    #[test]
    fn a_valid_request_passes() {
        let draft = check_request(&config(), "billing", "read", "90m", "  INC-1 fix  ").unwrap();
        assert_eq!(draft.role, Role::Read);
        assert_eq!(draft.duration.to_string(), "1h30m");
        assert_eq!(draft.reason, "INC-1 fix");
    }

    #[test]
    fn each_problem_is_named_exactly() {
        let c = config();
        let problem = |t: &str, r: &str, d: &str, why: &str| check_request(&c, t, r, d, why).unwrap_err().to_string();
        assert_eq!(problem("payments", "READ", "1h", "x"), "there is no target `payments`; choose one of: `billing`");
        assert_eq!(problem("billing", "ADMIN", "1h", "x"), "unknown role `ADMIN`: use READ, DML or DDL");
        assert!(problem("billing", "READ", "soon", "x").starts_with("`soon` is not a duration"));
        assert_eq!(problem("billing", "READ", "5h", "x"), "`billing` allows at most 4h per session; ask for 4h or less");
        assert_eq!(problem("billing", "READ", "1h", "  "), "give a reason: the ticket and what you need to do");
        assert!(problem("billing", "READ", "1h", &"x".repeat(501)).contains("501 characters"));
    }
}
