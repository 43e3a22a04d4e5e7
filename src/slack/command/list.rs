//! `/powerpole list`: the caller's sessions, newest first (answered through `response_url`, as
//! it reads the store).

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::Invocation;
use crate::notify::messages;

/// Lists the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List;

impl List {
    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        let app2 = app.clone();
        app.spawn(&inv.request_id, "list", async move {
            let message = match app2.workflow.list(&inv.user).await {
                Ok(sessions) => messages::list(&sessions),
                Err(e) => {
                    tracing::warn!(cause = %e, "a person's sessions could not be read");
                    messages::problem("your sessions could not be read just now; try again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.", "")
                },
            };
            app2.tell(&inv.response_url, &message).await;
        });
        Reply::Nothing
    }
}
