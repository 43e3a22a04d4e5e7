//! Reviewing a break-glass session from its review card: Acknowledge at once, or Flag, which
//! opens a modal for the reason (`workflow::breakglass`).

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::{Click, Submission};
use crate::domain::SessionId;
use crate::notify::views::{self, inputs};
use crate::notify::Message;

/// Acknowledge: reviewed, nothing wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledge(pub Click);

impl Acknowledge {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn(&click.request_id.clone(), "acknowledge review", async move {
            let wf = &app2.workflow;
            let attempt = || wf.review(app2.notifier.as_ref(), &click.user, &click.session, None);
            let wait_note = || click.tell(&app2, super::super::store_wait_note(&app2, "review"));
            match wf.patiently("review", attempt, wait_note).await {
                Ok(done) => {
                    let undelivered = app2.report_undelivered(&done);
                    if !undelivered.is_empty() {
                        click.tell(&app2, format!("Your review of {} is recorded.{undelivered}", done.session.id)).await;
                    }
                }
                Err(e) => click.tell(&app2, crate::slack::refusal(&e)).await,
            }
        });
        Ack::Ok
    }
}

/// Flag: check the clicker may review, then ask what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagButton(pub Click);

impl FlagButton {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let app2 = app.clone();
        let click = self.0;
        app.spawn_with_trigger(&click.request_id.clone(), "flag form", async move {
            let opened = async {
                let (session, target) = app2.workflow.session(&click.session).await?;
                app2.workflow.check_reviewer(app2.notifier.as_ref(), &session, target, &click.user).await?;
                if let Some(review) = session.breakglass.as_ref().and_then(|b| b.review.as_ref()) {
                    return Err(super::NotOpened::Said(crate::notify::messages::breakglass::already_reviewed(&session.id, review)));
                }
                Ok::<(), super::NotOpened>(app2.notifier.open_view(&click.trigger_id, &views::flag_modal(&session)).await?)
            };
            if let Err(e) = opened.await {
                let text = super::not_opened(&click.request_id, e);
                click.tell(&app2, format!(":warning: {text}")).await;
            }
        });
        Ack::Ok
    }
}

/// The flag modal was submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagForm(pub Submission);

impl FlagForm {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let form = self.0;
        let reason = form.value(inputs::REASON).trim().to_string();
        if reason.is_empty() {
            return Ack::Errors(vec![(inputs::REASON.into(), "Say what is wrong, so the security team knows what to look at.".into())]);
        }
        let Ok(session) = SessionId::parse(&form.private_metadata) else {
            tracing::warn!("a flag form without its session");
            return Ack::Ok;
        };
        let app2 = app.clone();
        app.spawn(&form.request_id.clone(), "flag review", async move {
            let wf = &app2.workflow;
            let attempt = || wf.review(app2.notifier.as_ref(), &form.user, &session, Some(reason.clone()));
            let wait_note = || async { app2.tell_user(&form.user, &Message::plain(super::super::store_wait_note(&app2, "flag"))).await };
            match wf.patiently("flag", attempt, wait_note).await {
                Ok(done) => {
                    let undelivered = app2.report_undelivered(&done);
                    if !undelivered.is_empty() {
                        app2.tell_user(&form.user, &Message::plain(format!("Your flag on {session} is recorded.{undelivered}"))).await;
                    }
                }
                Err(e) => app2.tell_user(&form.user, &Message::plain(crate::slack::refusal(&e))).await,
            }
        });
        Ack::Ok
    }
}
