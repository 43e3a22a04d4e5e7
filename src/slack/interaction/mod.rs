//! Button clicks (`block_actions`) and modal submissions (`view_submission`), one file per kind:
//! `parse` reads the verified payload into a typed action, `apply` acknowledges and spawns the
//! effect through the workflow. Clicks are acknowledged with an empty 200 at once; what follows
//! is told to the clicker ephemerally through the click's `response_url`.

mod approve;
mod deny;
mod end_now;
mod extend;
mod extension;
mod request_form;
mod review;

use std::collections::HashMap;
use std::sync::Arc;

use slack_morphism::prelude::*;

pub use approve::Approve;
pub use deny::{DenyButton, DenyForm};
pub use end_now::EndNow;
pub use extend::{ExtendButton, ExtendForm};
pub use extension::DecideExtension;
pub use request_form::RequestForm;
pub use review::{Acknowledge, FlagButton, FlagForm};

use super::{Ack, RequestId, SlackApp};
use crate::domain::{SessionId, SlackUserId};
use crate::notify::messages::actions;
use crate::notify::views::callbacks;
use crate::notify::{Message, Posted};

/// One click on one of powerpole's buttons.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub user: SlackUserId,
    pub session: SessionId,
    /// The message the button is on (the card to update in place).
    pub message: Option<Posted>,
    pub response_url: Option<String>,
    pub trigger_id: String,
    pub request_id: RequestId,
    /// Clicked on the App Home tab (a view container), which is then re-published.
    pub from_home: bool,
}

/// Why a button's form was not opened, in words for the person who clicked; the technical cause
/// goes to the operator's log with the request id.
pub(crate) fn not_opened(request_id: &RequestId, e: NotOpened) -> String {
    match e {
        NotOpened::Refused(e) => {
            if let Some(cause) = e.cause() {
                tracing::warn!(request_id = %request_id, cause = %cause, "a form was not opened: {e}");
            }
            e.to_string()
        }
        NotOpened::Said(text) => text,
        NotOpened::Slack(e) => {
            tracing::warn!(request_id = %request_id, cause = %e, "Slack did not open a form (views.open)");
            "Slack did not open the form just now, so nothing was changed; click the button again in a minute. If it keeps failing, tell the platform team that runs powerpole: the cause is in its log.".to_string()
        }
    }
}

/// What stopped a form from opening.
pub(crate) enum NotOpened {
    /// The workflow refused (its words are for people; its cause, if any, for the log).
    Refused(crate::workflow::ActionError),
    /// A sentence written for the person already.
    Said(String),
    /// Slack's `views.open` failed.
    Slack(crate::notify::NotifyError),
}

impl From<crate::workflow::ActionError> for NotOpened {
    fn from(e: crate::workflow::ActionError) -> NotOpened {
        NotOpened::Refused(e)
    }
}

impl From<crate::notify::NotifyError> for NotOpened {
    fn from(e: crate::notify::NotifyError) -> NotOpened {
        NotOpened::Slack(e)
    }
}

impl Click {
    /// Answers the clicker privately; logs when there is no way to.
    pub async fn tell(&self, app: &SlackApp, text: impl Into<String>) {
        let message = Message::plain(text);
        match &self.response_url {
            Some(url) => app.tell(url, &message).await,
            None => app.tell_user(&self.user, &message).await,
        }
    }
}

/// One submitted modal: who, its private metadata and its input values.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub user: SlackUserId,
    pub private_metadata: String,
    /// `block_id` to the input's value (typed text or the chosen option's value).
    pub values: HashMap<String, String>,
    pub request_id: RequestId,
}

impl Submission {
    pub fn value(&self, block_id: &str) -> &str {
        self.values.get(block_id).map(String::as_str).unwrap_or_default()
    }
}

/// A parsed interaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    Approve(Approve),
    Deny(DenyButton),
    DecideExtension(DecideExtension),
    Extend(ExtendButton),
    EndNow(EndNow),
    RequestForm(RequestForm),
    DenyForm(DenyForm),
    ExtendForm(ExtendForm),
    Acknowledge(Acknowledge),
    Flag(FlagButton),
    FlagForm(FlagForm),
}

/// Why an interaction is not acted on (logged; Slack still gets its 200).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unhandled {
    #[error("an interaction of a kind powerpole does not use")]
    Kind,
    #[error("a button or form powerpole does not know: {0}")]
    Unknown(String),
    #[error("the payload lacks {0}")]
    Missing(&'static str),
}

