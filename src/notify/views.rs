//! The views powerpole shows: the modals (the request form, the deny reason and the extension
//! form), whose `callback_id`s and input ids are what the inbound side reads back on submission,
//! and the App Home tab ([`home_view`]).

use serde_json::Value;
use slack_morphism::prelude::{
    SlackActionId, SlackBlock, SlackBlockChoiceItem, SlackBlockId, SlackBlockPlainText, SlackBlockPlainTextInputElement, SlackBlockPlainTextOnly, SlackBlockStaticSelectElement,
    SlackBlockMarkDownText, SlackCallbackId, SlackDividerBlock, SlackHeaderBlock, SlackHomeView, SlackInputBlock, SlackModalView, SlackSectionBlock, SlackView,
};

use super::View;
use crate::config::{Config, TargetConfig};
use crate::domain::{AccessDuration, Role, Session};

/// `callback_id`s of the modals.
pub mod callbacks {
    pub const REQUEST: &str = "request";
    pub const DENY: &str = "deny";
    pub const EXTEND: &str = "extend";
    pub const FLAG: &str = "flag";
}

/// `block_id`s of the inputs; each input's `action_id` is the same as its block's.
pub mod inputs {
    pub const TARGET: &str = "target";
    pub const ROLE: &str = "role";
    pub const DURATION: &str = "duration";
    pub const REASON: &str = "reason";
}

/// The duration choices offered, before bounding by a maximum.
const CHOICES: [&str; 9] = ["15m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h"];

/// Choices no longer than `max`, with `max` itself if it is not one of them.
pub fn duration_choices(max: AccessDuration) -> Vec<AccessDuration> {
    let mut out: Vec<AccessDuration> = CHOICES.iter().filter_map(|c| c.parse().ok()).filter(|d| *d <= max).collect();
    if !out.contains(&max) {
        out.push(max);
    }
    out
}

// The views are built from slack-morphism's typed Block Kit models (an input without a label,
// a select without options, a modal without a title cannot be written), then carried as the JSON
// the Web API call sends, like the messages' blocks.

fn plain(text: &str) -> SlackBlockPlainTextOnly {
    SlackBlockPlainText::new(text.to_string()).into()
}

fn option(value: &str, label: &str) -> SlackBlockChoiceItem<SlackBlockPlainTextOnly> {
    SlackBlockChoiceItem::new(plain(label), value.to_string())
}

fn select(id: &str, label: &str, options: Vec<SlackBlockChoiceItem<SlackBlockPlainTextOnly>>, hint: Option<String>) -> SlackBlock {
    let element = SlackBlockStaticSelectElement::new().with_action_id(SlackActionId(id.to_string())).with_options(options).with_placeholder(plain("Choose"));
    let mut block = SlackInputBlock::new(plain(label), element.into()).with_block_id(SlackBlockId(id.to_string()));
    block.hint = hint.map(|h| plain(&h));
    block.into()
}

fn text_input(id: &str, label: &str, placeholder: &str) -> SlackBlock {
    let element = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId(id.to_string()))
        .with_multiline(true)
        .with_min_length(3)
        .with_max_length(500)
        .with_placeholder(plain(placeholder));
    SlackInputBlock::new(plain(label), element.into()).with_block_id(SlackBlockId(id.to_string())).into()
}

/// A typed view as the JSON Slack receives (serialising plain structs of strings cannot fail;
/// `Null` would only mark a bug, and Slack would refuse the view).
fn typed(view: SlackView) -> View {
    View(serde_json::to_value(view).unwrap_or(Value::Null))
}

/// A block of the messages' builders (JSON made from the same typed models) as a typed block.
fn block(value: Value) -> Option<SlackBlock> {
    serde_json::from_value(value).ok()
}

fn modal(callback_id: &str, title: &str, submit: &str, private_metadata: &str, blocks: Vec<SlackBlock>) -> View {
    let modal = SlackModalView::new(plain(title), blocks)
        .with_callback_id(SlackCallbackId(callback_id.to_string()))
        .with_submit(plain(submit))
        .with_close(plain("Cancel"))
        .with_private_metadata(private_metadata.to_string());
    typed(SlackView::Modal(modal))
}

