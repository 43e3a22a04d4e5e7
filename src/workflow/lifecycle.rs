//! What happens to a session after approval: provision, hand over, warn, expire, tear down.
//!
//! Every step starts by *claiming* the session with a conditional store write (the version read),
//! so of several replicas or sweeper ticks that see the same due session exactly one acts; a
//! claim carries a lease, and a worker that dies leaves work that becomes due again when the lease
//! runs out. Every external action is idempotent (launch looks up the session's instance by tag
//! first, account creation converges, revoke and terminate accept "already gone"), so resuming a
//! step after a crash repeats nothing that matters.
//!
//! Read top to bottom: [`Lifecycle::act`] dispatches one due session; [`Lifecycle::provision`],
//! [`Lifecycle::warn`], [`Lifecycle::expire`] and [`Lifecycle::teardown`] are the steps.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::{error, info, warn};

use crate::bastion::Bastions;
use crate::config::{AccountHost, TargetConfig};
use crate::domain::{Actor, AuditEvent, AuditKind, Dependency, Event, NoticeKind, Outcome, Session, State};
use crate::grants::{AccountRequest, Grants, RevokeOutcome};
use crate::notify::messages::{self, Handover};
use crate::notify::{Message, Notifier, Posted};
use crate::store::StoreError;

use super::abandon::Made;
use super::Workflow;

/// The engine that carries approved sessions through their life.
#[derive(Clone)]
pub struct Lifecycle {
    pub workflow: Workflow,
    pub bastions: Arc<dyn Bastions>,
    pub grants: Arc<dyn Grants>,
    pub notifier: Arc<dyn Notifier>,
    /// The AWS region bastions run in (for the console URL and the `aws ssm` command).
    pub region: String,
    /// CloudWatch Logs, for the security channel's session summary at teardown (`workflow::summary`).
    pub transcripts: Option<crate::transcripts::CloudWatchLogs>,
    /// The steps running in this process and what they last wrote (released on SIGTERM).
    pub claims: super::claims::HeldClaims,
    /// How the outside systems answered lately (`/readyz`; see `workflow::dependencies`).
    pub dependencies: Arc<super::dependencies::DependencyLog>,
}

/// What one step did, for logs, `sweep --once` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Another worker holds the session (lost the claim): nothing done here.
    Skipped,
    /// Not due yet.
    NotDue,
    TimedOut,
    /// Approvers of a pending request were reminded (`workflow::remind`).
    Reminded,
    HandedOver,
    /// Provisioning failed and was rolled back (the teardown may still be retrying).
    ProvisioningFailed(String),
    Warned,
    TornDown,
    /// A teardown attempt failed; it will be retried after the backoff.
    TeardownRetry(String),
    /// Launch on request: the bastion of a pending request was launched, without its identity.
    LaunchedEarly,
    /// Launch on request: the early launch failed; it is tried again (approval launches anyway).
    EarlyLaunchFailed(String),
    /// Notices owed by a closed session were delivered (`sent`) or rescheduled (`failed`).
    Notified { sent: u32, failed: u32 },
    /// Nobody reviewed a break-glass session in time: alerted (`workflow::breakglass`).
    ReviewOverdue,
}

