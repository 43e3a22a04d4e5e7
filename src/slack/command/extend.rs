//! `/powerpole extend <id> <duration>`: asks the approvers for more time on an active session.

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::{session_arg, Invocation, Problem};
use crate::domain::{AccessDuration, SessionId};
use crate::notify::messages::{self, replies::usage_of};

/// Asks for an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extend {
    pub session: SessionId,
    pub by: AccessDuration,
}

impl Extend {
    pub fn parse(args: &[&str], command: &str) -> Result<Extend, Problem> {
        let usage = usage_of(command, "extend");
        let session = session_arg(args.first(), &usage)?;
        let Some(by) = args.get(1) else {
            return Err(Problem::new("by how much? Give a duration such as 30m", usage));
        };
        if args.len() > 2 {
            return Err(Problem::new("`extend` takes the session id and one duration", usage));
        }
        let by = by.parse().map_err(|e: crate::domain::DurationError| Problem::new(messages::escape(&e.to_string()), usage.clone()))?;
        Ok(Extend { session, by })
    }

    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        let app2 = app.clone();
        app.spawn(&inv.request_id, "extend", async move {
            let text = match app2.workflow.extend_request(app2.notifier.as_ref(), &inv.user, &self.session, self.by).await {
                Ok(done) => format!("Asked the approvers to extend {} by {}. You'll get a DM with their answer.", done.session.id, self.by),
                Err(e) => crate::slack::refusal(&e),
            };
            app2.tell(&inv.response_url, &crate::notify::Message::plain(text)).await;
        });
        Reply::Nothing
    }
}
