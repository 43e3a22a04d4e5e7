//! `/powerpole breakglass <target> <role> <duration> <reason...>`: on-call access at once, within
//! the target's break-glass limits, announced loudly and reviewed afterwards
//! (`workflow::breakglass`).

use std::sync::Arc;

use super::super::{Reply, SlackApp};
use super::{Invocation, Problem};
use crate::domain::SessionId;
use crate::notify::{messages, Message};
use crate::workflow::RequestDraft;

/// A checked break-glass; membership of the on-call group is checked after the answer (it needs
/// Slack's directory).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakGlass(pub RequestDraft);

impl BreakGlass {
    /// `args` are the words after `breakglass`; `reason` is the text after the fourth word.
    pub fn parse(args: &[&str], reason: &str, app: &SlackApp) -> Result<BreakGlass, Problem> {
        let usage = messages::replies::usage_of(app.command_name(), "breakglass");
        let names = ["a target", "a role", "a duration", "a reason"];
        if args.len() < names.len() {
            let missing = names[args.len()..].join(", ");
            return Err(Problem::new(format!("`breakglass` needs a target, a role, a duration and a reason; missing: {missing}"), usage));
        }
        let draft = crate::workflow::check_breakglass(&app.workflow.config, args[0], args[1], args[2], reason)
            .map_err(|p| Problem::new(messages::escape(&p.to_string()), usage.clone()))?;
        if let Some(why) = app.health.refusal(&draft.target) {
            return Err(Problem::new(format!("`{}` cannot be reached right now: {why}", draft.target), ""));
        }
        Ok(BreakGlass(draft))
    }

    pub fn apply(self, app: &Arc<SlackApp>, inv: Invocation) -> Reply {
        let draft = self.0;
        // Derived from the request id, so that a replayed follow-up takes this same session.
        let id = SessionId::derived_from(&inv.request_id.to_string());
        let reply = Message::plain(format!(":hourglass_flowing_sand: Checking that you are on call for `{}`; {id} follows here.", draft.target));
        let app2 = app.clone();
        app.spawn(&inv.request_id, "break glass", async move {
            let wf = &app2.workflow;
            let attempt = || wf.breakglass(app2.notifier.as_ref(), id.clone(), &inv.user, draft.clone());
            let wait_note = || async { app2.tell(&inv.response_url, &messages::problem(&super::super::store_wait_note(&app2, "break-glass"), "")).await };
            let text = match wf.patiently("break glass", attempt, wait_note).await {
                Ok(done) => format!(
                    ":rotating_light: Break-glass {} approved at once: {} on `{}` for {}. Your bastion is being prepared and you'll get a DM to connect. The approvers and the security team have been told, and it will be reviewed.{}",
                    done.session.id,
                    done.session.role,
                    done.session.target,
                    done.session.duration,
                    app2.report_undelivered(&done)
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "break-glass refused");
                    format!(":warning: {}", e)
                }
            };
            app2.tell(&inv.response_url, &Message::plain(text)).await;
        });
        Reply::Ephemeral(reply)
    }
}
