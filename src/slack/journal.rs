//! Nothing `serve` acknowledged is lost when it dies (issue 23): each follow-up is journaled in
//! the store before Slack gets its answer, and a journaled follow-up that no live process is
//! running is replayed by any replica, once.
//!
//! - **Before the answer**: the handler parses, validates and hands its follow-up to
//!   [`JournaledFollowUps`], which holds it at a gate. After the handler, one conditional Put
//!   (`attribute_not_exists`) stores the verified request (what Slack signed, its signature and
//!   the request id: a [`Deferred`], as on Lambda) under the SHA-256 of what Slack signed, owned
//!   by this process with a lease of [`LEASE`]; only then does the answer go out and the gate
//!   open. The follow-up runs in the bounded pool as before, renewing its lease every third of it,
//!   and marks the entry done when it ends (a conditional Put on owner; done entries keep only
//!   their key for [`DONE_KEPT`], so a retried Slack event is recognised and not run twice).
//! - **After a crash**: every replica reads the journal at start-up and every [`SWEEP_EVERY`];
//!   an entry still pending after its lease is claimed with a conditional Put (on the owner it
//!   read and the lease having run out: one replica wins), its request is checked again (HMAC,
//!   at most `deferred::MAX_QUEUED_AGE` old) and replayed through the same handler under the same
//!   request id ([`super::deferred::Deferrer::replay_journaled`]), so a request files the session
//!   id its answer named, and an approval is decided by the same conditional write as before.
//! - **The store does not answer**: the journal write is bounded by [`JOURNAL_WITHIN`]; past it
//!   (or on an error) the follow-up runs unjournaled, as before this journal (it waits for the
//!   store itself, and says so to the person), and a crash in that window loses it; the log
//!   says so with the request id.
//!
//! A follow-up that opens a modal (it needs the 3 s trigger) is not journaled: it runs at once and
//! stores nothing.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::RngExt;
use tokio::sync::oneshot;

use super::deferred::{signed_digest, Deferred, Deferrer, FollowUp, FollowUps, HandOff};
use super::pool::FollowUpPool;
use super::RequestId;
use crate::store::{JournalEntry, Journaled, Store};
use crate::workflow::Clock;

/// How long a process holds a journaled follow-up before another replica may take it over (it is
/// renewed every third of this while the follow-up runs).
pub const LEASE: chrono::Duration = chrono::Duration::seconds(15);
/// How often each replica looks for follow-ups whose process died.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// The bound on the journal write in the answer's path (Slack waits 3 s for the answer).
pub const JOURNAL_WITHIN: Duration = Duration::from_millis(1500);
/// How long a done entry is kept (by its key only), to recognise a retried Slack request.
pub const DONE_KEPT: chrono::Duration = chrono::Duration::hours(2);
/// Entries taken per sweep.
const SWEEP_LIMIT: usize = 50;

/// What a held follow-up is told once the answer's journal write is done.
enum Gate {
    /// Journaled under `key`: run, renew, then mark done.
    Run { key: String },
    /// Not journaled (the store failed or was slow): run all the same; `key` is marked done
    /// after, in case the slow write landed.
    Unjournaled { key: Option<String> },
    /// The same signed request was journaled before (a retried Slack event): not run again.
    Skip,
}

/// `serve`'s follow-ups over HTTP: journaled before the answer, run in the bounded pool.
pub struct JournaledFollowUps {
    pool: Arc<FollowUpPool>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// This process, as the journal's owner.
    owner: String,
    gates: Mutex<HashMap<RequestId, Vec<oneshot::Sender<Gate>>>>,
    refused: Mutex<HashSet<RequestId>>,
}

