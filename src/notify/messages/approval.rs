//! The approval card and what goes with deciding: the requester's decision DMs, the extension
//! card, and the alert for a teardown that keeps failing.

use chrono::{DateTime, Utc};

use super::{actions, button, context, escape, fields, header, mention, section, slack_time};
use crate::config::TargetConfig;
use crate::domain::{AccessDuration, Outcome, Session, SlackUserId, State};
use crate::notify::Message;

/// The card in the target's approvals channel, for the session as it is now: Approve and Deny
/// while it is pending, then who decided and when. The same function renders the first post and
/// every in-place update, so the card always matches the stored session.
pub fn approval_card(session: &Session, target: &TargetConfig) -> Message {
    let who = mention(&session.requester.slack_id);
    let text = format!("{who} asks for {} access to {} for {} ({})", session.role, session.target, session.duration, session.id);
    let mut blocks = vec![
        header(&format!("Access request {}", session.id)),
        fields(&[
            ("Requester", format!("{who} (database user `{}`)", session.requester.db_user)),
            ("Target", target_label(target)),
            ("Role", session.role.to_string()),
            ("Duration", session.duration.to_string()),
        ]),
        section(&format!("*Reason*\n>{}", escape(&session.reason).replace('\n', "\n>"))),
    ];
    let need = crate::policy::approvals_needed(target, session.role);
    blocks.push(context(&status_line(session, need)));
    if session.state == State::Pending && target.policy.roles.get(&session.role).is_some_and(|r| r.approvers.is_some() || r.approvals.is_some()) {
        let who = crate::policy::approvers_of(target, session.role).mentions();
        blocks.push(context(&format!("Rule `targets.{}.policy.{}`: {need} approval(s) from {who}, never the requester's own", target.name, session.role)));
    }
    if session.state == State::Pending {
        blocks.push(super::actions(
            "decision",
            vec![
                button(actions::APPROVE, "Approve", session.id.as_str(), Some("primary")),
                button(actions::DENY, "Deny", session.id.as_str(), Some("danger")),
            ],
        ));
    }
    Message::new(text, blocks)
}

fn target_label(target: &TargetConfig) -> String {
    match &target.description {
        Some(d) => format!("`{}` ({})", target.name, escape(d)),
        None => format!("`{}`", target.name),
    }
}

fn approvals_by(session: &Session) -> String {
    session.approvals.iter().map(|a| format!("{} ({})", mention(&a.approver), slack_time(a.at))).collect::<Vec<_>>().join(", ")
}

fn status_line(session: &Session, need: usize) -> String {
    let have = session.approvals.len();
    match session.state {
        State::Pending if have == 0 => format!(
            ":hourglass_flowing_sand: Waiting for {need} approval(s) from the approvers of `{}`; expires undecided {}",
            session.target,
            slack_time(session.pending_expires_at)
        ),
        State::Pending => format!(":white_check_mark: Approved by {} · {have} of {need}; waiting for {} more", approvals_by(session), need - have.min(need)),
        State::Closed(Outcome::Denied) | State::TearingDown(Outcome::Denied) => format!(
            ":x: Denied by {}{}{}",
            session.denied_by.as_ref().map(mention).unwrap_or_else(|| "an approver".into()),
            session.closed_at.map(|t| format!(" ({})", slack_time(t))).unwrap_or_default(),
            reason_suffix(session)
        ),
        State::Closed(Outcome::PendingTimedOut) | State::TearingDown(Outcome::PendingTimedOut) => ":hourglass: Expired: no decision in time".into(),
        State::Closed(Outcome::Cancelled) | State::TearingDown(Outcome::Cancelled) if session.approvals.len() < need => ":leftwards_arrow_with_hook: Withdrawn by the requester".into(),
        State::Closed(Outcome::RevokedByApprover) | State::TearingDown(Outcome::RevokedByApprover) => {
            format!(":no_entry: Approved by {}, then revoked{}", approvals_by(session), reason_suffix(session))
        }
        _ if session.auto_approved.is_some() => {
            format!(":robot_face: Auto-approved by rule `{}` (no approver click){}", session.auto_approved.as_deref().unwrap_or_default(), progress(session))
        }
        _ => format!(":white_check_mark: Approved by {}{}", approvals_by(session), progress(session)),
    }
}

