//! A session: one request and everything it leads to, as the store keeps it, plus the pure rule
//! for when the scheduler must next look at it ([`Session::next_action_at`]).
//!
//! The store persists exactly this; the workflow changes it only through
//! [`Session::apply`], which runs the transition table and so can never reach an illegal state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{transition, AccessDuration, DbUsername, Event, Role, SessionId, SlackUserId, State, TargetName, TransitionError};

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub slack_id: SlackUserId,
    /// Their Slack profile e-mail (the source of `db_user`).
    pub email: String,
    pub db_user: DbUsername,
    /// IANA time zone from their Slack profile, for times in messages.
    pub tz: Option<String>,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: SlackUserId,
    pub at: DateTime<Utc>,
    /// The id of the Slack request (the click) that made it, so a replay of that request after a
    /// crash recognises its own approval and finishes telling people instead of refusing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// Where powerpole's Slack messages for this session are, so they can be updated in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackRefs {
    pub approval_channel: Option<String>,
    pub approval_ts: Option<String>,
    pub handover_channel: Option<String>,
    pub handover_ts: Option<String>,
}

/// An extension the requester asked for and approvers have not decided yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExtension {
    pub by: AccessDuration,
    pub requested_at: DateTime<Utc>,
    pub card_ts: Option<String>,
}

/// An outside system a step depends on, named in the stuck-teardown alert and on `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// The target's MySQL server (accounts).
    Database,
    /// EC2 and Systems Manager (bastions).
    Ec2,
    /// The Slack Web API (messages).
    Slack,
    /// The DynamoDB request store.
    Store,
}

impl Dependency {
    pub const ALL: [Dependency; 4] = [Dependency::Database, Dependency::Ec2, Dependency::Slack, Dependency::Store];

    /// The name `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::Ec2 => "ec2",
            Dependency::Slack => "slack",
            Dependency::Store => "store",
        }
    }

    /// What a person reading an alert knows it as.
    pub fn describe(self) -> &'static str {
        match self {
            Dependency::Database => "the database (MySQL)",
            Dependency::Ec2 => "EC2 (the bastion)",
            Dependency::Slack => "Slack",
            Dependency::Store => "the request store (DynamoDB)",
        }
    }
}

/// Progress of a teardown that has not finished yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownProgress {
    pub attempts: u32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The system the last failed attempt was stuck on.
    #[serde(default)]
    pub last_dependency: Option<Dependency>,
    /// Set once the "stuck teardown" alert has been posted.
    pub alerted: bool,
}

/// Reminders of a request nobody has decided (see `workflow::remind`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminders {
    /// When approvers are next reminded; `None`: never (e.g. a session stored before reminders).
    pub next_at: Option<DateTime<Utc>>,
    pub sent: u32,
    /// Set once the escalation group has been mentioned.
    pub escalated: bool,
}

/// A Slack notice a session owes someone. Teardown records its notices here (the outbox) in the
/// same conditional write that closes the session, so revocation never waits for Slack;
/// `workflow::outbox` delivers each one, claimed, with retry and backoff, and marks it sent once
/// Slack accepted it. Messages are built at delivery from the session, so no message body (and
/// no password) is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeKind {
    /// The requester's "your access has ended" DM.
    Ended,
    /// The hand-over DM, edited so that it no longer shows the password.
    RedactHandover,
    /// Any other hand-over DM of the session, deleted: one Slack took although its post
    /// answered with an error, or one a worker posted just before it stopped. Nothing recorded
    /// them, so they are looked up in the requester's DM history.
    RemoveStrayHandovers,
    /// The approval card, updated to show how the session ended.
    ApprovalCard,
    /// An extension card nobody decided, closed without its buttons.
    ExtensionCard,
    /// The session's summary in the security channel.
    SecuritySummary,
    /// The approvals channel told that the account was kept locked instead of dropped.
    KeptLocked { reason: String },
    /// An approvals channel told that the teardown keeps failing.
    StuckTeardown { channel: String, failing_for_secs: u64 },
}

/// One notice in a session's outbox and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    #[serde(flatten)]
    pub kind: NoticeKind,
    /// When the next delivery attempt is due.
    pub due_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When Slack accepted it; `None` while it is still owed.
    pub sent_at: Option<DateTime<Utc>>,
}

