//! `/powerpole` and its subcommands, one file each: `parse` turns the typed text into a command
//! (or a [`Problem`] that names what is wrong and the right usage, answered at once with nothing
//! stored), `apply` acknowledges and spawns the rest.

mod breakglass;
mod end;
mod extend;
mod help;
mod list;
mod request;
mod revoke;

use std::borrow::Cow;
use std::sync::Arc;

use slack_morphism::prelude::SlackCommandEvent;

pub use breakglass::BreakGlass;
pub use end::End;
pub use extend::Extend;
pub use help::Help;
pub use list::List;
pub use request::Request;
pub use revoke::Revoke;

use super::{Reply, RequestId, SlackApp};
use crate::domain::{SessionId, SlackUserId};
use crate::notify::messages::{self, replies::usage_of};

/// Who typed the command, where, and how to answer later.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub user: SlackUserId,
    pub channel: String,
    pub response_url: String,
    pub trigger_id: String,
    pub request_id: RequestId,
}

/// What is wrong with a command, and how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub usage: String,
}

impl Problem {
    pub fn new(message: impl Into<String>, usage: impl Into<String>) -> Problem {
        Problem { message: message.into(), usage: usage.into() }
    }

    pub fn reply(&self) -> Reply {
        Reply::Ephemeral(messages::problem(&self.message, &self.usage))
    }
}

/// A parsed `/powerpole` command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help(Help),
    Request(Request),
    List(List),
    End(End),
    Extend(Extend),
    Revoke(Revoke),
    BreakGlass(BreakGlass),
}

impl Command {
    /// Parses the text after the command name.
    pub fn parse(text: &str, app: &SlackApp) -> Result<Command, Problem> {
        // `help` (the commonest) without collecting the words.
        match text.split_whitespace().next() {
            None => return Ok(Command::Help(Help)),
            Some(sub) if sub.eq_ignore_ascii_case("help") => return Ok(Command::Help(Help)),
            Some(_) => {}
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((sub, args)) = words.split_first() else {
            return Ok(Command::Help(Help));
        };
        let command = app.command_name();
        match sub.to_ascii_lowercase().as_str() {
            "help" => Ok(Command::Help(Help)),
            "request" => Request::parse(args, rest_after(text, 4), app).map(Command::Request),
            "breakglass" => BreakGlass::parse(args, rest_after(text, 4), app).map(Command::BreakGlass),
            "list" => Ok(Command::List(List)),
            "end" => End::parse(args, command).map(Command::End),
            "extend" => Extend::parse(args, command).map(Command::Extend),
            "revoke" => Revoke::parse(args, rest_after(text, 2), command).map(Command::Revoke),
            other => Err(Problem::new(
                format!("`{}` is not a powerpole command", messages::escape(other)),
                format!("`{command} help` lists them; to ask for access: {}", usage_of(command, "request")),
            )),
        }
    }

    /// Acknowledges and spawns the effect.
    pub fn apply(self, app: &Arc<SlackApp>, invocation: Invocation) -> Reply {
        match self {
            Command::Help(c) => c.apply(app),
            Command::Request(c) => c.apply(app, invocation),
            Command::List(c) => c.apply(app, invocation),
            Command::End(c) => c.apply(app, invocation),
            Command::Extend(c) => c.apply(app, invocation),
            Command::Revoke(c) => c.apply(app, invocation),
            Command::BreakGlass(c) => c.apply(app, invocation),
        }
    }
}

/// The fields of a slash command that powerpole reads, as `POST /slack/commands` carries them
/// (Slack sends more: the team, the command's name, names of the user and channel). Read straight
/// from the form: the `response_url` is kept as the text Slack sent, to be posted to as it is. A
/// field that needs no decoding is borrowed from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandForm<'a> {
    pub user_id: Cow<'a, str>,
    pub channel_id: Cow<'a, str>,
    pub text: Option<Cow<'a, str>>,
    pub response_url: Cow<'a, str>,
    pub trigger_id: Cow<'a, str>,
}

impl<'a> CommandForm<'a> {
    /// Reads the form Slack posts (`application/x-www-form-urlencoded`, decoded as browsers and
    /// `serde_urlencoded` decode it: `+` is a space, `%XX` a byte, bytes that are not UTF-8 become
    /// U+FFFD). Only the five fields above are decoded; the others are skipped as they are. A
    /// missing field other than `text`, or a field given twice, is an error naming it.
    pub fn from_form(body: &'a [u8]) -> Result<CommandForm<'a>, String> {
        let mut fields: [Option<Cow<'a, str>>; 5] = Default::default();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let Some(at) = field_at(name) else { continue };
            if fields[at].replace(form_decode(value)).is_some() {
                return Err(format!("duplicate field `{}`", FIELDS[at]));
            }
        }
        let [user_id, channel_id, text, response_url, trigger_id] = fields;
        let required = |field: Option<Cow<'a, str>>, at: usize| field.ok_or_else(|| format!("missing field `{}`", FIELDS[at]));
        Ok(CommandForm {
            user_id: required(user_id, 0)?,
            channel_id: required(channel_id, 1)?,
            text,
            response_url: required(response_url, 3)?,
            trigger_id: required(trigger_id, 4)?,
        })
    }
}

/// The fields [`CommandForm`] reads, in its order.
const FIELDS: [&str; 5] = ["user_id", "channel_id", "text", "response_url", "trigger_id"];

/// Where in [`FIELDS`] the form's field `name` is. Slack's names need no decoding and are
/// compared as sent; a name that does is decoded first.
fn field_at(name: &[u8]) -> Option<usize> {
    let at = |name: &[u8]| FIELDS.iter().position(|f| f.as_bytes() == name);
    if name.iter().any(|b| matches!(b, b'%' | b'+')) {
        at(form_decode(name).as_bytes())
    } else {
        at(name)
    }
}

/// One name or value of a form: `+` is a space, `%XX` the byte XX (a `%` not followed by two hex
/// digits is kept as it is), and what is not UTF-8 becomes U+FFFD. Borrowed when nothing needs
/// decoding.
fn form_decode(raw: &[u8]) -> Cow<'_, str> {
    if !raw.iter().any(|b| matches!(b, b'%' | b'+')) {
        return match std::str::from_utf8(raw) {
            Ok(plain) => Cow::Borrowed(plain),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'+' => b' ',
            b'%' => match (raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
                (Some(high), Some(low)) => {
                    i += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            other => other,
        };
        bytes.push(byte);
        i += 1;
    }
    match String::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    }
}

impl From<SlackCommandEvent> for CommandForm<'static> {
    /// A command delivered over Socket Mode.
    fn from(event: SlackCommandEvent) -> CommandForm<'static> {
        CommandForm {
            user_id: event.user_id.to_string().into(),
            channel_id: event.channel_id.to_string().into(),
            text: event.text.map(Cow::Owned),
            response_url: event.response_url.0.to_string().into(),
            trigger_id: event.trigger_id.to_string().into(),
        }
    }
}

