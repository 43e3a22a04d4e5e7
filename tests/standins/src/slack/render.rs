//! What a human would read in a message or view the product sent, as plain lines, so that tests
//! and the demo timeline can assert on words rather than on Block Kit JSON.
//!
//! Rendering is deliberately rough: mrkdwn is left as written (`*Role:* READ`), images are
//! skipped, and buttons show as `[Label]`.

use serde_json::Value;

use super::RecordedCall;

/// The message `text`, then the readable text of its blocks (header, section text and fields,
/// context elements, button labels, input labels, rich text), one line each. For `views.*`
/// calls, the view's title and blocks.
pub fn text_of(call: &RecordedCall) -> String {
    let mut message = call.params.clone();
    if let Some(object) = message.as_object_mut() {
        for name in ["blocks", "view"] {
            if let Some(parsed) = call.param_json(name) {
                object.insert(name.to_owned(), parsed);
            }
        }
    }
    render_message(&message)
}

/// [`text_of`] for any message- or view-shaped JSON, such as the `message` of a Slack answer.
pub fn render_message(message: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(text) = message.get("text").and_then(Value::as_str) {
        push(&mut lines, text);
    }
    if let Some(title) = message.pointer("/title/text").and_then(Value::as_str) {
        push(&mut lines, title);
    }
    render_blocks(message.get("blocks"), &mut lines);
    if let Some(view) = message.get("view") {
        lines.push(render_message(view));
        lines.retain(|line| !line.is_empty());
    }
    lines.join("\n")
}

fn render_blocks(blocks: Option<&Value>, lines: &mut Vec<String>) {
    for block in blocks.and_then(Value::as_array).into_iter().flatten() {
        match block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "header" | "section" => {
                push_text_object(block.get("text"), lines);
                for field in array(block.get("fields")) {
                    push_text_object(Some(field), lines);
                }
                if let Some(label) = button_label(block.get("accessory")) {
                    push(lines, &label);
                }
            }
            "context" => {
                let texts: Vec<&str> = array(block.get("elements"))
                    .filter_map(|e| e.get("text").and_then(Value::as_str))
                    .collect();
                push(lines, &texts.join(" "));
            }
            "actions" => {
                let labels: Vec<String> = array(block.get("elements"))
                    .filter_map(|e| button_label(Some(e)))
                    .collect();
                push(lines, &labels.join(" "));
            }
            "input" => push_text_object(block.get("label"), lines),
            "rich_text" => {
                let mut text = String::new();
                collect_rich_text(block, &mut text);
                push(lines, &text);
            }
            _ => {}
        }
    }
}

fn button_label(element: Option<&Value>) -> Option<String> {
    let element = element?;
    if element.get("type").and_then(Value::as_str) != Some("button") {
        return None;
    }
    let label = element.pointer("/text/text").and_then(Value::as_str)?;
    Some(format!("[{label}]"))
}

fn push_text_object(text: Option<&Value>, lines: &mut Vec<String>) {
    if let Some(text) = text.and_then(|t| t.get("text")).and_then(Value::as_str) {
        push(lines, text);
    }
}

fn collect_rich_text(element: &Value, out: &mut String) {
    if let Some(text) = element.get("text").and_then(Value::as_str) {
        out.push_str(text);
    }
    for child in array(element.get("elements")) {
        collect_rich_text(child, out);
    }
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn push(lines: &mut Vec<String>, text: &str) {
    if !text.trim().is_empty() {
        lines.push(text.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_text_and_every_readable_block_part() {
        let message = json!({
            "text": "Access request from alice",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Database access"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*alice* wants READ"},
                 "fields": [{"type": "mrkdwn", "text": "*Target:* orders"},
                            {"type": "plain_text", "text": "60 minutes"}]},
                {"type": "divider"},
                {"type": "context", "elements": [
                    {"type": "image", "image_url": "https://example.com/x.png", "alt_text": "x"},
                    {"type": "mrkdwn", "text": "Request r-1"},
                    {"type": "plain_text", "text": "expires 14:00"}]},
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "approve"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Deny"}, "action_id": "deny"}]},
            ]
        });
        assert_eq!(
            render_message(&message),
            "Access request from alice\nDatabase access\n*alice* wants READ\n*Target:* orders\n\
             60 minutes\nRequest r-1 expires 14:00\n[Approve] [Deny]"
        );
    }

    #[test]
    fn renders_views_with_their_title_and_input_labels() {
        let view = json!({"view": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Request access"},
            "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "Reason"},
                        "element": {"type": "plain_text_input", "action_id": "reason"}}]
        }});
        assert_eq!(render_message(&view), "Request access\nReason");
    }

    #[test]
    fn renders_rich_text_as_one_line() {
        let message = json!({"blocks": [{"type": "rich_text", "elements": [
            {"type": "rich_text_section", "elements": [
                {"type": "text", "text": "Password: "},
                {"type": "text", "text": "redacted", "style": {"bold": true}}]}]}]});
        assert_eq!(render_message(&message), "Password: redacted");
    }

    #[test]
    fn ignores_malformed_blocks_instead_of_failing() {
        let message = json!({"text": "hi", "blocks": "not an array"});
        assert_eq!(render_message(&message), "hi");
        assert_eq!(render_message(&json!(null)), "");
    }
}
