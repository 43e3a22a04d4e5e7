//! `/powerpole end <id>`: the requester withdraws a request or ends a running session.

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::{session_arg, Invocation, Problem};
use crate::domain::{SessionId, State};
use crate::notify::messages::replies::usage_of;

/// Ends one of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub session: SessionId,
}

impl End {
    pub fn parse(args: &[&str], command: &str) -> Result<End, Problem> {
        let usage = usage_of(command, "end");
        if args.len() > 1 {
            return Err(Problem::new("`end` takes only the session id", usage));
        }
        Ok(End { session: session_arg(args.first(), &usage)? })
    }

    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        let app2 = app.clone();
        app.spawn(&inv.request_id, "end", async move {
            let wf = &app2.workflow;
            let attempt = || wf.end(app2.notifier.as_ref(), &inv.user, &self.session);
            let wait_note = || async { app2.tell(&inv.response_url, &crate::notify::Message::plain(super::super::store_wait_note(&app2, "request to end the session"))).await };
            let text = match wf.patiently("end", attempt, wait_note).await {
                Ok(done) => {
                    let what = match done.session.state {
                        State::TearingDown(_) => "is ending: the bastion and your database account are being removed",
                        _ => "was withdrawn",
                    };
                    format!("{} {what}.{}", done.session.id, app2.report_undelivered(&done))
                }
                Err(e) => crate::slack::refusal(&e),
            };
            app2.tell(&inv.response_url, &crate::notify::Message::plain(text)).await;
        });
        Reply::Nothing
    }
}
