//! The module's templates, rendered as Terraform renders them, from the `.tf` and policy files
//! themselves. Only what the module uses is supported: `${expr}` (a string or a number),
//! `${jsonencode(expr)}`, `$${` (a literal `${`), `<<-EOT` heredocs, quoted strings and
//! `join("\n", [...])`. Every expression is looked up, by its exact text, in a table of values
//! the test gives ([`Refs`]): one the test does not know fails with its text, so a change of the
//! module shows up as a failing test that names what to add, never as a silently stale copy.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Values of expressions, by their exact text (`var.table_name`, `aws_sqs_queue.follow_ups.url`).
pub type Refs = BTreeMap<String, Value>;

fn value_as_text(expr: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.as_f64().filter(|f| f.fract() == 0.0).map(|f| format!("{}", f as i64)).unwrap_or_else(|| n.to_string())),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("`${{{expr}}}` is {other}, not a string: the template must jsonencode() it")),
    }
}

fn lookup<'a>(refs: &'a Refs, expr: &str) -> Result<&'a Value, String> {
    refs.get(expr).ok_or_else(|| format!("the test does not know the value of `{expr}`: add it to the test's model of the module"))
}

/// One interpolation's value.
fn eval(expr: &str, refs: &Refs) -> Result<String, String> {
    let expr = expr.trim();
    if let Some(value) = refs.get(expr) {
        return value_as_text(expr, value);
    }
    if let Some(inner) = expr.strip_prefix("jsonencode(").and_then(|e| e.strip_suffix(')')) {
        return serde_json::to_string(lookup(refs, inner.trim())?).map_err(|e| e.to_string());
    }
    Err(format!("the test does not know the value of `{expr}`: add it to the test's model of the module"))
}

/// Renders the interpolations of a template (a `templatefile()` file, a heredoc, or a quoted
/// string's content).
pub fn render(template: &str, refs: &Refs) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest.as_bytes()[at - 1] == b'$' {
            // `$${...}`: a literal `${...}`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let body = &rest[at + 2..];
        let end = matching_close(body).ok_or_else(|| format!("an unclosed `${{` in `{}`", &rest[at..rest.len().min(at + 60)]))?;
        out.push_str(&eval(&body[..end], refs)?);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes an interpolation whose body starts `text`.
fn matching_close(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A policy document of `policies/`, rendered with `vars` as `templatefile()` does.
pub fn policy(module: &Path, file: &str, vars: &Refs) -> Result<Value, String> {
    let path = module.join("policies").join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rendered = render(&text, vars).map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&rendered).map_err(|e| format!("{file}: the rendered text is not JSON: {e}"))
}

/// The text of the block that starts at the first `{` after `header` in `text`.
pub fn block<'a>(text: &'a str, header: &str) -> Result<&'a str, String> {
    let at = text.find(header).ok_or_else(|| format!("`{header}` is not in the file"))?;
    let open = text[at..].find('{').map(|o| at + o).ok_or_else(|| format!("no block after `{header}`"))?;
    let body = &text[open + 1..];
    let close = matching_close(body).ok_or_else(|| format!("the block after `{header}` is not closed"))?;
    Ok(&body[..close])
}

/// The heredoc assigned by `name = <<-EOT` in `text`, with its indentation removed as `<<-` does
/// (the smallest indentation of its non-blank lines).
pub fn heredoc(text: &str, name: &str) -> Result<String, String> {
    let start = text.find(&format!("{name} = <<-EOT\n")).ok_or_else(|| format!("no `{name} = <<-EOT` heredoc"))?;
    let body = &text[start..];
    let body = &body[body.find('\n').unwrap_or(0) + 1..];
    let lines: Vec<&str> = body.lines().take_while(|l| l.trim() != "EOT").collect();
    let indent = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    Ok(out)
}

/// The quoted strings, in order, of a list in `text` (the contents, unescaped).
pub fn quoted_strings(text: &str) -> Result<Vec<String>, String> {
    let mut strings = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("an unclosed string in `{text}`")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some(other) => s.push(other),
                    None => return Err("a string ends in `\\`".into()),
                },
                Some(other) => s.push(other),
            }
        }
        strings.push(s);
    }
    Ok(strings)
}

/// The strings of `join("\n", [ ... ])` after `name =`, joined as Terraform joins them.
pub fn joined(text: &str, name: &str) -> Result<String, String> {
    let at = text.find(&format!("{name} = ")).ok_or_else(|| format!("no `{name} =`"))?;
    let rest = &text[at..];
    let open = rest.find("join(\"\\n\", [").ok_or_else(|| format!("`{name}` has no join(\"\\n\", [...])"))? + "join(\"\\n\", [".len();
    let close = rest[open..].find("\n    ])").or_else(|| rest[open..].find("])")).ok_or_else(|| format!("the list of `{name}` is not closed"))?;
    Ok(quoted_strings(&rest[open..open + close])?.join("\n"))
}

/// An HCL value expression: a quoted string (rendered) or a bare expression (looked up).
pub fn value(expr: &str, refs: &Refs) -> Result<String, String> {
    let expr = expr.trim();
    if expr.starts_with('"') && expr.ends_with('"') && expr.len() >= 2 {
        let inner = quoted_strings(expr)?.concat();
        return render(&inner, refs);
    }
    eval(expr, refs)
}

/// `NAME = expr` lines of a block, evaluated (an environment's variables).
pub fn assignments(text: &str, refs: &Refs) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((name, expr)) = line.split_once('=') else { continue };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            continue;
        }
        found.push((name.to_string(), value(expr, refs).map_err(|e| format!("{name}: {e}"))?));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn interpolations_escapes_and_unknown_expressions() {
        let refs: Refs = [("a".to_string(), json!("x")), ("l".to_string(), json!(["p", "q"])), ("n".to_string(), json!(3306))].into_iter().collect();
        assert_eq!(render("${a}-${jsonencode(l)}-${n}-$${aws:userid}", &refs).unwrap(), "x-[\"p\",\"q\"]-3306-${aws:userid}");
        assert!(render("${b}", &refs).unwrap_err().contains("`b`"));
        assert!(render("${l}", &refs).unwrap_err().contains("jsonencode"));
        let tf = "locals {\n  x = <<-EOT\n    [a]\n      b = ${a}\n  EOT\n  y = join(\"\\n\", [\n      \"k = ${jsonencode(a)}\",\n      \"q\\\"\",\n      \"\",\n    ])\n}\n";
        assert_eq!(render(&heredoc(tf, "x").unwrap(), &refs).unwrap(), "[a]\n  b = x\n");
        assert_eq!(render(&joined(tf, "y").unwrap(), &refs).unwrap(), "k = \"x\"\nq\"\n");
        let env = assignments("  A_B = \"ssm:${a}\"\n  C = n\n  lower = a\n", &refs).unwrap();
        assert_eq!(env, [("A_B".to_string(), "ssm:x".to_string()), ("C".to_string(), "3306".to_string())]);
    }
}
