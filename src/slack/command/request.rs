//! `/powerpole request`: with no arguments, opens the request modal; with
//! `<target> <role> <duration> <reason...>`, files the request directly.

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::{Invocation, Problem};
use crate::domain::SessionId;
use crate::notify::{messages, views};
use crate::workflow::RequestDraft;

/// A request for access.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Open the modal.
    Form,
    /// Everything was typed and checked.
    Direct(RequestDraft),
}

impl Request {
    /// `args` are the words after `request`; `reason` is the text after the fourth word, as typed.
    pub fn parse(args: &[&str], reason: &str, app: &SlackApp) -> Result<Request, Problem> {
        let usage = messages::replies::usage_of(app.command_name(), "request");
        if args.is_empty() {
            return Ok(Request::Form);
        }
        let names = ["a target", "a role", "a duration", "a reason"];
        if args.len() < names.len() {
            let missing = names[args.len()..].join(", ");
            return Err(Problem::new(format!("`request` needs a target, a role, a duration and a reason; missing: {missing}"), usage));
        }
        let draft = app
            .workflow
            .check_request(args[0], args[1], args[2], reason)
            .map_err(|p| Problem::new(messages::escape(&p.to_string()), usage.clone()))?;
        if let Some(why) = app.health.refusal(&draft.target) {
            return Err(Problem::new(format!("`{}` cannot be requested right now: {why}", draft.target), ""));
        }
        Ok(Request::Direct(draft))
    }

    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        match self {
            Request::Form => open_form(app, inv),
            Request::Direct(draft) => file(app, inv, draft),
        }
    }
}

fn open_form(app: &Arc<SlackApp>, inv: Invocation) -> Reply {
    let config = &app.workflow.config;
    let available: Vec<_> = config.targets.values().filter(|t| app.health.refusal(&t.name).is_none()).collect();
    if available.is_empty() {
        return Problem::new("no database can be requested right now; the platform team has been told by the logs", "").reply();
    }
    let names: Vec<_> = available.iter().map(|t| t.name.clone()).collect();
    let app2 = app.clone();
    app.spawn_with_trigger(&inv.request_id, "open request form", async move {
        // Only what this person may ask for (eligibility groups read live).
        let config = &app2.workflow.config;
        let offers = match app2.workflow.offers(app2.notifier.as_ref(), &inv.user).await {
            Ok(offers) => offers.into_iter().filter(|o| names.contains(&o.target)).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(error = %e, "who may ask could not be read from Slack; the request form did not open");
                app2.tell(&inv.response_url, &messages::problem("who may ask for what could not be read from Slack right now; try again in a minute", "")).await;
                return;
            }
        };
        if offers.is_empty() {
            let text = "you may not ask for any database through powerpole: each one is open to named people or user groups only. Ask the platform team who keep powerpole's configuration, or a manager of those groups.";
            app2.tell(&inv.response_url, &messages::problem(text, "")).await;
            return;
        }
        let targets: Vec<_> = offers.iter().filter_map(|o| config.target(&o.target)).collect();
        let view = views::request_modal_for(config, &targets, &offers, &inv.channel);
        if let Err(e) = app2.notifier.open_view(&inv.trigger_id, &view).await {
            tracing::error!(error = %e, "the request form did not open");
            app2.tell(&inv.response_url, &messages::problem("the request form did not open; try again, or type `/powerpole request <target> <READ|DML|DDL> <duration> <reason>`.", "")).await;
        }
    });
    Reply::Nothing
}

fn file(app: &Arc<SlackApp>, inv: Invocation, draft: RequestDraft) -> Reply {
    // Derived from the request id, so that a follow-up replayed elsewhere files this same id.
    let id = SessionId::derived_from(&inv.request_id.to_string());
    let Some(target) = app.workflow.config.target(&draft.target) else {
        return Problem::new("that target is no longer configured", "").reply();
    };
    // Nothing says "sent" before it is: the requester's e-mail may not map to a database user
    // name, which only the follow-up (reading the profile) can tell; a refusal follows here.
    let reply = messages::request_checking(&id, draft.target.as_str(), &target.approvals_channel);
    let app2 = app.clone();
    app.spawn(&inv.request_id, "file request", async move {
        let wf = &app2.workflow;
        let attempt = || wf.request(app2.notifier.as_ref(), id.clone(), &inv.user, draft.clone());
        let wait_note = || async { app2.tell(&inv.response_url, &messages::problem(&super::super::store_wait_note(&app2, "request"), "")).await };
        match wf.patiently("file request", attempt, wait_note).await {
            Ok(session) => {
                tracing::info!(session = %session.id, target = %session.target, role = %session.role, "request filed");
                if session.auto_approved.is_some() {
                    let channel = app2.workflow.config.target(&session.target).map(|t| t.approvals_channel.clone()).unwrap_or_default();
                    app2.tell(&inv.response_url, &messages::policy::auto_approved(&session, &channel)).await;
                }
            }
            Err(e) => {
                tracing::warn!(session = %id, cause = %e.cause(), "the request could not be filed");
                app2.tell(&inv.response_url, &messages::problem(&e.to_string(), "")).await;
            }
        }
    });
    Reply::Ephemeral(reply)
}
