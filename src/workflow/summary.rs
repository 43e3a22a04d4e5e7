//! What teardown tells the security channel (if configured), through the outbox
//! (`workflow::outbox`): the session's summary: who, what, approved by whom, how many shell
//! commands, statements by kind, refused ones, and the command for the full report.

use tracing::warn;

use super::lifecycle::Lifecycle;
use crate::domain::Session;
use crate::notify::messages;
use crate::notify::NotifyError;

impl Lifecycle {
    /// Posts the session's summary in `slack.security_channel`, if there is one (a notice of the
    /// outbox, `workflow::outbox`). A source that cannot be read is named in the summary instead
    /// of holding the notice up.
    pub(crate) async fn post_security_summary(&self, session: &Session) -> Result<(), NotifyError> {
        let Some(channel) = &self.workflow.config.slack.security_channel else { return Ok(()) };
        let now = self.workflow.clock.now();
        let report = crate::report::gather(&self.workflow.config, self.workflow.store.as_ref(), self.transcripts.as_ref(), &session.id, now).await;
        let message = match report {
            Ok(report) => messages::security::session_summary(&report),
            Err(e) => {
                warn!(session = %session.id, error = %e, "the session report could not be gathered for the summary");
                messages::security::summary_unavailable(session, &e.to_string())
            }
        };
        self.notifier.post(channel, &message).await.map(drop)
    }
}
