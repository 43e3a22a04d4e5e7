//! What the lifecycle reports to [`crate::metrics`] beyond the step it is in: when a closed
//! session had to end, for the deadline-to-torn-down lag.

use chrono::{DateTime, Utc};

use crate::domain::{AuditKind, Outcome, Session};

use super::Lifecycle;

impl Lifecycle {
    /// When `closed` had to be gone: its expiry, or the moment it was ended, revoked or failed
    /// (the trail's event; the session keeps no such field). Read only where metrics are
    /// exported ([`crate::metrics::exported`]), so tests and the simulator make no extra call.
    pub(super) async fn deadline_of(&self, closed: &Session) -> Option<DateTime<Utc>> {
        let kind = match closed.state.outcome()? {
            Outcome::Expired => return closed.expires_at,
            Outcome::EndedByRequester => AuditKind::Ended,
            Outcome::RevokedByApprover => AuditKind::Revoked,
            Outcome::Failed => AuditKind::Failed,
            Outcome::Denied | Outcome::PendingTimedOut | Outcome::Cancelled => return None,
        };
        if !crate::metrics::exported() {
            return None;
        }
        let trail = self.workflow.store.audit_trail(&closed.id).await.ok()?;
        trail.iter().rev().find(|r| r.event.kind == kind).map(|r| r.event.at)
    }
}
