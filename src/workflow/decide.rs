//! The decision steps: approve, deny, revoke, and deciding an extension.
//!
//! Every decision is a conditional store update with its audit event: of two clicks that read the
//! same version, exactly one is written; the other reads again and decides again on what is now
//! stored (a second approver's click becomes the second approval, a repeated click finds the
//! decision already made). Nothing here can make a second decision.

use super::Workflow;
use crate::config::TargetConfig;
use crate::domain::{AccessDuration, Actor, Approval, AuditEvent, AuditKind, Event, Outcome, Session, SessionId, SlackUserId, State};
use crate::notify::messages::{self, approval::ExtensionDecision};
use crate::notify::{Notifier, NotifyError, Posted};
use crate::store::StoreError;

/// How often a decision is re-read and re-made after losing a race before giving up.
const MAX_TRIES: usize = 8;

/// Why an action on a session was not taken. Each is a sentence for the person who acted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("there is no session {0}; see `/powerpole list`")]
    NotFound(SessionId),
    #[error("{0} is not your session; only the person who asked for it can do that")]
    NotYours(SessionId),
    #[error("only the approvers of `{0}` can decide on its sessions")]
    NotAnApprover(String),
    /// The role has an approval rule of its own (`[targets.NAME.policy.ROLE]`).
    #[error("{role} on `{target}` is decided by {who} only")]
    NotRoleApprover { target: String, role: crate::domain::Role, who: String },
    #[error("you asked for this access yourself: another approver has to decide")]
    OwnRequest,
    #[error("{0}")]
    AlreadyDecided(String),
    #[error("you already approved {id}; it needs {remaining} more approval(s) from other approvers")]
    AlreadyApproved { id: SessionId, remaining: usize },
    #[error("{id} is {state}: {what}")]
    WrongState { id: SessionId, state: State, what: &'static str },
    #[error("{0}")]
    TooLong(String),
    #[error("the target `{0}` of this session is no longer configured")]
    UnknownTarget(String),
    #[error("Slack could not tell powerpole who may decide right now, so nothing was changed; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Directory(NotifyError),
    #[error("powerpole's request store did not answer, so nothing was changed; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Store(StoreError),
    #[error("{0} kept changing while this was decided; try again")]
    Busy(SessionId),
    #[error("Slack did not take powerpole's message just now, so it was withdrawn; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.")]
    Slack(NotifyError),
}

