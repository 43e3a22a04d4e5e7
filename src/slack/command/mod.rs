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
/// from the form: the `response_url` is kept as the text Slack sent, to be posted to as it is.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CommandForm {
    pub user_id: String,
    pub channel_id: String,
    #[serde(default)]
    pub text: Option<String>,
    pub response_url: String,
    pub trigger_id: String,
}

impl From<SlackCommandEvent> for CommandForm {
    /// A command delivered over Socket Mode.
    fn from(event: SlackCommandEvent) -> CommandForm {
        CommandForm {
            user_id: event.user_id.to_string(),
            channel_id: event.channel_id.to_string(),
            text: event.text,
            response_url: event.response_url.0.to_string(),
            trigger_id: event.trigger_id.to_string(),
        }
    }
}

/// Parses and applies one verified slash command.
pub fn handle(app: &Arc<SlackApp>, form: CommandForm, request_id: &RequestId) -> Reply {
    let Ok(user) = SlackUserId::parse(&form.user_id) else {
        return Problem::new("this command came from an account powerpole cannot serve", "").reply();
    };
    let text = form.text.unwrap_or_default();
    let invocation = Invocation { user, channel: form.channel_id, response_url: form.response_url, trigger_id: form.trigger_id, request_id: request_id.clone() };
    match Command::parse(&text, app) {
        Ok(command) => {
            tracing::debug!(command = ?std::mem::discriminant(&command), "slash command");
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
    fn the_reason_keeps_its_inner_spacing() {
        assert_eq!(rest_after("request billing READ 1h  fix  the thing ", 4), "fix  the thing");
        assert_eq!(rest_after("request billing READ 1h", 4), "");
        assert_eq!(rest_after("  revoke pp-x because", 2), "because");
    }
}
