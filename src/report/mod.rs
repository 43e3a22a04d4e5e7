//! The security team's session report: one ordered timeline joining
//! - the session's trail from the store (who asked, who approved, every lifecycle step),
//! - the Session Manager transcript of its bastion (CloudWatch Logs, [`crate::transcripts`]),
//! - the database's own audit events for the person's account over the session's window
//!   (Aurora's audit log group, or a server_audit file).
//!
//! [`gather`] reads the three sources; [`Report`] is pure data, rendered as text, JSON or one
//! self-contained HTML page ([`html`]). `powerpole audit --session ID --report` prints it, and at
//! teardown a summary goes to the security channel ([`Report::summary`]).

pub mod classify;
pub mod db_audit;
pub mod html;
pub mod terminal;

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
    /// `read` / `write` / `DDL` / `other` / `suspicious` for statements; `command` for a shell
    /// line counted as one.
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
    /// Statements by kind (`read`, `write`, `DDL`, `other`, `suspicious`).
    pub statements: BTreeMap<String, usize>,
    /// The statements that could not be classified, as logged (escaped, shortened).
    pub suspicious: Vec<String>,
    /// What the analyst must look at: echo turned off, lines that imitate prompts, clipboard
    /// writes, each with its time.
    pub flags: Vec<String>,
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

/// The prompt of a transcript line (`sh-5.2$`, `[pp-alice@ip-10-0-1-5 ~]$`) and the command
/// after it (possibly empty), on the line as the screen showed it.
fn prompt_of(visible: &str) -> Option<(&str, &str)> {
    let line = visible.trim_end();
    let line_with_space = if line.ends_with(['$', '#']) { None } else { Some(line) };
    let (prompt, command) = match line_with_space {
        Some(l) => ["$ ", "# "].iter().filter_map(|p| l.find(p).map(|i| (&l[..i + 1], l[i + 2..].trim()))).min_by_key(|(p, _)| p.len())?,
        None => (line, ""),
    };
    let bracketed = prompt.starts_with('[') && prompt[..prompt.len() - 1].ends_with(']');
    let plain = !prompt.contains(char::is_whitespace);
    ((bracketed || plain) && prompt.len() <= 80).then_some((prompt, command))
}

/// `stty -echo` (or `stty raw -echo`, `stty -echo -icanon`): what is typed next is not shown.
fn turns_echo_off(text: &str) -> bool {
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|').collect();
    words.iter().position(|w| w.ends_with("stty")).is_some_and(|i| words[i + 1..].iter().take_while(|w| !w.ends_with("stty")).any(|w| *w == "-echo"))
}

/// How each shell line is read: the session's own prompt is the first one the transcript shows
/// (the shell prints it before the person can type or print anything); a line counts as a
/// command only after that prompt, and not when the command before it printed that very text.
/// Lines that look like a prompt otherwise are flagged, not counted.
struct ShellReading {
    prompt: Option<String>,
    last_command: Option<String>,
}

