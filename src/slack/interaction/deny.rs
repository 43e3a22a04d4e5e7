//! Deny: the button on the approval card opens a modal asking for the reason; submitting it
//! denies the request.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::{Click, Submission};
use crate::domain::SessionId;
use crate::notify::views::{self, inputs};
use crate::notify::Posted;

/// An approver clicked Deny: check they may, then ask why.
#[derive(Debug, Clone, PartialEq)]
pub struct DenyButton(pub Click);

impl DenyButton {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn_with_trigger(&click.request_id.clone(), "deny form", async move {
            if let Err(e) = open(&app2, &click).await {
                let text = super::not_opened(&click.request_id, e);
                click.tell(&app2, format!(":warning: {text}")).await;
            }
        });
        Ack::Ok
    }
}

async fn open(app: &SlackApp, click: &Click) -> Result<(), super::NotOpened> {
    let (session, target) = app.workflow.session(&click.session).await?;
    if session.requester.slack_id == click.user {
        return Err(crate::workflow::ActionError::OwnRequest.into());
    }
    if !app.workflow.is_approver(app.notifier.as_ref(), target, &click.user).await? {
        return Err(crate::workflow::ActionError::NotAnApprover(target.name.to_string()).into());
    }
    if session.state != crate::domain::State::Pending {
        return Err(super::NotOpened::Said(crate::workflow::already_decided(&session)));
    }
    let card = click.message.clone().or_else(|| Some(Posted { channel: session.slack.approval_channel.clone()?, ts: session.slack.approval_ts.clone()? }));
    let (channel, ts) = card.map(|c| (c.channel, c.ts)).unwrap_or_default();
    Ok(app.notifier.open_view(&click.trigger_id, &views::deny_modal(&session, &channel, &ts)).await?)
}

/// The deny modal was submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct DenyForm(pub Submission);

impl DenyForm {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let form = self.0;
        let reason = form.value(inputs::REASON).trim().to_string();
        if reason.is_empty() {
            return Ack::Errors(vec![(inputs::REASON.into(), "Say why, so the requester knows what to do instead.".into())]);
        }
        let mut parts = form.private_metadata.splitn(3, '|');
        let Some(session) = parts.next().and_then(|s| SessionId::parse(s).ok()) else {
            tracing::warn!("a deny form without its session");
            return Ack::Ok;
        };
        let card = match (parts.next(), parts.next()) {
            (Some(c), Some(t)) if !c.is_empty() && !t.is_empty() => Some(Posted { channel: c.into(), ts: t.into() }),
            _ => None,
        };
        // Opened from App Home (no card behind it): that Home is re-published after.
        let from_home = card.is_none();
        let app2 = app.clone();
        app.spawn(&form.request_id.clone(), "deny", async move {
            let wf = &app2.workflow;
            let request = form.request_id.to_string();
            let attempt = || wf.deny_for(app2.notifier.as_ref(), &form.user, &session, &reason, card.clone(), Some(&request));
            let wait_note = || async { app2.tell_user(&form.user, &crate::notify::Message::plain(super::super::store_wait_note(&app2, "denial"))).await };
            let result = wf.patiently("deny", attempt, wait_note).await;
            let requester = result.as_ref().ok().map(|done| done.session.requester.slack_id.clone());
            match result {
                Ok(done) => {
                    let undelivered = app2.report_undelivered(&done);
                    if !undelivered.is_empty() {
                        app2.tell_user(&form.user, &crate::notify::Message::plain(format!("Your denial of {session} is recorded.{undelivered}"))).await;
                    }
                }
                Err(e) => app2.tell_user(&form.user, &crate::notify::Message::plain(crate::slack::refusal(&e))).await,
            }
            if from_home {
                crate::slack::home::republish_after(&app2.workflow, app2.notifier.as_ref(), &form.user, requester.as_ref()).await;
            }
        });
        Ack::Ok
    }
}
