//! `powerpole reconcile`: find and remove what should not exist, in this deployment only.
//!
//! - bastions tagged `powerpole:managed=true` and `powerpole:deployment=<this id>` whose session
//!   is closed, unknown or missing;
//! - database accounts this deployment created (they hold its marker role,
//!   [`crate::grants::sql::marker_role`]) that no live session owns;
//! - live sessions whose next action is overdue (a deadline missed while nothing ran): they are
//!   acted on now, exactly as the sweeper would.
//!
//! Nothing is removed on one read. The session index behind [`Store::live`](crate::store::Store::live)
//! and EC2's listing are eventually consistent, so:
//!
//! - a bastion is removed only if it is older than `[scheduler] reconcile_grace` (its session may
//!   not be readable yet), it is in a second listing too, and a strongly consistent read of its
//!   session (`Store::get`) finds that session closed or absent;
//! - accounts are listed *before* the live sessions are read a second time, and an account is
//!   removed only if neither reading of the live sessions owns it. A session owns its recorded
//!   account, every host of its user while it has not recorded one yet (it may be about to
//!   create it), and, if its target is no longer configured, its user on every server.
//!
//! With `dry_run`, it only reports (after the same checks). Everything it removes is removed by
//! the same idempotent adapter calls a teardown uses, so two replicas reconciling at once do
//! nothing twice that matters: each removal is claimed first in the store (`remember_once`, for a
//! minute), so one of them removes and posts it, and a terminate or drop that finds the thing
//! gone is done anyway.
//! What it removed is posted in the approvals channel of the target concerned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::Duration;

use crate::bastion::{BastionError, ManagedInstance};
use crate::config::TargetConfig;
use crate::domain::{DbUsername, DeploymentId, Session, SessionId};
use crate::notify::Message;
use crate::store::StoreError;

use super::lifecycle::Lifecycle;

/// Why reconcile could not look (then it removed nothing of that kind).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("the live sessions could not be read, so nothing was removed: {0}")]
    Store(#[from] StoreError),
    #[error("the bastions of deployment `{deployment}` could not be listed, so none was removed: {source}")]
    ListBastions { deployment: DeploymentId, source: BastionError },
}

/// One thing reconcile found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Instance { id: String, session: Option<String>, target: Option<String>, why: &'static str },
    Account { target: String, user: String, host: String },
    OverdueSession { id: SessionId, state: String, overdue_by: Duration },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Instance { id, session, why, .. } => {
                write!(f, "instance {id} (session {}): {why}", session.as_deref().unwrap_or("none"))
            }
            Finding::Account { target, user, host } => write!(f, "account '{user}'@'{host}' on {target}: no live session owns it"),
            Finding::OverdueSession { id, state, overdue_by } => {
                write!(f, "session {id} ({state}): next action overdue by {}s", overdue_by.num_seconds())
            }
        }
    }
}

/// A finding and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    pub finding: Finding,
    /// `None` in a dry run; otherwise what removing it gave.
    pub result: Option<Result<String, String>>,
}

impl Fixed {
    /// A bastion or an account that is gone now because of this run.
    pub fn removed(&self) -> bool {
        matches!(self.finding, Finding::Instance { .. } | Finding::Account { .. }) && matches!(self.result, Some(Ok(_)))
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            None => write!(f, "found   {}", self.finding),
            Some(Ok(done)) => write!(f, "fixed   {} -> {done}", self.finding),
            Some(Err(e)) => write!(f, "FAILED  {} -> {e}", self.finding),
        }
    }
}

/// How long a replica's claim on removing one stray lasts. Longer than any removal takes, and
/// short enough that one that failed is tried again by the next scheduled run.
const REMOVAL_CLAIM: Duration = Duration::minutes(1);

/// Which database server an account lives on: accounts belong to a server, not to a target
/// (several targets, schemas of one cluster, may share one).
type Server = (String, u16);

fn server(target: &TargetConfig) -> Server {
    (target.writer_endpoint.to_ascii_lowercase(), target.port)
}

