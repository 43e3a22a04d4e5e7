//! Ephemeral answers to commands: usage, a problem with the exact fix, confirmations and `list`.

use super::{escape, slack_time};
use crate::domain::{Session, State};
use crate::notify::Message;

/// One usage line per subcommand, for `help` and for the problem replies.
pub fn usage_lines(command: &str) -> Vec<(&'static str, String)> {
    vec![
        ("request", format!("`{command} request` opens a form; or `{command} request <target> <READ|DML|DDL> <duration> <reason...>`")),
        ("breakglass", format!("`{command} breakglass <target> <READ|DML|DDL> <duration> <reason...>` takes access at once if you are on call for the target (posted to security, reviewed afterwards)")),
        ("list", format!("`{command} list` shows your sessions")),
        ("end", format!("`{command} end <session id>` ends your session now")),
        ("extend", format!("`{command} extend <session id> <duration>` asks the approvers for more time")),
        ("revoke", format!("`{command} revoke <session id> [reason...]` ends someone's session (approvers only)")),
        ("help", format!("`{command} help` shows this")),
    ]
}

/// The usage of one subcommand (`request`), or of all.
pub fn usage_of(command: &str, sub: &str) -> String {
    usage_lines(command).into_iter().find(|(name, _)| *name == sub).map(|(_, line)| line).unwrap_or_default()
}

/// `help`: every subcommand, and the targets one can ask for.
pub fn usage(command: &str, targets: &[(String, String)]) -> Message {
    let mut text = "*powerpole*: just-in-time, approved access to production databases.\n".to_string();
    for (_, line) in usage_lines(command) {
        text.push_str(&format!("• {line}\n"));
    }
    if !targets.is_empty() {
        text.push_str("Targets: ");
        text.push_str(&targets.iter().map(|(name, max)| format!("`{name}` (up to {max})")).collect::<Vec<_>>().join(", "));
        text.push_str(". Durations look like `30m`, `2h` or `1h30m`.");
    }
    Message::plain(text)
}

/// What was wrong, and how to write it instead.
pub fn problem(problem: &str, usage: &str) -> Message {
    let text = if usage.is_empty() { format!(":warning: {problem}") } else { format!(":warning: {problem}\nUsage: {usage}") };
    Message::plain(text)
}

/// The immediate answer to a valid request.
pub fn request_submitted(session: &crate::domain::SessionId, target: &str, channel: &str) -> Message {
    Message::plain(format!(
        ":inbox_tray: Request {session} for `{target}` sent to the approvers in <#{channel}>. You'll get a DM for every decision."
    ))
}

/// The immediate answer to a typed request: valid, being filed. It does not say "sent": the
/// requester's profile is read after this answer and may still refuse it (said here, then).
pub fn request_checking(session: &crate::domain::SessionId, target: &str, channel: &str) -> Message {
    Message::plain(format!(
        ":hourglass_flowing_sand: Filing request {session} for `{target}`. Once your Slack profile is checked, its card appears in <#{channel}> and you'll get a DM for every decision; if it cannot be filed, you'll read why here."
    ))
}

/// `list`: the requester's sessions, newest first.
pub fn list(sessions: &[Session]) -> Message {
    if sessions.is_empty() {
        return Message::plain("You have no sessions. Ask for one with `/powerpole request`.");
    }
    let lines: Vec<String> = sessions
        .iter()
        .map(|s| {
            format!("• *{}* `{}` {} for {}: {}. _{}_", s.id, s.target, s.role, s.duration, status(s), escape(&s.reason))
        })
        .collect();
    Message::plain(format!("Your sessions:\n{}", lines.join("\n")))
}

/// Where a session is, in the words a requester expects: "waiting for approval since ..." while
/// nobody has decided, "in use until ..." while active. Shared by `list` and App Home.
pub fn status(s: &Session) -> String {
    match (s.state, s.expires_at) {
        (State::Pending, _) if s.approvals.is_empty() => format!("waiting for approval since {}", slack_time(s.created_at)),
        (State::Pending, _) => format!("waiting for more approvals since {} ({} so far)", slack_time(s.created_at), s.approvals.len()),
        (State::Approved | State::Provisioning, _) => "approved; the bastion is being set up".into(),
        (State::Active, Some(e)) => format!("in use until {}", slack_time(e)),
        (State::TearingDown(_), _) => "ending: the account and the bastion are being removed".into(),
        (State::Closed(_), _) => format!("{} (asked {})", s.state, slack_time(s.created_at)),
        _ => s.state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::notify::messages::fixtures::session;

    #[test]
    fn help_lists_every_subcommand_and_the_targets() {
        let m = usage("/powerpole", &[("billing".into(), "4h".into())]);
        for sub in ["request", "list", "end", "extend", "revoke", "help"] {
            assert!(m.text.contains(&format!("/powerpole {sub}")), "{sub}");
        }
        assert!(m.text.contains("`billing` (up to 4h)"));
    }

    #[test]
    fn a_problem_names_it_and_the_usage() {
        let m = problem("unknown role `ADMIN`: use READ, DML or DDL", &usage_of("/powerpole", "request"));
        assert!(m.text.starts_with(":warning: unknown role `ADMIN`"));
        assert!(m.text.contains("Usage: `/powerpole request`"));
    }

    #[test]
    fn list_shows_state_and_escaped_reason() {
        let m = list(&[session(Role::Read)]);
        assert!(m.text.contains("*pp-7k2m9xq4ab* `billing` READ for 1h: waiting for approval since <!date^"), "{}", m.text);
        assert!(m.text.contains("&lt;!channel&gt;"));
        assert!(list(&[]).text.contains("no sessions"));
    }
}