impl JournaledFollowUps {
    pub fn new(pool: Arc<FollowUpPool>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> JournaledFollowUps {
        let owner = format!("serve-{:016x}", rand::rng().random::<u64>());
        JournaledFollowUps { pool, store, clock, owner, gates: Mutex::default(), refused: Mutex::default() }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn gates(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Vec<oneshot::Sender<Gate>>>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl FollowUps for JournaledFollowUps {
    fn accept(&self, follow_up: FollowUp) {
        if follow_up.needs_trigger() {
            return self.pool.accept(follow_up);
        }
        let id = follow_up.request_id().clone();
        let (open, gate) = oneshot::channel();
        let (store, clock, owner) = (self.store.clone(), self.clock.clone(), self.owner.clone());
        let held = follow_up.wrap(move |work| {
            Box::pin(async move {
                match gate.await {
                    Ok(Gate::Run { key }) => {
                        run_renewing(work, store.as_ref(), clock.as_ref(), &key, &owner).await;
                        finish(store.as_ref(), clock.as_ref(), &key, &owner).await;
                    }
                    Ok(Gate::Unjournaled { key }) => {
                        work.await;
                        if let Some(key) = key {
                            let _ = store.journal_done(&key, &owner, clock.now() + DONE_KEPT).await;
                        }
                    }
                    Ok(Gate::Skip) => tracing::info!("this signed request was journaled before (a retry from Slack): not run again"),
                    // No journal write came (Socket Mode answers without one): run as before.
                    Err(_) => work.await,
                }
            })
        });
        self.gates().entry(id.clone()).or_default().push(open);
        self.pool.accept(held);
        if self.pool.take_refused(&id) {
            self.gates().remove(&id);
            self.refused.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        }
    }

    fn take_refused(&self, id: &RequestId) -> bool {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    fn awaits_journal(&self, id: &RequestId) -> bool {
        self.gates().contains_key(id)
    }

    fn journal<'a>(&'a self, id: &'a RequestId, request: Option<Deferred>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(gates) = self.gates().remove(id) else { return };
            let Some(request) = request else {
                tracing::error!("a verified request could not be recorded for the journal; its follow-up runs unjournaled");
                // Dropping the gates lets the follow-ups run as before the journal.
                return;
            };
            let key = signed_digest(&request);
            let gate = match serde_json::to_string(&request) {
                Err(e) => {
                    tracing::error!(error = %e, "the request could not be journaled; its follow-up runs unjournaled");
                    Gate::Unjournaled { key: None }
                }
                Ok(text) => {
                    let entry = JournalEntry { key: key.clone(), request: text, owner: self.owner.clone(), lease_until: self.clock.now() + LEASE };
                    match tokio::time::timeout(JOURNAL_WITHIN, self.store.journal_put(&entry)).await {
                        Ok(Ok(Journaled::Written)) => Gate::Run { key },
                        Ok(Ok(Journaled::Taken)) => Gate::Skip,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "the follow-up could not be journaled; it runs unjournaled (a crash before it ends would lose it)");
                            Gate::Unjournaled { key: Some(key) }
                        }
                        Err(_) => {
                            tracing::warn!(bound_ms = JOURNAL_WITHIN.as_millis() as u64, "the follow-up journal write did not answer in time; it runs unjournaled (a crash before it ends would lose it)");
                            Gate::Unjournaled { key: Some(key) }
                        }
                    }
                }
            };
            let mut gates = gates.into_iter();
            if let Some(first) = gates.next() {
                let _ = first.send(gate);
            }
            // A handler spawns at most one follow-up; any other runs as before the journal.
            for other in gates {
                let _ = other.send(Gate::Unjournaled { key: None });
            }
        })
    }
}

/// Runs `work`, renewing this process's lease on `key` every third of [`LEASE`].
async fn run_renewing(work: impl std::future::Future<Output = ()>, store: &dyn Store, clock: &dyn Clock, key: &str, owner: &str) {
    let every = (LEASE / 3).to_std().unwrap_or(Duration::from_secs(5));
    let renew = async {
        loop {
            tokio::time::sleep(every).await;
            let now = clock.now();
            match store.journal_claim(key, owner, owner, now, now + LEASE).await {
                Ok(Journaled::Written) => {}
                Ok(Journaled::Taken) => {
                    tracing::warn!("another replica took this follow-up over (this process was too slow to renew it); both may run it");
                    // The work goes on; only the renewals stop.
                    std::future::pending::<()>().await;
                }
                Err(e) => tracing::warn!(error = %e, "the follow-up's journal lease could not be renewed"),
            }
        }
    };
    // `renew` never ends: the work decides when this ends.
    tokio::select! {
        () = work => {}
        () = renew => {}
    }
}

