//! What powerpole says in Slack: pure functions from a session (and its target) to a
//! [`Message`](super::Message). No I/O, so every message is unit-tested below each builder.
//!
//! - [`approval`]: the approval card (updated in place as decisions arrive), the requester's
//!   decision DMs, the extension card and the stuck-teardown alert;
//! - [`access`]: the hand-over DM and its redaction, the expiry warning, the teardown notice;
//! - [`replies`]: ephemeral answers to commands: usage, problems, confirmations, `list`;
//! - [`security`]: the session summary in the security channel;
//! - [`breakglass`]: the break-glass alarm, the review card and its overdue alert.
//!
//! Everything a user typed is escaped before it goes into `mrkdwn`, so a reason cannot ping
//! `@channel` or fake a link.

pub mod access;
pub mod approval;
pub mod breakglass;
pub mod policy;
pub mod replies;
pub mod security;

use chrono::{DateTime, Utc};
use serde_json::Value;
use slack_morphism::prelude::{
    SlackActionBlockElement, SlackActionId, SlackActionsBlock, SlackBlock, SlackBlockButtonElement, SlackBlockButtonStyle, SlackBlockId, SlackBlockMarkDownText,
    SlackBlockConfirmItem, SlackBlockPlainText, SlackContextBlock, SlackContextBlockElement, SlackHeaderBlock, SlackSectionBlock,
};

pub use access::{account_kept_locked, handover_dm, provisioning_failed, ready_marker, redacted_handover, request_timed_out, teardown_notice, warning_dm, Handover};
pub use approval::{approval_card, approval_reminder, decision_dm, extension_card, extension_decision_dm, stuck_teardown_alert};
pub use replies::{list, problem, request_checking, request_submitted, status, usage, usage_lines};

/// `action_id`s of the buttons powerpole posts; the inbound side dispatches on them.
pub mod actions {
    pub const APPROVE: &str = "approve";
    pub const DENY: &str = "deny";
    pub const EXTEND: &str = "extend";
    pub const END_NOW: &str = "end_now";
    pub const APPROVE_EXTENSION: &str = "approve_extension";
    pub const DENY_EXTENSION: &str = "deny_extension";
    pub const REVIEW_ACKNOWLEDGE: &str = "review_acknowledge";
    pub const REVIEW_FLAG: &str = "review_flag";
}

/// Escapes text a user typed for Slack `mrkdwn` (`&`, `<`, `>`), as Slack asks.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A time every reader sees in their own zone (Slack's date token), with a UTC fallback.
pub fn slack_time(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{date_short_pretty}} at {{time}}|{}>", at.timestamp(), at.format("%Y-%m-%d %H:%M UTC"))
}

/// A time in the zone `tz` (an IANA name from the Slack profile), e.g.
/// `16:30 CET on Tue 3 Mar (Europe/Berlin)`; UTC when the zone is missing or unknown.
pub fn local_time(at: DateTime<Utc>, tz: Option<&str>) -> String {
    match tz.and_then(|t| t.parse::<chrono_tz::Tz>().ok()) {
        Some(zone) => {
            let local = at.with_timezone(&zone);
            format!("{} on {} ({})", local.format("%H:%M %Z"), local.format("%a %-d %b"), zone.name())
        }
        None => format!("{} on {}", at.format("%H:%M UTC"), at.format("%a %-d %b")),
    }
}

pub(crate) fn mention(user: &crate::domain::SlackUserId) -> String {
    format!("<@{user}>")
}

// The block builders below use slack-morphism's typed Block Kit models, so a block Slack would
// refuse (a header with markdown, a button without text) cannot be written; `Message` keeps the
// blocks as JSON, which is what the Web API call and the recording tests carry.

/// A typed block as the JSON Slack receives. Serialising these models cannot fail (plain
/// structs of strings); `Null` would only mark a bug, and Slack would refuse the message.
fn typed(block: impl Into<SlackBlock>) -> Value {
    serde_json::to_value(block.into()).unwrap_or(Value::Null)
}

pub(crate) fn header(text: &str) -> Value {
    typed(SlackHeaderBlock::new(SlackBlockPlainText::new(text.to_string()).into()))
}

pub(crate) fn section(text: &str) -> Value {
    typed(SlackSectionBlock::new().with_text(SlackBlockMarkDownText::new(text.to_string()).into()))
}

pub(crate) fn fields(pairs: &[(&str, String)]) -> Value {
    let fields = pairs.iter().map(|(k, v)| SlackBlockMarkDownText::new(format!("*{k}*\n{v}")).into()).collect();
    typed(SlackSectionBlock::new().with_fields(fields))
}

pub(crate) fn context(text: &str) -> Value {
    typed(SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(text.to_string()))]))
}

pub(crate) fn button(action_id: &str, label: &str, value: &str, style: Option<&str>) -> Value {
    let style = match style {
        Some("primary") => Some(SlackBlockButtonStyle::Primary),
        Some("danger") => Some(SlackBlockButtonStyle::Danger),
        _ => None,
    };
    let mut b = SlackBlockButtonElement::new(SlackBlockPlainText::new(label.to_string()).into()).with_action_id(SlackActionId(action_id.to_string())).with_value(value.to_string());
    b.style = style;
    serde_json::to_value(SlackActionBlockElement::Button(b)).unwrap_or(Value::Null)
}