/// A step that could not finish; the session stays due and is retried.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("target `{0}` is no longer configured; its sessions need an operator (powerpole reconcile)")]
    UnknownTarget(String),
    #[error(transparent)]
    Bastion(#[from] crate::bastion::BastionError),
    #[error(transparent)]
    Grant(#[from] crate::grants::GrantError),
}

/// Why provisioning stopped before the hand-over.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProvisionError {
    /// Another worker changed the session (its lease ran out and someone resumed it, or it was
    /// ended or revoked): leave it to them, after undoing what only this worker knows of.
    #[error("the provisioning claim was lost to another worker or a decision")]
    LostClaim,
    /// The store failed; the lease runs out and the session is resumed later.
    #[error(transparent)]
    Store(StoreError),
    #[error("launching the bastion failed: {0}")]
    Launch(crate::bastion::BastionError),
    #[error("creating the database account failed: {0}")]
    Grant(crate::grants::GrantError),
    #[error("the bastion did not come online in Session Manager: {0}")]
    Online(crate::bastion::BastionError),
    #[error("the hand-over DM could not be sent: {0}")]
    Handover(crate::notify::NotifyError),
    #[error("the session could not be handed over: {0}")]
    Transition(crate::domain::TransitionError),
    /// Another live session of the same person holds (or is about to hold) the same account on
    /// the same database server: sharing it would reset its password and drop it at either end.
    #[error("your session {other} already uses the database account '{user}'@'{host}' on this database; end it with `/powerpole end {other}` (or extend it) and ask again")]
    AccountInUse { other: crate::domain::SessionId, user: String, host: String },
    #[error("{0}; this is a bug in powerpole")]
    Bug(&'static str),
}

impl ProvisionError {
    /// What the requester and the approvers read: what could not be done, in their words; the
    /// technical cause (the `Display` form) goes to the log and the audit trail.
    pub(crate) fn for_people(&self) -> String {
        use crate::grants::GrantError;
        match self {
            ProvisionError::AccountInUse { .. } => self.to_string(),
            ProvisionError::Grant(GrantError::ForeignAccount { .. }) => {
                "a database account with your user name already exists and was not made by powerpole, so it was left alone; the platform team must rename or remove it before you can have access".into()
            }
            ProvisionError::Grant(GrantError::KeptForDefiner { .. }) => {
                "your database account from an earlier session is kept locked because it owns objects in the database (views, triggers or routines); the platform team must reassign them before you can have access again".into()
            }
            ProvisionError::Grant(GrantError::PasswordPolicy { .. }) => "the database refused the generated password under its password policy".into(),
            ProvisionError::Grant(_) => "your database account could not be created".into(),
            ProvisionError::Launch(_) => "the bastion could not be started".into(),
            ProvisionError::Online(_) => "the bastion did not become reachable through Session Manager in time".into(),
            ProvisionError::Handover(_) => "your connection details could not be sent to you in Slack".into(),
            ProvisionError::LostClaim | ProvisionError::Store(_) | ProvisionError::Transition(_) | ProvisionError::Bug(_) => "powerpole could not finish setting it up".into(),
        }
    }
}

/// How long a provisioning claim lasts. It is renewed while the worker waits for the grant and
/// SSM ([`Lifecycle::keep_claim`]), so it need not cover the wait: a crashed worker's session is
/// resumed within one lease, not one SSM timeout later.
fn provisioning_lease(wf: &Workflow) -> Duration {
    wf.config.scheduler.provisioning_lease.to_chrono()
}

/// Teardown retries back off 15 s, 30 s, 1 min, ... up to 5 min, and never give up.
pub fn teardown_backoff(attempts: u32) -> Duration {
    let secs = 15i64.saturating_mul(1i64 << attempts.min(5));
    Duration::seconds(secs.min(300))
}

/// What a teardown removed, for the audit trail.
#[derive(Debug, Default)]
struct Removed {
    summary: Vec<String>,
    /// Set when the account could not be dropped and was left locked (it is the DEFINER of objects the application uses).
    account_left_locked: Option<String>,
    /// Set when no instance was found but the tag lookup may not see a recent launch yet.
    settling_until: Option<DateTime<Utc>>,
}

/// A teardown's bastion, looked up before anything is removed ([`Lifecycle::locate_bastion`]).
#[derive(Debug)]
enum Bastion {
    /// The session records it (from the launch, or from an earlier teardown's tag lookup).
    Recorded(String),
    /// Neither recorded nor found by its tag.
    NotFound,
    /// The tag lookup failed: the account is revoked all the same, then the attempt fails.
    LookupFailed(String),
}

/// How long EC2's tag lookup may take to see a launched instance (it is eventually consistent;
/// in practice seconds). A teardown that finds nothing looks again until then.
const TAG_SETTLE: Duration = Duration::seconds(60);

/// How long an expiry's or teardown's claim lasts: the provisioning lease, renewed every third of
/// it while the revoke and the terminate run ([`Lifecycle::keep_teardown_claim`]), so a worker that
/// crashes mid-teardown holds the session for at most one lease (one minute by default), and two
/// crashes in a row for two, not a fixed two minutes each.
fn teardown_lease(wf: &Workflow) -> Duration {
    if !crate::sim::fixes::on(crate::sim::fixes::Fix::RenewedTeardownClaim) {
        return Duration::minutes(2);
    }
    provisioning_lease(wf)
}

/// A claim is renewed every third of its lease (at least every second), leaving two thirds of
/// slack for a slow store answer and the clocks' skew.
fn renewal_interval(lease: Duration) -> std::time::Duration {
    (lease / 3).to_std().unwrap_or(std::time::Duration::from_secs(1)).max(std::time::Duration::from_secs(1))
}

impl Lifecycle {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.workflow.clock.now()
    }

    pub(crate) fn target(&self, session: &Session) -> Result<TargetConfig, StepError> {
        self.workflow
            .config
            .target(&session.target)
            .cloned()
            .ok_or_else(|| StepError::UnknownTarget(session.target.to_string()))
    }

    /// Writes `next` conditioned on `state` and `next.version`. A write whose answer was lost
    /// (the store timed out) is confirmed by reading the session again: if it holds exactly
    /// `next`, the write happened, and the worker goes on instead of waiting out its own lease.
    async fn update(&self, state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
        let written = match self.workflow.store.update(state, next, event).await {
            Err(StoreError::Unavailable(cause)) => match self.workflow.store.get(&next.id).await {
                Ok(Some(stored)) if stored.version == next.version + 1 && Session { version: next.version, ..stored.clone() } == *next => Ok(stored),
                _ => Err(StoreError::Unavailable(cause)),
            },
            other => other,
        };
        if let Ok(stored) = &written {
            self.claims.wrote(stored);
        }
        written
    }

    /// Writes `next` conditioned on `read`'s state and version. `Ok(None)`: someone else won.
    pub(crate) async fn save(&self, read: &Session, next: &Session, event: Option<AuditEvent>) -> Result<Option<Session>, StepError> {
        match self.update(read.state, next, event.as_ref()).await {
            Ok(stored) => Ok(Some(stored)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Does whatever is due for `session` now.
    pub async fn act(&self, session: Session) -> Result<StepOutcome, StepError> {
        let now = self.now();
        if session.next_action_at().is_none_or(|at| at > now) {
            return Ok(StepOutcome::NotDue);
        }
        if session.review_due_at().is_some_and(|at| at <= now) {
            return self.review_overdue(session).await;
        }
        match session.state {
            State::Pending if session.pending_expires_at <= now => self.time_out_pending(session).await,
            State::Pending if session.needs_early_launch() && session.unclaimed(now) => self.launch_early(session).await,
            State::Pending => self.remind(session).await,
            State::Approved | State::Provisioning => self.provision(session).await,
            State::Active => {
                let expired = session.expires_at.is_some_and(|at| at <= now);
                if expired {
                    self.expire(session).await
                } else {
                    self.warn(session).await
                }
            }
            State::TearingDown(_) => self.teardown(session).await,
            State::Closed(_) => self.drain_outbox(session).await,
        }
    }

    /// A request nobody decided in time closes; the card and the requester are told.
    async fn time_out_pending(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.now();
        let mut next = read.clone();
        next.apply(Event::PendingTimedOut).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        if next.state.is_closed() {
            next.closed_at = Some(now);
        }
        let event = AuditEvent::ok(AuditKind::PendingTimedOut, Actor::System, now, "no decision within the pending timeout");
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        self.refresh_card(&stored).await;
        self.tell_requester(&stored, &messages::request_timed_out(&stored)).await;
        // Launch on request: the early bastion goes now (the teardown is retried if this fails).
        if matches!(stored.state, State::TearingDown(_)) {
            self.teardown(stored).await?;
        }
        Ok(StepOutcome::TimedOut)
    }

    // -----------------------------------------------------------------------------------------
    // Provisioning
    // -----------------------------------------------------------------------------------------

    /// Launches the bastion, creates the account in parallel with the SSM wait, hands over.
    /// Resumable: a session found in `provisioning` (its previous worker died) continues here.
    pub async fn provision(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.now();
        let target = self.target(&read).ok();
        // Claim: approved -> provisioning, or renew a dead worker's lease.
        let mut claim = read.clone();
        let detail = if claim.state == State::Approved {
            claim.apply(Event::ProvisioningStarted).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
            "launching the bastion"
        } else {
            "resuming: the previous worker's lease ran out"
        };
        claim.claim(now, provisioning_lease(&self.workflow));
        claim.launch_window_end = claim.lease_until;
        let event = AuditEvent::ok(AuditKind::ProvisioningStarted, Actor::System, now, detail);
        let Some(mut session) = self.save(&read, &claim, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        let Some(target) = target else {
            // Removed from the configuration since approval: fail, so the teardown runs and alerts.
            let cause = format!("target `{}` is no longer configured", session.target);
            return self.fail_provisioning(session, cause, "its database is no longer offered through powerpole".to_string()).await;
        };
        info!(session = %session.id, target = %session.target, "provisioning");
        match self.provision_claimed(&mut session, &target).await {
            Ok(outcome) => Ok(outcome),
            Err(ProvisionError::LostClaim) => Ok(StepOutcome::Skipped),
            Err(ProvisionError::Store(e)) => Err(e.into()),
            // Someone else's account of that name and host was refused before anything was done
            // to it: the rollback must not revoke it, so the session forgets the account.
            // Likewise an account another live session holds, or one kept for its DEFINER objects.
            Err(
                cause @ (ProvisionError::Grant(crate::grants::GrantError::ForeignAccount { .. } | crate::grants::GrantError::KeptForDefiner { .. })
                | ProvisionError::AccountInUse { .. }),
            ) => {
                session.account_host = None;
                let words = cause.for_people();
                self.fail_provisioning(session, cause.to_string(), words).await
            }
            // `session` is the last version this worker wrote: the rollback is conditioned on it.
            Err(cause) => {
                let words = cause.for_people();
                self.fail_provisioning(session, cause.to_string(), words).await
            }
        }
    }

    /// Saves a provisioning step; losing the race ends this worker's part.
    async fn save_step(&self, read: &Session, next: &Session, event: AuditEvent) -> Result<Session, ProvisionError> {
        match self.update(read.state, next, Some(&event)).await {
            Ok(stored) => Ok(stored),
            Err(StoreError::Conflict(_)) => Err(ProvisionError::LostClaim),
            Err(e) => Err(ProvisionError::Store(e)),
        }
    }

    async fn provision_claimed(&self, session: &mut Session, target: &TargetConfig) -> Result<StepOutcome, ProvisionError> {
        // What this worker made so far: if it loses its claim, it undoes these (see `abandon`).
        let mut made = Made::default();
        // 1. The instance (found by tag if a previous attempt launched it).
        let spec = self.launch_spec(session, target);
        let launch = self.bastions.launch(&spec);
        tokio::pin!(launch);
        let launched = match self.keep_claim(session, launch.as_mut()).await {
            Ok(launched) => launched,
            Err(ProvisionError::LostClaim) => {
                // The launch may already have taken effect: let it answer, so its instance is known.
                made.instance = launch.await.ok();
                return Err(self.abandon(session, target, made).await);
            }
            Err(e) => return Err(e),
        };
        self.dependencies.record(Dependency::Ec2, self.now(), &launched);
        let instance = launched.map_err(ProvisionError::Launch)?;
        made.instance = Some(instance.clone());
        if !spec.identity_at_launch {
            // Launch on request: the session is approved (this worker holds its provisioning
            // claim), so its requester may now enter the bastion launched while it waited.
            self.bastions.set_identity(&instance.id, &spec).await.map_err(ProvisionError::Launch)?;
        }
        let ip = instance.private_ip.to_string();
        let host = match &target.account_host {
            AccountHost::InstanceIp => ip.clone(),
            AccountHost::Pattern(p) => p.clone(),
        };
        let earlier_attempt = session.account_host.as_deref() == Some(&host) && crate::sim::fixes::on(crate::sim::fixes::Fix::EarlierAttempt);
        // Record the instance and the account we are about to create *before* creating it, so
        // that reconcile and a resumed worker always know what may exist.
        // One account per live session: checked before the host is recorded, so that the
        // rollback of a refused session never touches the account the other session uses.
        let newly_recorded = session.account_host.as_deref() != Some(&host);
        if session.account_host.is_none() {
            if let Some(other) = self.account_holder(session, target, &host).await.map_err(ProvisionError::Store)? {
                return Err(ProvisionError::AccountInUse { other, user: session.requester.db_user.to_string(), host });
            }
        }
        if session.instance_id.as_deref() != Some(&instance.id) || newly_recorded {
            let read = session.clone();
            let mut next = read.clone();
            next.record_instance(&instance.id, instance.private_ip);
            next.account_host = Some(host.clone());
            let detail = if spec.identity_at_launch {
                format!("instance {} ({ip})", instance.id)
            } else {
                format!("instance {} ({ip}) launched at request, now tagged with the requester's identity", instance.id)
            };
            let event = AuditEvent::ok(AuditKind::Launched, Actor::System, self.now(), detail);
            *session = self.or_abandon(session, target, &made, self.save_step(&read, &next, event).await).await?;
        }
        // Two sessions that passed the check above at the same moment have both recorded the
        // account by now: each looks again (consistent reads after its own conditional write), so
        // at least one of them sees the other, and any session that sees another gives way.
        // Rarely both do (both fail, and the person asks again); never do both go on.
        if newly_recorded {
            if let Some(other) = self.account_holder(session, target, &host).await.map_err(ProvisionError::Store)? {
                return Err(ProvisionError::AccountInUse { other, user: session.requester.db_user.to_string(), host });
            }
        }

        // 2. The account and the SSM wait, in parallel: the grant needs only the IP. An earlier
        // attempt that recorded this account may have stopped in the middle of creating it.
        let request = AccountRequest { earlier_attempt, user: session.requester.db_user.clone(), host: host.clone(), role: session.role };
        made.account = Some(host.clone());
        let timeout = self.workflow.config.bastion.ssm_online_timeout.to_std();
        let grant = futures::future::maybe_done(self.grants.create_account(target, &request));
        let online = futures::future::maybe_done(self.bastions.wait_online(&instance.id, timeout));
        tokio::pin!(grant, online);
        let waited = {
            let both = futures::future::join(grant.as_mut(), online.as_mut());
            tokio::pin!(both);
            self.keep_claim(session, both).await
        };
        if let Err(e) = waited {
            if matches!(e, ProvisionError::LostClaim) {
                // An account being created now would outlive the teardown's revoke: let it finish.
                grant.as_mut().await;
                return Err(self.abandon(session, target, made).await);
            }
            return Err(e);
        }
        let grant = grant.as_mut().take_output().ok_or(ProvisionError::Bug("the grant finished without an answer"))?;
        let online = online.as_mut().take_output().ok_or(ProvisionError::Bug("the SSM wait finished without an answer"))?;
        self.dependencies.record(Dependency::Database, self.now(), &grant);
        let password = grant.map_err(ProvisionError::Grant)?;
        {
            let read = session.clone();
            let event = AuditEvent::ok(
                AuditKind::Granted,
                Actor::System,
                self.now(),
                format!("'{}'@'{}' {} on {}", request.user, host, session.role, target.schemas.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            );
            *session = self.or_abandon(session, target, &made, self.save_step(&read, &read, event).await).await?;
        }
        online.map_err(ProvisionError::Online)?;

        // 3. Hand over: the DM with the password, then the clock starts. The DM goes first so
        // that a session is active only once its person has the password; if the save then
        // loses the claim (ended, revoked, resumed), this worker redacts the DM itself.
        let now = self.now();
        let mut next = session.clone();
        next.apply(Event::HandedOver).map_err(ProvisionError::Transition)?;
        next.start_clock(now, self.workflow.config.scheduler.warning_lead);
        next.lease_until = None;
        let document = &self.workflow.config.bastion.session_document;
        let handover = Handover { region: &self.region, instance_id: &instance.id, document, password: Some(password.expose()) };
        let dm = messages::handover_dm(&next, target, handover);
        let posted = self.notifier.dm(&next.requester.slack_id, &dm).await.map_err(ProvisionError::Handover)?;
        next.slack.handover_channel = Some(posted.channel.clone());
        next.slack.handover_ts = Some(posted.ts.clone());
        made.dm = Some(posted);
        let expires = next.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default();
        let event = AuditEvent::ok(AuditKind::HandedOver, Actor::System, now, format!("expires {expires}"));
        let read = session.clone();
        *session = self.or_abandon(session, target, &made, self.save_step(&read, &next, event).await).await?;
        // A worker before this one may have posted a hand-over DM and stopped before recording
        // it: its password is dead (the account was made again), and it goes now rather than
        // at the end (the teardown's outbox looks again in any case).
        if earlier_attempt {
            if let Err(e) = self.remove_stray_handovers(session).await {
                warn!(session = %session.id, error = %e, "could not look for hand-over DMs an earlier attempt left; the teardown will");
            }
        }
        self.refresh_card(session).await;
        crate::metrics::handed_over(session);
        info!(session = %session.id, "handed over");
        Ok(StepOutcome::HandedOver)
    }

    /// Passes `result` on; a lost claim first undoes what this worker made.
    async fn or_abandon<T>(&self, session: &Session, target: &TargetConfig, made: &Made, result: Result<T, ProvisionError>) -> Result<T, ProvisionError> {
        match result {
            Err(ProvisionError::LostClaim) => Err(self.abandon(session, target, made.clone()).await),
            other => other,
        }
    }

    /// Runs `work` while renewing this worker's provisioning claim every third of the lease, so a
    /// live worker keeps its session however long the launch or SSM takes. If the claim is lost
    /// (another worker resumed the session, or it was ended or revoked), this returns
    /// [`ProvisionError::LostClaim`] with `work` unfinished: the caller decides whether to let it
    /// finish before undoing it. A renewal the store refuses for another reason is retried at the
    /// next interval; once the lease has run out without one, this worker stops too (another may
    /// resume the session).
    async fn keep_claim<F: std::future::Future>(&self, session: &mut Session, mut work: std::pin::Pin<&mut F>) -> Result<F::Output, ProvisionError> {
        let lease = provisioning_lease(&self.workflow);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return Ok(done),
                _ = self.workflow.clock.sleep(renewal_interval(lease)) => {
                    let read = session.clone();
                    match self.renew_claim(&read, lease, true).await {
                        Ok(stored) => *session = stored,
                        Err(StoreError::Conflict(_)) => {
                            warn!(session = %read.id, "provisioning claim lost to another worker or a decision; stopping here");
                            return Err(ProvisionError::LostClaim);
                        }
                        Err(e) if read.lease_until.is_some_and(|until| until <= self.now()) => {
                            error!(session = %read.id, error = %e, "provisioning claim could not be renewed before it ran out; stopping here");
                            return Err(ProvisionError::Store(e));
                        }
                        Err(e) => warn!(session = %read.id, error = %e, "provisioning claim not renewed; trying again"),
                    }
                }
            }
        }
    }

    /// Extends the claim on `read` to `now + lease` (and the launch window with it, for a
    /// provisioning claim), conditioned on the version read.
    async fn renew_claim(&self, read: &Session, lease: Duration, launch_window: bool) -> Result<Session, StoreError> {
        let mut next = read.clone();
        next.claim(self.now(), lease);
        if launch_window {
            next.launch_window_end = next.lease_until;
        }
        self.update(read.state, &next, None).await
    }

    /// Runs a teardown's `work` (revoke, terminate), renewing `session`'s claim every third of the
    /// teardown lease; `session` is kept the latest version written, so the close or the retry
    /// that follows writes on it. A renewal that finds the session written by someone else stops
    /// renewing but lets the work finish (revoking and terminating again are harmless): the write
    /// that follows is then refused and the step skipped.
    async fn keep_teardown_claim<F: std::future::Future>(&self, session: &mut Session, work: F) -> F::Output {
        let lease = teardown_lease(&self.workflow);
        let mut work = std::pin::pin!(work);
        let mut held = crate::sim::fixes::on(crate::sim::fixes::Fix::RenewedTeardownClaim);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                _ = self.workflow.clock.sleep(renewal_interval(lease)), if held => {
                    let read = session.clone();
                    match self.renew_claim(&read, lease, false).await {
                        Ok(stored) => *session = stored,
                        Err(StoreError::Conflict(_)) => {
                            warn!(session = %read.id, "teardown claim lost to another worker; finishing this attempt without renewing");
                            held = false;
                        }
                        Err(e) => warn!(session = %read.id, error = %e, "teardown claim not renewed; trying again"),
                    }
                }
            }
        }
    }

    /// Another live session of `session`'s person whose account would be the same as this one's:
    /// the same user name and host on the same database server. Read from the requester index,
    /// then each candidate again with a consistent read.
    async fn account_holder(&self, session: &Session, target: &TargetConfig, host: &str) -> Result<Option<crate::domain::SessionId>, StoreError> {
        let server = |t: &TargetConfig| (t.writer_endpoint.to_ascii_lowercase(), t.port);
        let theirs = self.workflow.store.by_requester(&session.requester.slack_id, 50).await?;
        for candidate in theirs.into_iter().filter(|s| s.id != session.id && !s.state.is_closed()) {
            let Some(current) = self.workflow.store.get(&candidate.id).await? else { continue };
            let same_server = self.workflow.config.target(&current.target).is_none_or(|t| server(t) == server(target));
            let holds = current.account_host.as_deref() == Some(host) && current.requester.db_user == session.requester.db_user;
            if !current.state.is_closed() && same_server && holds {
                return Ok(Some(current.id));
            }
        }
        Ok(None)
    }

    /// Rolls back a failed provisioning: record the cause, tell people, tear down what exists.
    /// Rolls back a session whose provisioning failed. `cause` is the operator's (the log and
    /// the audit trail); `words` is what the requester and the approvers read (the DM, the card).
    async fn fail_provisioning(&self, read: Session, cause: String, words: String) -> Result<StepOutcome, StepError> {
        error!(session = %read.id, %cause, "provisioning failed; rolling back");
        crate::metrics::provisioning_failed();
        let mut next = read.clone();
        next.apply(Event::ProvisioningFailed).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        next.decision_reason = Some(words.clone());
        next.lease_until = None;
        let event = AuditEvent::failed(AuditKind::Failed, Actor::System, self.now(), cause.clone());
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        self.tell_requester(&stored, &messages::provisioning_failed(&stored, &words)).await;
        self.refresh_card(&stored).await;
        self.teardown(stored).await?;
        Ok(StepOutcome::ProvisioningFailed(cause))
    }

    // -----------------------------------------------------------------------------------------
    // Warning and expiry
    // -----------------------------------------------------------------------------------------

    /// The T-minus warning, with Extend and End-now buttons. Claimed first, so it is sent once.
    pub async fn warn(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.now();
        if read.warned || read.warn_at.is_none_or(|at| at > now) {
            return Ok(StepOutcome::NotDue);
        }
        let mut next = read.clone();
        next.apply(Event::Warned).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        next.warned = true;
        let event = AuditEvent::ok(AuditKind::Warned, Actor::System, now, "expiry warning sent");
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        self.tell_requester(&stored, &messages::warning_dm(&stored)).await;
        Ok(StepOutcome::Warned)
    }

    /// Access time is over: move to tearing down (claimed), then tear down at once.
    pub async fn expire(&self, read: Session) -> Result<StepOutcome, StepError> {
        let now = self.now();
        let mut next = read.clone();
        next.apply(Event::Expired).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        next.claim(now, teardown_lease(&self.workflow));
        let event = AuditEvent::ok(AuditKind::Expired, Actor::System, now, "access time is over");
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        self.teardown_claimed(stored).await
    }

    // -----------------------------------------------------------------------------------------
    // Teardown
    // -----------------------------------------------------------------------------------------

    /// Claims a session in `tearing down` and tears it down.
    pub async fn teardown(&self, read: Session) -> Result<StepOutcome, StepError> {
        if !matches!(read.state, State::TearingDown(_)) {
            return Ok(StepOutcome::NotDue);
        }
        let mut claim = read.clone();
        claim.claim(self.now(), teardown_lease(&self.workflow));
        let Some(stored) = self.save(&read, &claim, None).await? else {
            return Ok(StepOutcome::Skipped);
        };
        if stored.teardown.attempts > 0 {
            crate::metrics::teardown_retried();
        }
        self.teardown_claimed(stored).await
    }

    /// Lock, kill and drop the account; terminate the instance; close. A failure is recorded and
    /// retried with backoff, forever; after `teardown_alert_after` the approvals channel is
    /// alerted once. Every Slack notice (the redaction of the password, the requester's notice,
    /// the cards and summaries) goes through the outbox (`workflow::outbox`), so Slack being
    /// down never holds a revocation up.
    async fn teardown_claimed(&self, session: Session) -> Result<StepOutcome, StepError> {
        let Ok(target) = self.target(&session) else {
            return self.teardown_removed_target(session).await;
        };
        let channels = vec![target.approvals_channel.clone()];
        let Some((mut session, bastion)) = self.locate_bastion(session).await? else {
            return Ok(StepOutcome::Skipped);
        };
        let claimed = session.clone();
        let removed = self.keep_teardown_claim(&mut session, self.remove_resources(&claimed, &target, bastion)).await;
        match removed {
            Ok(Removed { settling_until: Some(until), .. }) => self.wait_for_tags(session, until).await,
            Ok(removed) => {
                // The account could not be dropped (it is a DEFINER): it is locked, keeps the
                // privileges its objects run with and is never handed out again; an operator must
                // finish the job, and the outbox says so where they look.
                let kept_locked = removed.account_left_locked.map(|reason| NoticeKind::KeptLocked { reason });
                self.close(session, removed.summary, kept_locked).await
            }
            Err((dependency, cause)) => self.retry_teardown_later(session, &channels, Some(dependency), cause).await,
        }
    }

    /// A session whose target was removed from the configuration: its instance is terminated
    /// (that needs no target), but its account cannot be revoked without the target's admin
    /// credential, so the teardown keeps failing, and alerting every approvals channel, until an
    /// operator restores the target (the next attempt then revokes it) or drops it by hand.
    async fn teardown_removed_target(&self, session: Session) -> Result<StepOutcome, StepError> {
        let channels: std::collections::BTreeSet<String> = self.workflow.config.targets.values().map(|t| t.approvals_channel.clone()).collect();
        let channels: Vec<String> = channels.into_iter().collect();
        let Some((session, bastion)) = self.locate_bastion(session).await? else {
            return Ok(StepOutcome::Skipped);
        };
        let instance = match bastion {
            Bastion::Recorded(id) => Some(id),
            Bastion::NotFound => None,
            Bastion::LookupFailed(cause) => return self.retry_teardown_later(session, &channels, Some(Dependency::Ec2), cause).await,
        };
        if let Some(id) = instance {
            if let Err(e) = self.bastions.terminate(&id).await {
                return self.retry_teardown_later(session, &channels, Some(Dependency::Ec2), format!("terminating {id} failed: {e}")).await;
            }
        }
        match &session.account_host {
            None => {
                let summary = vec![format!("target `{}` is no longer configured; no account had been created", session.target)];
                self.close(session, summary, None).await
            }
            Some(host) => {
                let cause = format!(
                    "target `{}` is no longer configured, so the account '{}'@'{host}' cannot be revoked: restore the target in the configuration (the next attempt revokes it) or drop the account by hand",
                    session.target, session.requester.db_user
                );
                self.retry_teardown_later(session, &channels, Some(Dependency::Database), cause).await
            }
        }
    }

    /// No instance is known yet, but a launch may have taken effect too recently for the tag
    /// lookup to see it: look again once it has settled, instead of closing over a running bastion.
    async fn wait_for_tags(&self, read: Session, until: DateTime<Utc>) -> Result<StepOutcome, StepError> {
        let mut next = read.clone();
        next.lease_until = Some(until);
        match self.save(&read, &next, None).await? {
            Some(_) => Ok(StepOutcome::TeardownRetry("waiting for the bastion tag lookup to settle".into())),
            None => Ok(StepOutcome::Skipped),
        }
    }

    /// The session's bastion, as the teardown is to remove it: the one the session records, or one
    /// only its tag knows (a crash or a lost answer between the launch and the write recording
    /// it). One found by its tag is recorded in the session before anything is removed, so that
    /// an attempt that terminates it and then cannot close (a crash, a store fault) leaves its name
    /// to the next attempt, whose trail names it (the tag lookup no longer shows a terminated
    /// instance). `None`: the session was written by someone else meanwhile.
    async fn locate_bastion(&self, session: Session) -> Result<Option<(Session, Bastion)>, StepError> {
        if let Some(id) = &session.instance_id {
            let id = id.clone();
            return Ok(Some((session, Bastion::Recorded(id))));
        }
        let found = self.bastions.find(&session.id).await;
        self.dependencies.record(Dependency::Ec2, self.now(), &found);
        let instance = match found {
            Ok(Some(instance)) if crate::sim::fixes::on(crate::sim::fixes::Fix::RecordBeforeTerminate) => instance,
            Ok(Some(instance)) => return Ok(Some((session, Bastion::Recorded(instance.id)))),
            Ok(None) => return Ok(Some((session, Bastion::NotFound))),
            Err(e) => return Ok(Some((session, Bastion::LookupFailed(format!("finding the bastion failed: {e}"))))),
        };
        let mut next = session.clone();
        next.record_instance(&instance.id, instance.private_ip);
        Ok(self.save(&session, &next, None).await?.map(|stored| (stored, Bastion::Recorded(instance.id))))
    }

    /// Revokes the account, then terminates the instance. A database that cannot be reached does
    /// not keep the instance running: it is terminated all the same (the path to the database goes
    /// through it), and the revoke's failure is returned after. A failure names its system.
    async fn remove_resources(&self, session: &Session, target: &TargetConfig, bastion: Bastion) -> Result<Removed, (Dependency, String)> {
        let mut removed = Removed::default();
        let ec2 = |e: String| (Dependency::Ec2, e);
        let mut revoke_failed = None;
        if let Some(host) = &session.account_host {
            let revoked = self.grants.revoke(target, &session.requester.db_user, host).await;
            self.dependencies.record(Dependency::Database, self.now(), &revoked);
            match revoked {
                Ok(report) => {
                    info!(session = %session.id, %report, "account revoked");
                    if let RevokeOutcome::KeptLocked { reason } = &report.outcome {
                        removed.account_left_locked = Some(reason.clone());
                    }
                    removed.summary.push(report.to_string());
                }
                Err(e) => revoke_failed = Some((Dependency::Database, format!("revoking the database account failed: {e}"))),
            }
        }
        let instance = match bastion {
            Bastion::Recorded(id) => Some(id),
            Bastion::LookupFailed(cause) => return Err(ec2(cause)),
            Bastion::NotFound => {
                let settled = session.launch_window_end.map(|end| end + TAG_SETTLE);
                if settled.is_some_and(|at| at > self.now()) && crate::sim::fixes::on(crate::sim::fixes::Fix::LaunchWindowWait) {
                    removed.settling_until = settled;
                    return revoke_failed.map_or(Ok(removed), Err);
                }
                None
            }
        };
        if let Some(id) = instance {
            let terminated = self.bastions.terminate(&id).await;
            self.dependencies.record(Dependency::Ec2, self.now(), &terminated);
            terminated.map_err(|e| ec2(format!("terminating {id} failed: {e}")))?;
            removed.summary.push(format!("instance {id} terminated"));
        }
        revoke_failed.map_or(Ok(removed), Err)
    }

    /// Closes the session with its notices queued in the same write, and the outbox claimed by
    /// this worker; then delivers them (Slack being down only leaves them queued).
    async fn close(&self, read: Session, summary: Vec<String>, alert: Option<NoticeKind>) -> Result<StepOutcome, StepError> {
        let now = self.now();
        let mut next = read.clone();
        next.apply(Event::TornDown).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        next.closed_at = Some(now);
        // A launch-on-request request that was denied, timed out or withdrawn had only its early
        // bastion: its people were told at the decision, and there was no access to report.
        let decided_before_access = matches!(next.state.outcome(), Some(Outcome::Denied | Outcome::PendingTimedOut | Outcome::Cancelled));
        let mut notices = vec![NoticeKind::ApprovalCard];
        if !decided_before_access {
            notices.insert(0, NoticeKind::Ended);
        }
        notices.extend(next.slack.handover_ts.as_ref().map(|_| NoticeKind::RedactHandover));
        // A hand-over DM can only exist once an account was made for the session.
        if next.approved_at.is_some() && next.account_host.is_some() && crate::sim::fixes::on(crate::sim::fixes::Fix::RemoveStrayHandovers) {
            notices.push(NoticeKind::RemoveStrayHandovers);
        }
        notices.extend(next.extension.as_ref().and_then(|e| e.card_ts.as_ref()).map(|_| NoticeKind::ExtensionCard));
        notices.extend(self.workflow.config.slack.security_channel.as_ref().filter(|_| !decided_before_access).map(|_| NoticeKind::SecuritySummary));
        notices.extend(alert);
        self.queue_notices(&mut next, notices);
        next.claim(now, Duration::seconds(super::outbox::NOTICE_LEASE_SECS));
        let detail = if summary.is_empty() { "nothing had been created".to_string() } else { summary.join("; ") };
        let event = AuditEvent::ok(AuditKind::TornDown, Actor::System, now, detail);
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        info!(session = %stored.id, outcome = ?stored.state, "torn down");
        crate::metrics::torn_down(&stored, self.deadline_of(&stored).await);
        // Boxed: the outbox's future is deep (the security summary gathers a report).
        Box::pin(self.deliver_notices(stored)).await?;
        Ok(StepOutcome::TornDown)
    }

    async fn retry_teardown_later(&self, read: Session, channels: &[String], dependency: Option<Dependency>, cause: String) -> Result<StepOutcome, StepError> {
        let now = self.now();
        crate::metrics::teardown_failed(dependency.map_or("other", Dependency::as_str));
        error!(session = %read.id, %cause, attempt = read.teardown.attempts + 1, "teardown failed; will retry");
        let mut next = read.clone();
        next.apply(Event::TeardownFailed).map_err(|_| StepError::Store(StoreError::Conflict(read.id.clone())))?;
        next.teardown.attempts += 1;
        next.teardown.first_failed_at.get_or_insert(now);
        next.teardown.last_error = Some(cause.clone());
        next.teardown.last_dependency = dependency;
        next.claim(now, teardown_backoff(next.teardown.attempts));
        let stuck_since = next.teardown.first_failed_at.unwrap_or(now);
        let alert = !next.teardown.alerted && now - stuck_since >= self.workflow.config.scheduler.teardown_alert_after.to_chrono();
        next.teardown.alerted |= alert;
        if alert {
            crate::metrics::teardown_stuck();
            let failing_for_secs = (now - stuck_since).num_seconds().max(1) as u64;
            let alerts = channels.iter().map(|channel| NoticeKind::StuckTeardown { channel: channel.clone(), failing_for_secs });
            self.queue_notices(&mut next, alerts.collect::<Vec<_>>());
        }
        let event = AuditEvent::failed(AuditKind::TeardownFailed, Actor::System, now, cause.clone());
        let Some(stored) = self.save(&read, &next, Some(event)).await? else {
            return Ok(StepOutcome::Skipped);
        };
        // This worker holds the session until the backoff ends: deliver what is owed meanwhile.
        if stored.outbox.iter().any(|n| n.sent_at.is_none() && n.due_at <= now) {
            // Boxed: the outbox's future is deep (the security summary gathers a report).
            Box::pin(self.deliver_notices(stored)).await?;
        }
        Ok(StepOutcome::TeardownRetry(cause))
    }

    // -----------------------------------------------------------------------------------------
    // Messages that must not stop the lifecycle
    // -----------------------------------------------------------------------------------------

    async fn tell_requester(&self, session: &Session, message: &Message) {
        if let Err(e) = self.notifier.dm(&session.requester.slack_id, message).await {
            error!(session = %session.id, error = %e, "could not DM the requester");
        }
    }

    async fn refresh_card(&self, session: &Session) {
        let card = (&session.slack.approval_channel, &session.slack.approval_ts, self.workflow.config.target(&session.target));
        if let (Some(channel), Some(ts), Some(target)) = card {
            let at = Posted { channel: channel.clone(), ts: ts.clone() };
            if let Err(e) = self.notifier.update(&at, &messages::approval_card(session, target)).await {
                error!(session = %session.id, error = %e, "could not update the approval card");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_backoff_grows_and_is_capped() {
        assert_eq!(teardown_backoff(0), Duration::seconds(15));
        assert_eq!(teardown_backoff(1), Duration::seconds(30));
        assert_eq!(teardown_backoff(3), Duration::seconds(120));
        assert_eq!(teardown_backoff(40), Duration::seconds(300));
    }
}
