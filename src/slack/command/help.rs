//! `/powerpole` and `/powerpole help`: the usage and the targets one can ask for.

use super::super::{events::target_limits, Reply, SlackApp};
use crate::notify::messages;

/// Shows the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help;

impl Help {
    pub fn apply(self, app: &SlackApp) -> Reply {
        Reply::Ephemeral(messages::usage(app.command_name(), &target_limits(app)))
    }
}
