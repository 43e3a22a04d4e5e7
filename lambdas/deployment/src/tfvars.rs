//! A `terraform.tfvars` file: `name = value` lines, where a value is a string, a number, a bool
//! or a one-line list of those; `#` and `//` comments. Anything else is refused with its line, so
//! an example the test cannot read fails the test rather than being half read.

use std::collections::BTreeMap;

use serde_json::Value;

pub fn parse(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut vars = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| format!("line {}: `{raw}` is not `name = value`", n + 1))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("line {}: `{name}` is not a variable name", n + 1));
        }
        let value = parse_value(value.trim()).map_err(|e| format!("line {}: {e}", n + 1))?;
        if vars.insert(name.to_string(), value).is_some() {
            return Err(format!("line {}: `{name}` is set twice", n + 1));
        }
    }
    Ok(vars)
}

/// The line without a comment outside a string.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' if in_string && !escaped => {
                escaped = true;
                continue;
            }
            b'"' if !escaped => in_string = !in_string,
            b'#' if !in_string => return &line[..i],
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

fn parse_value(text: &str) -> Result<Value, String> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let mut items = Vec::new();
        for item in split_top(inner) {
            let item = item.trim();
            if !item.is_empty() {
                items.push(parse_value(item)?);
            }
        }
        return Ok(Value::Array(items));
    }
    if text.starts_with('"') {
        // An HCL string without interpolation reads as a JSON string.
        if text.contains("${") {
            return Err(format!("`{text}`: interpolation is not allowed in a tfvars file"));
        }
        return serde_json::from_str(text).map_err(|e| format!("`{text}` is not a string: {e}"));
    }
    match text {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).ok_or_else(|| format!("`{text}` is not a string, number, bool or list")),
    }
}

/// Splits on commas outside strings.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            '\\' if in_string && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => in_string = !in_string,
            ',' if !in_string => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        escaped = false;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_lists_numbers_and_comments_are_read_and_anything_else_is_refused() {
        let vars = parse("# a comment\nregion = \"eu-west-1\" # trailing\nids = [\"a#b\", \"c\"]\nport = 3306\non = true\n").unwrap();
        assert_eq!(vars["region"], "eu-west-1");
        assert_eq!(vars["ids"], serde_json::json!(["a#b", "c"]));
        assert_eq!(vars["port"], serde_json::json!(3306.0));
        assert_eq!(vars["on"], true);
        assert!(parse("x = \"${var.y}\"").unwrap_err().contains("interpolation"));
        assert!(parse("x = {").unwrap_err().contains("line 1"));
        assert!(parse("x = 1\nx = 2").unwrap_err().contains("set twice"));
    }
}
