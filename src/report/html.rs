//! The report as one self-contained HTML page (inline CSS, no script, no external resource), so
//! it can be attached to a ticket or opened offline. Every value is escaped.

use super::{Report, Source};

/// HTML-escaped, with control characters written out as escapes first
/// ([`super::terminal::printable`]): a transcript's sequences show as text, not as nothing.
fn esc(text: &str) -> String {
    super::terminal::printable(text).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A Slack mention (`<@U0ALICE>`, how the trail names people) as a reader outside Slack can
/// search for it: `@U0ALICE`. Anything else is left as it is (and escaped by [`esc`]).
fn person(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<@") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('>') {
            Some(end) if end > 0 && after[..end].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) => {
                out.push('@');
                out.push_str(&after[..end]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("<@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d1d1f}\
h1{font-size:1.4rem;margin:0 0 .5rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}\
dt{font-weight:600}.counts span{display:inline-block;margin-right:1rem;padding:.2rem .5rem;border-radius:4px;background:#eef}\
table{border-collapse:collapse;width:100%;margin-top:1rem}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.what{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}\
tr.powerpole td:nth-child(2){color:#2a5db0}tr.shell td:nth-child(2){color:#1b7f3b}tr.database td:nth-child(2){color:#8a4b00}\
tr.problem{background:#fdecea}.missing{color:#b00020;font-weight:600}";

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut rows = String::new();
    for e in &r.timeline {
        let class = match e.source {
            Source::Trail => "powerpole",
            Source::Shell => "shell",
            Source::Database => "database",
        };
        let source = if e.source == Source::Shell { "terminal" } else { e.source.as_str() };
        let problem = e.problem.as_ref().map(|p| format!("<br><strong>{}</strong>", esc(p))).unwrap_or_default();
        let kind = e.kind.as_deref().map(esc).unwrap_or_default();
        rows.push_str(&format!(
            "<tr class=\"{class}{}\"><td>{}</td><td>{}</td><td>{}</td><td>{kind}</td><td class=\"what\">{}{problem}</td></tr>\n",
            if e.problem.is_some() { " problem" } else { "" },
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            source,
            esc(&person(&e.who)),
            esc(&e.what),
        ));
    }
    let mut missing: String = r.suspicious.iter().map(|s| format!("<p class=\"missing\">Suspicious statement (could not be classified): <code>{}</code></p>", esc(s))).collect();
    missing.extend(r.flags.iter().map(|f| format!("<p class=\"missing\">Look at: {}</p>", esc(f))));
    missing.extend(r.missing.iter().map(|m| format!("<p class=\"missing\">Not included: {}</p>", esc(m))));
    missing.push_str(&format!("<p>{}</p>", esc(super::TERMINAL_NOTE)));
    let approved = if r.approved_by.is_empty() { "nobody".to_string() } else { r.approved_by.join(", ") };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>powerpole session {id}</title><style>{STYLE}</style></head><body>\n\
<h1>Session {id}</h1>\n<dl><dt>Requester</dt><dd>{requester} (database user <code>{db_user}</code>)</dd>\
<dt>Access</dt><dd>{role} on <code>{target}</code></dd><dt>Reason</dt><dd>{reason}</dd><dt>Approved by</dt><dd>{approved}</dd>\
<dt>State</dt><dd>{state}</dd><dt>Window</dt><dd>{from} to {to}</dd><dt>Bastion</dt><dd>{instance}</dd></dl>\n\
<p class=\"counts\"><span id=\"shell-commands\">Shell commands: {commands}</span><span id=\"statements\">Statements: {statements}</span><span id=\"refused\">Refused: {refused}</span></p>\n\
{missing}<table><thead><tr><th>Time</th><th>Source</th><th>Who</th><th>Kind</th><th>What</th></tr></thead><tbody>\n{rows}</tbody></table>\n</body></html>\n",
        id = esc(r.session.as_str()),
        requester = esc(&person(&r.requester)),
        db_user = esc(&r.db_user),
        role = esc(&r.role),
        target = esc(&r.target),
        reason = esc(&r.reason),
        approved = esc(&person(&approved)),
        state = esc(&r.state),
        from = r.window_from.format("%Y-%m-%d %H:%M:%S UTC"),
        to = r.window_to.format("%Y-%m-%d %H:%M:%S UTC"),
        instance = esc(r.instance.as_deref().unwrap_or("none")),
        commands = r.shell_commands,
        statements = esc(&r.statement_counts()),
        refused = r.refused,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_markup() {
        assert_eq!(esc("<script>alert('x')</script>&"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;");
    }

    #[test]
    fn slack_mentions_read_as_user_ids_and_nothing_else_changes() {
        assert_eq!(person("<@U0ALICE>, <@W012B>"), "@U0ALICE, @W012B");
        assert_eq!(person("<@u0alice> <@> <@U1 <b>"), "<@u0alice> <@> <@U1 <b>");
        assert_eq!(esc(&person("<@U0BOB><script>")), "@U0BOB&lt;script&gt;");
    }
}
