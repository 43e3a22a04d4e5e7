//! The sweeper: finds due work in the store and does it.
//!
//! [`Lifecycle::tick`] is a plain function of the store and the clock, so tests call it with an
//! injected clock; `powerpole sweep --once` and the Lambda sweeper call it once; `powerpole serve`
//! runs [`run_sweeper`], which calls it on a tokio-cron-scheduler job every `scheduler.tick`, at
//! once when woken (an approval, a request) and once more [`INDEX_SETTLE`] later (the due index is
//! eventually consistent), [`LOST_RACE_RETRY`] after a step lost its write to someone else, and at
//! the exact second of any deadline that falls before the next tick (a one-shot timer), so expiry
//! is precise to about a second, not to the tick.
//!
//! Everything is driven from the store: a service that was down at a deadline does the overdue
//! work on its first tick, and two replicas never do the same step twice (each step claims its
//! session with a conditional write first).

use std::collections::HashSet;
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
    /// The read was cut at its limit: more may be due now (look again at once).
    pub more: bool,
}

/// Sessions whose step is running in this process: the next plan leaves them out, so a burst
/// of deadlines larger than one batch is read batch after batch without waiting for a tick.
pub type InFlight = Arc<std::sync::Mutex<HashSet<SessionId>>>;

/// A step to start on its own: `tokio::spawn` in `serve`, the simulator's executor in tests.
pub type Step = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Lifecycle {
    /// Reads what is due by `now` and the earliest deadline within `lookahead` after it.
    pub async fn plan(&self, lookahead: chrono::Duration) -> Result<Plan, StoreError> {
        self.plan_excluding(lookahead, &InFlight::default()).await
    }

    /// As [`Lifecycle::plan`], leaving out the sessions `in_flight` (read past them, so that they
    /// never hide what is due behind them).
    pub async fn plan_excluding(&self, lookahead: chrono::Duration, in_flight: &InFlight) -> Result<Plan, StoreError> {
        let now = self.workflow.clock.now();
        let running: HashSet<SessionId> = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let limit = BATCH + running.len();
        let batch = self.workflow.store.due(now + lookahead, limit).await;
        self.dependencies.record(crate::domain::Dependency::Store, now, &batch);
        let batch = batch.inspect_err(|_| crate::metrics::sweeper_error("read_due"))?;
        let more = batch.sessions.len() >= limit;
        let mut plan = Plan { pages: batch.pages, items_read: batch.items_read, more, ..Plan::default() };
        for session in batch.sessions.into_iter().filter(|s| !running.contains(&s.id)) {
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
            log_step(&id, &outcome);
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

/// How long a sweeper whose read was cut at its limit waits before reading the next batch: the
/// steps just started claim their sessions meanwhile, and the index catches up.
const NEXT_BATCH_AFTER: StdDuration = StdDuration::from_millis(100);

/// How long after a step lost its conditional write (someone else wrote the session between the
/// read and the claim: a card reference, a reminder, a request to extend, another replica) the
/// sweeper reads again, so that the step is retried from what is stored now instead of at the
/// next tick. Another replica's claim is then read as a lease and waited out; a session still due
/// is claimed again.
pub const LOST_RACE_RETRY: StdDuration = StdDuration::from_millis(250);

/// The due index is eventually consistent (a DynamoDB global secondary index): a read made the
/// moment a write woke the sweeper (an approval, a request) may not see that write yet. After
/// every wake the sweeper reads once more this much later, so such a session waits a second, not
/// a tick.
pub const INDEX_SETTLE: StdDuration = StdDuration::from_secs(1);

/// The sweeper's loop: plan, start each due step on its own (`spawn`), then wait for the next
/// deadline, a wake-up on `wake`, or (when the read was cut at its limit) the next batch. The
/// periodic tick is a `wake` from outside ([`run_sweeper_with`]'s scheduler job). Waits use the
/// workflow's clock, so the simulator and the scale test run this very loop on virtual time.
pub async fn sweep_loop(lifecycle: Lifecycle, lookahead: chrono::Duration, wake: Arc<Notify>, on_tick: Arc<dyn Fn() + Send + Sync>, spawn: impl Fn(SessionId, Step)) {
    let in_flight = InFlight::default();
    // The last wait ended with a wake: read once more after `INDEX_SETTLE`.
    let mut woken = false;
    loop {
        let mut wait = None;
        let mut more = false;
        match lifecycle.plan_excluding(lookahead, &in_flight).await {
            Ok(plan) => {
                on_tick();
                more = plan.more;
                for session in plan.due {
                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(session.id.clone());
                    let (lifecycle, in_flight, wake) = (lifecycle.clone(), in_flight.clone(), wake.clone());
                    spawn(session.id.clone(), Box::pin(async move {
                        let id = session.id.clone();
                        let outcome = lifecycle.act(session).await.map_err(|e| e.to_string());
                        log_step(&id, &outcome);
                        in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                        if matches!(outcome, Ok(StepOutcome::Skipped)) {
                            // Lost a write to someone else: look again at what they stored.
                            lifecycle.workflow.clock.sleep(LOST_RACE_RETRY).await;
                            wake.notify_one();
                        }
                    }));
                }
                wait = plan.next_deadline.map(|at| (at - lifecycle.workflow.clock.now()).to_std().unwrap_or_default());
            }
            Err(e) => warn!(error = %e, "sweep could not read the store; retrying at the next tick"),
        }
        if more {
            wait = Some(NEXT_BATCH_AFTER);
        }
        if std::mem::take(&mut woken) {
            wait = Some(wait.map_or(INDEX_SETTLE, |w| w.min(INDEX_SETTLE)));
        }
        woken = match wait {
            Some(wait) => {
                tokio::select! {
                    _ = wake.notified() => true,
                    _ = lifecycle.workflow.clock.sleep(wait) => false,
                }
            }
            None => {
                wake.notified().await;
                true
            }
        };
    }
}

fn log_step(id: &SessionId, outcome: &Result<StepOutcome, String>) {
    match outcome {
        Ok(StepOutcome::NotDue | StepOutcome::Skipped) => {}
        Ok(o) => info!(session = %id, outcome = ?o, "sweep"),
        Err(e) => {
            crate::metrics::sweeper_error("step");
            error!(session = %id, error = %e, "sweep step failed; it stays due")
        }
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
    // Each step is registered with its task before it can write, so SIGTERM can stop it and give
    // its claim back (`release_claims`).
    let claims = lifecycle.claims.clone();
    sweep_loop(lifecycle, lookahead, wake, on_tick, move |id, step| {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (held, session) = (claims.clone(), id.clone());
        let handle = tokio::spawn(async move {
            let _ = wait.await;
            step.await;
            held.finished(&session);
        });
        claims.started(&id, handle.abort_handle());
        let _ = go.send(());
    })
    .await;
    Ok(())
}
