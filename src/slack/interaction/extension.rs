//! The Approve extension / Deny buttons on an extension card.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::Click;

/// An approver decides an extension.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideExtension {
    pub click: Click,
    pub approve: bool,
}

impl DecideExtension {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let DecideExtension { click, approve } = self;
        app.spawn(&click.request_id.clone(), "decide extension", async move {
            let result = app2.workflow.decide_extension(app2.notifier.as_ref(), &click.user, &click.session, approve, click.message.clone()).await;
            let requester = result.as_ref().ok().map(|done| done.session.requester.slack_id.clone());
            match result {
                Ok(done) => {
                    let undelivered = app2.report_undelivered(&done);
                    if !undelivered.is_empty() {
                        click.tell(&app2, format!("Your decision on {} is recorded.{undelivered}", done.session.id)).await;
                    }
                }
                Err(e) => click.tell(&app2, crate::slack::refusal(&e)).await,
            }
            if click.from_home {
                crate::slack::home::republish_after(&app2.workflow, app2.notifier.as_ref(), &click.user, requester.as_ref()).await;
            }
        });
        Ack::Ok
    }
}
