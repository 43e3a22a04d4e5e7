//! Riding out a store that is briefly unavailable (DynamoDB throttling, or unreachable for a
//! while): what a person did and was acknowledged for is done once the store answers again, or
//! they are told it was not. Every retried step is idempotent: a request files the session id
//! derived from its Slack request id, and a decision is a conditional write that, read again,
//! finds itself already made.
//!
//! The wait is bounded by `[store] unavailable_retry_for`; it backs off 1 s doubling to 15 s,
//! with jitter so that replicas do not retry in step. It runs on tokio's clock, so the simulator
//! and tests with a paused clock are not slowed by it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;


use super::{ActionError, RequestError, Workflow};
use crate::store::StoreError;

const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(15);

/// An error that may go away if the same step is tried again a little later.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl Transient for RequestError {
    fn is_transient(&self) -> bool {
        matches!(self, RequestError::Store(e) if e.is_transient())
    }
}

impl Transient for ActionError {
    fn is_transient(&self) -> bool {
        matches!(self, ActionError::Store(e) if e.is_transient())
    }
}

impl Workflow {
    /// Runs `attempt` until it succeeds, fails for a reason that is not transient, or it has
    /// waited `[store] unavailable_retry_for` between attempts; returns its last result. `on_first_wait` runs
    /// once, before the first wait (to tell the person their action is waiting for the store).
    pub async fn patiently<T, E, F, Fut, W, WFut>(&self, what: &str, mut attempt: F, on_first_wait: W) -> Result<T, E>
    where
        E: Transient + Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        W: FnOnce() -> WFut,
        WFut: Future<Output = ()>,
    {
        // Bounded by the time waited, slept through the workflow's clock (the simulator runs this
        // on virtual time; a test's manual clock does not move while it waits).
        let retry_for = self.config.store.unavailable_retry_for.to_std();
        let mut waited = Duration::ZERO;
        let mut wait = FIRST_WAIT;
        let mut on_first_wait = Some(on_first_wait);
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && waited + wait < retry_for => {
                    tracing::warn!(what, error = %e, retry_in_ms = wait.as_millis() as u64, "the store is unavailable; trying again");
                    if let Some(tell) = on_first_wait.take() {
                        tell().await;
                    }
                    // Jitter from the clock's sub-second part: spread like a random draw between
                    // replicas, and deterministic under the simulator's virtual time.
                    let jitter = f64::from(self.clock.now().timestamp_subsec_nanos() % 200_000_000) / 1e9;
                    let pause = wait.mul_f64(1.0 - jitter);
                    self.clock.sleep(pause).await;
                    waited += pause;
                    wait = (wait * 2).min(MAX_WAIT);
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unavailable_store_is_worth_waiting_for() {
        assert!(RequestError::Store(StoreError::Unavailable("throttled".into())).is_transient());
        assert!(!RequestError::Store(StoreError::Corrupt("bad item".into())).is_transient());
        assert!(ActionError::Store(StoreError::Unavailable("throttled".into())).is_transient());
        assert!(!ActionError::OwnRequest.is_transient());
    }
}