/// The request form: target (from config, without those refused right now), role, duration
/// (bounded by the largest target maximum; each target's own maximum is in the hint and checked
/// on submit), reason. `channel` is where the command was typed, for the confirmation.
pub fn request_modal(config: &Config, available: &[&TargetConfig], channel: &str) -> View {
    let targets: Vec<_> = available
        .iter()
        .map(|t| option(t.name.as_str(), &t.description.as_ref().map(|d| format!("{} ({d})", t.name)).unwrap_or_else(|| t.name.to_string())))
        .collect();
    let roles: Vec<_> = Role::ALL.iter().map(|r| option(r.as_str(), r.as_str())).collect();
    let max = available.iter().map(|t| t.max_duration).max().unwrap_or(config.access.max_duration);
    let durations: Vec<_> = duration_choices(max).iter().map(|d| option(&d.to_string(), &d.to_string())).collect();
    let limits = available.iter().map(|t| format!("{}: up to {}", t.name, t.max_duration)).collect::<Vec<_>>().join(", ");
    modal(
        callbacks::REQUEST,
        "Request access",
        "Request",
        channel,
        vec![
            select(inputs::TARGET, "Database", targets, None),
            select(inputs::ROLE, "Role", roles, Some("READ: SELECT. DML: also INSERT, UPDATE, DELETE. DDL: also CREATE, ALTER, DROP.".into())),
            select(inputs::DURATION, "Duration", durations, Some(limits)),
            text_input(inputs::REASON, "Reason", "Ticket and what you need to do"),
        ],
    )
}

/// As [`request_modal`], offering only what one person may ask for (`offers`, from the targets'
/// eligibility rules): the roles any of them allows, durations up to the longest, and each
/// target's roles and limits in the hint. The submission is checked again.
pub fn request_modal_for(config: &Config, available: &[&TargetConfig], offers: &[crate::workflow::policy::Offer], channel: &str) -> View {
    let View(mut v) = request_modal(config, available, channel);
    let roles: Vec<Role> = Role::ALL.into_iter().filter(|r| offers.iter().any(|o| o.roles.iter().any(|(role, _)| role == r))).collect();
    let max = offers.iter().flat_map(|o| o.roles.iter().map(|(_, m)| *m)).max().unwrap_or(config.access.max_duration);
    let as_json = |value: &str| serde_json::json!({"text": {"type": "plain_text", "text": value}, "value": value});
    v["blocks"][1]["element"]["options"] = Value::Array(roles.iter().map(|r| as_json(r.as_str())).collect());
    v["blocks"][2]["element"]["options"] = Value::Array(duration_choices(max).iter().map(|d| as_json(&d.to_string())).collect());
    v["blocks"][2]["hint"] = serde_json::json!({"type": "plain_text", "text": crate::notify::messages::policy::offer_lines(offers).join("; ")});
    View(v)
}

/// Asks an approver why they deny. `private_metadata` carries the session and the card.
pub fn deny_modal(session: &Session, card_channel: &str, card_ts: &str) -> View {
    modal(
        callbacks::DENY,
        "Deny request",
        "Deny",
        &format!("{}|{card_channel}|{card_ts}", session.id),
        vec![
            mrkdwn_section(&format!("Deny {} ({} on `{}` for {})?", session.id, session.role, session.target, session.duration)),
            text_input(inputs::REASON, "Reason", "The requester will see this"),
        ],
    )
}

/// Flagging a break-glass session: the reason goes to the security channel and the trail.
pub fn flag_modal(session: &Session) -> View {
    modal(
        callbacks::FLAG,
        "Flag break-glass",
        "Flag",
        session.id.as_str(),
        vec![
            mrkdwn_section(&format!("Flag {} ({} on `{}` for <@{}>) for the security team?", session.id, session.role, session.target, session.requester.slack_id)),
            text_input(inputs::REASON, "What is wrong", "The security team and the audit trail will see this"),
        ],
    )
}

