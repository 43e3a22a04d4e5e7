//! Events API callbacks. Slack retries an event it thinks was not acknowledged
//! (`X-Slack-Retry-Num`), so every event is done once: its `event_id` is remembered in the store
//! first, and a retry (or a replica that got the same event) finds it there and does nothing.
//!
//! Two events are acted on: `app_mention` (powerpole answers with its usage) and
//! `app_home_opened` (the person's App Home is published, see [`super::home`]).

use std::sync::Arc;

use slack_morphism::prelude::{SlackEventCallbackBody, SlackPushEventCallback};

use super::{RequestId, SlackApp};
use crate::domain::SlackUserId;

/// How long an event id is remembered (Slack retries within minutes).
pub const REMEMBER_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Acknowledges at once and handles the event after, once.
pub fn handle(app: &Arc<SlackApp>, callback: SlackPushEventCallback, retry: Option<u32>, id: &RequestId) {
    let app2 = app.clone();
    app.spawn(id, "event", async move {
        let key = format!("event:{}", callback.event_id);
        match app2.workflow.store.remember_once(&key, REMEMBER_FOR).await {
            Ok(true) => apply(&app2, callback).await,
            Ok(false) => tracing::info!(event_id = %callback.event_id, retry, "a repeated event was ignored"),
            Err(e) => tracing::error!(event_id = %callback.event_id, error = %e, "the event could not be recorded; Slack will retry it"),
        }
    });
}

async fn apply(app: &SlackApp, callback: SlackPushEventCallback) {
    match callback.event {
        SlackEventCallbackBody::AppMention(mention) => {
            if let Err(e) = app.notifier.post(mention.channel.as_ref(), &app.help.message).await {
                tracing::error!(error = %e, "the answer to a mention was not posted");
            }
        }
        // The Messages tab opens this event too; only the Home tab shows powerpole's view.
        SlackEventCallbackBody::AppHomeOpened(opened) if opened.tab.as_deref() != Some("messages") => match SlackUserId::parse(opened.user.as_ref()) {
            Ok(user) => super::home::publish(&app.workflow, app.notifier.as_ref(), &user).await,
            Err(e) => tracing::warn!(error = %e, "app_home_opened without a usable user id"),
        },
        _ => {}
    }
}