/// What happened since the approval, so the card tells approvers where the session is.
fn progress(session: &Session) -> String {
    let ended = |what: &str| format!(" · ended{}: {what}", session.closed_at.map(|t| format!(" {}", slack_time(t))).unwrap_or_default());
    match session.state {
        State::Approved | State::Provisioning => " · setting up the bastion".into(),
        State::Active => session.expires_at.map(|t| format!(" · in use until {}", slack_time(t))).unwrap_or_default(),
        State::TearingDown(_) => " · ending: removing the account and the bastion".into(),
        State::Closed(Outcome::Expired) => ended("expired"),
        State::Closed(Outcome::EndedByRequester) => ended("ended early by the requester"),
        State::Closed(Outcome::Failed) => ended(&format!(
            "could not be set up{}",
            session.decision_reason.as_deref().filter(|r| !r.trim().is_empty()).map(|r| format!(" ({})", escape(r))).unwrap_or_default()
        )),
        _ => String::new(),
    }
}

fn reason_suffix(session: &Session) -> String {
    match &session.decision_reason {
        Some(r) if !r.trim().is_empty() => format!(": {}", escape(r)),
        _ => String::new(),
    }
}

/// The DM the requester gets for a decision on their request by `by`.
pub fn decision_dm(session: &Session, target: &TargetConfig, by: &SlackUserId) -> Message {
    let need = crate::policy::approvals_needed(target, session.role);
    let what = format!("your request {} ({} on `{}` for {})", session.id, session.role, session.target, session.duration);
    let text = match session.state {
        State::Pending => format!(
            "{} approved {what}: {} of {need} approvals; waiting for {} more.",
            mention(by),
            session.approvals.len(),
            need.saturating_sub(session.approvals.len())
        ),
        State::Closed(Outcome::Denied) | State::TearingDown(Outcome::Denied) => format!("{} denied {what}{}.", mention(by), reason_suffix(session)),
        State::Closed(Outcome::RevokedByApprover) | State::TearingDown(Outcome::RevokedByApprover) => {
            format!("{} revoked {what}{}. Your bastion and database account are being removed.", mention(by), reason_suffix(session))
        }
        _ => format!(
            "Your request {} ({} on `{}` for {}) is approved by {}. Your bastion is being prepared; the connection details will arrive here in a few minutes.",
            session.id,
            session.role,
            session.target,
            session.duration,
            session.approvals.iter().map(|a| mention(&a.approver)).collect::<Vec<_>>().join(" and ")
        ),
    };
    Message::plain(text)
}

/// The reminder in the approval card's thread for a request nobody has decided: who may decide,
/// how long it has waited, and, on escalation, the escalation group.
pub fn approval_reminder(session: &Session, target: &TargetConfig, now: DateTime<Utc>, escalate_to: Option<&str>) -> Message {
    // The approvers of this role (a rule of its own, else the target's), without the requester
    // and those who already approved.
    let approvers = crate::policy::approvers_of(target, session.role);
    let mut who: Vec<String> = approvers
        .users
        .iter()
        .filter(|u| **u != session.requester.slack_id && !session.approvals.iter().any(|a| a.approver == **u))
        .map(mention)
        .collect();
    who.extend(approvers.groups.iter().map(|group| format!("<!subteam^{group}>")));
    let waited = (now - session.created_at).num_minutes().max(1);
    let mut text = format!(
        ":bell: {} Still waiting for a decision on {}'s request {} ({} on `{}` for {}): waiting for approval since {} ({waited} min). It expires undecided {}.",
        who.join(" "),
        mention(&session.requester.slack_id),
        session.id,
        session.role,
        session.target,
        session.duration,
        slack_time(session.created_at),
        slack_time(session.pending_expires_at),
    );
    if let Some(group) = escalate_to {
        text.push_str(&format!("\n:rotating_light: Escalating to <!subteam^{group}>: nobody has decided in {waited} min."));
    }
    Message::plain(text)
}

/// How an extension request was decided, for the card's in-place update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionDecision {
    pub by: SlackUserId,
    pub approved: bool,
    pub at: DateTime<Utc>,
}

/// The extension card in the approvals channel: the requester asks for `by` more; buttons while
/// undecided, then who decided.
pub fn extension_card(session: &Session, by: AccessDuration, decided: Option<&ExtensionDecision>) -> Message {
    let who = mention(&session.requester.slack_id);
    let text = format!("{who} asks to extend {} ({} on `{}`) by {by}", session.id, session.role, session.target);
    let mut blocks = vec![
        header(&format!("Extension request {}", session.id)),
        section(&format!(
            "{who} asks to extend {} ({} on `{}`) by *{by}*.{}",
            session.id,
            session.role,
            session.target,
            session.expires_at.map(|e| format!(" It now ends {}.", slack_time(e))).unwrap_or_default()
        )),
    ];
    match decided {
        // The session closed before anyone decided: nothing left to decide.
        None if session.state.is_closed() || matches!(session.state, State::TearingDown(_)) => {
            blocks.push(context(":lock: The session ended before anyone decided; nothing to decide."))
        }
        None => blocks.push(super::actions(
            "extension",
            vec![
                button(actions::APPROVE_EXTENSION, "Approve extension", session.id.as_str(), Some("primary")),
                button(actions::DENY_EXTENSION, "Deny", session.id.as_str(), Some("danger")),
            ],
        )),
        Some(d) => blocks.push(context(&format!(
            "{} by {} ({})",
            if d.approved { ":white_check_mark: Extended" } else { ":x: Extension denied" },
            mention(&d.by),
            slack_time(d.at)
        ))),
    }
    Message::new(text, blocks)
}