/// The extension form: durations that keep the session within the target's maximum.
pub fn extend_modal(session: &Session, target: &TargetConfig) -> Option<View> {
    let headroom = AccessDuration::from_secs(target.max_duration.as_secs().saturating_sub(session.duration.as_secs())).ok()?;
    let durations: Vec<_> = duration_choices(headroom).iter().map(|d| option(&d.to_string(), &d.to_string())).collect();
    Some(modal(
        callbacks::EXTEND,
        "Extend session",
        "Ask approvers",
        session.id.as_str(),
        vec![select(inputs::DURATION, "Extend by", durations, Some(format!("{} allows {} in all; this session has {}.", target.name, target.max_duration, session.duration)))],
    ))
}

/// What one person's App Home shows. The caller decides what belongs here (their own sessions,
/// and only the requests of targets they approve); this only renders it.
#[derive(Debug, Clone, Default)]
pub struct Home {
    /// The person's sessions that are not closed, newest first.
    pub live: Vec<Session>,
    /// Pending requests of others that this person may decide. `None`: not an approver of any
    /// target, so the section is not shown at all.
    pub to_decide: Option<Vec<Session>>,
    /// The person's last sessions, newest first (at most [`HOME_RECENT`]).
    pub recent: Vec<Session>,
    /// What the person may ask for, one line per target (from the targets' eligibility rules).
    pub may_ask: Vec<String>,
}

/// How many past sessions App Home lists.
pub const HOME_RECENT: usize = 10;

fn mrkdwn_section(text: &str) -> SlackBlock {
    SlackSectionBlock::new().with_text(SlackBlockMarkDownText::new(text.to_string()).into()).into()
}

fn header(text: &str) -> SlackBlock {
    SlackHeaderBlock::new(SlackBlockPlainText::new(text.to_string()).into()).into()
}

fn divider() -> SlackBlock {
    SlackDividerBlock::new().into()
}

fn session_line(s: &Session) -> String {
    format!("*{}* · {} on `{}` for {}", s.id, s.role, s.target, s.duration)
}

