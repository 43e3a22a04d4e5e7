//! The demo's view of the Slack stand-in: print what powerpole sent, as a person would read it,
//! and wait for the messages the lifecycle must produce.

use std::time::Duration;

use anyhow::{anyhow, Result};
use powerpole_standins::slack::{render_message, RecordedCall, SlackStandin, RESPONSE_URL_METHOD};
use serde_json::Value;

use crate::report::Report;

/// The DM channel the stand-in gives a user (`D` + user id).
pub fn dm_channel(user: &str) -> String {
    format!("D{user}")
}

/// Prints each recorded call once, in arrival order, with the time the stand-in received it.
#[derive(Default)]
pub struct SlackLog {
    printed: usize,
}

impl SlackLog {
    pub fn print_new(&mut self, report: &Report, slack: &SlackStandin) {
        let calls = slack.calls();
        for call in calls.iter().skip(self.printed) {
            print_call(report, call);
        }
        self.printed = calls.len();
    }
}

fn print_call(report: &Report, call: &RecordedCall) {
    let failed = if call.ok() || call.method == RESPONSE_URL_METHOD {
        String::new()
    } else {
        format!(" -> error {}", call.error().unwrap_or("?"))
    };
    let text = readable(&shown_text(call));
    if text.is_empty() {
        let subject = ["user", "channel", "users", "email"].iter().find_map(|k| call.param_str(k)).unwrap_or_default();
        report.say_at(call.received_at, format!("Slack <- {} {subject}{failed}", call.method));
        return;
    }
    report.say_at(call.received_at, format!("Slack <- {} {}{failed}:", call.method, destination(call)));
    report.quote(&text);
    if text.contains("mysql -h") && text.contains("-p'") {
        report.quote("^ the password above is the demo's handed-over password, printed on purpose: it is what this demo shows");
    }
}

/// What a person sees of a call's message: its blocks when it has them (the `text` is then only
/// the notification fallback), else its text.
fn shown_text(call: &RecordedCall) -> String {
    let mut message = call.params.clone();
    for name in ["blocks", "view"] {
        if let (Some(object), Some(parsed)) = (message.as_object_mut(), call.param_json(name)) {
            object.insert(name.to_owned(), parsed);
        }
    }
    shown(&message)
}

/// [`shown_text`] for a message as JSON (a command's answer, a message as the stand-in keeps it).
pub fn shown(message: &Value) -> String {
    let has_blocks = message.get("blocks").and_then(Value::as_array).is_some_and(|b| !b.is_empty());
    let mut message = message.clone();
    if let (true, Some(object)) = (has_blocks, message.as_object_mut()) {
        object.remove("text");
    }
    readable(&render_message(&message))
}

/// Slack's markup as the client shows it: `<@U0ALICE>` -> `@U0ALICE`, `<#C0X>` -> `#C0X`,
/// `<!date^...|fallback>` -> the fallback, `<url|label>` -> `label (url)`, entities decoded.
pub fn readable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|i| open + i) else { break };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 1..close];
        let (target, label) = inner.split_once('|').map_or((inner, None), |(t, l)| (t, Some(l)));
        let shown = match (target.chars().next(), label) {
            (Some('@'), _) => target.to_owned(),
            (Some('#'), _) => target.to_owned(),
            (Some('!'), Some(label)) => label.to_owned(),
            (Some('!'), None) => format!("@{}", &target[1..]),
            (_, Some(label)) => format!("{label} ({target})"),
            (_, None) => target.to_owned(),
        };
        out.push_str(&shown);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Where a message went, in words.
fn destination(call: &RecordedCall) -> String {
    if call.method == RESPONSE_URL_METHOD {
        let visibility = call.param_str("response_type").unwrap_or("ephemeral");
        return format!("(reply to the command, {visibility})");
    }
    let channel = call
        .response
        .get("channel")
        .and_then(Value::as_str)
        .or_else(|| call.param_str("channel"))
        .unwrap_or("?");
    match channel.strip_prefix('D') {
        Some(user) if user.starts_with('U') => format!("DM to {user}"),
        _ if call.method == "chat.postEphemeral" => format!("to {} only, in {channel}", call.param_str("user").unwrap_or("?")),
        _ => format!("in {channel}"),
    }
}

/// A message powerpole posted (`chat.postMessage` answered ok) in `channel`.
pub fn is_post_in(call: &RecordedCall, channel: &str) -> bool {
    call.method == "chat.postMessage" && call.ok() && call.response.get("channel").and_then(Value::as_str) == Some(channel)
}

/// `(action_id, label)` of every button of the message a call posted or updated.
pub fn buttons(call: &RecordedCall) -> Vec<(String, String)> {
    let blocks = call.response.pointer("/message/blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    blocks
        .iter()
        .flat_map(|block| {
            let elements = block.get("elements").and_then(Value::as_array).cloned().unwrap_or_default();
            elements.into_iter().chain(block.get("accessory").cloned())
        })
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("button"))
        .filter_map(|e| {
            let id = e.get("action_id")?.as_str()?.to_owned();
            let label = e.pointer("/text/text")?.as_str()?.to_owned();
            Some((id, label))
        })
        .collect()
}

/// The `(action_id, value)` of the button labelled `label`.
pub fn button_labelled(call: &RecordedCall, label: &str) -> Option<String> {
    buttons(call).into_iter().find(|(_, l)| l.eq_ignore_ascii_case(label)).map(|(id, _)| id)
}

/// The `value` of button `action_id` (powerpole puts the session id there).
pub fn button_value(call: &RecordedCall, action_id: &str) -> Option<String> {
    let blocks = call.response.pointer("/message/blocks")?.as_array()?;
    blocks.iter().find_map(|block| {
        let mut elements = block.get("elements").and_then(Value::as_array).cloned().unwrap_or_default();
        elements.extend(block.get("accessory").cloned());
        elements
            .into_iter()
            .find(|e| e.get("action_id").and_then(Value::as_str) == Some(action_id))
            .and_then(|e| e.get("value").and_then(Value::as_str).map(str::to_owned))
    })
}

/// Waits for the first recorded call after position `after` that satisfies `wanted`; returns its
/// position and the call. `what` says in words what did not happen if it times out.
pub async fn wait_message(
    slack: &SlackStandin,
    what: &str,
    timeout: Duration,
    after: usize,
    wanted: impl Fn(&RecordedCall) -> bool,
) -> Result<(usize, RecordedCall)> {
    let find = |calls: &[RecordedCall]| calls.iter().enumerate().skip(after).find(|(_, c)| wanted(c)).map(|(i, c)| (i, c.clone()));
    let calls = slack
        .wait_until(what, timeout, |calls| find(calls).is_some())
        .await
        .map_err(|e| anyhow!("no {what} within {:?} (Slack saw: {})", e.timeout, e.seen.join(", ")))?;
    find(&calls).ok_or_else(|| anyhow!("no {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_reads_as_the_client_shows_it() {
        let text = "<@U0ALICE> in <#C0APPROVALS>, until <!date^1795362945^{date_short_pretty}|2026-11-22 15:55 UTC>; <https://x.example/a|Open it> &amp; <!here>";
        assert_eq!(readable(text), "@U0ALICE in #C0APPROVALS, until 2026-11-22 15:55 UTC; Open it (https://x.example/a) & @here");
    }

    #[test]
    fn blocks_replace_the_fallback_text() {
        let message = serde_json::json!({"text": "fallback", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "shown"}}]});
        assert_eq!(shown(&message), "shown");
        assert_eq!(shown(&serde_json::json!({"text": "only text"})), "only text");
    }
}
