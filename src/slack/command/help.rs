//! `/powerpole` and `/powerpole help`: the usage and the targets one can ask for.

use super::super::{Reply, SlackApp};
use crate::config::Config;
use crate::notify::{messages, Message};

/// Shows the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help;

impl Help {
    /// The answer built when the app was assembled ([`SlackApp::help`]): it depends only on the
    /// configuration.
    pub fn apply(self, app: &SlackApp) -> Reply {
        Reply::Prepared(app.help.clone())
    }

    /// The usage of the configured command and the targets one can ask for.
    pub fn message(config: &Config) -> Message {
        let targets: Vec<(String, String)> = config.targets.values().map(|t| (t.name.to_string(), t.max_duration.to_string())).collect();
        messages::usage(&config.slack.command, &targets)
    }
}