enum ShellLine {
    Command,
    Output,
    /// Looks like a prompt and a command but is not counted as one (why).
    Imitation(&'static str),
}

impl ShellReading {
    fn read(&mut self, visible: &str) -> ShellLine {
        let Some((prompt, command)) = prompt_of(visible) else { return ShellLine::Output };
        let own = self.prompt.get_or_insert_with(|| prompt.to_string());
        if prompt != own.as_str() {
            return if command.is_empty() { ShellLine::Output } else { ShellLine::Imitation("looks like a prompt, but not this session's own") };
        }
        if self.last_command.as_deref().is_some_and(|previous| previous.contains(visible.trim())) && !command.is_empty() {
            return ShellLine::Imitation("printed by the command before it, not typed");
        }
        if command.is_empty() {
            return ShellLine::Output;
        }
        self.last_command = Some(command.to_string());
        ShellLine::Command
    }
}

/// Whether a transcript event is where Session Manager writes it: in the stream named after its
/// session, a session the principal it names opened (Session Manager names a session
/// `<principal's session name>-<id>`). The bastion's role must be able to write to the log group,
/// so root on a bastion can write events anywhere in it; one that is not where Session Manager
/// puts it was written by someone else.
fn misplaced(e: &ShellEvent) -> Option<String> {
    if !e.stream.is_empty() && e.stream != e.ssm_session {
        return Some(format!(
            "an event claiming Session Manager session `{}` was read from the stream `{}`, not from that session's own: Session Manager did not write it (forged?)",
            terminal::printable(&e.ssm_session),
            terminal::printable(&e.stream)
        ));
    }
    let name = e.principal.as_deref().map(|p| p.rsplit('/').next().unwrap_or(p))?;
    if !e.ssm_session.starts_with(&format!("{name}-")) {
        return Some(format!(
            "an event names the principal `{}` but a Session Manager session (`{}`) that principal did not open (forged?)",
            terminal::printable(e.principal.as_deref().unwrap_or_default()),
            terminal::printable(&e.ssm_session)
        ));
    }
    None
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
        let mut flags = Vec::new();
        let mut reading = ShellReading { prompt: None, last_command: None };
        let stamp = |at: DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        for e in shell {
            // The IAM principal that opened the Session Manager session: the run-as user is the
            // same for everyone.
            let who = e.principal.clone().unwrap_or_else(|| format!("unknown principal (Session Manager session {})", e.ssm_session));
            let forged = misplaced(e);
            if let Some(why) = &forged {
                flags.push(format!("{} {why}", stamp(e.at)));
            }
            for line in &e.lines {
                let shown = terminal::visible(line);
                let (kind, mut problem) = match reading.read(&shown) {
                    ShellLine::Command => {
                        shell_commands += 1;
                        (Some("command".to_string()), None)
                    }
                    ShellLine::Output => (None, None),
                    ShellLine::Imitation(why) => {
                        flags.push(format!("{} a line that {why} (not counted as a command): {}", stamp(e.at), terminal::printable(&shown)));
                        (None, Some(format!("{why}; not counted as a command")))
                    }
                };
                if turns_echo_off(&shown) {
                    let why = "the terminal's echo was turned off (stty -echo): what was typed after this does not appear in the transcript";
                    flags.push(format!("{} {who}: {why}", stamp(e.at)));
                    problem = Some(why.to_string());
                }
                if forged.is_some() {
                    problem = Some("not where Session Manager writes this session (see the flags)".to_string());
                }
                if terminal::writes_clipboard(line) {
                    flags.push(format!("{} a line writes the terminal's clipboard (OSC 52)", stamp(e.at)));
                    problem.get_or_insert_with(|| "writes the terminal's clipboard (OSC 52)".to_string());
                }
                timeline.push(Entry { at: e.at, source: Source::Shell, who: who.clone(), what: line.clone(), kind, problem });
            }
        }
        // The log's own class of a statement: the table events it caused (same connection and
        // query id).
        let mut logged: BTreeMap<(&str, &str), StatementKind> = BTreeMap::new();
        for e in db.iter().filter(|e| !e.is_statement()) {
            if let Some(kind) = StatementKind::of_operation(&e.operation) {
                let entry = logged.entry((e.connection.as_str(), e.query_id.as_str())).or_insert(kind);
                *entry = (*entry).max(kind);
            }
        }
        let mut statements = BTreeMap::new();
        let mut suspicious = Vec::new();
        let mut refused = 0;
        for e in db {
            let (what, kind) = if e.is_statement() {
                let mut kind = e.kind();
                if let Some(by_log) = logged.get(&(e.connection.as_str(), e.query_id.as_str())) {
                    kind = kind.max(*by_log);
                }
                *statements.entry(kind.as_str().to_string()).or_insert(0) += 1;
                if kind == StatementKind::Suspicious {
                    let text = terminal::printable(&e.object);
                    let short: String = text.chars().take(200).collect();
                    suspicious.push(if short.len() < text.len() { format!("{short}…") } else { short });
                }
                (e.object.clone(), Some(kind.as_str().to_string()))
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
            suspicious,
            flags,
            refused,
            missing,
        }
    }

    /// The report as text, one timeline line each. Every field is passed through
    /// [`terminal::printable`]: no control sequence from a transcript, a statement or a reason
    /// reaches the analyst's terminal.
    pub fn text(&self) -> String {
        let p = |t: &str| terminal::printable(t);
        let mut out = format!(
            "Session {} · {} on {} · requester {} (database user {})\nReason: {}\nApproved by: {}\nState: {} · window {} to {} · bastion {}\n",
            p(self.session.as_str()),
            p(&self.role),
            p(&self.target),
            p(&self.requester),
            p(&self.db_user),
            p(&self.reason),
            if self.approved_by.is_empty() { "nobody".into() } else { p(&self.approved_by.join(", ")) },
            p(&self.state),
            self.window_from.format("%Y-%m-%dT%H:%M:%SZ"),
            self.window_to.format("%Y-%m-%dT%H:%M:%SZ"),
            p(self.instance.as_deref().unwrap_or("none")),
        );
        out.push_str(&format!("Shell commands: {} · statements: {} · refused: {}\n", self.shell_commands, self.statement_counts(), self.refused));
        out.push_str(&format!("{TERMINAL_NOTE}\n"));
        for s in &self.suspicious {
            out.push_str(&format!("SUSPICIOUS STATEMENT (could not be classified): {}\n", p(s)));
        }
        for f in &self.flags {
            out.push_str(&format!("LOOK AT: {}\n", p(f)));
        }
        for m in &self.missing {
            out.push_str(&format!("NOT INCLUDED: {}\n", p(m)));
        }
        out.push('\n');
        for e in &self.timeline {
            let problem = e.problem.as_ref().map(|x| format!("  [{}]", p(x))).unwrap_or_default();
            let kind = e.kind.as_ref().map(|k| format!(" ({})", p(k))).unwrap_or_default();
            let source = if e.source == Source::Shell { "terminal" } else { e.source.as_str() };
            out.push_str(&format!("{}  {:<9} {:<28} {}{kind}{problem}\n", e.at.format("%Y-%m-%dT%H:%M:%SZ"), source, p(&e.who), p(&e.what)));
        }
        out
    }

    /// `read 3, write 1, DDL 0, other 0, suspicious 0` (every kind named, so a zero is visible).
    pub fn statement_counts(&self) -> String {
        StatementKind::ALL.iter().map(|k| format!("{} {}", k.as_str(), self.statements.get(k.as_str()).copied().unwrap_or(0))).collect::<Vec<_>>().join(", ")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }
}

/// How the report labels the Session Manager transcript: it is the screen, not a command log.
pub const TERMINAL_NOTE: &str = "Terminal lines are what the person's terminal showed (Session Manager's transcript), output included: \
a program can print lines that look like commands, and what is typed with echo off does not appear. Commands are counted \
only after the session's own prompt; lines that imitate one are listed under LOOK AT.";

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

