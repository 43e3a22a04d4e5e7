//! What the security team reads in their channel: each session's summary at teardown.

use super::{context, escape, fields, header, section};
use crate::domain::Session;
use crate::notify::Message;
use crate::report::Report;

/// The command that prints the full report as one HTML page.
pub fn report_command(session: &str) -> String {
    format!("powerpole audit --config powerpole.toml --session {session} --report --format html > {session}.html")
}

/// A closed session in numbers, with the command for the whole timeline.
pub fn session_summary(r: &Report) -> Message {
    let approved = if r.approved_by.is_empty() { "nobody".to_string() } else { r.approved_by.join(", ") };
    let text = format!(
        "Session {} ended: {} had {} on `{}`, approved by {approved}. {} shell command(s) (as the terminal showed them); statements {}; {} refused.{}",
        r.session,
        r.requester,
        r.role,
        r.target,
        r.shell_commands,
        r.statement_counts(),
        r.refused,
        if r.suspicious.is_empty() && r.flags.is_empty() { String::new() } else { format!(" {} suspicious statement(s), {} thing(s) to look at (below).", r.suspicious.len(), r.flags.len()) }
    );
    let mut blocks = vec![
        header(&format!("Session {} ended", r.session)),
        fields(&[
            ("Who", format!("{} (database user `{}`)", r.requester, escape(&r.db_user))),
            ("What", format!("{} on `{}` · {}", r.role, r.target, escape(&r.state))),
            ("Approved by", approved),
            ("Shell commands", r.shell_commands.to_string()),
            ("Statements", r.statement_counts()),
            ("Refused", r.refused.to_string()),
        ]),
        section(&format!("*Reason*\n>{}", escape(&r.reason).replace('\n', "\n>"))),
    ];
    // What cannot be classified, and what a transcript shows of attempts to hide, is named.
    for q in &r.suspicious {
        blocks.push(context(&format!(":rotating_light: Suspicious statement (could not be classified): `{}`", escape(&q.replace('`', "'")))));
    }
    for f in &r.flags {
        blocks.push(context(&format!(":rotating_light: Look at: {}", escape(&crate::report::terminal::printable(f)))));
    }
    for m in &r.missing {
        blocks.push(context(&format!(":warning: Not included: {}", escape(m))));
    }
    blocks.push(context(&format!("Full timeline: `{}`", report_command(r.session.as_str()))));
    Message::new(text, blocks)
}

/// When the report could not be gathered: the session still gets its line, and the reason.
pub fn summary_unavailable(s: &Session, why: &str) -> Message {
    Message::plain(format!(
        "Session {} ended ({} on `{}` for <@{}>). Its summary could not be gathered: {}. Try `{}`.",
        s.id,
        s.role,
        s.target,
        s.requester.slack_id,
        escape(why),
        report_command(s.id.as_str())
    ))
}