impl Notice {
    pub fn new(kind: NoticeKind, now: DateTime<Utc>) -> Notice {
        Notice { kind, due_at: now, attempts: 0, last_error: None, sent_at: None }
    }
}

/// A break-glass session: taken at once by a member of the target's on-call group, and reviewed
/// afterwards (see `workflow::breakglass`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// The on-call user group whose membership allowed it (empty when a listed user id did).
    pub oncall_group: String,
    /// How the person qualified, as the alarms say it: "a member of <!subteam^S...>" or "listed
    /// by user id in targets.NAME.oncall_users" (absent in sessions stored before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified: Option<String>,
    /// Where the review card is (the security channel, else the approvals channel).
    pub review_channel: Option<String>,
    pub review_ts: Option<String>,
    /// Unreviewed at this time, an alert is raised (and this moves on by `review_within`).
    pub review_due_at: DateTime<Utc>,
    /// Alerts raised because nobody reviewed it.
    pub alerts: u32,
    pub review: Option<Review>,
}

/// Someone other than the person who broke the glass looked at what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub by: SlackUserId,
    pub at: DateTime<Utc>,
    /// `Some(reason)`: flagged for the security team, not just acknowledged.
    pub flag: Option<String>,
}

/// Everything powerpole knows about one request. No password or token is ever part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub requester: Requester,
    pub target: TargetName,
    pub role: Role,
    /// The approved access time; extensions add to it.
    pub duration: AccessDuration,
    pub reason: String,
    pub state: State,
    /// Bumped by every stored change; every change is conditioned on the version read.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub approvals: Vec<Approval>,
    pub denied_by: Option<SlackUserId>,
    /// The id of the Slack request that denied it (see [`Approval::request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_request: Option<String>,
    /// The approver's reason for a denial or a revocation, or the cause of a failure.
    pub decision_reason: Option<String>,
    pub instance_id: Option<String>,
    pub private_ip: Option<String>,
    /// The host part of the database account, once created.
    pub account_host: Option<String>,
    pub pending_expires_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub warn_at: Option<DateTime<Utc>>,
    pub warned: bool,
    pub extension: Option<PendingExtension>,
    pub teardown: TeardownProgress,
    pub slack: SlackRefs,
    /// A worker that claimed this session's due work holds it until then (see [`Session::claim`]).
    pub lease_until: Option<DateTime<Utc>>,
    /// The latest time a provisioning worker may have launched this session's instance (the end of
    /// its last claim). A teardown that knows no instance looks it up by tag until that lookup has
    /// had time to see a launch made before then.
    #[serde(default)]
    pub launch_window_end: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Reminders while pending; absent in sessions stored before reminders existed.
    #[serde(default)]
    pub reminders: Reminders,
    /// Launch on request (the target's `launch_on_request`): the bastion is launched while the
    /// request waits, without the identity tag that lets anyone enter it; approval sets the tag.
    /// Such a session may hold an instance before approval, so every way it ends goes through
    /// `tearing down`.
    #[serde(default)]
    pub launch_on_request: bool,
    /// Slack notices owed, and sent ones (see [`Notice`]); absent in sessions stored before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<Notice>,
    /// Set for break-glass sessions only.
    #[serde(default)]
    pub breakglass: Option<BreakGlass>,
    /// Set for sessions approved without a person: the policy rule that approved them
    /// (`targets.billing.policy.READ`, see [`crate::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approved: Option<String>,
}

