//! `powerpole audit`: the trail for a person, a target, a session or a time range, as the security
//! team reads it. Read-only: it only queries the store's indexes and each session's trail.

use chrono::{DateTime, Utc};

use crate::domain::{Actor, SessionId, SlackUserId, TargetName};
use crate::store::{AuditRecord, StoreError};

use super::Workflow;

/// Which events to list. Filters combine (AND); with none, every configured target is read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub session: Option<SessionId>,
    pub user: Option<SlackUserId>,
    pub target: Option<TargetName>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// At most this many sessions are read.
    pub sessions_limit: usize,
}

impl Workflow {
    /// The matching audit events, oldest first.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = q.sessions_limit.max(1);
        let sessions = if let Some(id) = &q.session {
            self.store.get(id).await?.into_iter().collect()
        } else if let Some(user) = &q.user {
            self.store.by_requester(user, limit).await?
        } else if let Some(target) = &q.target {
            self.store.by_target(target, q.since, limit).await?
        } else {
            let mut all = Vec::new();
            for target in self.config.targets.keys() {
                all.extend(self.store.by_target(target, q.since, limit).await?);
            }
            all
        };
        let mut events = Vec::new();
        for session in sessions.iter().filter(|s| q.target.as_ref().is_none_or(|t| &s.target == t)) {
            for record in self.store.audit_trail(&session.id).await? {
                let at = record.event.at;
                if q.since.is_none_or(|since| at >= since) && q.until.is_none_or(|until| at <= until) {
                    events.push(record);
                }
            }
        }
        events.sort_by(|a, b| (a.event.at, &a.session_id, a.seq).cmp(&(b.event.at, &b.session_id, b.seq)));
        Ok(events)
    }
}

/// One line of `powerpole audit`: time, session, target, role, requester (db user), event, actor,
/// outcome, detail.
pub fn audit_line(r: &AuditRecord) -> String {
    let actor = match &r.event.actor {
        Actor::User(u) => u.to_string(),
        Actor::System => "powerpole".to_string(),
    };
    let outcome = match &r.event.outcome {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("FAILED: {e}"),
    };
    format!(
        "{}  {}  {:<12} {:<4} {} ({})  {:<20} by {:<12} {}  {}",
        r.event.at.format("%Y-%m-%dT%H:%M:%SZ"),
        r.session_id,
        r.target,
        r.role,
        r.requester,
        r.db_user,
        r.event.kind.as_str(),
        actor,
        outcome,
        r.event.detail
    )
    .trim_end()
    .to_string()
}

/// The same as JSON, one object per line, for tools.
pub fn audit_json(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "at": r.event.at,
        "session": r.session_id,
        "seq": r.seq,
        "target": r.target,
        "role": r.role,
        "requester": r.requester,
        "db_user": r.db_user,
        "event": r.event.kind,
        "actor": r.event.actor,
        "outcome": match &r.event.outcome { Ok(()) => serde_json::Value::from("ok"), Err(e) => serde_json::json!({"error": e}) },
        "detail": r.event.detail,
    })
}