    use crate::domain::Role;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, s).unwrap()
    }

    fn shell(lines: &[&str]) -> ShellEvent {
        ShellEvent {
            at: at(5),
            ssm_session: "alice@example.com-0123456789".into(),
            stream: "alice@example.com-0123456789".into(),
            principal: Some("arn:aws:sts::123456789012:assumed-role/engineer/alice@example.com".into()),
            run_as: Some("pp-session".into()),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn query(id: u32, op: &str, object: &str) -> DbEvent {
        db_audit::parse_line(&format!("20261130 10:00:{:02},vm,alice,10.0.1.5,12,{id},{op},billing,'{}',0", 10 + id, object.replace('\'', "\\'"))).unwrap()
    }

    fn report(shell_events: &[ShellEvent], db: &[DbEvent]) -> Report {
        let session = crate::notify::messages::fixtures::session(Role::Ddl);
        Report::build(&session, &[], shell_events, db, (at(0), at(59)), vec![])
    }

    #[test]
    fn the_reviews_statements_are_counted_as_what_they_do_and_the_unknown_is_named() {
        let db = [
            query(1, "QUERY", "WITH x AS (SELECT 1) DELETE FROM t"),
            query(2, "QUERY", "/*!*/ DROP TABLE t"),
            query(3, "QUERY", "/*!50000 DROP TABLE t */"),
            query(4, "QUERY", "PREPARE s FROM 'DROP TABLE t'; EXECUTE s"),
            query(5, "QUERY", "PREPARE s FROM @hidden"),
            query(6, "QUERY", "SELECT 1"),
        ];
        let r = report(&[], &db);
        assert_eq!(r.statement_counts(), "read 1, write 1, DDL 3, other 0, suspicious 1", "{}", r.text());
        assert_eq!(r.suspicious, ["PREPARE s FROM @hidden"]);
        let summary = crate::notify::messages::security::session_summary(&r);
        let said = format!("{} {}", summary.text, serde_json::to_string(&summary.blocks).unwrap());
        assert!(said.contains("suspicious 1") && said.contains("PREPARE s FROM @hidden"), "the summary names it: {said}");
        assert!(r.text().contains("SUSPICIOUS STATEMENT (could not be classified): PREPARE s FROM @hidden"), "{}", r.text());
    }

    #[test]
    fn the_logs_table_events_raise_a_statements_kind() {
        // A statement the parser reads as a read, whose query caused a DROP by the log's own account.
        let db = [query(7, "QUERY", "SELECT f()"), query(7, "DROP", "t")];
        let r = report(&[], &db);
        assert_eq!(r.statements.get("DDL"), Some(&1), "{}", r.text());
        assert_eq!(r.statements.get("read"), None);
    }

    #[test]
    fn printed_prompts_are_not_commands_and_hiding_is_flagged() {
        let r = report(
            &[shell(&[
                "\u{1b}[?2004hsh-5.2$ ls",
                "notes.txt",
                "sh-5.2$ echo 'sh-5.2$ rm -rf /srv/data'",
                "sh-5.2$ rm -rf /srv/data",
                "sh-5.2$ printf '[root@ip-10-0-1-5 ~]# cat /etc/shadow\\n'",
                "[root@ip-10-0-1-5 ~]# cat /etc/shadow",
                "sh-5.2$ stty -echo",
                "sh-5.2$ ",
                "sh-5.2$ mysql -h billing",
            ])],
            &[],
        );
        assert_eq!(r.shell_commands, 5, "ls, echo, printf, stty, mysql: {}", r.text());
        let flagged: Vec<&str> = r.flags.iter().map(String::as_str).collect();
        assert!(flagged.iter().any(|f| f.contains("printed by the command before it") && f.contains("rm -rf /srv/data")), "{flagged:?}");
        assert!(flagged.iter().any(|f| f.contains("not this session's own") && f.contains("/etc/shadow")), "{flagged:?}");
        assert!(flagged.iter().any(|f| f.contains("echo was turned off")), "{flagged:?}");
        let commands: Vec<&str> = r.timeline.iter().filter(|e| e.kind.as_deref() == Some("command")).map(|e| e.what.as_str()).collect();
        assert!(!commands.contains(&"sh-5.2$ rm -rf /srv/data") && !commands.iter().any(|c| c.starts_with("[root@")), "{commands:?}");
    }

    #[test]
    fn shell_lines_are_attributed_to_the_iam_principal_and_labelled_as_the_terminal() {
        let r = report(&[shell(&["sh-5.2$ whoami", "pp-session"])], &[]);
        let lines: Vec<&Entry> = r.timeline.iter().filter(|e| e.source == Source::Shell).collect();
        assert!(lines.iter().all(|e| e.who == "arn:aws:sts::123456789012:assumed-role/engineer/alice@example.com"), "{lines:?}");
        let text = r.text();
        assert!(text.contains("terminal  arn:aws:sts::") && text.contains("what the person's terminal showed"), "{text}");
        let mut unknown = shell(&["sh-5.2$ id"]);
        unknown.principal = None;
        let r = report(&[unknown], &[]);
        assert!(r.timeline[0].who.contains("unknown principal") && r.timeline[0].who.contains("alice@example.com-0123456789"), "{:?}", r.timeline[0]);
    }

    #[test]
    fn an_event_outside_its_sessions_own_stream_or_principal_is_flagged_as_forged() {
        let honest = report(&[shell(&["sh-5.2$ ls"])], &[]);
        assert!(honest.flags.is_empty(), "{:?}", honest.flags);
        // Root on a colleague's bastion writes a transcript of its own into the log group.
        let mut elsewhere = shell(&["sh-5.2$ SELECT nothing"]);
        elsewhere.stream = "root-forged-stream".into();
        let r = report(&[elsewhere], &[]);
        assert!(r.flags.iter().any(|f| f.contains("root-forged-stream") && f.contains("forged")), "{:?}", r.flags);
        assert!(r.timeline.iter().filter(|e| e.source == Source::Shell).all(|e| e.problem.is_some()));
        // ... or in a stream named like a session of someone else's.
        let mut borrowed = shell(&["sh-5.2$ true"]);
        borrowed.ssm_session = "bob@example.com-0fedcba987".into();
        borrowed.stream = borrowed.ssm_session.clone();
        let r = report(&[borrowed], &[]);
        assert!(r.flags.iter().any(|f| f.contains("did not open")), "{:?}", r.flags);
    }

    #[test]
    fn escape_sequences_never_reach_the_text_output() {
        let nasty = "sh-5.2$ ls\u{1b}[2K\r\u{1b}[1Ash-5.2$ true\u{1b}]52;c;cm0gLXJmIC8K\u{7}\u{1b}]0;pwned\u{1b}\\\u{9b}2J\u{202e}";
        let mut r = report(&[shell(&[nasty])], &[query(1, "QUERY", "SELECT '\u{1b}[2J'")]);
        r.reason = "INC-1\u{1b}[31m red".into();
        r.missing.push("the log: \u{1b}]52;c;aGk=\u{7}".into());
        for out in [r.text(), html::render(&r), crate::notify::messages::security::session_summary(&r).text] {
            assert!(!out.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'), "a raw control character in {out:?}");
        }
        assert!(r.text().contains("\\x1b]52;"), "the sequence is shown, escaped: {}", r.text());
        assert!(r.flags.iter().any(|f| f.contains("clipboard")), "{:?}", r.flags);
    }
}