impl ActionError {
    /// The technical cause, for the operator's log; the person reads the `Display` form.
    pub fn cause(&self) -> Option<String> {
        match self {
            ActionError::Directory(e) | ActionError::Slack(e) => Some(e.to_string()),
            ActionError::Store(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        ActionError::Store(e)
    }
}

/// A stored change, and the messages about it that Slack did not take (the change stands; the
/// caller logs these and tells the person who acted).
#[derive(Debug, Clone)]
pub struct Done {
    pub session: Session,
    pub undelivered: Vec<NotifyError>,
}

impl Done {
    pub(crate) fn new(session: Session) -> Done {
        Done { session, undelivered: Vec::new() }
    }

    pub(crate) fn note<T>(&mut self, result: Result<T, NotifyError>) {
        if let Err(e) = result {
            self.undelivered.push(e);
        }
    }
}

/// What a decision on a pending request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// "pp-... was already approved by <@U..>", for the clicker who lost the race.
pub fn already_decided(s: &Session) -> String {
    let by = |s: &Session| s.approvals.iter().map(|a| format!("<@{}>", a.approver)).collect::<Vec<_>>().join(" and ");
    let what = match s.state {
        State::Closed(Outcome::Denied) | State::TearingDown(Outcome::Denied) => format!("denied by {}", s.denied_by.as_ref().map(|u| format!("<@{u}>")).unwrap_or_else(|| "an approver".into())),
        State::Closed(Outcome::PendingTimedOut) | State::TearingDown(Outcome::PendingTimedOut) => "closed: nobody decided in time".into(),
        State::Closed(Outcome::Cancelled) | State::TearingDown(Outcome::Cancelled) if s.approvals.is_empty() => "withdrawn by the requester".into(),
        _ if s.approvals.is_empty() => format!("closed ({})", s.state),
        _ => format!("approved by {}", by(s)),
    };
    format!("{} was already {what}", s.id)
}

impl Workflow {
    /// Reads the session, lets `decide` make the next version and its audit event, and writes it
    /// conditioned on what was read; on a lost race, reads again and decides again.
    pub(crate) async fn change<F>(&self, id: &SessionId, mut decide: F) -> Result<Session, ActionError>
    where
        F: FnMut(&Session) -> Result<(Session, Option<AuditEvent>), ActionError>,
    {
        for _ in 0..MAX_TRIES {
            let current = self.store.get(id).await?.ok_or_else(|| ActionError::NotFound(id.clone()))?;
            let (next, event) = decide(&current)?;
            match self.store.update(current.state, &next, event.as_ref()).await {
                Ok(stored) => return Ok(stored),
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ActionError::Busy(id.clone()))
    }

    pub(crate) async fn session(&self, id: &SessionId) -> Result<(Session, &TargetConfig), ActionError> {
        let session = self.store.get(id).await?.ok_or_else(|| ActionError::NotFound(id.clone()))?;
        let target = self.config.target(&session.target).ok_or_else(|| ActionError::UnknownTarget(session.target.to_string()))?;
        Ok((session, target))
    }

    /// Whether `user` may decide for `target`: listed by id, or a member of its user group.
    pub async fn is_approver(&self, notifier: &dyn Notifier, target: &TargetConfig, user: &SlackUserId) -> Result<bool, ActionError> {
        if target.approvers.users.contains(user) {
            return Ok(true);
        }
        match &target.approvers.group {
            Some(group) => Ok(notifier.group_members(group).await.map_err(ActionError::Directory)?.contains(user)),
            None => Ok(false),
        }
    }

    async fn check_approver(&self, notifier: &dyn Notifier, session: &Session, target: &TargetConfig, user: &SlackUserId) -> Result<(), ActionError> {
        if &session.requester.slack_id == user {
            return Err(ActionError::OwnRequest);
        }
        // The role's approvers when it has an approval rule, else the target's.
        if !crate::policy::is_role_approver(notifier, target, session.role, user).await.map_err(ActionError::Directory)? {
            if target.policy.roles.get(&session.role).is_none_or(|r| r.approvers.is_none()) {
                return Err(ActionError::NotAnApprover(target.name.to_string()));
            }
            let who = crate::policy::approvers_of(target, session.role).mentions();
            return Err(ActionError::NotRoleApprover { target: target.name.to_string(), role: session.role, who });
        }
        Ok(())
    }

    /// `approver` approves pending request `id`. The approval that reaches the target's
    /// `required_approvals` (distinct approvers) makes it `approved` and wakes the sweeper.
    /// `card` is the approval card that was clicked (else the stored one), updated in place.
    pub async fn approve(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, card: Option<Posted>) -> Result<Done, ActionError> {
        self.approve_for(notifier, approver, id, card, None).await
    }

    /// [`Workflow::approve`] for the Slack request `request` (the click): the approval keeps its
    /// id, and when that request is replayed after a crash (`slack::journal`) and finds its own
    /// approval already stored, the card and the requester are told (what the crash may have cut
    /// off) instead of the approver being refused.
    pub async fn approve_for(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, card: Option<Posted>, request: Option<&str>) -> Result<Done, ActionError> {
        let (session, target) = self.session(id).await?;
        if request.is_some() && session.approvals.iter().any(|a| &a.approver == approver && a.request.as_deref() == request) {
            tracing::info!(session = %id, "this click's approval was stored before a restart; telling the card and the requester");
            return Ok(self.tell_decision(notifier, session, target, approver, card).await);
        }
        self.check_approver(notifier, &session, target, approver).await?;
        let need = crate::policy::approvals_needed(target, session.role);
        let now = self.clock.now();
        let stored = self
            .change(id, |s| {
                if s.state != State::Pending {
                    return Err(ActionError::AlreadyDecided(already_decided(s)));
                }
                if s.approvals.iter().any(|a| &a.approver == approver) {
                    return Err(ActionError::AlreadyApproved { id: s.id.clone(), remaining: need.saturating_sub(s.approvals.len()) });
                }
                let mut next = s.clone();
                next.approvals.push(Approval { approver: approver.clone(), at: now, request: request.map(str::to_string) });
                let have = next.approvals.len();
                let actor = Actor::User(approver.clone());
                let event = if have >= need {
                    next.apply(Event::Approved).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                    next.approved_at = Some(now);
                    AuditEvent::ok(AuditKind::Approved, actor, now, format!("approval {have} of {need}: approved"))
                } else {
                    next.apply(Event::ApprovalRecorded).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                    AuditEvent::ok(AuditKind::ApprovalRecorded, actor, now, format!("approval {have} of {need}"))
                };
                Ok((next, Some(event)))
            })
            .await?;
        if stored.state == State::Approved {
            self.wake.notify_one();
        }
        Ok(self.tell_decision(notifier, stored, target, approver, card).await)
    }

    /// `approver` denies pending request `id` with `reason`.
    pub async fn deny(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, reason: &str, card: Option<Posted>) -> Result<Done, ActionError> {
        self.deny_for(notifier, approver, id, reason, card, None).await
    }

    /// [`Workflow::deny`] for the Slack request `request`, recognised when replayed as
    /// [`Workflow::approve_for`] recognises its approval.
    pub async fn deny_for(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, reason: &str, card: Option<Posted>, request: Option<&str>) -> Result<Done, ActionError> {
        let (session, target) = self.session(id).await?;
        if request.is_some() && session.denied_by.as_ref() == Some(approver) && session.denied_request.as_deref() == request {
            tracing::info!(session = %id, "this denial was stored before a restart; telling the card and the requester");
            return Ok(self.tell_decision(notifier, session, target, approver, card).await);
        }
        self.check_approver(notifier, &session, target, approver).await?;
        let now = self.clock.now();
        let stored = self
            .change(id, |s| {
                if s.state != State::Pending {
                    return Err(ActionError::AlreadyDecided(already_decided(s)));
                }
                let mut next = s.clone();
                next.apply(Event::Denied).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                next.denied_by = Some(approver.clone());
                next.denied_request = request.map(str::to_string);
                next.decision_reason = Some(reason.trim().to_string());
                if next.state.is_closed() {
                    next.closed_at = Some(now);
                }
                Ok((next, Some(AuditEvent::ok(AuditKind::Denied, Actor::User(approver.clone()), now, reason.trim()))))
            })
            .await?;
        if matches!(stored.state, State::TearingDown(_)) {
            // Launch on request: the bastion launched while the request waited goes now.
            self.wake.notify_one();
        }
        Ok(self.tell_decision(notifier, stored, target, approver, card).await)
    }

    /// Updates the card in place and DMs the requester about a decision by `by`.
    async fn tell_decision(&self, notifier: &dyn Notifier, stored: Session, target: &TargetConfig, by: &SlackUserId, card: Option<Posted>) -> Done {
        let mut done = Done::new(stored);
        let card = card.or_else(|| stored_card(&done.session));
        if let Some(card) = card {
            let update = notifier.update(&card, &messages::approval_card(&done.session, target)).await;
            done.note(update);
        }
        let dm = notifier.dm(&done.session.requester.slack_id, &messages::decision_dm(&done.session, target, by)).await;
        done.note(dm);
        done
    }

    /// `approver` revokes session `id`: a pending request is denied, an approved one closed, a
    /// running one torn down (the sweeper is woken). Approvers only.
    pub async fn revoke(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, reason: &str) -> Result<Done, ActionError> {
        let (_, target) = self.session(id).await?;
        if !self.is_approver(notifier, target, approver).await? {
            return Err(ActionError::NotAnApprover(target.name.to_string()));
        }
        let now = self.clock.now();
        let reason = if reason.trim().is_empty() { "revoked by an approver".to_string() } else { reason.trim().to_string() };
        let stored = self
            .change(id, |s| {
                let mut next = s.clone();
                let actor = Actor::User(approver.clone());
                let kind = match s.state {
                    State::Pending => {
                        next.apply(Event::Denied).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                        next.denied_by = Some(approver.clone());
                        AuditKind::Denied
                    }
                    State::Approved | State::Provisioning | State::Active => {
                        next.apply(Event::Revoked).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                        AuditKind::Revoked
                    }
                    _ => return Err(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "there is nothing left to revoke" }),
                };
                if next.state.is_closed() {
                    next.closed_at = Some(now);
                }
                next.decision_reason = Some(reason.clone());
                Ok((next, Some(AuditEvent::ok(kind, actor, now, reason.clone()))))
            })
            .await?;
        if matches!(stored.state, State::TearingDown(_)) {
            self.wake.notify_one();
        }
        Ok(self.tell_decision(notifier, stored, target, approver, None).await)
    }

    /// `approver` approves or denies the extension the requester of `id` asked for. `card` is the
    /// extension card that was clicked.
    pub async fn decide_extension(&self, notifier: &dyn Notifier, approver: &SlackUserId, id: &SessionId, approve: bool, card: Option<Posted>) -> Result<Done, ActionError> {
        let (session, target) = self.session(id).await?;
        self.check_approver(notifier, &session, target, approver).await?;
        let now = self.clock.now();
        let lead = self.config.scheduler.warning_lead;
        let mut asked: Option<AccessDuration> = None;
        let stored = self
            .change(id, |s| {
                let Some(extension) = &s.extension else {
                    return Err(ActionError::AlreadyDecided(format!("the extension of {} was already decided", s.id)));
                };
                // A card decides only the extension it was posted for: an older card (of an
                // extension decided since) must not approve the one asked for now.
                if let Some(clicked) = &card {
                    if extension.card_ts.as_deref() != Some(clicked.ts.as_str()) {
                        return Err(ActionError::AlreadyDecided(format!(
                            "this card is for an earlier extension of {}; decide on the newest card",
                            s.id
                        )));
                    }
                }
                if s.state != State::Active {
                    return Err(ActionError::WrongState { id: s.id.clone(), state: s.state, what: "only an active session can be extended" });
                }
                let by = extension.by;
                asked = Some(by);
                let mut next = s.clone();
                let actor = Actor::User(approver.clone());
                let event = if approve {
                    next.duration = s.duration.plus(by).map_err(|e| ActionError::TooLong(e.to_string()))?;
                    next.extend(by, lead, now);
                    next.apply(Event::Extended).map_err(|e| ActionError::AlreadyDecided(e.to_string()))?;
                    AuditEvent::ok(AuditKind::Extended, actor, now, format!("extended by {by}"))
                } else {
                    next.extension = None;
                    AuditEvent::ok(AuditKind::ExtensionDenied, actor, now, format!("extension by {by} denied"))
                };
                Ok((next, Some(event)))
            })
            .await?;
        let by = asked.unwrap_or(stored.duration);
        let decision = ExtensionDecision { by: approver.clone(), approved: approve, at: now };
        let mut done = Done::new(stored);
        let card = card.or_else(|| {
            let ts = session.extension.as_ref().and_then(|e| e.card_ts.clone())?;
            Some(Posted { channel: target.approvals_channel.clone(), ts })
        });
        if let Some(card) = card {
            let update = notifier.update(&card, &messages::extension_card(&done.session, by, Some(&decision))).await;
            done.note(update);
        }
        let dm = notifier.dm(&done.session.requester.slack_id, &messages::extension_decision_dm(&done.session, &decision, by)).await;
        done.note(dm);
        Ok(done)
    }
}

/// The approval card as stored on the session, if it was posted.
pub(crate) fn stored_card(s: &Session) -> Option<Posted> {
    Some(Posted { channel: s.slack.approval_channel.clone()?, ts: s.slack.approval_ts.clone()? })
}