impl Session {
    /// A new pending request.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: SessionId,
        requester: Requester,
        target: TargetName,
        role: Role,
        duration: AccessDuration,
        reason: String,
        now: DateTime<Utc>,
        pending_timeout: AccessDuration,
    ) -> Session {
        Session {
            id,
            requester,
            target,
            role,
            duration,
            reason,
            state: State::Pending,
            version: 0,
            created_at: now,
            approvals: Vec::new(),
            denied_by: None,
            denied_request: None,
            decision_reason: None,
            instance_id: None,
            private_ip: None,
            account_host: None,
            pending_expires_at: now + pending_timeout.to_chrono(),
            approved_at: None,
            handed_over_at: None,
            expires_at: None,
            warn_at: None,
            warned: false,
            extension: None,
            teardown: TeardownProgress::default(),
            slack: SlackRefs::default(),
            lease_until: None,
            launch_window_end: None,
            closed_at: None,
            reminders: Reminders::default(),
            launch_on_request: false,
            outbox: Vec::new(),
            breakglass: None,
            auto_approved: None,
        }
    }

    /// Moves to the state the transition table gives for `event`, or refuses it.
    ///
    /// A launch-on-request session that ends before it was provisioned (denied, timed out,
    /// withdrawn, revoked) may hold its early instance, so it goes through `tearing down` with the
    /// same outcome instead of closing at once.
    pub fn apply(&mut self, event: Event) -> Result<State, TransitionError> {
        let mut next = transition(self.state, event)?;
        if let State::Closed(outcome) = next {
            if self.launch_on_request && !matches!(self.state, State::TearingDown(_)) {
                next = State::TearingDown(outcome);
            }
        }
        self.state = next;
        Ok(self.state)
    }

    /// A launch-on-request session waiting for approval whose bastion is not launched yet: the
    /// early launch is due (see `workflow::prelaunch`).
    pub fn needs_early_launch(&self) -> bool {
        self.launch_on_request && self.state == State::Pending && self.instance_id.is_none()
    }

    /// Starts the access clock: expiry = hand-over + approved duration, warning `warning_lead`
    /// before it (or at once, for a session shorter than the lead).
    pub fn start_clock(&mut self, now: DateTime<Utc>, warning_lead: AccessDuration) {
        let expires = now + self.duration.to_chrono();
        self.handed_over_at = Some(now);
        self.expires_at = Some(expires);
        self.warn_at = Some(std::cmp::max(now, expires - warning_lead.to_chrono()));
        self.warned = false;
    }

    /// Moves the expiry by `by` (an approved extension) and re-arms the warning.
    pub fn extend(&mut self, by: AccessDuration, warning_lead: AccessDuration, now: DateTime<Utc>) {
        if let Some(expires) = self.expires_at {
            let expires = expires + by.to_chrono();
            self.expires_at = Some(expires);
            self.warn_at = Some(std::cmp::max(now, expires - warning_lead.to_chrono()));
            self.warned = false;
        }
        self.extension = None;
    }

    /// Takes this session's due work until `now + lease`. The store writes it conditioned on the
    /// version read, so of two workers that saw the same due session exactly one gets it; if that
    /// worker dies, the session becomes due again when the lease runs out.
    pub fn claim(&mut self, now: DateTime<Utc>, lease: Duration) {
        self.lease_until = Some(now + lease);
    }

    /// Records the session's bastion: its instance id and the private address the database sees.
    pub fn record_instance(&mut self, instance_id: &str, private_ip: std::net::Ipv4Addr) {
        self.instance_id = Some(instance_id.to_string());
        self.private_ip = Some(private_ip.to_string());
    }

    /// Being torn down without knowing its bastion: a worker about to terminate one it launched
    /// hands it over first (`Lifecycle::hand_to_teardown`, `record_undone`).
    pub fn torn_down_without_bastion(&self) -> bool {
        matches!(self.state, State::TearingDown(_)) && self.instance_id.is_none()
    }

    /// Nobody holds this session at `now`: no claim, or one whose lease has run out.
    pub fn unclaimed(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_none_or(|until| until <= now)
    }

    /// When the scheduler must next act on this session, or `None` once closed.
    ///
    /// - pending: at once while a launch-on-request bastion is not launched yet, else the next
    ///   reminder, or when the approval window closes;
    /// - approved: at once (provisioning is due);
    /// - provisioning: at once (it is always claimed with a lease while a worker runs it);
    /// - active: the warning if not yet sent, else the expiry;
    /// - tearing down: at once (retries are spaced by leases);
    /// - closed: the next notice still owed (see [`Notice`]), else never.
    ///
    /// A live lease pushes any of these to its end. An unreviewed break-glass session is also
    /// due when its review is overdue ([`Session::review_due_at`]), closed or not.
    pub fn next_action_at(&self) -> Option<DateTime<Utc>> {
        let review = self.review_due_at();
        match (self.lifecycle_due_at(), review) {
            (Some(at), Some(review)) => Some(at.min(review)),
            (at, review) => at.or(review),
        }
    }

    /// When an unreviewed break-glass session raises its next alert. Only once it is active or
    /// closed: before that a provisioning worker holds it, and nothing is yet to review.
    pub fn review_due_at(&self) -> Option<DateTime<Utc>> {
        let bg = self.breakglass.as_ref()?;
        match self.state {
            State::Active | State::Closed(_) if bg.review.is_none() => Some(bg.review_due_at),
            _ => None,
        }
    }

    fn lifecycle_due_at(&self) -> Option<DateTime<Utc>> {
        let base = match self.state {
            State::Pending => {
                let decide = self.reminders.next_at.map_or(self.pending_expires_at, |r| r.min(self.pending_expires_at));
                if self.needs_early_launch() {
                    // The early launch: at once, or when its claim runs out; a reminder or the
                    // timeout that falls due meanwhile is not held back by that claim.
                    return Some(decide.min(self.lease_until.unwrap_or(self.created_at)));
                }
                decide
            }
            State::Approved | State::Provisioning => self.approved_at.unwrap_or(self.created_at),
            State::Active => {
                let expires = self.expires_at.unwrap_or(self.created_at);
                match self.warn_at {
                    Some(warn) if !self.warned => std::cmp::min(warn, expires),
                    _ => expires,
                }
            }
            // At once: any time in the past will do.
            State::TearingDown(_) => self.created_at,
            State::Closed(_) => self.outbox.iter().filter(|n| n.sent_at.is_none()).map(|n| n.due_at).min()?,
        };
        Some(match self.lease_until {
            Some(lease) if lease > base => lease,
            _ => base,
        })
    }
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Requested,
    ApprovalRecorded,
    Approved,
    Denied,
    PendingTimedOut,
    Cancelled,
    /// A worker claimed an approved session and began creating its instance and account.
    ProvisioningStarted,
    Launched,
    Granted,
    HandedOver,
    Warned,
    ExtensionRequested,
    Extended,
    ExtensionDenied,
    Ended,
    Revoked,
    Expired,
    TeardownFailed,
    TornDown,
    Failed,
    Alerted,
    /// Approvers were reminded of a request nobody has decided (and maybe the escalation group).
    Reminded,
    /// A member of the on-call group took access at once (break-glass): request and approval.
    BreakGlass,
    /// Nobody reviewed a break-glass session in time: the alert was raised (again).
    ReviewOverdue,
    /// A break-glass session was reviewed and acknowledged.
    ReviewAcknowledged,
    /// A break-glass session was reviewed and flagged for the security team.
    ReviewFlagged,
    /// A worker removed what it made for a session that had ended meanwhile (a bastion whose
    /// launch answered late, an account created after the teardown's revoke): what and why.
    Undone,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Requested => "requested",
            AuditKind::ApprovalRecorded => "approval_recorded",
            AuditKind::Approved => "approved",
            AuditKind::Denied => "denied",
            AuditKind::PendingTimedOut => "pending_timed_out",
            AuditKind::Cancelled => "cancelled",
            AuditKind::ProvisioningStarted => "provisioning_started",
            AuditKind::Launched => "launched",
            AuditKind::Granted => "granted",
            AuditKind::HandedOver => "handed_over",
            AuditKind::Warned => "warned",
            AuditKind::ExtensionRequested => "extension_requested",
            AuditKind::Extended => "extended",
            AuditKind::ExtensionDenied => "extension_denied",
            AuditKind::Ended => "ended",
            AuditKind::Revoked => "revoked",
            AuditKind::Expired => "expired",
            AuditKind::TeardownFailed => "teardown_failed",
            AuditKind::TornDown => "torn_down",
            AuditKind::Failed => "failed",
            AuditKind::Alerted => "alerted",
            AuditKind::Reminded => "reminded",
            AuditKind::BreakGlass => "break_glass",
            AuditKind::ReviewOverdue => "review_overdue",
            AuditKind::ReviewAcknowledged => "review_acknowledged",
            AuditKind::ReviewFlagged => "review_flagged",
            AuditKind::Undone => "undone",
        }
    }
}