/// Parses and applies one verified slash command.
pub fn handle(app: &Arc<SlackApp>, form: CommandForm<'_>, request_id: &RequestId) -> Reply {
    let Ok(user) = SlackUserId::parse(&form.user_id) else {
        return Problem::new("this command came from an account powerpole cannot serve", "").reply();
    };
    let text = form.text.as_deref().unwrap_or_default();
    match Command::parse(text, app) {
        Ok(command) => {
            tracing::debug!(command = ?std::mem::discriminant(&command), "slash command");
            let invocation = Invocation {
                user,
                channel: form.channel_id.into_owned(),
                response_url: form.response_url.into_owned(),
                trigger_id: form.trigger_id.into_owned(),
                request_id: request_id.clone(),
            };
            command.apply(app, invocation)
        }
        Err(problem) => {
            tracing::debug!(problem = %problem.message, "refused a slash command");
            problem.reply()
        }
    }
}

/// The text after the first `n` words, as typed (inner spacing kept), trimmed.
pub fn rest_after(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        match rest.find(char::is_whitespace) {
            Some(i) => rest = rest[i..].trim_start(),
            None => return "",
        }
    }
    rest.trim_end()
}

/// Parses a session id argument.
pub(crate) fn session_arg(arg: Option<&&str>, usage: &str) -> Result<SessionId, Problem> {
    let Some(arg) = arg else {
        return Err(Problem::new("which session? Give its id (see `/powerpole list`)", usage));
    };
    SessionId::parse(arg).map_err(|e| Problem::new(messages::escape(&e.to_string()), usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_form_reads_as_serde_urlencoded_reads_it() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Reference {
            user_id: String,
            channel_id: String,
            #[serde(default)]
            text: Option<String>,
            response_url: String,
            trigger_id: String,
        }
        let forms: &[&str] = &[
            "token=t&team_id=T1&channel_id=C1&user_id=U1&command=%2Fpowerpole&text=request+billing+READ+1h+fix+%E2%9C%93+50%25&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=1.2.3",
            "user_id=U1&channel_id=C1&response_url=u&trigger_id=t",
            "user_id=U1&channel_id=C1&text=&response_url=u&trigger_id=t&",
            "user_id=U1&&channel_id=C1&text=100%&response_url=u&trigger_id=t",
            "user_id=U1&channel_id=C1&text=%ZZ%4&response_url=u&trigger_id=t",
            "user%5Fid=U1&channel_id=C1&text=%FF%FEbad+utf8&response_url=u&trigger_id=t&extra",
            "user_id=U1&channel_id=C1&text=a=b=c&response_url=u&trigger_id=t",
        ];
        for form in forms {
            let reference: Reference = serde_urlencoded::from_bytes(form.as_bytes()).unwrap();
            let ours = CommandForm::from_form(form.as_bytes()).unwrap();
            assert_eq!(
                (ours.user_id.into_owned(), ours.channel_id.into_owned(), ours.text.map(Cow::into_owned), ours.response_url.into_owned(), ours.trigger_id.into_owned()),
                (reference.user_id, reference.channel_id, reference.text, reference.response_url, reference.trigger_id),
                "{form}"
            );
        }
        for (form, error) in [
            ("channel_id=C1&response_url=u&trigger_id=t", "missing field `user_id`"),
            ("user_id=U1&channel_id=C1&response_url=u", "missing field `trigger_id`"),
            ("user_id=U1&user_id=U2&channel_id=C1&response_url=u&trigger_id=t", "duplicate field `user_id`"),
        ] {
            assert!(serde_urlencoded::from_bytes::<Reference>(form.as_bytes()).is_err(), "{form}");
            assert_eq!(CommandForm::from_form(form.as_bytes()).unwrap_err(), error, "{form}");
        }
    }

    #[test]
    fn the_reason_keeps_its_inner_spacing() {
        assert_eq!(rest_after("request billing READ 1h  fix  the thing ", 4), "fix  the thing");
        assert_eq!(rest_after("request billing READ 1h", 4), "");
        assert_eq!(rest_after("  revoke pp-x because", 2), "because");
    }
}