/// The App Home tab: own live and pending sessions (End, and Extend while active), the requests
/// this person may decide (Approve, Deny), and their last sessions.
pub fn home_view(home: &Home) -> View {
    use crate::domain::State;
    use crate::notify::messages::{actions, button, escape, mention, status};
    let mut blocks = vec![header("Your access")];
    if home.live.is_empty() {
        blocks.push(mrkdwn_section("You have no live or pending sessions. Ask for one with `/powerpole request`."));
    }
    for s in &home.live {
        blocks.push(mrkdwn_section(&format!("{}\n{}\n_{}_", session_line(s), status(s), escape(&s.reason))));
        let mut buttons = Vec::new();
        match s.state {
            State::Active => {
                buttons.push(button(actions::EXTEND, "Extend", s.id.as_str(), None));
                buttons.push(button(actions::END_NOW, "End now", s.id.as_str(), Some("danger")));
            }
            State::Pending | State::Approved => buttons.push(button(actions::END_NOW, "Withdraw", s.id.as_str(), Some("danger"))),
            _ => {}
        }
        if !buttons.is_empty() {
            blocks.extend(block(crate::notify::messages::actions(&format!("own-{}", s.id), buttons)));
        }
    }
    if let Some(to_decide) = &home.to_decide {
        blocks.push(divider());
        blocks.push(header("Waiting for your decision"));
        if to_decide.is_empty() {
            blocks.push(mrkdwn_section("No request is waiting for you."));
        }
        for s in to_decide {
            blocks.push(mrkdwn_section(&format!(
                "{} asks: {}\n{}\n_{}_",
                mention(&s.requester.slack_id),
                session_line(s),
                status(s),
                escape(&s.reason)
            )));
            blocks.extend(block(crate::notify::messages::actions(
                &format!("decide-{}", s.id),
                vec![button(actions::APPROVE, "Approve", s.id.as_str(), Some("primary")), button(actions::DENY, "Deny", s.id.as_str(), Some("danger"))],
            )));
        }
    }
    if !home.may_ask.is_empty() {
        blocks.push(divider());
        blocks.push(header("What you may ask for"));
        blocks.push(mrkdwn_section(&home.may_ask.iter().map(|l| format!("• {l}")).collect::<Vec<_>>().join("\n")));
    }
    blocks.push(divider());
    blocks.push(header("Your last sessions"));
    if home.recent.is_empty() {
        blocks.push(mrkdwn_section("None yet."));
    } else {
        let lines: Vec<String> = home.recent.iter().take(HOME_RECENT).map(|s| format!("• {}: {}", session_line(s), status(s))).collect();
        blocks.push(mrkdwn_section(&lines.join("\n")));
    }
    typed(SlackView::Home(SlackHomeView::new(blocks).with_callback_id(SlackCallbackId("home".to_string()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::messages::fixtures::{config, session, target};

    #[test]
    fn durations_never_exceed_the_maximum() {
        let four: AccessDuration = "4h".parse().unwrap();
        let got: Vec<String> = duration_choices(four).iter().map(|d| d.to_string()).collect();
        assert_eq!(got, ["15m", "30m", "1h", "2h", "3h", "4h"]);
        let odd: AccessDuration = "45m".parse().unwrap();
        assert_eq!(duration_choices(odd).last(), Some(&odd));
    }

    #[test]
    fn the_request_modal_offers_configured_targets_and_bounded_durations() {
        let config = config();
        let t = target();
        let View(v) = request_modal(&config, &[&t], "C0ACCESS");
        assert_eq!(v["callback_id"], "request");
        assert_eq!(v["private_metadata"], "C0ACCESS");
        assert_eq!(v["blocks"][0]["element"]["options"][0]["value"], "billing");
        let durations = v["blocks"][2]["element"]["options"].as_array().unwrap();
        assert_eq!(durations.last().unwrap()["value"], "4h");
        assert_eq!(v["blocks"][3]["block_id"], "reason");
    }

    #[test]
    fn every_modal_is_a_view_slack_morphism_accepts() {
        let config = config();
        let t = target();
        let s = session(Role::Read);
        let views = [request_modal(&config, &[&t], "C1"), deny_modal(&s, "C0APPROVALS", "1.2"), extend_modal(&s, &t).unwrap()];
        for View(v) in views {
            serde_json::from_value::<slack_morphism::prelude::SlackView>(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        }
    }

    fn action_ids(v: &Value) -> Vec<String> {
        v["blocks"].as_array().unwrap().iter().filter(|b| b["type"] == "actions").flat_map(|b| b["elements"].as_array().unwrap().clone()).map(|e| e["action_id"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn home_shows_own_sessions_with_their_buttons_and_hides_the_approver_section_from_others() {
        use crate::domain::{Event, State};
        let pending = session(Role::Read);
        let mut active = session(Role::Dml);
        active.state = State::Active;
        active.expires_at = Some(pending.created_at + chrono::Duration::hours(1));
        let mut closed = session(Role::Read);
        closed.apply(Event::Cancelled).unwrap();
        let home = Home { live: vec![pending.clone(), active], to_decide: None, recent: vec![closed], ..Default::default() };
        let View(v) = home_view(&home);
        assert_eq!(v["type"], "home");
        assert_eq!(action_ids(&v), ["end_now", "extend", "end_now"]);
        let text = v.to_string();
        assert!(text.contains("waiting for approval since"), "{text}");
        assert!(text.contains("in use until"), "{text}");
        assert!(!text.contains("Waiting for your decision"), "not an approver: no such section");

        let approver = Home { live: vec![], to_decide: Some(vec![pending]), recent: vec![], ..Default::default() };
        let View(v) = home_view(&approver);
        assert_eq!(action_ids(&v), ["approve", "deny"]);
        assert!(v.to_string().contains("<@U0ALICE> asks"));
    }

    #[test]
    fn the_home_view_is_one_slack_morphism_accepts() {
        let s = session(Role::Read);
        let View(v) = home_view(&Home { live: vec![s.clone()], to_decide: Some(vec![s.clone()]), recent: vec![s], may_ask: vec!["billing: READ up to 1h".into()] });
        serde_json::from_value::<slack_morphism::prelude::SlackView>(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    }

    #[test]
    fn extension_choices_keep_the_session_within_the_maximum() {
        let mut s = session(Role::Read);
        s.duration = "3h30m".parse().unwrap();
        let View(v) = extend_modal(&s, &target()).unwrap();
        let opts = v["blocks"][0]["element"]["options"].as_array().unwrap();
        assert_eq!(opts.last().unwrap()["value"], "30m");
        s.duration = "4h".parse().unwrap();
        assert!(extend_modal(&s, &target()).is_none(), "no headroom, no form");
    }
}
