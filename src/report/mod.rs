//! The security team's session report: one ordered timeline joining
//! - the session's trail from the store (who asked, who approved, every lifecycle step),
//! - the Session Manager transcript of its bastion (CloudWatch Logs, [`crate::transcripts`]),
//! - the database's own audit events for the person's account over the session's window
//!   (Aurora's audit log group, or a server_audit file).
//!
//! [`gather`] reads the three sources; [`Report`] is pure data, rendered as text, JSON or one
//! self-contained HTML page ([`html`]). `powerpole audit --session ID --report` prints it, and at
//! teardown a summary goes to the security channel ([`Report::summary`]).

pub mod db_audit;
pub mod html;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::{Config, DbAuditSource};
use crate::domain::{Actor, Session, SessionId};
use crate::store::{AuditRecord, Store, StoreError};
use crate::transcripts::{CloudWatchLogs, ShellEvent};
pub use db_audit::{DbEvent, StatementKind};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("there is no session {0}: check the id (`powerpole audit --user U...` lists a person's sessions)")]
    NotFound(SessionId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where one timeline entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// powerpole's own trail.
    Trail,
    /// The shell on the bastion (Session Manager).
    Shell,
    /// The database's audit log.
    Database,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Trail => "powerpole",
            Source::Shell => "shell",
            Source::Database => "database",
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub source: Source,
    /// Who did it: a Slack user, powerpole, the IAM principal, the database account.
    pub who: String,
    /// What it was: an event kind, a shell line, a statement.
    pub what: String,
    /// `read` / `write` / `DDL` / `other` for statements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Set when the step failed or the database refused the statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The report on one session.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub session: SessionId,
    pub target: String,
    pub role: String,
    pub requester: String,
    pub db_user: String,
    pub reason: String,
    pub state: String,
    pub approved_by: Vec<String>,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub instance: Option<String>,
    pub timeline: Vec<Entry>,
    pub shell_commands: usize,
    /// Statements by kind (`read`, `write`, `DDL`, `other`).
    pub statements: BTreeMap<String, usize>,
    pub refused: usize,
    /// Sources that were not read, and why (the report says so rather than look complete).
    pub missing: Vec<String>,
}

/// A shell command in a Session Manager transcript line: the text after a prompt (`sh-5.2$ `,
/// `[pp-alice@ip-10-0-1-5 ~]$ `, `# `). Output lines and the mysql client's own prompt are not
/// commands (statements are counted from the database's log instead).
pub fn shell_command(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let (prompt, command) = ["$ ", "# "].iter().filter_map(|p| line.find(p).map(|i| (&line[..i + 1], line[i + 2..].trim()))).min_by_key(|(p, _)| p.len())?;
    let bracketed = prompt.starts_with('[') && prompt[..prompt.len() - 1].ends_with(']');
    let plain = !prompt.contains(char::is_whitespace);
    ((bracketed || plain) && prompt.len() <= 80 && !command.is_empty()).then_some(command)
}

fn actor(a: &Actor) -> String {
    match a {
        Actor::User(u) => format!("<@{u}>"),
        Actor::System => "powerpole".into(),
    }
}

impl Report {
    /// Builds the report from what the three sources gave.
    pub fn build(session: &Session, trail: &[AuditRecord], shell: &[ShellEvent], db: &[DbEvent], window: (DateTime<Utc>, DateTime<Utc>), missing: Vec<String>) -> Report {
        let mut timeline = Vec::new();
        for r in trail {
            timeline.push(Entry {
                at: r.event.at,
                source: Source::Trail,
                who: actor(&r.event.actor),
                what: if r.event.detail.is_empty() { r.event.kind.as_str().to_string() } else { format!("{}: {}", r.event.kind.as_str(), r.event.detail) },
                kind: None,
                problem: r.event.outcome.clone().err(),
            });
        }
        let mut shell_commands = 0;
        for e in shell {
            let who = e.run_as.clone().or_else(|| e.principal.clone()).unwrap_or_else(|| e.ssm_session.clone());
            for line in &e.lines {
                let command = shell_command(line);
                shell_commands += usize::from(command.is_some());
                timeline.push(Entry { at: e.at, source: Source::Shell, who: who.clone(), what: line.clone(), kind: command.map(|_| "command".into()), problem: None });
            }
        }
        let mut statements = BTreeMap::new();
        let mut refused = 0;
        for e in db {
            let (what, kind) = if e.is_statement() {
                *statements.entry(e.kind().as_str().to_string()).or_insert(0) += 1;
                (e.object.clone(), Some(e.kind().as_str().to_string()))
            } else {
                (format!("{} {}", e.operation.to_lowercase(), e.database).trim().to_string(), None)
            };
            refused += usize::from(e.refused());
            timeline.push(Entry {
                at: e.at,
                source: Source::Database,
                who: format!("'{}'@'{}'", e.user, e.host),
                what,
                kind,
                problem: e.refused().then(|| format!("refused by the database (error {})", e.retcode)),
            });
        }
        // Stable: within one second, the trail's order, then the shell's, then the database's.
        timeline.sort_by(|a, b| (a.at, a.source).cmp(&(b.at, b.source)));
        Report {
            session: session.id.clone(),
            target: session.target.to_string(),
            role: session.role.to_string(),
            requester: format!("<@{}>", session.requester.slack_id),
            db_user: session.requester.db_user.to_string(),
            reason: session.reason.clone(),
            state: session.state.to_string(),
            approved_by: match &session.breakglass {
                // Nobody approved a break-glass: say so, and how it was allowed.
                Some(bg) => vec![format!("break-glass (on call: {})", bg.qualified.clone().unwrap_or_else(|| format!("a member of <!subteam^{}>", bg.oncall_group)))],
                None => session.approvals.iter().map(|a| format!("<@{}>", a.approver)).collect(),
            },
            window_from: window.0,
            window_to: window.1,
            instance: session.instance_id.clone(),
            timeline,
            shell_commands,
            statements,
            refused,
            missing,
        }
    }

