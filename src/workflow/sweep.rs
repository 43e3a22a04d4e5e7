//! The sweeper: finds due work in the store and does it.
//!
//! [`Lifecycle::tick`] is a plain function of the store and the clock, so tests call it with an
//! injected clock; `powerpole sweep --once` and the Lambda sweeper call it once; `powerpole serve`
//! runs [`run_sweeper`], which calls it on a tokio-cron-scheduler job every `scheduler.tick`, at
//! once when woken (an approval), and at the exact second of any deadline that falls before the
//! next tick (a one-shot timer), so expiry is precise to about a second, not to the tick.
//!
//! Everything is driven from the store: a service that was down at a deadline does the overdue
//! work on its first tick, and two replicas never do the same step twice (each step claims its
//! session with a conditional write first).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};

use crate::domain::SessionId;
use crate::store::StoreError;

use super::lifecycle::{Lifecycle, StepOutcome};

/// At most this many sessions are acted on per tick; the rest are due on the next one.
const BATCH: usize = 100;

/// What one tick found and did.
#[derive(Debug, Default)]
pub struct TickReport {
    pub outcomes: Vec<(SessionId, Result<StepOutcome, String>)>,
    /// The earliest deadline after `now` among the sessions read (for the one-shot timer).
    pub next_deadline: Option<DateTime<Utc>>,
    pub pages: u32,
    pub items_read: u32,
}

impl TickReport {
    /// The outcomes that did something (for logs and `sweep --once`).
    pub fn acted(&self) -> impl Iterator<Item = &(SessionId, Result<StepOutcome, String>)> {
        self.outcomes.iter().filter(|(_, o)| !matches!(o, Ok(StepOutcome::NotDue | StepOutcome::Skipped)))
    }
}

/// The sessions due now and the next deadline soon after.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub due: Vec<crate::domain::Session>,
    pub next_deadline: Option<DateTime<Utc>>,
    pub pages: u32,
    pub items_read: u32,
}

impl Lifecycle {
    /// Reads what is due by `now` and the earliest deadline within `lookahead` after it.
    pub async fn plan(&self, lookahead: chrono::Duration) -> Result<Plan, StoreError> {
        let now = self.workflow.clock.now();
        let batch = self.workflow.store.due(now + lookahead, BATCH).await.inspect_err(|_| crate::metrics::sweeper_error("read_due"))?;
        let mut plan = Plan { pages: batch.pages, items_read: batch.items_read, ..Plan::default() };
        for session in batch.sessions {
            match session.next_action_at() {
                Some(at) if at <= now => plan.due.push(session),
                Some(at) => plan.next_deadline = Some(plan.next_deadline.map_or(at, |d| d.min(at))),
                None => {}
            }
        }
        Ok(plan)
    }

    /// Acts on one session in its own task (a long SSM wait must not hold up another session's
    /// expiry), logging the outcome.
    fn spawn_step(&self, session: crate::domain::Session) -> tokio::task::JoinHandle<(SessionId, Result<StepOutcome, String>)> {
        let lifecycle = self.clone();
        let id = session.id.clone();
        // Held until the step starts: it is registered (for `release_claims`) before it can write.
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = wait.await;
            let id = session.id.clone();
            let outcome = lifecycle.act(session).await.map_err(|e| e.to_string());
            lifecycle.claims.finished(&id);
            match &outcome {
                Ok(StepOutcome::NotDue | StepOutcome::Skipped) => {}
                Ok(o) => info!(session = %id, outcome = ?o, "sweep"),
                Err(e) => {
                    crate::metrics::sweeper_error("step");
                    error!(session = %id, error = %e, "sweep step failed; it stays due")
                }
            }
            (id, outcome)
        });
        self.claims.started(&id, handle.abort_handle());
        let _ = go.send(());
        handle
    }

    /// One sweep, waiting for every step to finish (`sweep --once`, the Lambda, tests).
    pub async fn tick(&self, lookahead: chrono::Duration) -> Result<TickReport, StoreError> {
        let plan = self.plan(lookahead).await?;
        let handles: Vec<_> = plan.due.into_iter().map(|s| self.spawn_step(s)).collect();
        let outcomes = join_all(handles)
            .await
            .into_iter()
            .filter_map(|joined| joined.map_err(|e| error!(error = %e, "a sweep step panicked")).ok())
            .collect();
        Ok(TickReport { outcomes, next_deadline: plan.next_deadline, pages: plan.pages, items_read: plan.items_read })
    }
}

/// Runs the sweeper until the process ends: a tokio-cron-scheduler job every `tick`, a wake-up on
/// `wake`, and a one-shot timer for deadlines that fall between ticks.
pub async fn run_sweeper(lifecycle: Lifecycle, tick: StdDuration, wake: Arc<Notify>) -> anyhow::Result<()> {
    run_sweeper_with(lifecycle, tick, wake, Arc::new(|| {})).await
}

/// As [`run_sweeper`], calling `on_tick` after every tick that read the store (readiness).
pub async fn run_sweeper_with(lifecycle: Lifecycle, tick: StdDuration, wake: Arc<Notify>, on_tick: Arc<dyn Fn() + Send + Sync>) -> anyhow::Result<()> {
    let scheduler = JobScheduler::new().await?;
    let periodic = wake.clone();
    let every = tick.as_secs().max(1);
    scheduler
        .add(Job::new_repeated(StdDuration::from_secs(every), move |_id, _scheduler| periodic.notify_one())?)
        .await?;
    scheduler.start().await?;
    let lookahead = chrono::Duration::seconds(every as i64);
    // The first tick runs at once: overdue work from while the service was down.
    let mut sleep_until: Option<tokio::time::Instant> = None;
    loop {
        match lifecycle.plan(lookahead).await {
            Ok(plan) => {
                on_tick();
                // Steps run on their own; the loop only decides when to look again.
                plan.due.into_iter().for_each(|session| drop(lifecycle.spawn_step(session)));
                sleep_until = plan.next_deadline.map(|at| {
                    let wait = (at - lifecycle.workflow.clock.now()).to_std().unwrap_or_default();
                    tokio::time::Instant::now() + wait
                });
            }
            Err(e) => warn!(error = %e, "sweep could not read the store; retrying at the next tick"),
        }
        match sleep_until {
            Some(at) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
