//! The claims this process holds: the sessions a sweeper step is working on right now, with the
//! version its last write stored. On SIGTERM `serve` gives them back ([`Lifecycle::release_claims`])
//! instead of leaving them to their leases: a provisioning lease is a minute (renewed while the
//! worker waits), so without this every session a stopping replica was provisioning would wait
//! that long for another replica; with it, the next replica's tick resumes it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::domain::{Session, SessionId};

use super::Lifecycle;

#[derive(Debug)]
struct Held {
    step: AbortHandle,
    /// The session as this process last stored it, while its step runs.
    last_written: Option<Session>,
}

/// Sessions with a step running in this process (shared by every clone of a [`Lifecycle`]).
#[derive(Debug, Clone, Default)]
pub struct HeldClaims(Arc<Mutex<HashMap<SessionId, Held>>>);

impl HeldClaims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Held>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step for `id` started in the task behind `step`.
    pub(super) fn started(&self, id: &SessionId, step: AbortHandle) {
        self.lock().insert(id.clone(), Held { step, last_written: None });
    }

    /// The step for `id` ended (done, failed or skipped): nothing of it is held any more.
    pub(super) fn finished(&self, id: &SessionId) {
        self.lock().remove(id);
    }

    /// A step stored `stored` (only sessions with a running step are tracked).
    pub(super) fn wrote(&self, stored: &Session) {
        if let Some(held) = self.lock().get_mut(&stored.id) {
            held.last_written = Some(stored.clone());
        }
    }

    /// How many steps are running.
    pub fn running(&self) -> usize {
        self.lock().len()
    }
}

impl Lifecycle {
    /// Stops every running step and gives its claim back: for each session whose lease this
    /// process still holds (the store has exactly the version this process last wrote, with a
    /// lease not yet run out), one conditional write clears `lease_until`, so another replica's
    /// next tick resumes it. A session someone else wrote since is left alone (the write
    /// conflicts). Stopping a step mid-way is what a crash does, which every step recovers from
    /// (launch finds the tagged instance, accounts converge, revoke and terminate accept "gone").
    /// Returns how many claims were released.
    pub async fn release_claims(&self) -> usize {
        let held: Vec<(SessionId, Held)> = self.claims.lock().drain().collect();
        for (_, h) in &held {
            h.step.abort();
        }
        let now = self.workflow.clock.now();
        let mut released = 0;
        for (id, h) in held {
            let Some(ours) = h.last_written.filter(|s| !s.unclaimed(now)) else { continue };
            let mut next = ours.clone();
            next.lease_until = None;
            // `update` is conditional on the version and state read: exactly what this process wrote.
            match self.workflow.store.update(ours.state, &next, None).await {
                Ok(_) => {
                    info!(session = %id, state = %ours.state, "claim released at shutdown; another replica resumes it at its next tick");
                    released += 1;
                }
                Err(e) => warn!(session = %id, error = %e, "claim not released (written by someone else since, or the store failed); its lease runs out instead"),
            }
        }
        released
    }
}
