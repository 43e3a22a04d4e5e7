//! Extend: the button of the expiry warning opens a modal with the durations the target still
//! allows; submitting it asks the approvers.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::{Click, Submission};
use crate::domain::{AccessDuration, SessionId};
use crate::notify::views::{self, inputs};
use crate::notify::Message;

/// The requester clicked Extend.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendButton(pub Click);

impl ExtendButton {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn_with_trigger(&click.request_id.clone(), "extend form", async move {
            let opened = async {
                let (session, target) = app2.workflow.session(&click.session).await?;
                if session.requester.slack_id != click.user {
                    return Err(crate::workflow::ActionError::NotYours(session.id.clone()).into());
                }
                let view = views::extend_modal(&session, target).ok_or_else(|| {
                    super::NotOpened::Said(format!("{} already has the {} `{}` allows; it cannot be extended", session.id, target.max_duration, target.name))
                })?;
                Ok::<(), super::NotOpened>(app2.notifier.open_view(&click.trigger_id, &view).await?)
            };
            if let Err(e) = opened.await {
                let text = super::not_opened(&click.request_id, e);
                click.tell(&app2, format!(":warning: {text}")).await;
            }
        });
        Ack::Ok
    }
}

/// The extension modal was submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendForm(pub Submission);

impl ExtendForm {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let form = self.0;
        let by: AccessDuration = match form.value(inputs::DURATION).parse() {
            Ok(by) => by,
            Err(e) => return Ack::Errors(vec![(inputs::DURATION.into(), format!("{e}"))]),
        };
        let Ok(session) = SessionId::parse(&form.private_metadata) else {
            tracing::warn!("an extension form without its session");
            return Ack::Ok;
        };
        let app2 = app.clone();
        app.spawn(&form.request_id.clone(), "extend", async move {
            let text = match app2.workflow.extend_request(app2.notifier.as_ref(), &form.user, &session, by).await {
                Ok(_) => format!("Asked the approvers to extend {session} by {by}. You'll get their answer here."),
                Err(e) => crate::slack::refusal(&e),
            };
            app2.tell_user(&form.user, &Message::plain(text)).await;
            crate::slack::home::publish(&app2.workflow, app2.notifier.as_ref(), &form.user).await;
        });
        Ack::Ok
    }
}