/// The accounts live sessions own, per server, as `(user, host)`; host `*` while a session has
/// not recorded its host yet. `everywhere`: users of sessions whose target is no longer
/// configured (their server is unknown, so they are spared on all).
#[derive(Default)]
struct Owned {
    per_server: HashMap<Server, HashSet<(String, String)>>,
    everywhere: HashSet<String>,
}

impl Owned {
    fn add(&mut self, lifecycle: &Lifecycle, sessions: &[Session]) {
        for s in sessions {
            let user = s.requester.db_user.to_string();
            let Some(target) = lifecycle.workflow.config.target(&s.target) else {
                self.everywhere.insert(user);
                continue;
            };
            let host = s.account_host.clone().unwrap_or_else(|| "*".to_string());
            self.per_server.entry(server(target)).or_default().insert((user, host));
        }
    }

    fn owns(&self, at: &Server, user: &str, host: &str) -> bool {
        self.everywhere.contains(user)
            || self.per_server.get(at).is_some_and(|set| set.contains(&(user.to_string(), host.to_string())) || set.contains(&(user.to_string(), "*".to_string())))
    }
}

impl Lifecycle {
    /// Finds (and unless `dry_run`, removes) what should not exist in this deployment, and posts
    /// what it removed in the approvals channels. `grace`: how overdue a session must be to
    /// count (a tick or two, so work in flight is not reported).
    pub async fn reconcile(&self, dry_run: bool, grace: Duration) -> Result<Vec<Fixed>, ReconcileError> {
        let live = self.workflow.store.live().await?;
        let mut out = Vec::new();
        out.extend(self.stray_instances(&live, dry_run).await?);
        out.extend(self.stray_accounts(&live, dry_run).await?);
        out.extend(self.overdue_sessions(live, dry_run, grace).await);
        if !dry_run {
            self.announce(&out).await;
        }
        Ok(out)
    }

    async fn list_bastions(&self) -> Result<Vec<ManagedInstance>, ReconcileError> {
        self.bastions.list_managed().await.map_err(|source| ReconcileError::ListBastions { deployment: self.workflow.config.deployment.id.clone(), source })
    }

    async fn stray_instances(&self, live: &[Session], dry_run: bool) -> Result<Vec<Fixed>, ReconcileError> {
        let now = self.workflow.clock.now();
        let young = self.workflow.config.scheduler.reconcile_grace;
        let live_ids: HashSet<&str> = live.iter().map(|s| s.id.as_str()).collect();
        let suspects: Vec<ManagedInstance> = self
            .list_bastions()
            .await?
            .into_iter()
            // No launch time, or a recent one: its session may not be readable yet.
            .filter(|i| i.launched_at.is_some_and(|at| now - at >= young))
            .filter(|i| !i.session.as_deref().is_some_and(|s| live_ids.contains(s)))
            .collect();
        if suspects.is_empty() {
            return Ok(Vec::new());
        }
        // A second listing: act only on what is still there and still says the same.
        let again: HashMap<String, ManagedInstance> = self.list_bastions().await?.into_iter().map(|i| (i.id.clone(), i)).collect();
        let mut out = Vec::new();
        for instance in suspects {
            if again.get(&instance.id).is_none_or(|i| i.session != instance.session) {
                continue;
            }
            // The closed session whose trail records the removal.
            let mut closed = None;
            let why = match instance.session.as_deref().map(SessionId::parse) {
                None => "tagged powerpole:managed but has no session tag",
                Some(Err(_)) => "its session tag is not a session id",
                // Strongly consistent: a session that is live after all keeps its bastion.
                Some(Ok(id)) => match self.workflow.store.get(&id).await {
                    Ok(Some(s)) if !s.state.is_closed() => continue,
                    Ok(Some(_)) => {
                        closed = Some(id);
                        "its session is closed"
                    }
                    Ok(None) => "its session is unknown",
                    Err(e) => {
                        out.push(Fixed { finding: instance_finding(&instance, "its session could not be read"), result: Some(Err(format!("not removed: {e}"))) });
                        continue;
                    }
                },
            };
            let finding = instance_finding(&instance, why);
            let result = if dry_run {
                None
            } else {
                match self.claim(&format!("instance:{}", instance.id)).await {
                    Ok(false) => continue,
                    Ok(true) => {
                        let terminated = self.bastions.terminate(&instance.id).await;
                        if let (Ok(()), Some(id)) = (&terminated, &closed) {
                            self.record_undone(id, format!("reconcile terminated instance {}, left running after the session closed", instance.id), None, None).await;
                        }
                        Some(terminated.map(|_| "terminated".to_string()).map_err(|e| e.to_string()))
                    }
                    Err(e) => Some(Err(format!("not removed: {e}"))),
                }
            };
            out.push(Fixed { finding, result });
        }
        Ok(out)
    }

