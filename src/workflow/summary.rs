//! What teardown tells beyond the requester: the extension card that can no longer be decided
//! loses its buttons, and the security channel (if configured) gets the session's summary: who,
//! what, approved by whom, how many shell commands, statements by kind, refused ones, and the
//! command for the full report.

use tracing::{error, warn};

use super::lifecycle::Lifecycle;
use crate::domain::Session;
use crate::notify::messages;
use crate::notify::Posted;

impl Lifecycle {
    /// An extension asked for and still undecided when the session closed: its card says so and
    /// has no buttons left.
    pub(crate) async fn close_extension_card(&self, session: &Session) {
        let Some(extension) = &session.extension else { return };
        let (Some(ts), Some(target)) = (&extension.card_ts, self.workflow.config.target(&session.target)) else { return };
        let at = Posted { channel: target.approvals_channel.clone(), ts: ts.clone() };
        if let Err(e) = self.notifier.update(&at, &messages::extension_card(session, extension.by, None)).await {
            warn!(session = %session.id, error = %e, "could not close the extension card");
        }
    }

    /// Posts the session's summary in `slack.security_channel`, if there is one. A source that
    /// cannot be read is named in the summary instead of holding up the teardown.
    pub(crate) async fn post_security_summary(&self, session: &Session) {
        let Some(channel) = &self.workflow.config.slack.security_channel else { return };
        let now = self.workflow.clock.now();
        let report = crate::report::gather(&self.workflow.config, self.workflow.store.as_ref(), self.transcripts.as_ref(), &session.id, now).await;
        let message = match report {
            Ok(report) => messages::security::session_summary(&report),
            Err(e) => {
                warn!(session = %session.id, error = %e, "the session report could not be gathered for the summary");
                messages::security::summary_unavailable(session, &e.to_string())
            }
        };
        if let Err(e) = self.notifier.post(channel, &message).await {
            error!(session = %session.id, error = %e, "could not post the session summary to the security channel");
        }
    }
}
