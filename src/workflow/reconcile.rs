//! `powerpole reconcile`: find and remove what should not exist.
//!
//! - bastions tagged `powerpole:managed=true` whose session is closed, unknown or missing;
//! - database accounts powerpole created (they hold its marker role) that no live session owns;
//! - live sessions whose next action is overdue (a deadline missed while nothing ran): they are
//!   acted on now, exactly as the sweeper would.
//!
//! With `dry_run`, it only reports. Everything it removes is removed by the same idempotent
//! adapter calls a teardown uses.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::Duration;

use crate::config::TargetConfig;
use crate::domain::{DbUsername, Session, SessionId};

use super::lifecycle::{Lifecycle, StepError};

/// One thing reconcile found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Instance { id: String, session: Option<String>, why: &'static str },
    Account { target: String, user: String, host: String },
    OverdueSession { id: SessionId, state: String, overdue_by: Duration },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Instance { id, session, why } => {
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

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            None => write!(f, "found   {}", self.finding),
            Some(Ok(done)) => write!(f, "fixed   {} -> {done}", self.finding),
            Some(Err(e)) => write!(f, "FAILED  {} -> {e}", self.finding),
        }
    }
}

impl Lifecycle {
    /// Finds (and unless `dry_run`, removes) what should not exist. `grace`: how overdue a
    /// session must be to count (a tick or two, so work in flight is not reported).
    pub async fn reconcile(&self, dry_run: bool, grace: Duration) -> Result<Vec<Fixed>, StepError> {
        let live = self.workflow.store.live().await?;
        let mut out = Vec::new();
        out.extend(self.stray_instances(&live, dry_run).await?);
        out.extend(self.stray_accounts(&live, dry_run).await?);
        out.extend(self.overdue_sessions(live, dry_run, grace).await);
        Ok(out)
    }

    async fn stray_instances(&self, live: &[Session], dry_run: bool) -> Result<Vec<Fixed>, StepError> {
        let live_ids: HashSet<&str> = live.iter().map(|s| s.id.as_str()).collect();
        let managed = self.bastions.list_managed().await.map_err(|e| StepError::Adapter(format!("listing bastions failed: {e}")))?;
        let mut out = Vec::new();
        for instance in managed {
            let why = match &instance.session {
                None => "tagged powerpole:managed but has no session tag",
                Some(s) if SessionId::parse(s).is_err() => "its session tag is not a session id",
                Some(s) if !live_ids.contains(s.as_str()) => "its session is closed or unknown",
                Some(_) => continue,
            };
            let finding = Finding::Instance { id: instance.id.clone(), session: instance.session.clone(), why };
            let result = if dry_run {
                None
            } else {
                Some(self.bastions.terminate(&instance.id).await.map(|_| "terminated".to_string()).map_err(|e| e.to_string()))
            };
            out.push(Fixed { finding, result });
        }
        Ok(out)
    }

    async fn stray_accounts(&self, live: &[Session], dry_run: bool) -> Result<Vec<Fixed>, StepError> {
        // Accounts belong to a database server, not to a target: several targets (schemas of one
        // cluster) may share a server, and listing it for one of them shows every target's
        // accounts. So ownership is per server, and each server is listed once.
        let server = |t: &TargetConfig| (t.writer_endpoint.to_ascii_lowercase(), t.port);
        let mut owned: HashMap<(String, u16), HashSet<(String, String)>> = HashMap::new();
        for s in live {
            let Some(target) = self.workflow.config.target(&s.target) else { continue };
            // A live session owns its account from the moment it records the host, and before
            // that it may be about to create it: own every host for its user then.
            let host = s.account_host.clone().unwrap_or_else(|| "*".to_string());
            owned.entry(server(target)).or_default().insert((s.requester.db_user.to_string(), host));
        }
        let mut listed = HashSet::new();
        let mut out = Vec::new();
        for (name, target) in &self.workflow.config.targets {
            if !listed.insert(server(target)) {
                continue;
            }
            let accounts = match self.grants.list_accounts(target).await {
                Ok(a) => a,
                Err(e) => {
                    out.push(Fixed {
                        finding: Finding::Account { target: name.to_string(), user: "*".into(), host: "*".into() },
                        result: Some(Err(format!("listing accounts failed: {e}"))),
                    });
                    continue;
                }
            };
            let mine = owned.get(&server(target));
            for (user, host) in accounts {
                let is_owned = mine.is_some_and(|set| set.contains(&(user.clone(), host.clone())) || set.contains(&(user.clone(), "*".to_string())));
                if is_owned {
                    continue;
                }
                let finding = Finding::Account { target: name.to_string(), user: user.clone(), host: host.clone() };
                let result = match (dry_run, DbUsername::parse(&user)) {
                    (true, _) => None,
                    (false, Ok(db_user)) => Some(self.grants.revoke(target, &db_user, &host).await.map(|r| r.to_string()).map_err(|e| e.to_string())),
                    (false, Err(e)) => Some(Err(format!("not removed: {e}"))),
                };
                out.push(Fixed { finding, result });
            }
        }
        Ok(out)
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
}