    async fn stray_accounts(&self, live: &[Session], dry_run: bool) -> Result<Vec<Fixed>, ReconcileError> {
        let mut owned = Owned::default();
        owned.add(self, live);
        // List every server once (a target sharing a server with another shows its accounts too).
        let mut listed = HashSet::new();
        let mut suspects = Vec::new();
        let mut out = Vec::new();
        for (name, target) in &self.workflow.config.targets {
            if !listed.insert(server(target)) {
                continue;
            }
            match self.grants.list_accounts(target).await {
                Ok(accounts) => suspects.extend(
                    accounts.into_iter().filter(|(user, host)| !owned.owns(&server(target), user, host)).map(|(user, host)| (name.clone(), target, user, host)),
                ),
                Err(e) => out.push(Fixed {
                    finding: Finding::Account { target: name.to_string(), user: "*".into(), host: "*".into() },
                    result: Some(Err(format!("listing accounts failed: {e}"))),
                }),
            }
        }
        if suspects.is_empty() {
            return Ok(out);
        }
        // The second reading comes after the accounts were listed: a session that recorded its
        // host and created its account before the listing is in it, even if the first reading
        // (taken before) missed it.
        owned.add(self, &self.workflow.store.live().await?);
        for (name, target, user, host) in suspects {
            if owned.owns(&server(target), &user, &host) {
                continue;
            }
            let finding = Finding::Account { target: name.to_string(), user: user.clone(), host: host.clone() };
            let result = match (dry_run, DbUsername::parse(&user)) {
                (true, _) => None,
                (false, Ok(db_user)) => match self.claim(&format!("account:{}:{}:{user}@{host}", server(target).0, server(target).1)).await {
                    Ok(false) => continue,
                    // An account kept locked (it is the DEFINER of objects) is still there: said
                    // so, not "revoked", and not posted again on every run.
                    Ok(true) => Some(match self.grants.revoke(target, &db_user, &host).await {
                        Ok(report) if report.is_complete() => Ok(report.to_string()),
                        Ok(report) => Err(format!("still there: {report}")),
                        Err(e) => Err(e.to_string()),
                    }),
                    Err(e) => Some(Err(format!("not removed: {e}"))),
                },
                (false, Err(e)) => Some(Err(format!("not removed: {e}"))),
            };
            out.push(Fixed { finding, result });
        }
        Ok(out)
    }

    /// Claims the removal of one stray for [`REMOVAL_CLAIM`], so that of two replicas
    /// reconciling at once only one removes it and posts it. False: another has it.
    async fn claim(&self, what: &str) -> Result<bool, StoreError> {
        self.workflow.store.remember_once(&format!("reconcile:{what}"), REMOVAL_CLAIM).await
    }

    async fn overdue_sessions(&self, live: Vec<Session>, dry_run: bool, grace: Duration) -> Vec<Fixed> {
        let now = self.workflow.clock.now();
        let mut out = Vec::new();
        for session in live {
            let Some(due) = session.next_action_at() else { continue };
            let overdue_by = now - due;
            if overdue_by <= grace {
                continue;
            }
            let finding = Finding::OverdueSession { id: session.id.clone(), state: session.state.to_string(), overdue_by };
            let result = if dry_run { None } else { Some(self.act(session).await.map(|o| format!("{o:?}")).map_err(|e| e.to_string())) };
            out.push(Fixed { finding, result });
        }
        out
    }