/// The requester's DM about their extension request.
pub fn extension_decision_dm(session: &Session, decision: &ExtensionDecision, by: AccessDuration) -> Message {
    let text = if decision.approved {
        format!(
            "{} extended {} by {by}; it now ends {}.",
            mention(&decision.by),
            session.id,
            session.expires_at.map(|e| super::local_time(e, session.requester.tz.as_deref())).unwrap_or_else(|| "later".into())
        )
    } else {
        format!("{} denied extending {} by {by}; it ends as planned.", mention(&decision.by), session.id)
    };
    Message::plain(text)
}

/// Posted in the approvals channel when a teardown has kept failing: something may be left behind.
pub fn stuck_teardown_alert(session: &Session, failing_for: AccessDuration) -> Message {
    let t = &session.teardown;
    let stuck_on = t.last_dependency.map(|d| format!(", stuck on {}", d.describe())).unwrap_or_default();
    let text = format!(
        ":warning: Teardown of {} (`{}`, {} for {}) has been failing for {failing_for} ({} attempts{stuck_on}). Last error: {}. \
         The bastion {} or the database account `{}` may still exist; powerpole keeps retrying. Check with `powerpole reconcile`.",
        session.id,
        session.target,
        session.role,
        mention(&session.requester.slack_id),
        t.attempts,
        escape(t.last_error.as_deref().unwrap_or("unknown")),
        session.instance_id.as_deref().unwrap_or("(none recorded)"),
        session.requester.db_user,
    );
    Message::plain(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Approval, Event, Role};
    use crate::notify::messages::fixtures::{session, t0, target};

    fn buttons(m: &Message) -> Vec<String> {
        m.blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .map(|e| e["action_id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn the_card_follows_the_session_after_approval() {
        let mut s = session(Role::Read);
        s.approvals.push(Approval { approver: SlackUserId::parse("U0BOB").unwrap(), at: t0(), request: None });
        for e in [Event::ApprovalRecorded, Event::Approved] {
            let _ = s.apply(e);
        }
        s.state = State::Approved;
        assert!(approval_card(&s, &target()).readable().contains("setting up the bastion"));
        s.apply(Event::ProvisioningStarted).unwrap();
        s.apply(Event::HandedOver).unwrap();
        s.start_clock(t0(), "10m".parse().unwrap());
        assert!(approval_card(&s, &target()).readable().contains("in use until"));
        s.apply(Event::Expired).unwrap();
        s.apply(Event::TornDown).unwrap();
        s.closed_at = Some(t0());
        let card = approval_card(&s, &target());
        assert!(card.readable().contains("ended") && card.readable().contains("expired"), "{}", card.readable());
        assert!(!card.readable().contains("[Approve]"));
    }

    #[test]
    fn a_new_card_shows_the_request_and_both_buttons() {
        let s = session(Role::Read);
        let card = approval_card(&s, &target());
        let all = card.readable();
        for expected in ["<@U0ALICE>", "`billing`", "READ", "1h", "pp-7k2m9xq4ab", "Waiting for 2 approval(s)"] {
            assert!(all.contains(expected), "{expected} missing in {all}");
        }
        assert!(all.contains("&lt;!channel&gt; orders &amp; refunds"), "the reason is escaped: {all}");
        assert_eq!(buttons(&card), ["approve", "deny"]);
        let approve = &card.blocks.last().unwrap()["elements"][0];
        assert_eq!(approve["value"], "pp-7k2m9xq4ab");
    }

    #[test]
    fn a_reminder_names_the_roles_own_approvers_and_not_those_who_approved() {
        use crate::policy::{RoleRule, Who};
        let mut t = target();
        let dbas = Who { users: vec![SlackUserId::parse("U0DBA1").unwrap(), SlackUserId::parse("U0DBA2").unwrap()], groups: vec!["S0DBAS".into()] };
        t.policy.roles.insert(Role::Ddl, RoleRule { approvers: Some(dbas), approvals: Some(2), ..RoleRule::default() });
        let mut s = session(Role::Ddl);
        s.approvals.push(Approval { approver: SlackUserId::parse("U0DBA1").unwrap(), at: t0(), request: None });
        let text = approval_reminder(&s, &t, t0() + chrono::Duration::minutes(30), None).readable();
        assert!(text.contains("<@U0DBA2>") && text.contains("<!subteam^S0DBAS>"), "{text}");
        assert!(!text.contains("<@U0DBA1>"), "who already approved is not reminded: {text}");
        // A READ request on the same target still reminds the target's approvers.
        let read = approval_reminder(&session(Role::Read), &t, t0() + chrono::Duration::minutes(30), None).readable();
        assert!(!read.contains("S0DBAS") && !read.contains("U0DBA2"), "{read}");
    }

    #[test]
    fn a_partly_approved_card_keeps_its_buttons_and_counts() {
        let mut s = session(Role::Read);
        s.approvals.push(Approval { approver: SlackUserId::parse("U0BOB").unwrap(), at: t0(), request: None });
        let card = approval_card(&s, &target());
        assert!(card.readable().contains("Approved by <@U0BOB>"));
        assert!(card.readable().contains("1 of 2; waiting for 1 more"));
        assert_eq!(buttons(&card), ["approve", "deny"]);
    }

    #[test]
    fn a_decided_card_says_who_and_has_no_buttons() {
        let mut s = session(Role::Read);
        for who in ["U0BOB", "U0CAROL"] {
            s.approvals.push(Approval { approver: SlackUserId::parse(who).unwrap(), at: t0(), request: None });
        }
        s.apply(Event::Approved).unwrap();
        let card = approval_card(&s, &target());
        assert!(card.readable().contains("Approved by <@U0BOB>"), "{}", card.readable());
        assert!(card.readable().contains("<@U0CAROL>"));
        assert!(buttons(&card).is_empty());

        let mut d = session(Role::Read);
        d.apply(Event::Denied).unwrap();
        d.denied_by = Some(SlackUserId::parse("U0BOB").unwrap());
        d.decision_reason = Some("use the replica".into());
        d.closed_at = Some(t0());
        let card = approval_card(&d, &target());
        assert!(card.readable().contains("Denied by <@U0BOB>"));
        assert!(card.readable().contains(": use the replica"));
        assert!(buttons(&card).is_empty());
    }

    #[test]
    fn the_requester_hears_of_every_decision() {
        let bob = SlackUserId::parse("U0BOB").unwrap();
        let mut s = session(Role::Dml);
        s.approvals.push(Approval { approver: bob.clone(), at: t0(), request: None });
        assert!(decision_dm(&s, &target(), &bob).text.contains("1 of 2 approvals; waiting for 1 more"));
        s.apply(Event::Approved).unwrap();
        assert!(decision_dm(&s, &target(), &bob).text.contains("is approved by <@U0BOB>"));
        let mut d = session(Role::Dml);
        d.apply(Event::Denied).unwrap();
        d.decision_reason = Some("not today".into());
        assert!(decision_dm(&d, &target(), &bob).text.contains("<@U0BOB> denied your request pp-7k2m9xq4ab (DML on `billing` for 1h): not today."));
    }

    #[test]
    fn the_extension_card_has_buttons_until_decided() {
        let s = session(Role::Read);
        let by: AccessDuration = "30m".parse().unwrap();
        let open = extension_card(&s, by, None);
        assert!(open.text.contains("by 30m"));
        assert_eq!(buttons(&open), ["approve_extension", "deny_extension"]);
        let decision = ExtensionDecision { by: SlackUserId::parse("U0BOB").unwrap(), approved: true, at: t0() };
        let closed = extension_card(&s, by, Some(&decision));
        assert!(buttons(&closed).is_empty());
        assert!(closed.readable().contains("Extended by <@U0BOB>"));
    }

    #[test]
    fn the_stuck_teardown_alert_names_what_may_be_left() {
        let mut s = session(Role::Read);
        s.instance_id = Some("i-0abc".into());
        s.teardown.attempts = 5;
        s.teardown.last_error = Some("Access denied for user <admin>".into());
        let alert = stuck_teardown_alert(&s, "20m".parse().unwrap());
        for expected in ["failing for 20m (5 attempts)", "i-0abc", "`alice`", "&lt;admin&gt;", "powerpole reconcile"] {
            assert!(alert.text.contains(expected), "{expected}: {}", alert.text);
        }
    }

    #[test]
    fn the_stuck_teardown_alert_names_the_system_it_is_stuck_on() {
        let mut s = session(Role::Read);
        s.teardown.attempts = 3;
        s.teardown.last_error = Some("revoking the database account failed: connection refused".into());
        s.teardown.last_dependency = Some(crate::domain::Dependency::Database);
        let alert = stuck_teardown_alert(&s, "5m".parse().unwrap());
        assert!(alert.text.contains("(3 attempts, stuck on the database (MySQL))"), "{}", alert.text);
        assert!(alert.text.contains("connection refused"), "{}", alert.text);
    }
}
