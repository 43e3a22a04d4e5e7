//! The request modal was submitted: the same checks as the typed command, shown under the input
//! at fault; a valid request closes the modal and is filed after the answer.

use std::sync::Arc;

use super::super::{Ack, SlackApp};
use super::Submission;
use crate::domain::SessionId;
use crate::notify::messages;
use crate::notify::views::inputs;
use crate::workflow::RequestProblem;

/// A submitted request form.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestForm(pub Submission);

impl RequestForm {
    pub fn apply(self, app: &Arc<SlackApp>) -> Ack {
        let form = self.0;
        let draft = app.workflow.check_request(form.value(inputs::TARGET), form.value(inputs::ROLE), form.value(inputs::DURATION), form.value(inputs::REASON));
        let draft = match draft {
            Ok(d) => d,
            Err(problem) => return Ack::Errors(vec![(block_of(&problem).into(), problem.to_string())]),
        };
        if let Some(why) = app.health.refusal(&draft.target) {
            return Ack::Errors(vec![(inputs::TARGET.into(), format!("{} cannot be requested right now: {why}", draft.target))]);
        }
        // Derived from the request id, so that a follow-up replayed elsewhere files this same id.
        let id = SessionId::derived_from(&form.request_id.to_string());
        let app2 = app.clone();
        app.spawn(&form.request_id.clone(), "file request", async move {
            let channel = app2.workflow.config.target(&draft.target).map(|t| t.approvals_channel.clone()).unwrap_or_default();
            let target = draft.target.to_string();
            let wf = &app2.workflow;
            let attempt = || wf.request(app2.notifier.as_ref(), id.clone(), &form.user, draft.clone());
            let wait_note = || async { app2.tell_user(&form.user, &crate::notify::Message::plain(super::super::store_wait_note(&app2, "request"))).await };
            let message = match wf.patiently("file request", attempt, wait_note).await {
                Ok(session) if session.auto_approved.is_some() => messages::policy::auto_approved(&session, &channel),
                Ok(_) => messages::request_submitted(&id, &target, &channel),
                Err(e) => {
                    tracing::warn!(session = %id, cause = %e.cause(), "the request could not be filed");
                    messages::problem(&e.to_string(), "")
                }
            };
            app2.tell_user(&form.user, &message).await;
        });
        Ack::Ok
    }
}

/// The input a problem is about.
fn block_of(problem: &RequestProblem) -> &'static str {
    match problem {
        RequestProblem::UnknownTarget { .. } => inputs::TARGET,
        RequestProblem::UnknownRole(_) => inputs::ROLE,
        RequestProblem::Duration(_) | RequestProblem::TooLong { .. } | RequestProblem::RoleTooLong { .. } => inputs::DURATION,
        RequestProblem::NoReason | RequestProblem::ReasonTooLong(_) => inputs::REASON,
    }
}
