//! The End-now button of the expiry warning.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::Click;

/// The requester ends their session from the warning DM.
#[derive(Debug, Clone, PartialEq)]
pub struct EndNow(pub Click);

impl EndNow {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn(&click.request_id.clone(), "end now", async move {
            let wf = &app2.workflow;
            let attempt = || wf.end(app2.notifier.as_ref(), &click.user, &click.session);
            let wait_note = || click.tell(&app2, super::super::store_wait_note(&app2, "request to end the session"));
            let text = match wf.patiently("end", attempt, wait_note).await {
                Ok(done) => format!("{} is ending: the bastion and your database account are being removed.{}", done.session.id, app2.report_undelivered(&done)),
                Err(e) => crate::slack::refusal(&e),
            };
            click.tell(&app2, text).await;
            if click.from_home {
                crate::slack::home::publish(&app2.workflow, app2.notifier.as_ref(), &click.user).await;
            }
        });
        Ack::Ok
    }
}
