//! The messages of a session that has a bastion: the hand-over DM (and its redaction at
//! teardown), the expiry warning, and the teardown notice.

use super::{actions, button, context, escape, header, local_time, section};
use crate::config::TargetConfig;
use crate::domain::{Outcome, Session, State};
use crate::notify::Message;

/// What the hand-over needs beyond the session: where the bastion is, the session document to
/// open it with, and the password.
#[derive(Clone, Copy)]
pub struct Handover<'a> {
    pub region: &'a str,
    pub instance_id: &'a str,
    /// powerpole's Session Manager document (`[bastion] session_document`): the engineer policy
    /// allows sessions with it only.
    pub document: &'a str,
    /// `None` renders the redacted form (after teardown).
    pub password: Option<&'a str>,
}

impl std::fmt::Debug for Handover<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("region", &self.region)
            .field("instance_id", &self.instance_id)
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

/// The command that opens a shell on the bastion. It names powerpole's document: the console's
/// one-click link to an instance uses the account's default document instead, which the
/// engineer policy does not allow, so the DM offers no such link.
pub fn start_session_command(region: &str, instance_id: &str, document: &str) -> String {
    format!("aws ssm start-session --target {instance_id} --document-name {document} --region {region}")
}

/// The `mysql` command line. It ends in a bare `-p`, so the client asks for the password: a
/// password on a command line would be kept by the shell history and the session log. One
/// argument per element, so that an option is added by adding an element.
///
/// With `ca_bundle` (the account requires TLS and the bastion holds the target's CA bundle there),
/// the client checks the server certificate against it and the endpoint's name: without that, a
/// man in the middle inside the VPC could read the password.
pub fn mysql_command(endpoint: &str, port: u16, user: &str, ca_bundle: Option<&str>) -> String {
    let port = port.to_string();
    let ssl_ca = ca_bundle.map(|path| format!("--ssl-ca={path}"));
    let mut args: Vec<&str> = vec!["mysql", "-h", endpoint, "-P", &port];
    if let Some(ssl_ca) = &ssl_ca {
        args.extend(["--ssl-verify-server-cert", ssl_ca.as_str()]);
    }
    args.extend(["-u", user, "-p"]);
    args.join(" ")
}

/// The DM that hands the session over: how to reach the bastion, the `mysql` command line (the
/// reader endpoint for READ when the target has one), the password and the expiry in the
/// requester's time zone.
/// What a hand-over DM reads while it shows the password, and only then (its redacted form says
/// "has ended"): how a stray one is found in the DM history.
pub fn ready_marker(session: &Session) -> String {
    format!("is ready ({})", session.id)
}

pub fn handover_dm(session: &Session, target: &TargetConfig, handover: Handover<'_>) -> Message {
    let Handover { region, instance_id, document, password } = handover;
    let endpoint = target.endpoint_for(session.role);
    let user = &session.requester.db_user;
    let expiry = session.expires_at.map(|e| local_time(e, session.requester.tz.as_deref())).unwrap_or_else(|| "when revoked".into());
    let ssm = start_session_command(region, instance_id, document);
    let ca_bundle = crate::bastion::launch::bastion_ca_bundle(target).map(|_| crate::bastion::launch::BASTION_CA_BUNDLE);
    let mysql = mysql_command(endpoint, target.port, user.as_str(), ca_bundle);
    let (title, password_line) = match password {
        Some(p) => (
            format!("Your {} access to {} {}", session.role, session.target, ready_marker(session)),
            format!("*Password* (paste it when `mysql` asks for it; it stops working when the session ends)\n```{p}```"),
        ),
        None => (
            format!("Your {} access to {} has ended ({})", session.role, session.target, session.id),
            "*Password* redacted: the session has ended and the account was dropped.".to_string(),
        ),
    };
    let text = format!("{title}. Expires {expiry}.");
    let blocks = vec![
        header(&title),
        section(&format!("*{}* on `{}` until *{expiry}*", session.role, session.target)),
        section(&format!(
            "*1. Open a shell on your bastion* with the AWS CLI and its Session Manager plugin:\n```{ssm}```\n\
             In the Session Manager console, choose *Start session*, the document `{document}` and the instance `{instance_id}` \
             (a session with any other document is refused)."
        )),
        section(&format!("*2. Connect to the database from there*\n```{mysql}```")),
        section(&password_line),
    ];
    let mut blocks = blocks;
    if password.is_some() {
        blocks.push(context(&format!(
            "Everything you type is recorded. Finish early with `/powerpole end {}`; ask for more time with `/powerpole extend {} 30m`.",
            session.id, session.id
        )));
    }
    Message::new(text, blocks)
}