impl Interaction {
    pub fn parse(event: SlackInteractionEvent, request_id: &RequestId) -> Result<Interaction, Unhandled> {
        match event {
            SlackInteractionEvent::BlockActions(click) => parse_click(click, request_id),
            SlackInteractionEvent::ViewSubmission(submitted) => parse_submission(submitted, request_id),
            _ => Err(Unhandled::Kind),
        }
    }

    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        match self {
            Interaction::Approve(a) => a.apply(app),
            Interaction::Deny(a) => a.apply(app),
            Interaction::DecideExtension(a) => a.apply(app),
            Interaction::Extend(a) => a.apply(app),
            Interaction::EndNow(a) => a.apply(app),
            Interaction::RequestForm(a) => a.apply(app),
            Interaction::DenyForm(a) => a.apply(app),
            Interaction::ExtendForm(a) => a.apply(app),
            Interaction::Acknowledge(a) => a.apply(app),
            Interaction::Flag(a) => a.apply(app),
            Interaction::FlagForm(a) => a.apply(app),
        }
    }
}

/// Parses and applies one verified interaction.
pub fn handle(app: &Arc<SlackApp>, event: SlackInteractionEvent, request_id: &RequestId) -> Ack {
    match Interaction::parse(event, request_id) {
        Ok(interaction) => interaction.apply(app),
        Err(why) => {
            tracing::debug!(%why, "interaction not acted on");
            Ack::Ok
        }
    }
}

fn parse_click(event: SlackInteractionBlockActionsEvent, request_id: &RequestId) -> Result<Interaction, Unhandled> {
    let user = event.user.as_ref().and_then(|u| SlackUserId::parse(u.id.as_ref()).ok()).ok_or(Unhandled::Missing("a user"))?;
    let action = event.actions.as_ref().and_then(|a| a.first()).ok_or(Unhandled::Missing("an action"))?;
    let session = action.value.as_deref().and_then(|v| SessionId::parse(v).ok()).ok_or(Unhandled::Missing("a session id"))?;
    let message = match &event.container {
        SlackInteractionActionContainer::Message(m) => {
            let channel = m.channel_id.clone().or_else(|| event.channel.as_ref().map(|c| c.id.clone()));
            channel.map(|c| Posted { channel: c.to_string(), ts: m.message_ts.to_string() })
        }
        _ => None,
    };
    let from_home = matches!(&event.container, SlackInteractionActionContainer::View(_));
    let click = Click {
        from_home,
        user,
        session,
        message,
        response_url: event.response_url.as_ref().map(|u| u.0.to_string()),
        trigger_id: event.trigger_id.to_string(),
        request_id: request_id.clone(),
    };
    match action.action_id.as_ref() {
        actions::APPROVE => Ok(Interaction::Approve(Approve(click))),
        actions::DENY => Ok(Interaction::Deny(DenyButton(click))),
        actions::APPROVE_EXTENSION => Ok(Interaction::DecideExtension(DecideExtension { click, approve: true })),
        actions::DENY_EXTENSION => Ok(Interaction::DecideExtension(DecideExtension { click, approve: false })),
        actions::EXTEND => Ok(Interaction::Extend(ExtendButton(click))),
        actions::END_NOW => Ok(Interaction::EndNow(EndNow(click))),
        actions::REVIEW_ACKNOWLEDGE => Ok(Interaction::Acknowledge(Acknowledge(click))),
        actions::REVIEW_FLAG => Ok(Interaction::Flag(FlagButton(click))),
        other => Err(Unhandled::Unknown(other.to_string())),
    }
}

fn parse_submission(event: SlackInteractionViewSubmissionEvent, request_id: &RequestId) -> Result<Interaction, Unhandled> {
    let user = SlackUserId::parse(event.user.id.as_ref()).map_err(|_| Unhandled::Missing("a user"))?;
    let SlackView::Modal(modal) = &event.view.view else {
        return Err(Unhandled::Kind);
    };
    let callback = modal.callback_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let mut values = HashMap::new();
    if let Some(state) = &event.view.state_params.state {
        for (block, inputs) in &state.values {
            for input in inputs.values() {
                let value = input.value.clone().or_else(|| input.selected_option.as_ref().map(|o| o.value.clone()));
                if let Some(value) = value {
                    values.insert(block.to_string(), value);
                }
            }
        }
    }
    let submission = Submission { user, private_metadata: modal.private_metadata.clone().unwrap_or_default(), values, request_id: request_id.clone() };
    match callback.as_str() {
        callbacks::REQUEST => Ok(Interaction::RequestForm(RequestForm(submission))),
        callbacks::DENY => Ok(Interaction::DenyForm(DenyForm(submission))),
        callbacks::EXTEND => Ok(Interaction::ExtendForm(ExtendForm(submission))),
        callbacks::FLAG => Ok(Interaction::FlagForm(FlagForm(submission))),
        other => Err(Unhandled::Unknown(other.to_string())),
    }
}