    /// Posts, per target, what this run removed in that target's approvals channel; nothing
    /// when nothing was removed. A bastion whose target tag names no configured target is only
    /// logged. A failed post is logged: the removal itself is done and printed either way.
    async fn announce(&self, found: &[Fixed]) {
        let mut per_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for fixed in found.iter().filter(|f| f.removed()) {
            let (target, line) = match &fixed.finding {
                Finding::Instance { id, session, target, why } => {
                    (target.clone().unwrap_or_default(), format!("• bastion `{id}` (session {}): {why}; terminated", session.as_deref().unwrap_or("none")))
                }
                Finding::Account { target, user, host } => (target.clone(), format!("• database account `'{user}'@'{host}'`: no live session owned it; revoked")),
                Finding::OverdueSession { .. } => continue,
            };
            per_target.entry(target).or_default().push(line);
        }
        for (target, lines) in per_target {
            let configured = crate::domain::TargetName::parse(&target).ok().and_then(|t| self.workflow.config.target(&t));
            let Some(config) = configured else {
                tracing::warn!(target = %target, removed = lines.len(), "reconcile removed bastions of a target that is not configured; nothing posted");
                continue;
            };
            let text = format!(
                ":broom: *powerpole reconcile* (deployment `{}`) removed on *{target}* what no live session owned:\n{}",
                self.workflow.config.deployment.id,
                lines.join("\n")
            );
            if let Err(e) = self.notifier.post(&config.approvals_channel, &Message::plain(text)).await {
                tracing::warn!(target = %target, error = %e, "could not post what reconcile removed");
            }
        }
    }
}

fn instance_finding(instance: &ManagedInstance, why: &'static str) -> Finding {
    Finding::Instance { id: instance.id.clone(), session: instance.session.clone(), target: instance.target.clone(), why }
}

/// What a scheduled reconcile did, for its log line and the Lambda's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileSummary {
    /// Bastions and accounts removed (and posted in the approvals channels).
    pub removed: usize,
    /// Overdue sessions acted on.
    pub overdue: usize,
    /// What could not be fixed (each finding with its error); retried by the next run.
    pub failed: Vec<String>,
}

impl Lifecycle {
    /// One scheduled run (`serve`'s timer, the Lambda's EventBridge rule): the real run, with the
    /// overdue grace `powerpole reconcile` uses (two scheduler ticks), logged.
    pub async fn reconcile_now(&self) -> Result<ReconcileSummary, ReconcileError> {
        let grace = self.workflow.config.scheduler.tick.to_chrono() * 2;
        let found = self.reconcile(false, grace).await?;
        let summary = ReconcileSummary {
            removed: found.iter().filter(|f| f.removed()).count(),
            overdue: found.iter().filter(|f| matches!(f.finding, Finding::OverdueSession { .. })).count(),
            failed: found.iter().filter(|f| matches!(f.result, Some(Err(_)))).map(|f| f.to_string()).collect(),
        };
        for fixed in &found {
            tracing::info!(deployment = %self.workflow.config.deployment.id, "reconcile: {fixed}");
        }
        tracing::info!(deployment = %self.workflow.config.deployment.id, removed = summary.removed, overdue = summary.overdue, failed = summary.failed.len(), "reconcile done");
        Ok(summary)
    }
}

/// Runs reconcile every `every` until the process ends (`powerpole serve`). The first run is one
/// interval after the start, not at once: a restart loop must not turn into a reconcile loop.
/// Several replicas may each run it: removals are idempotent and each is claimed first
/// ([`Lifecycle::reconcile`]), so a stray is removed and posted once. Waits use the workflow's
/// clock, so the simulator's replicas run this very loop on virtual time.
pub async fn run_reconciler(lifecycle: Lifecycle, every: std::time::Duration) {
    loop {
        lifecycle.workflow.clock.sleep(every).await;
        if let Err(e) = lifecycle.reconcile_now().await {
            tracing::warn!(error = %e, "reconcile could not run; trying again at the next interval");
        }
    }
}