/// What the hand-over DM becomes at teardown (`chat.update`): when and why the session ended and
/// what was removed. The password is gone, and so are the connection instructions: the instance
/// they named is terminated, and a pasted `aws ssm start-session` would only fail.
pub fn redacted_handover(session: &Session, _target: &TargetConfig, _region: &str, instance_id: &str, _document: &str) -> Message {
    let title = format!("Your {} access to {} has ended ({})", session.role, session.target, session.id);
    let when = session.closed_at.map(|t| local_time(t, session.requester.tz.as_deref())).unwrap_or_else(|| "now".into());
    let why = why_ended(session);
    let text = format!("{title}: {why}, at {when}.");
    let blocks = vec![
        header(&title),
        section(&format!("*Ended* {when}: {why}.")),
        section(&format!(
            "The bastion `{instance_id}` was terminated and the database account `{}` dropped. *Password* redacted: it no longer opens anything.",
            session.requester.db_user
        )),
        context("Need access again? Ask with `/powerpole request`."),
    ];
    Message::new(text, blocks)
}

/// Why a session ended, as its requester reads it ("it expired", "an approver revoked it (...)").
pub fn why_ended(session: &Session) -> String {
    match session.state.outcome() {
        Some(Outcome::Expired) => "it expired".to_string(),
        Some(Outcome::EndedByRequester) => "you ended it".to_string(),
        Some(Outcome::RevokedByApprover) => format!(
            "an approver revoked it{}",
            session.decision_reason.as_deref().filter(|r| !r.trim().is_empty()).map(|r| format!(" ({})", escape(r))).unwrap_or_default()
        ),
        Some(Outcome::Failed) => format!(
            "it could not be set up{}",
            session.decision_reason.as_deref().filter(|r| !r.trim().is_empty()).map(|r| format!(" ({})", escape(r))).unwrap_or_default()
        ),
        _ => "it was closed".to_string(),
    }
}

/// The DM sent `warning_lead` before expiry, with Extend and End-now buttons.
pub fn warning_dm(session: &Session) -> Message {
    let expiry = session.expires_at.map(|e| local_time(e, session.requester.tz.as_deref())).unwrap_or_else(|| "soon".into());
    let text = format!("Your {} access to {} ({}) ends at {expiry}.", session.role, session.target, session.id);
    let end = super::confirmed(
        button(actions::END_NOW, "End now", session.id.as_str(), Some("danger")),
        "End the session now?",
        "The bastion is terminated and your database account dropped.",
        "End now",
        "Keep it",
    );
    let blocks = vec![
        section(&format!(":alarm_clock: {text} Need longer? Ask the approvers for an extension.")),
        super::actions("expiry", vec![button(actions::EXTEND, "Extend", session.id.as_str(), Some("primary")), end]),
    ];
    Message::new(text, blocks)
}

/// The notice when a session's resources are gone.
pub fn teardown_notice(session: &Session) -> Message {
    let why = why_ended(session);
    let gone = if session.state == State::Closed(Outcome::Failed) && session.instance_id.is_none() {
        "Nothing was left running.".to_string()
    } else {
        format!("The bastion was terminated and the database account `{}` dropped.", session.requester.db_user)
    };
    // A DM to the requester: no mention of them (it would only notify them twice).
    Message::plain(format!("Your {} access to `{}` ({}) has ended: {why}. {gone}", session.role, session.target, session.id))
}

/// The DM when nobody decided a request within the pending timeout.
pub fn request_timed_out(session: &Session) -> Message {
    Message::plain(format!(
        "Your request {} for {} access to `{}` expired: no approver decided in time. Ask again with `/powerpole request` if you still need it.",
        session.id, session.role, session.target
    ))
}

/// The DM when provisioning failed and was rolled back. `what` is written for the requester
/// (`ProvisionError::for_people`); the technical cause is in the operator's log.
pub fn provisioning_failed(session: &Session, what: &str) -> Message {
    Message::plain(format!(
        ":x: Your {} access to `{}` ({}) could not be set up: {}. Everything created for it is being removed; \
         nothing was handed over. The platform team that runs powerpole has the cause in its log, under {}. \
         Ask again with `/powerpole request` in a few minutes; if it fails again, tell them.",
        session.role,
        session.target,
        session.id,
        escape(what),
        session.id
    ))
}

