//! `/powerpole revoke <id> [reason...]`: an approver of the session's target ends it now.

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::{session_arg, Invocation, Problem};
use crate::domain::SessionId;
use crate::notify::messages::replies::usage_of;

/// Revokes a session (approvers only; checked when applied, as it may need the user group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    pub session: SessionId,
    pub reason: String,
}

impl Revoke {
    pub fn parse(args: &[&str], reason: &str, command: &str) -> Result<Revoke, Problem> {
        let usage = usage_of(command, "revoke");
        Ok(Revoke { session: session_arg(args.first(), &usage)?, reason: reason.to_string() })
    }

    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        let app2 = app.clone();
        app.spawn(&inv.request_id, "revoke", async move {
            let wf = &app2.workflow;
            let attempt = || wf.revoke(app2.notifier.as_ref(), &inv.user, &self.session, &self.reason);
            let wait_note = || async { app2.tell(&inv.response_url, &crate::notify::Message::plain(super::super::store_wait_note(&app2, "revocation"))).await };
            let text = match wf.patiently("revoke", attempt, wait_note).await {
                Ok(done) => format!("{} is revoked ({}).{}", done.session.id, done.session.state, app2.report_undelivered(&done)),
                Err(e) => crate::slack::refusal(&e),
            };
            app2.tell(&inv.response_url, &crate::notify::Message::plain(text)).await;
        });
        Reply::Nothing
    }
}