async fn finish(store: &dyn Store, clock: &dyn Clock, key: &str, owner: &str) {
    match store.journal_done(key, owner, clock.now() + DONE_KEPT).await {
        Ok(Journaled::Written) => {}
        Ok(Journaled::Taken) => tracing::warn!("another replica had taken this follow-up over; it may run it again"),
        Err(e) => tracing::warn!(error = %e, "the follow-up ran but could not be marked done; another replica will run it again after its lease"),
    }
}

/// Hands nothing off: `serve` replays journaled requests itself.
struct NoHandOff;

#[async_trait::async_trait]
impl HandOff for NoHandOff {
    async fn hand_off(&self, _deferred: &Deferred) -> Result<(), String> {
        Err("serve journals follow-ups; it hands none off".into())
    }
}

/// Replays journaled follow-ups whose process died.
pub struct Replayer {
    deferrer: Deferrer,
    owner: String,
    running: AtomicUsize,
}

impl Replayer {
    /// A replayer for `app`'s workflow, owning what it takes as `owner` (the process's journal
    /// owner, so a renewal from its live follow-ups and its replays agree).
    pub fn new(app: &super::SlackApp, owner: &str) -> Arc<Replayer> {
        let deferrer = Deferrer::new(app.workflow.clone(), app.notifier.clone(), app.signing_secret.clone(), Arc::new(NoHandOff));
        Arc::new(Replayer { deferrer, owner: owner.to_string(), running: AtomicUsize::new(0) })
    }

    /// Replays every journaled follow-up whose lease has run out, now and every [`SWEEP_EVERY`].
    pub async fn run(self: Arc<Self>) {
        loop {
            self.clone().sweep().await;
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    }

    /// One look at the journal: claims each due entry and replays it (in its own task); the
    /// number claimed.
    pub async fn sweep(self: Arc<Self>) -> usize {
        let store = self.deferrer.app().workflow.store.clone();
        let clock = self.deferrer.app().workflow.clock.clone();
        let due = match store.journal_due(clock.now(), SWEEP_LIMIT).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "the follow-up journal could not be read; trying again later");
                return 0;
            }
        };
        let mut claimed = 0;
        for entry in due {
            let now = clock.now();
            match store.journal_claim(&entry.key, &entry.owner, &self.owner, now, now + LEASE).await {
                Ok(Journaled::Written) => {}
                Ok(Journaled::Taken) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "a journaled follow-up could not be claimed; trying again later");
                    continue;
                }
            }
            claimed += 1;
            let replayer = self.clone();
            tokio::spawn(async move { replayer.replay(entry).await });
        }
        claimed
    }

    async fn replay(&self, entry: JournalEntry) {
        let app = self.deferrer.app();
        let (store, clock) = (app.workflow.store.as_ref(), app.workflow.clock.as_ref());
        self.running.fetch_add(1, Ordering::SeqCst);
        let request: Result<Deferred, _> = serde_json::from_str(&entry.request);
        match request {
            Err(e) => tracing::error!(error = %e, "a journaled follow-up cannot be read; dropped"),
            Ok(request) => {
                tracing::warn!(request_id = %request.request_id, previous_owner = %entry.owner, "replaying a follow-up its process did not finish (it died or stalled)");
                let replay = async {
                    match self.deferrer.replay_journaled(&request).await {
                        Ok(ran) => tracing::info!(request_id = %request.request_id, ?ran, "journaled follow-up replayed"),
                        Err(e) => tracing::error!(request_id = %request.request_id, error = %e, "a journaled follow-up was refused; dropped"),
                    }
                };
                run_renewing(replay, store, clock, &entry.key, &self.owner).await;
            }
        }
        finish(store, clock, &entry.key, &self.owner).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}