/// Who caused an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum Actor {
    User(SlackUserId),
    /// powerpole itself (the scheduler, a timeout).
    System,
}

/// One append-only audit record. `detail` is free text for humans and must never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// `ok`, or the error that made this step fail.
    pub outcome: Result<(), String>,
    pub detail: String,
}

impl AuditEvent {
    pub fn ok(kind: AuditKind, actor: Actor, at: DateTime<Utc>, detail: impl Into<String>) -> AuditEvent {
        AuditEvent { kind, actor, at, outcome: Ok(()), detail: detail.into() }
    }

    pub fn failed(kind: AuditKind, actor: Actor, at: DateTime<Utc>, error: impl Into<String>) -> AuditEvent {
        AuditEvent { kind, actor, at, outcome: Err(error.into()), detail: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Outcome, UsernamePolicy};
    use chrono::TimeZone;

    fn session(now: DateTime<Utc>) -> Session {
        let requester = Requester {
            slack_id: SlackUserId::parse("U0ALICE").unwrap(),
            email: "alice@example.com".into(),
            db_user: DbUsername::from_slack_email("alice@example.com", &UsernamePolicy { home_domains: vec!["example.com".into()] }).unwrap(),
            tz: None,
        };
        Session::new(SessionId::random(), requester, TargetName::parse("billing").unwrap(), Role::Read, "2h".parse().unwrap(), "INC-1".into(), now, "1h".parse().unwrap())
    }

    #[test]
    fn pending_is_due_when_the_approval_window_closes() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let s = session(now);
        assert_eq!(s.next_action_at(), Some(now + Duration::hours(1)));
    }