    /// The report as text, one timeline line each.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Session {} · {} on {} · requester {} (database user {})\nReason: {}\nApproved by: {}\nState: {} · window {} to {} · bastion {}\n",
            self.session,
            self.role,
            self.target,
            self.requester,
            self.db_user,
            self.reason,
            if self.approved_by.is_empty() { "nobody".into() } else { self.approved_by.join(", ") },
            self.state,
            self.window_from.format("%Y-%m-%dT%H:%M:%SZ"),
            self.window_to.format("%Y-%m-%dT%H:%M:%SZ"),
            self.instance.as_deref().unwrap_or("none"),
        );
        out.push_str(&format!("Shell commands: {} · statements: {} · refused: {}\n", self.shell_commands, self.statement_counts(), self.refused));
        for m in &self.missing {
            out.push_str(&format!("NOT INCLUDED: {m}\n"));
        }
        out.push('\n');
        for e in &self.timeline {
            let problem = e.problem.as_ref().map(|p| format!("  [{p}]")).unwrap_or_default();
            let kind = e.kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default();
            out.push_str(&format!("{}  {:<9} {:<28} {}{kind}{problem}\n", e.at.format("%Y-%m-%dT%H:%M:%SZ"), e.source.as_str(), e.who, e.what));
        }
        out
    }

    /// `read 3, write 1, DDL 0` (every kind named, so a zero is visible).
    pub fn statement_counts(&self) -> String {
        ["read", "write", "DDL", "other"].iter().map(|k| format!("{k} {}", self.statements.get(*k).copied().unwrap_or(0))).collect::<Vec<_>>().join(", ")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }
}

/// The window the database and shell logs are read over: from the request to its close (or now),
/// with a minute either side for clock skew between the systems.
pub fn window(session: &Session, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = session.approved_at.unwrap_or(session.created_at) - Duration::minutes(1);
    let to = session.closed_at.unwrap_or(now) + Duration::minutes(1);
    (from, to)
}

/// Reads the three sources and builds the report. `logs` is `None` when CloudWatch Logs is not
/// to be read (then the transcript and any CloudWatch audit log are listed as missing).
pub async fn gather(config: &Config, store: &dyn Store, logs: Option<&CloudWatchLogs>, id: &SessionId, now: DateTime<Utc>) -> Result<Report, ReportError> {
    let session = store.get(id).await?.ok_or_else(|| ReportError::NotFound(id.clone()))?;
    let trail = store.audit_trail(id).await?;
    let (from, to) = window(&session, now);
    let mut missing = Vec::new();
    let shell = match (&session.instance_id, logs) {
        // A source that cannot be read is named in the report, not fatal: the rest still tells.
        (Some(instance), Some(logs)) => logs.shell_events(&config.audit.session_log_group, instance, from, to).await.unwrap_or_else(|e| {
            missing.push(format!("the Session Manager transcript: {e}"));
            Vec::new()
        }),
        (Some(_), None) => {
            missing.push("the Session Manager transcript (CloudWatch Logs not read)".into());
            Vec::new()
        }
        (None, _) => Vec::new(),
    };
    let user = session.requester.db_user.to_string();
    let host = session.account_host.clone();
    let lines: Vec<String> = match (config.audit.database_logs.get(&session.target), logs) {
        (Some(DbAuditSource::CloudWatch(group)), Some(logs)) => match logs.lines(group, from, to).await {
            Ok(lines) => lines.into_iter().map(|l| l.message).collect(),
            Err(e) => {
                missing.push(format!("the database audit log: {e}"));
                Vec::new()
            }
        },
        (Some(DbAuditSource::CloudWatch(group)), None) => {
            missing.push(format!("the database audit log {group} (CloudWatch Logs not read)"));
            Vec::new()
        }
        (Some(DbAuditSource::File(path)), _) => match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(e) => {
                missing.push(format!("the database audit file {}: {e}", path.display()));
                Vec::new()
            }
        },
        (None, _) => {
            missing.push(format!("the database's own audit log (no audit.database_logs.{} configured)", session.target));
            Vec::new()
        }
    };
    // The person's account only, over the window; on the bastion's host when it is known.
    let db: Vec<DbEvent> = lines
        .iter()
        .filter_map(|l| db_audit::parse_line(l))
        .filter(|e| e.user == user && e.at >= from && e.at <= to)
        .filter(|e| host.as_deref().is_none_or(|h| h == "%" || h.contains('%') || h.contains('/') || e.host == h))
        .collect();
    Ok(Report::build(&session, &trail, &shell, &db, (from, to), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_the_text_after_a_prompt() {
        assert_eq!(shell_command("sh-5.2$ mysql -h billing"), Some("mysql -h billing"));
        assert_eq!(shell_command("[pp-alice@ip-10-0-1-5 ~]$ ls -la"), Some("ls -la"));
        assert_eq!(shell_command("sh-5.2$ "), None, "an empty prompt is not a command");
        assert_eq!(shell_command("total 3 $ not a prompt"), None, "output is not a command");
        assert_eq!(shell_command("mysql> SELECT 1;"), None);
    }
}
