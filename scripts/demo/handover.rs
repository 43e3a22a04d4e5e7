//! Reads the connection details out of the hand-over DM, as the requester would copy them: the
//! `mysql -h HOST -P PORT -u USER -p` line (shell-quoted; `-p` makes mysql ask for the password)
//! and the password, which stands alone in its own code block after "*Password*" so that it is
//! never typed on a command line.

use anyhow::{anyhow, bail, Context, Result};

/// What the hand-over DM says to type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The handed-over password: the one secret the demo prints, on purpose.
    pub password: String,
}

/// Finds the `mysql -h ...` command line and the password in `text` (a rendered message).
pub fn parse_mysql_line(text: &str) -> Result<MysqlLogin> {
    let start = text.find("mysql -h").ok_or_else(|| anyhow!("no `mysql -h ...` line in the message"))?;
    let line = text[start..].lines().next().unwrap_or_default();
    // The line sits in a code block (```mysql ...```): drop the fence, keep the command.
    let line = line.split("```").next().unwrap_or_default();
    let words = shell_words(line).with_context(|| format!("cannot read `{line}` as a shell command"))?;
    let mut words = words.iter().skip(1);
    let (mut host, mut port, mut user, mut prompts) = (None, None, None, false);
    while let Some(word) = words.next() {
        match word.as_str() {
            "-h" => host = words.next().cloned(),
            "-P" => port = words.next().map(|p| p.parse::<u16>()).transpose().context("the port after -P")?,
            "-u" => user = words.next().cloned(),
            "-p" => prompts = true,
            w if w.starts_with("-p") => bail!("the mysql line `{line}` carries the password (`-pPASSWORD`): it would land in the shell history and the session log"),
            _ => {}
        }
    }
    let missing = |what: &str| anyhow!("the mysql line `{line}` has no {what}");
    if !prompts {
        return Err(missing("-p (ask for the password)"));
    }
    Ok(MysqlLogin {
        host: host.ok_or_else(|| missing("-h HOST"))?,
        port: port.ok_or_else(|| missing("-P PORT"))?,
        user: user.ok_or_else(|| missing("-u USER"))?,
        password: password_block(text).ok_or_else(|| anyhow!("the message shows no password (a redacted hand-over DM?)"))?,
    })
}

/// The password: the code block on the line after "*Password*", alone.
fn password_block(text: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("*Password*"));
    lines.next()?;
    let block = lines.next()?.trim();
    let password = block.strip_prefix("```")?.strip_suffix("```")?;
    (!password.is_empty() && !password.contains(char::is_whitespace)).then(|| password.to_owned())
}

/// Splits a POSIX shell command line into words: whitespace separates, '...' is literal,
/// "..." allows \" and \\, a backslash outside quotes escapes the next character.
fn shell_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => bail!("an unclosed single quote"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => bail!("an unclosed double quote"),
                        },
                        Some(c) => w.push(c),
                        None => bail!("an unclosed double quote"),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DM: &str = "*2. Connect to the database from there*\n```mysql -h 10.200.0.1 -P 3407 -u 'alice' -p```\n\
        *Password* (paste it when `mysql` asks for it; it stops working when the session ends)\n```zyNy5a9s3cr3t```\nmore";

    #[test]
    fn reads_the_line_and_the_password_the_hand_over_dm_shows() {
        let login = parse_mysql_line(DM).unwrap();
        assert_eq!(login, MysqlLogin { host: "10.200.0.1".into(), port: 3407, user: "alice".into(), password: "zyNy5a9s3cr3t".into() });
    }

    #[test]
    fn a_redacted_dm_has_no_password_and_a_password_on_the_line_is_refused() {
        let err = parse_mysql_line("```mysql -h db -P 3306 -u alice -p```\n*Password* redacted: the session has ended.").unwrap_err();
        assert!(err.to_string().contains("shows no password"), "{err}");
        let err = parse_mysql_line("```mysql -h db -P 3306 -u alice -p'secret'```").unwrap_err();
        assert!(err.to_string().contains("shell history"), "{err}");
    }

    #[test]
    fn shell_words_follow_posix_quoting() {
        assert_eq!(shell_words(r#"a 'b c' "d\"e" f\ g"#).unwrap(), ["a", "b c", "d\"e", "f g"]);
        assert!(shell_words("'open").is_err());
    }
}