    #[test]
    fn the_clock_starts_at_hand_over_and_warns_before_expiry() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let mut s = session(t0);
        for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver] {
            s.apply(e).unwrap();
        }
        let handover = t0 + Duration::minutes(7);
        s.start_clock(handover, "10m".parse().unwrap());
        assert_eq!(s.expires_at, Some(handover + Duration::hours(2)));
        assert_eq!(s.next_action_at(), Some(handover + Duration::minutes(110)));
        s.warned = true;
        assert_eq!(s.next_action_at(), s.expires_at);
        s.extend("30m".parse().unwrap(), "10m".parse().unwrap(), handover);
        assert!(!s.warned);
        assert_eq!(s.expires_at, Some(handover + Duration::minutes(150)));
    }

    #[test]
    fn an_unreviewed_break_glass_stays_due_after_closing_until_reviewed() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let mut s = session(t0);
        let due = t0 + Duration::hours(24);
        s.breakglass = Some(BreakGlass { oncall_group: "S0ONCALL".into(), qualified: None, review_channel: None, review_ts: None, review_due_at: due, alerts: 0, review: None });
        s.apply(Event::Approved).unwrap();
        s.approved_at = Some(t0);
        assert_eq!(s.next_action_at(), Some(t0), "not before it is active: provisioning is due");
        s.apply(Event::ProvisioningStarted).unwrap();
        s.apply(Event::HandedOver).unwrap();
        s.start_clock(t0, "10m".parse().unwrap());
        assert_eq!(s.next_action_at(), Some(t0 + Duration::minutes(110)), "the warning comes first");
        s.apply(Event::EndedByRequester).unwrap();
        s.apply(Event::TornDown).unwrap();
        assert!(s.state.is_closed());
        assert_eq!(s.next_action_at(), Some(due));
        s.breakglass.as_mut().unwrap().review = Some(Review { by: SlackUserId::parse("U0BOB").unwrap(), at: due, flag: None });
        assert_eq!(s.next_action_at(), None);
    }

    #[test]
    fn a_lease_defers_due_work_and_closed_sessions_are_never_due() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let mut s = session(t0);
        s.apply(Event::Approved).unwrap();
        s.approved_at = Some(t0);
        assert_eq!(s.next_action_at(), Some(t0));
        s.claim(t0, Duration::minutes(2));
        assert_eq!(s.next_action_at(), Some(t0 + Duration::minutes(2)));
        s.apply(Event::Cancelled).unwrap();
        assert_eq!(s.state, State::Closed(Outcome::Cancelled));
        assert_eq!(s.next_action_at(), None);
    }
}
