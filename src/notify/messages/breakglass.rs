//! Break-glass in Slack: the alarm in the approvals and security channels, the review card
//! (Acknowledge / Flag), the alert when nobody reviews it in time, and a flag.

use chrono::{DateTime, Utc};

use super::{actions, button, context, escape, fields, header, mention, section, slack_time};
use crate::config::TargetConfig;
use crate::domain::{Review, Session, SessionId};
use crate::notify::Message;

fn who_what(s: &Session) -> String {
    format!("{} took {} on `{}` for {}", mention(&s.requester.slack_id), s.role, s.target, s.duration)
}

/// Through which group or list the person was allowed to break the glass.
fn group(s: &Session) -> String {
    match s.breakglass.as_ref() {
        Some(b) => b.qualified.clone().unwrap_or_else(|| format!("a member of <!subteam^{}>", b.oncall_group)),
        None => "on call".into(),
    }
}

/// Loud: posted in the approvals channel and the security channel the moment it is taken.
pub fn alarm(s: &Session, target: &TargetConfig) -> Message {
    let text = format!(":rotating_light: Break-glass {}: {} without approval (on call: {}).", s.id, who_what(s), group(s));
    let blocks = vec![
        header(&format!(":rotating_light: Break-glass {}", s.id)),
        section(&format!("{} *without approval*, on call as {}.", who_what(s), group(s))),
        fields(&[
            ("Database user", format!("`{}`", escape(s.requester.db_user.as_str()))),
            ("Target", target.description.as_deref().map(|d| format!("`{}` ({})", target.name, escape(d))).unwrap_or_else(|| format!("`{}`", target.name))),
        ]),
        section(&format!("*Reason*\n>{}", escape(&s.reason).replace('\n', "\n>"))),
        context("Every step is in the audit trail; the session must be reviewed afterwards."),
    ];
    Message::new(text, blocks)
}

/// The review card: who did what and why, with Acknowledge and Flag until someone reviews it,
/// then who did and how.
pub fn review_card(s: &Session) -> Message {
    let text = format!("Review break-glass {}: {}", s.id, who_what(s));
    let mut blocks = vec![
        header(&format!("Review break-glass {}", s.id)),
        section(&format!("{} (on call: {}).\n*Reason*\n>{}", who_what(s), group(s), escape(&s.reason).replace('\n', "\n>"))),
        context(&format!("Full timeline: `{}`", super::security::report_command(s.id.as_str()))),
    ];
    match s.breakglass.as_ref().and_then(|b| b.review.as_ref()) {
        Some(review) => blocks.push(context(&reviewed_line(review))),
        None => {
            if let Some(due) = s.breakglass.as_ref().map(|b| b.review_due_at) {
                blocks.push(context(&format!(":eyes: To be reviewed by an approver of `{}` before {}", s.target, slack_time(due))));
            }
            blocks.push(review_buttons(&s.id));
        }
    }
    Message::new(text, blocks)
}

fn review_buttons(id: &SessionId) -> serde_json::Value {
    super::actions(
        "review",
        vec![button(actions::REVIEW_ACKNOWLEDGE, "Acknowledge", id.as_str(), Some("primary")), button(actions::REVIEW_FLAG, "Flag", id.as_str(), Some("danger"))],
    )
}

fn reviewed_line(review: &Review) -> String {
    match &review.flag {
        Some(reason) => format!(":triangular_flag_on_post: Flagged by {} ({}): {}", mention(&review.by), slack_time(review.at), escape(reason)),
        None => format!(":white_check_mark: Acknowledged by {} ({})", mention(&review.by), slack_time(review.at)),
    }
}

/// For a second reviewer: who already did.
pub fn already_reviewed(id: &SessionId, review: &Review) -> String {
    let how = if review.flag.is_some() { "flagged" } else { "acknowledged" };
    format!("{id} was already reviewed: {how} by {}", mention(&review.by))
}

/// Nobody reviewed it in time: said again, to the approvers, with the buttons.
pub fn review_overdue(s: &Session, target: &TargetConfig, now: DateTime<Utc>) -> Message {
    let mut approvers: Vec<String> = target.approvers.users.iter().filter(|u| **u != s.requester.slack_id).map(mention).collect();
    if let Some(g) = &target.approvers.group {
        approvers.push(format!("<!subteam^{g}>"));
    }
    let hours = (now - s.created_at).num_hours();
    let text = format!(
        ":alarm_clock: Break-glass {} is still not reviewed, {hours}h after it began: {}. {}, please review it.",
        s.id,
        who_what(s),
        approvers.join(" ")
    );
    Message::new(text.clone(), vec![section(&text), review_buttons(&s.id)])
}

/// A reviewer flagged it: said in the review channel, apart from the card.
pub fn flagged(s: &Session) -> Message {
    let review = s.breakglass.as_ref().and_then(|b| b.review.as_ref());
    let (by, reason) = review.map(|r| (mention(&r.by), r.flag.clone().unwrap_or_default())).unwrap_or_default();
    let text = format!(":triangular_flag_on_post: Break-glass {} flagged by {by}: {}. {}", s.id, escape(&reason), who_what(s));
    let blocks = vec![section(&text), context(&format!("Full timeline: `{}`", super::security::report_command(s.id.as_str())))];
    Message::new(text, blocks)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{session, t0, target};
    use super::*;
    use crate::domain::{BreakGlass, Role, SlackUserId};

    fn broken() -> Session {
        let mut s = session(Role::Dml);
        s.breakglass = Some(BreakGlass { oncall_group: "S0ONCALL".into(), qualified: None, review_channel: None, review_ts: None, review_due_at: t0(), alerts: 0, review: None });
        s
    }

    fn buttons(m: &Message) -> Vec<String> {
        m.blocks.iter().flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["action_id"].as_str().map(str::to_owned)).collect()
    }

    #[test]
    fn the_review_card_loses_its_buttons_once_reviewed() {
        let mut s = broken();
        assert_eq!(buttons(&review_card(&s)), [actions::REVIEW_ACKNOWLEDGE, actions::REVIEW_FLAG]);
        s.breakglass.as_mut().unwrap().review = Some(Review { by: SlackUserId::parse("U0BOB").unwrap(), at: t0(), flag: Some("<!here> no ticket".into()) });
        let card = review_card(&s);
        assert!(buttons(&card).is_empty());
        let text = serde_json::to_string(&card.blocks).unwrap();
        assert!(text.contains("Flagged by <@U0BOB>") && text.contains("&lt;!here&gt; no ticket"), "{text}");
    }

    #[test]
    fn every_break_glass_message_is_blocks_slack_morphism_accepts() {
        let s = broken();
        for m in [alarm(&s, &target()), review_card(&s), review_overdue(&s, &target(), t0()), flagged(&s)] {
            let blocks = serde_json::json!(m.blocks);
            serde_json::from_value::<Vec<slack_morphism::prelude::SlackBlock>>(blocks.clone()).unwrap_or_else(|e| panic!("{e}: {blocks}"));
            assert!(m.text.contains(s.id.as_str()));
        }
        let overdue = review_overdue(&s, &target(), t0()).text;
        assert!(overdue.contains("<@U0BOB>") && !overdue.contains("<@U0ALICE>,"), "{overdue}");
    }
}