/// Posted in the approvals channel when a teardown left the database account locked instead of
/// dropped (MySQL refuses to drop an account that is the DEFINER of a view or routine).
pub fn account_kept_locked(session: &Session, reason: &str) -> Message {
    Message::plain(format!(
        ":warning: Session {} on `{}` ended, but the database account `{}` could not be dropped: {}. \
         It is locked (no login, sessions killed) and keeps the privileges those objects run with. An operator must reassign what it defines, then run `powerpole reconcile`.",
        session.id,
        session.target,
        session.requester.db_user,
        escape(reason)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, Role};
    use crate::notify::messages::fixtures::{session, t0, target};

    fn active(role: Role) -> Session {
        let mut s = session(role);
        for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver] {
            s.apply(e).unwrap();
        }
        s.start_clock(t0(), "10m".parse().unwrap());
        s
    }

    const HANDOVER: Handover<'static> =
        Handover { region: "eu-west-1", instance_id: "i-0123456789abcdef0", document: "powerpole-session", password: Some("s3cr'et") };

    #[test]
    fn the_handover_has_everything_to_connect() {
        let m = handover_dm(&active(Role::Dml), &target(), HANDOVER);
        let all = m.readable();
        for expected in [
            "aws ssm start-session --target i-0123456789abcdef0 --document-name powerpole-session --region eu-west-1",
            "```mysql -h billing.cluster-abc.eu-west-1.rds.amazonaws.com -P 3307 --ssl-verify-server-cert --ssl-ca=/etc/powerpole/rds-ca-bundle.pem -u alice -p```",
            "```s3cr'et```",
            "16:00 CET on Tue 3 Mar (Europe/Berlin)",
        ] {
            assert!(all.contains(expected), "{expected} missing in\n{all}");
        }
    }

    #[test]
    fn the_password_is_never_on_a_command_line() {
        let all = handover_dm(&active(Role::Dml), &target(), HANDOVER).readable();
        for line in all.lines().filter(|l| l.contains("s3cr'et")) {
            assert_eq!(line.trim_matches('`'), "s3cr'et", "the password stands on its own line: {line}");
        }
        assert!(!all.contains("-ps3cr") && !all.contains("-p's3cr") && !all.contains("-p s3cr"), "{all}");
    }

    #[test]
    fn no_console_link_that_would_use_the_default_document() {
        let all = handover_dm(&active(Role::Dml), &target(), HANDOVER).readable();
        assert!(!all.contains("console.aws.amazon.com"), "{all}");
        assert!(all.contains("the document `powerpole-session`"), "{all}");
    }

    #[test]
    fn read_sessions_connect_to_the_reader() {
        let all = handover_dm(&active(Role::Read), &target(), HANDOVER).readable();
        assert!(all.contains("mysql -h billing.cluster-ro-abc.eu-west-1.rds.amazonaws.com -P 3307"), "{all}");
    }

    #[test]
    fn the_redacted_handover_has_no_password() {
        let m = redacted_handover(&active(Role::Dml), &target(), "eu-west-1", "i-0123456789abcdef0", "powerpole-session");
        assert!(!m.readable().contains("s3cr"));
        assert!(m.readable().contains("redacted"));
    }

    #[test]
    fn the_redacted_handover_says_when_and_why_and_no_longer_how_to_connect() {
        let mut s = active(Role::Dml);
        s.apply(Event::Revoked).unwrap();
        s.apply(Event::TornDown).unwrap();
        s.decision_reason = Some("incident over".into());
        s.closed_at = s.expires_at;
        let all = redacted_handover(&s, &target(), "eu-west-1", "i-0123456789abcdef0", "powerpole-session").readable();
        assert!(all.contains("an approver revoked it (incident over)") && all.contains("16:00 CET on Tue 3 Mar"), "{all}");
        assert!(all.contains("`i-0123456789abcdef0` was terminated"), "{all}");
        for gone in ["start-session", "mysql -h", "console.aws.amazon.com"] {
            assert!(!all.contains(gone), "{gone} still shown for a terminated instance:\n{all}");
        }
    }

    #[test]
    fn the_teardown_notice_does_not_mention_its_recipient() {
        let mut s = active(Role::Read);
        s.apply(Event::Expired).unwrap();
        assert!(!teardown_notice(&s).readable().contains("<@U0ALICE>"));
    }

    #[test]
    fn a_message_never_debug_prints_its_content() {
        let m = handover_dm(&active(Role::Dml), &target(), HANDOVER);
        assert!(!format!("{m:?}").contains("s3cr"));
        assert!(!format!("{HANDOVER:?}").contains("s3cr"));
    }

    #[test]
    fn the_warning_offers_extend_and_end_now() {
        let m = warning_dm(&active(Role::Read));
        assert!(m.text.contains("ends at 16:00 CET"), "{}", m.text);
        let elements = &m.blocks[1]["elements"];
        assert_eq!(elements[0]["action_id"], "extend");
        assert_eq!(elements[1]["action_id"], "end_now");
        assert_eq!(elements[1]["value"], "pp-7k2m9xq4ab");
        assert!(elements[1]["confirm"].is_object());
    }

    #[test]
    fn the_teardown_notice_says_why() {
        let mut s = active(Role::Read);
        s.apply(Event::Expired).unwrap();
        s.apply(Event::TornDown).unwrap();
        assert!(teardown_notice(&s).text.contains("has ended: it expired. The bastion was terminated and the database account `alice` dropped."));
        let mut r = active(Role::Read);
        r.apply(Event::Revoked).unwrap();
        r.decision_reason = Some("incident over".into());
        assert!(teardown_notice(&r).text.contains("an approver revoked it (incident over)"));
    }

    #[test]
    fn lifecycle_notices_say_what_happened_and_what_to_do() {
        let s = session(Role::Read);
        let timed_out = request_timed_out(&s).readable();
        assert!(timed_out.contains("expired") && timed_out.contains("/powerpole request"), "{timed_out}");
        let failed = provisioning_failed(&s, "the bastion did not come online <in time>").readable();
        assert!(failed.contains("did not come online &lt;in time&gt;") && failed.contains("nothing was handed over"), "{failed}");
        let locked = account_kept_locked(&s, "it is the DEFINER of billing.v").readable();
        assert!(locked.contains("keeps the privileges those objects run with") && locked.contains("powerpole reconcile"), "{locked}");
    }
}
