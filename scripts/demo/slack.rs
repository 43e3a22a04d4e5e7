//! The demo's view of the Slack stand-in: print what powerpole sent, as a person would read it,
//! and wait for the messages the lifecycle must produce.

use std::time::Duration;

use anyhow::{anyhow, Result};
use powerpole_standins::slack::{RecordedCall, SlackStandin, RESPONSE_URL_METHOD};
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
    let text = call.text();
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
