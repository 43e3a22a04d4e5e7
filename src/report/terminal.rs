//! Terminal text, two ways. A Session Manager transcript is what the person's terminal was sent,
//! control sequences included: [`printable`] escapes every control character, so nothing in a
//! transcript (or a statement, or a reason) can move the analyst's cursor, erase a line, retitle
//! the window or write the clipboard (OSC 52) when the text report is printed; [`visible`] is
//! what the line looked like on the person's screen (carriage returns and line erasing applied,
//! sequences removed), which is what prompts are recognised on.

/// `text` with every control character (C0, DEL, C1) and bidirectional override written as a
/// visible escape (`\x1b`, `\r`, `\u{202e}`), so that it prints as itself on any terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            // Bidirectional embeddings, overrides and isolates reorder what the analyst reads.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// What one transcript line showed once the terminal had drawn it: `\r` returns to the start of
/// the line and later text overwrites, backspace moves back, `ESC [ K` erases; every other
/// sequence (colours, bracketed paste, titles, OSC 52) draws nothing.
pub fn visible(line: &str) -> String {
    let mut screen: Vec<char> = Vec::new();
    let mut cursor = 0usize;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => cursor = 0,
            '\u{8}' => cursor = cursor.saturating_sub(1),
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut last = None;
                    for d in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            last = Some(d);
                            break;
                        }
                        params.push(d);
                    }
                    let n = params.trim_start_matches('?').parse::<usize>().ok();
                    match last {
                        Some('K') => match n.unwrap_or(0) {
                            0 => screen.truncate(cursor),
                            1 => screen.iter_mut().take(cursor + 1).for_each(|c| *c = ' '),
                            _ => screen.clear(),
                        },
                        Some('C') => cursor += n.unwrap_or(1),
                        Some('D') => cursor = cursor.saturating_sub(n.unwrap_or(1)),
                        Some('G') => cursor = n.unwrap_or(1).saturating_sub(1),
                        _ => {}
                    }
                }
                // OSC (title, clipboard, ...): up to BEL or ESC \.
                Some(']') => {
                    while let Some(d) = chars.next() {
                        if d == '\u{7}' || (d == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() => {}
            c => {
                if cursor > screen.len() {
                    screen.resize(cursor, ' ');
                }
                if cursor == screen.len() {
                    screen.push(c);
                } else {
                    screen[cursor] = c;
                }
                cursor += 1;
            }
        }
    }
    screen.into_iter().collect::<String>().trim_end().to_string()
}

/// Whether `line` writes the terminal's clipboard (OSC 52).
pub fn writes_clipboard(line: &str) -> bool {
    line.contains("\u{1b}]52;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_control_character_survives_printable() {
        let nasty = "ok\u{1b}[2K\u{1b}[1A\r\u{1b}]52;c;cm0gLXJmIC8=\u{7}\u{1b}]0;title\u{1b}\\\u{9b}31m\u{7f}\u{8}\u{202e}txt.exe";
        let out = printable(nasty);
        assert!(out.chars().all(|c| !c.is_control() && !('\u{202a}'..='\u{202e}').contains(&c)), "{out:?}");
        assert!(out.starts_with("ok\\x1b[2K\\x1b[1A\\r\\x1b]52;"), "{out}");
        assert!(out.contains("\\u{202e}"), "{out}");
        assert_eq!(printable("plain é text"), "plain é text");
    }

    #[test]
    fn visible_is_what_the_screen_showed() {
        assert_eq!(visible("\u{1b}[?2004hsh-5.2$ ls\u{1b}[?2004l"), "sh-5.2$ ls");
        assert_eq!(visible("sh-5.2$ rm -rf /tmp/x\rsh-5.2$ ls\u{1b}[K"), "sh-5.2$ ls", "overwritten, then erased to the end");
        assert_eq!(visible("abc\u{8}\u{8}X"), "aXc");
        assert_eq!(visible("\u{1b}[31mred\u{1b}[0m \u{1b}]52;c;aGk=\u{7}done"), "red done");
        assert!(writes_clipboard("\u{1b}]52;c;aGk=\u{7}"));
    }
}
