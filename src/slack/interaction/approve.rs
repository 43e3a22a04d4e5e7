//! The Approve button on an approval card.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::Click;

/// An approver approves.
#[derive(Debug, Clone, PartialEq)]
pub struct Approve(pub Click);

impl Approve {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn(&click.request_id.clone(), "approve", async move {
            let wf = &app2.workflow;
            let request = click.request_id.to_string();
            let attempt = || wf.approve_for(app2.notifier.as_ref(), &click.user, &click.session, click.message.clone(), Some(&request));
            let wait_note = || click.tell(&app2, super::super::store_wait_note(&app2, "approval"));
            let result = wf.patiently("approve", attempt, wait_note).await;
            let requester = result.as_ref().ok().map(|done| done.session.requester.slack_id.clone());
            match result {
                Ok(done) => {
                    tracing::info!(session = %done.session.id, state = %done.session.state, approvals = done.session.approvals.len(), "approval stored");
                    let undelivered = app2.report_undelivered(&done);
                    if !undelivered.is_empty() {
                        click.tell(&app2, format!("Your approval of {} is recorded.{undelivered}", done.session.id)).await;
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "approval refused");
                    click.tell(&app2, crate::slack::refusal(&e)).await;
                }
            }
            if click.from_home {
                crate::slack::home::republish_after(&app2.workflow, app2.notifier.as_ref(), &click.user, requester.as_ref()).await;
            }
        });
        Ack::Ok
    }
}