/// `button` with a confirmation dialog before the click counts.
pub(crate) fn confirmed(button: Value, title: &str, text: &str, confirm: &str, deny: &str) -> Value {
    let Ok(SlackActionBlockElement::Button(mut b)) = serde_json::from_value::<SlackActionBlockElement>(button.clone()) else { return button };
    b.confirm = Some(SlackBlockConfirmItem::new(
        SlackBlockPlainText::new(title.to_string()).into(),
        SlackBlockPlainText::new(text.to_string()).into(),
        SlackBlockPlainText::new(confirm.to_string()).into(),
        SlackBlockPlainText::new(deny.to_string()).into(),
    ));
    serde_json::to_value(SlackActionBlockElement::Button(b)).unwrap_or(button)
}

pub(crate) fn actions(block_id: &str, buttons: Vec<Value>) -> Value {
    // The buttons come from `button` above; anything else is dropped rather than sent malformed.
    let elements = buttons.into_iter().filter_map(|b| serde_json::from_value::<SlackActionBlockElement>(b).ok()).collect();
    typed(SlackActionsBlock::new(elements).with_block_id(SlackBlockId(block_id.to_string())))
}

#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::TimeZone;

    use crate::config::{Config, TargetConfig};
    use crate::domain::*;

    pub const CONFIG: &str = r#"
[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
description = "Billing"
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
reader_endpoint = "billing.cluster-ro-abc.eu-west-1.rds.amazonaws.com"
instance_endpoints = ["billing-1.abc.eu-west-1.rds.amazonaws.com", "billing-2.abc.eu-west-1.rds.amazonaws.com"]
port = 3307
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0BOB", "U0CAROL"]
required_approvals = 2
approvals_channel = "C0APPROVALS"
max_duration = "4h"
"#;

    pub fn config() -> Config {
        Config::from_toml_str(CONFIG).expect("the fixture config is valid")
    }

    pub fn target() -> TargetConfig {
        config().targets.into_values().next().expect("one target")
    }

    pub fn t0() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 3, 3, 14, 0, 0).single().expect("a valid time")
    }

    pub fn session(role: Role) -> Session {
        let requester = Requester {
            slack_id: SlackUserId::parse("U0ALICE").expect("valid"),
            email: "alice@example.com".into(),
            db_user: DbUsername::from_slack_email("alice@example.com", &UsernamePolicy { home_domains: vec!["example.com".into()] }).expect("valid"),
            tz: Some("Europe/Berlin".into()),
        };
        Session::new(
            SessionId::parse("pp-7k2m9xq4ab").expect("valid"),
            requester,
            TargetName::parse("billing").expect("valid"),
            role,
            "1h".parse().expect("valid"),
            "INC-42: fix <!channel> orders & refunds".into(),
            t0(),
            "1h".parse().expect("valid"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn user_text_cannot_mention_or_link() {
        assert_eq!(escape("<!channel> & <http://x|y>"), "&lt;!channel&gt; &amp; &lt;http://x|y&gt;");
    }

    #[test]
    fn local_time_uses_the_profile_zone_and_falls_back_to_utc() {
        let at = Utc.with_ymd_and_hms(2026, 3, 3, 15, 30, 0).single().unwrap();
        assert_eq!(local_time(at, Some("Europe/Berlin")), "16:30 CET on Tue 3 Mar (Europe/Berlin)");
        assert_eq!(local_time(at, Some("America/New_York")), "10:30 EST on Tue 3 Mar (America/New_York)");
        assert_eq!(local_time(at, Some("Not/AZone")), "15:30 UTC on Tue 3 Mar");
        assert_eq!(local_time(at, None), "15:30 UTC on Tue 3 Mar");
    }

    #[test]
    fn every_message_is_blocks_slack_morphism_accepts() {
        use crate::domain::{AccessDuration, Role, SlackUserId};
        use fixtures::{session, target};
        let s = session(Role::Dml);
        let t = target();
        let bob = SlackUserId::parse("U0BOB").unwrap();
        let by: AccessDuration = "30m".parse().unwrap();
        let decision = approval::ExtensionDecision { by: bob.clone(), approved: false, at: fixtures::t0() };
        let all = [
            approval_card(&s, &t),
            decision_dm(&s, &t, &bob),
            extension_card(&s, by, None),
            extension_card(&s, by, Some(&decision)),
            extension_decision_dm(&s, &decision, by),
            stuck_teardown_alert(&s, by),
            handover_dm(&s, &t, Handover { region: "eu-west-1", instance_id: "i-1", document: "powerpole-session", password: Some("p") }),
            redacted_handover(&s, &t, "eu-west-1", "i-1", "powerpole-session"),
            warning_dm(&s),
            teardown_notice(&s),
            usage("/powerpole", &[]),
            problem("x", "y"),
            request_submitted(&s.id, "billing", "C1"),
            list(std::slice::from_ref(&s)),
        ];
        for m in all {
            let blocks = serde_json::json!(m.blocks);
            serde_json::from_value::<Vec<slack_morphism::prelude::SlackBlock>>(blocks.clone()).unwrap_or_else(|e| panic!("{e}: {blocks}"));
            assert!(!m.text.is_empty());
        }
    }

    #[test]
    fn slack_time_has_a_readable_fallback() {
        let at = Utc.with_ymd_and_hms(2026, 3, 3, 15, 30, 0).single().unwrap();
        assert_eq!(slack_time(at), format!("<!date^{}^{{date_short_pretty}} at {{time}}|2026-03-03 15:30 UTC>", at.timestamp()));
    }
}
