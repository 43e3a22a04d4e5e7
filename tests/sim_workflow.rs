//! Workflow races replayed step by step on the in-memory adapters (src/memory), on the
//! simulator's virtual time: each test names the race it proves fixed. No I/O; each runs in
//! milliseconds.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use tokio::sync::Notify;

use powerpole::bastion::{BastionError, Bastions, Instance, LaunchSpec, ManagedInstance};
use powerpole::config::Config;
use powerpole::domain::{AccessDuration, AuditEvent, DbUsername, Outcome, Session, SessionId, SlackUserId, State, TargetName};
use powerpole::memory::{BastionWorld, Faults, GrantWorld, MemBastions, MemGrants, MemNotifier, MemStore, Node, SlackWorld, StoreWorld, VirtualTime};
use powerpole::notify::{Message, Notifier, NotifyError, Posted, Profile, View};
use powerpole::sim::{Executor, SkewedClock, Spawner, CONFIG};
use powerpole::store::{AuditRecord, DueBatch, Store, StoreError};
use powerpole::workflow::{sweep_loop, Lifecycle, Workflow, INDEX_SETTLE, LOST_RACE_RETRY};

struct World {
    time: Arc<VirtualTime>,
    spawner: Spawner,
    lifecycle: Lifecycle,
    store: Arc<StoreWorld>,
    bastions: Arc<BastionWorld>,
    grants: Arc<GrantWorld>,
    slack: Arc<SlackWorld>,
}

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap()
}

/// A world without faults; `wrap` may put a gate around the bastions or Slack.
fn world(exec: &Executor, tag_lag: Duration, bastions: impl FnOnce(MemBastions) -> Arc<dyn Bastions>, notifier: impl FnOnce(MemNotifier) -> Arc<dyn Notifier>) -> Arc<World> {
    world_with(exec, CONFIG, tag_lag, bastions, notifier)
}

/// As [`world`], with a configuration of the test's own.
fn world_with(exec: &Executor, config: &str, tag_lag: Duration, bastions: impl FnOnce(MemBastions) -> Arc<dyn Bastions>, notifier: impl FnOnce(MemNotifier) -> Arc<dyn Notifier>) -> Arc<World> {
    world_full(exec, config, tag_lag, Duration::ZERO, bastions, notifier, |s| Arc::new(s))
}

/// As [`world_with`], with index reads `index_lag` behind writes and a wrapper around the store.
fn world_full(
    exec: &Executor,
    config: &str,
    tag_lag: Duration,
    index_lag: Duration,
    bastions: impl FnOnce(MemBastions) -> Arc<dyn Bastions>,
    notifier: impl FnOnce(MemNotifier) -> Arc<dyn Notifier>,
    store_wrap: impl FnOnce(MemStore) -> Arc<dyn Store>,
) -> Arc<World> {
    let time = exec.time.clone();
    let node = Node::new("test", Faults::none(time.clone()));
    let (store, bw, grants, slack) =
        (StoreWorld::new(index_lag, time.clone()), BastionWorld::new(tag_lag, Duration::from_secs(30), time.clone()), GrantWorld::new(time.clone()), SlackWorld::new());
    let workflow = Workflow {
        config: Arc::new(Config::from_toml_str(config).unwrap()),
        store: store_wrap(MemStore::new(store.clone(), node.clone())),
        clock: Arc::new(SkewedClock::new(time.clone(), Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap(), 0)),
        wake: Arc::new(Notify::new()),
    };
    let lifecycle = Lifecycle {
        workflow,
        bastions: bastions(MemBastions::new(bw.clone(), node.clone())),
        grants: Arc::new(MemGrants::new(grants.clone(), node.clone())),
        notifier: notifier(MemNotifier::new(slack.clone(), node)),
        region: "eu-west-1".into(),
        transcripts: None,
        claims: Default::default(),
        dependencies: Default::default(),
    };
    Arc::new(World { time, spawner: exec.spawner(), lifecycle, store, bastions: bw, grants, slack })
}

impl World {
    async fn approved(&self) -> SessionId {
        let wf = &self.lifecycle.workflow;
        let id = SessionId::derived_from("test-request");
        let draft = wf.check_request("billing", "READ", "10m", "INC-1").unwrap();
        wf.request(self.lifecycle.notifier.as_ref(), id.clone(), &user("U0ALICE"), draft).await.unwrap();
        wf.approve(self.lifecycle.notifier.as_ref(), &user("U0BOB"), &id, None).await.unwrap();
        id
    }

    fn session(&self, id: &SessionId) -> powerpole::domain::Session {
        self.store.all().into_iter().find(|s| &s.id == id).unwrap()
    }

    /// Sweeps every 15 s for `minutes`, each due step in its own task.
    async fn sweep_for(&self, minutes: u64) {
        for _ in 0..minutes * 4 {
            if let Ok(plan) = self.lifecycle.plan(chrono::Duration::seconds(15)).await {
                for session in plan.due {
                    let lifecycle = self.lifecycle.clone();
                    self.spawner.detach(async move { drop(lifecycle.act(session).await) });
                }
            }
            self.time.sleep(Duration::from_secs(15)).await;
        }
    }

    fn nothing_left(&self) {
        assert!(self.bastions.instances().iter().all(|i| i.terminated), "an instance is still running: {:?}", self.bastions.instances());
        assert!(self.grants.accounts().is_empty(), "an account is left: {:?}", self.grants.accounts());
    }
}

/// Bastions whose `RunInstances` takes effect at once but answers only when the gate opens.
struct LateLaunch(MemBastions, Arc<Notify>);

#[async_trait]
impl Bastions for LateLaunch {
    async fn launch(&self, spec: &LaunchSpec) -> Result<Instance, BastionError> {
        let launched = self.0.launch(spec).await;
        self.1.notified().await;
        launched
    }
    async fn find(&self, session: &SessionId) -> Result<Option<Instance>, BastionError> {
        self.0.find(session).await
    }
    async fn set_identity(&self, id: &str, spec: &LaunchSpec) -> Result<(), BastionError> {
        self.0.set_identity(id, spec).await
    }
    async fn wait_online(&self, id: &str, timeout: Duration) -> Result<(), BastionError> {
        self.0.wait_online(id, timeout).await
    }
    async fn terminate(&self, id: &str) -> Result<(), BastionError> {
        self.0.terminate(id).await
    }
    async fn list_managed(&self) -> Result<Vec<ManagedInstance>, BastionError> {
        self.0.list_managed().await
    }
}

#[test]
fn end_during_launch_leaves_no_instance_and_tells_the_requester() {
    let exec = Executor::new();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    // The tag lookup lags 30 s: the teardown cannot find the instance the worker is launching.
    let w = world(&exec, Duration::from_secs(30), move |b| Arc::new(LateLaunch(b, g)), |n| Arc::new(n));
    exec.block_on(async move {
    let id = w.approved().await;
    let worker = w.spawner.spawn({
        let lifecycle = w.lifecycle.clone();
        let s = w.session(&id);
        async move { lifecycle.act(s).await }
    });
    w.time.sleep(Duration::from_secs(1)).await;
    assert_eq!(w.bastions.instances().len(), 1, "the launch took effect");
    let wf = &w.lifecycle.workflow;
    wf.end(w.lifecycle.notifier.as_ref(), &user("U0ALICE"), &id).await.unwrap();
    w.sweep_for(1).await;
    gate.notify_one();
    let _ = worker.await;
    w.sweep_for(3).await;
    assert_eq!(w.session(&id).state, State::Closed(Outcome::EndedByRequester));
    w.nothing_left();
    let told = w.slack.messages().into_iter().any(|m| m.dm_to.as_deref() == Some("U0ALICE") && m.now_reads().contains(id.as_str()));
    assert!(told, "the requester was told");
    });
}

/// Launch on request, approved while the bastion launched at request was still launching: the
/// early launch's claim (two minutes) used to hold provisioning back until it ran out, so an
/// approver who clicked at once waited longer than one who waited. Now the early launch records
/// its instance and gives the claim back, and the session is handed over within the boot.
#[test]
fn approved_while_its_bastion_launches_at_request_it_is_handed_over_without_waiting_for_the_claim() {
    let exec = Executor::new();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let config = CONFIG.replace("[targets.billing]\n", "[targets.billing]\nlaunch_on_request = true\n");
    let w = world_with(&exec, &config, Duration::ZERO, move |b| Arc::new(LateLaunch(b, g)), |n| Arc::new(n));
    exec.block_on(async move {
    let wf = &w.lifecycle.workflow;
    let id = SessionId::derived_from("early-request");
    let draft = wf.check_request("billing", "READ", "10m", "INC-1").unwrap();
    wf.request(w.lifecycle.notifier.as_ref(), id.clone(), &user("U0ALICE"), draft).await.unwrap();
    let early = w.spawner.spawn({
        let lifecycle = w.lifecycle.clone();
        let s = w.session(&id);
        async move { lifecycle.act(s).await }
    });
    w.time.sleep(Duration::from_secs(1)).await;
    assert_eq!(w.bastions.instances().len(), 1, "the early launch took effect");
    wf.approve(w.lifecycle.notifier.as_ref(), &user("U0BOB"), &id, None).await.unwrap();
    gate.notify_one();
    let _ = early.await;
    let s = w.session(&id);
    assert_eq!((s.state, s.lease_until), (State::Approved, None), "the early launch gave its claim back");
    // Provisioning's own launch (which finds the same instance by its tag) answers at once.
    let (open, time) = (gate.clone(), w.time.clone());
    w.spawner.detach(async move {
        for _ in 0..120 {
            open.notify_one();
            time.sleep(Duration::from_secs(1)).await;
        }
    });
    // The boot takes 30 s here; a minute of sweeps is well within the two-minute claim.
    w.sweep_for(1).await;
    let s = w.session(&id);
    assert_eq!(s.state, State::Active, "handed over within the boot, not after the early launch's claim ran out");
    assert_eq!(w.bastions.instances().len(), 1, "the bastion launched at request is the one handed over");
    });
}

/// Runs the sweeper loop `serve` runs, woken only by the workflow (its periodic tick is left out,
/// so that a step the loop itself does not retry waits forever instead of for a tick).
fn sweep_without_ticks(w: &World) {
    let lifecycle = w.lifecycle.clone();
    let wake = lifecycle.workflow.wake.clone();
    let steps = w.spawner.clone();
    w.spawner.detach(sweep_loop(lifecycle, chrono::Duration::seconds(60), wake, Arc::new(|| {}), move |_, step| steps.detach(step)));
}

/// A store where someone else writes a session (as the request's card reference, or a request to
/// extend, does) right before the first write its predicate (the third field) picks, which
/// therefore loses.
struct WrittenUnderTheClaim(MemStore, std::sync::atomic::AtomicBool, fn(&Session) -> bool);

impl WrittenUnderTheClaim {
    fn written_under(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for WrittenUnderTheClaim {
    async fn create(&self, session: &Session, event: &AuditEvent) -> Result<(), StoreError> {
        self.0.create(session, event).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.0.get(id).await
    }
    async fn update(&self, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
        if (self.2)(next) && !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // The other writer retries on its own conflicts, as every writer does.
            loop {
                let mut other = self.0.get(&next.id).await?.expect("the session exists");
                other.reason.push_str(" (written meanwhile)");
                match self.0.update(other.state, &other, None).await {
                    Err(StoreError::Conflict(_)) => continue,
                    written => break written.map(drop)?,
                }
            }
        }
        self.0.update(expected_state, next, event).await
    }
    async fn due(&self, now: chrono::DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError> {
        self.0.due(now, limit).await
    }
    async fn live(&self) -> Result<Vec<Session>, StoreError> {
        self.0.live().await
    }
    async fn by_requester(&self, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError> {
        self.0.by_requester(user, limit).await
    }
    async fn by_target(&self, target: &TargetName, since: Option<chrono::DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError> {
        self.0.by_target(target, since, limit).await
    }
    async fn audit_trail(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_trail(id).await
    }
    async fn remember_once(&self, key: &str, ttl: chrono::Duration) -> Result<bool, StoreError> {
        self.0.remember_once(key, ttl).await
    }
    async fn reserve_db_user(&self, name: &DbUsername, owner: &SlackUserId) -> Result<(), StoreError> {
        self.0.reserve_db_user(name, owner).await
    }
}

/// Launch on request, found in the handover bench: the early launch's claim lost to the write of
/// the request's card reference (same moment: the request wakes the sweeper just before it posts
/// the card), the step was skipped, and nothing looked again until the next tick or the approval,
/// so the bastion did not boot while the approvers read the card. The early launch now claims
/// again on what was written (and the sweeper would read again shortly after a lost write, next
/// test).
#[test]
fn an_early_launch_that_loses_its_claim_to_another_write_is_tried_again_at_once() {
    let exec = Executor::new();
    let config = CONFIG.replace("[targets.billing]\n", "[targets.billing]\nlaunch_on_request = true\n");
    let store = Arc::new(std::sync::Mutex::new(None));
    let kept = store.clone();
    let w = world_full(&exec, &config, Duration::ZERO, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n), move |s| {
        let wrapped = Arc::new(WrittenUnderTheClaim(s, Default::default(), |next| next.state == State::Pending && next.lease_until.is_some()));
        *kept.lock().unwrap() = Some(wrapped.clone());
        wrapped
    });
    let store = store.lock().unwrap().clone().unwrap();
    exec.block_on(async move {
        sweep_without_ticks(&w);
        let wf = &w.lifecycle.workflow;
        let id = SessionId::derived_from("early-request");
        let draft = wf.check_request("billing", "READ", "10m", "INC-1").unwrap();
        wf.request(w.lifecycle.notifier.as_ref(), id.clone(), &user("U0ALICE"), draft).await.unwrap();
        // Before the read a second after the wake (`INDEX_SETTLE`) could make up for it.
        w.time.sleep(LOST_RACE_RETRY * 2).await;
        let s = w.session(&id);
        assert!(store.written_under() && s.reason.ends_with("(written meanwhile)"), "the first claim lost to another write");
        assert_eq!(w.bastions.instances().len(), 1, "the bastion is launched within half a second of the request, not at the next tick");
        assert!(s.instance_id.is_some() && s.slack.approval_ts.is_some(), "the instance and the card are both recorded: {s:?}");
    });
}

/// An expiry whose claim loses to another write of the session at that moment (here a write of
/// its reason; in life a request to extend, a card reference) was skipped, and nothing looked at
/// the session again until the next tick (15 s by default): the account outlived its deadline by
/// up to that much. The sweeper now reads again `LOST_RACE_RETRY` after a step lost its write.
#[test]
fn an_expiry_that_loses_its_claim_to_another_write_is_tried_again_at_once() {
    let exec = Executor::new();
    let w = world_full(&exec, CONFIG, Duration::ZERO, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n), |s| {
        Arc::new(WrittenUnderTheClaim(s, Default::default(), |next| matches!(next.state, State::TearingDown(Outcome::Expired))))
    });
    exec.block_on(async move {
        sweep_without_ticks(&w);
        // The default tick (15 s), which reads deadlines further ahead than the loop's lookahead.
        let (wake, time) = (w.lifecycle.workflow.wake.clone(), w.time.clone());
        w.spawner.detach(async move {
            loop {
                time.sleep(Duration::from_secs(15)).await;
                wake.notify_one();
            }
        });
        let id = w.approved().await;
        w.time.sleep(Duration::from_secs(60)).await;
        let s = w.session(&id);
        assert_eq!(s.state, State::Active, "handed over");
        let expires = s.expires_at.expect("a deadline");
        let left = (expires - w.lifecycle.workflow.clock.now()).to_std().unwrap();
        w.time.sleep(left + LOST_RACE_RETRY * 4).await;
        let s = w.session(&id);
        assert!(s.reason.ends_with("(written meanwhile)"), "the expiry's first claim lost to another write: {s:?}");
        assert!(w.grants.accounts().is_empty(), "the account is gone within a second of its deadline: {:?} ({:?})", w.grants.accounts(), s.state);
    });
}

/// DynamoDB's due index is eventually consistent: the read a wake-up makes right after an
/// approval may still see the request pending with its next reminder minutes away. The sweeper
/// reads once more a second after every wake, so provisioning starts then, not at the next tick.
#[test]
fn an_approval_the_due_index_does_not_show_yet_is_provisioned_a_second_later() {
    let exec = Executor::new();
    let w = world_full(&exec, CONFIG, Duration::ZERO, Duration::from_millis(500), |b| Arc::new(b), |n| Arc::new(n), |s| Arc::new(s));
    exec.block_on(async move {
        sweep_without_ticks(&w);
        let wf = &w.lifecycle.workflow;
        let id = SessionId::derived_from("lagged-approval");
        let draft = wf.check_request("billing", "READ", "10m", "INC-1").unwrap();
        wf.request(w.lifecycle.notifier.as_ref(), id.clone(), &user("U0ALICE"), draft).await.unwrap();
        w.time.sleep(Duration::from_secs(5)).await;
        wf.approve(w.lifecycle.notifier.as_ref(), &user("U0BOB"), &id, None).await.unwrap();
        w.time.sleep(INDEX_SETTLE * 2).await;
        let s = w.session(&id);
        assert!(matches!(s.state, State::Provisioning | State::Active), "provisioning started within 2 s of the approval: {:?}", s.state);
    });
}

/// Slack whose extension cards cannot be posted (every post after the approval card fails).
struct NoExtensionCards(MemNotifier, std::sync::atomic::AtomicUsize);

#[async_trait]
impl Notifier for NoExtensionCards {
    async fn post(&self, channel: &str, message: &Message) -> Result<Posted, NotifyError> {
        if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            return Err(NotifyError::Unreachable { method: "chat.postMessage", reason: "test".into() });
        }
        self.0.post(channel, message).await
    }
    async fn update(&self, at: &Posted, message: &Message) -> Result<(), NotifyError> {
        self.0.update(at, message).await
    }
    async fn dm(&self, user: &SlackUserId, message: &Message) -> Result<Posted, NotifyError> {
        self.0.dm(user, message).await
    }
    async fn find_dms(&self, user: &SlackUserId, since: Option<chrono::DateTime<chrono::Utc>>, containing: &str) -> Result<Vec<Posted>, NotifyError> {
        self.0.find_dms(user, since, containing).await
    }
    async fn delete(&self, at: &Posted) -> Result<(), NotifyError> {
        self.0.delete(at).await
    }
    async fn respond(&self, url: &str, message: &Message) -> Result<(), NotifyError> {
        self.0.respond(url, message).await
    }
    async fn open_view(&self, trigger: &str, view: &View) -> Result<(), NotifyError> {
        self.0.open_view(trigger, view).await
    }
    async fn publish_view(&self, user: &SlackUserId, view: &View) -> Result<(), NotifyError> {
        self.0.publish_view(user, view).await
    }
    async fn profile(&self, user: &SlackUserId) -> Result<Profile, NotifyError> {
        self.0.profile(user).await
    }
    async fn group_members(&self, group: &str) -> Result<Vec<SlackUserId>, NotifyError> {
        self.0.group_members(group).await
    }
}

#[test]
fn an_extension_whose_card_failed_does_not_stay_pending() {
    let exec = Executor::new();
    let w = world(&exec, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(NoExtensionCards(n, Default::default())));
    exec.block_on(async move {
    let id = w.approved().await;
    w.sweep_for(2).await;
    assert_eq!(w.session(&id).state, State::Active);
    let five = AccessDuration::from_minutes(5).unwrap();
    let wf = &w.lifecycle.workflow;
    assert!(wf.extend_request(w.lifecycle.notifier.as_ref(), &user("U0ALICE"), &id, five).await.is_err());
    assert_eq!(w.session(&id).extension, None, "the extension nobody can see was withdrawn");
    });
}

#[test]
fn a_stale_extension_card_cannot_approve_a_newer_extension() {
    let exec = Executor::new();
    let w = world(&exec, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    exec.block_on(async move {
    let id = w.approved().await;
    w.sweep_for(2).await;
    let (wf, n) = (&w.lifecycle.workflow, w.lifecycle.notifier.as_ref());
    let one = AccessDuration::from_minutes(1).unwrap();
    let card = |s: &powerpole::domain::Session| Posted { channel: "C0APPROVALS".into(), ts: s.extension.as_ref().unwrap().card_ts.clone().unwrap() };
    let first = wf.extend_request(n, &user("U0ALICE"), &id, one).await.unwrap().session;
    let old_card = card(&first);
    wf.decide_extension(n, &user("U0BOB"), &id, false, Some(old_card.clone())).await.unwrap();
    wf.extend_request(n, &user("U0ALICE"), &id, one).await.unwrap();
    let before = w.session(&id).expires_at;
    let stale = wf.decide_extension(n, &user("U0BOB"), &id, true, Some(old_card)).await;
    assert!(stale.is_err(), "the denied extension's card approved the new one");
    assert_eq!(w.session(&id).expires_at, before);
    let current = card(&w.session(&id));
    wf.decide_extension(n, &user("U0BOB"), &id, true, Some(current)).await.unwrap();
    assert_eq!(w.session(&id).expires_at, before.map(|e| e + chrono::Duration::minutes(1)));
    });
}

/// Two live sessions of one person on a target whose accounts are bound to a proxy pattern would
/// share one account (`'alice'@'10.1.0.0/255.255.0.0'`): the second to provision must neither
/// reset the first one's password nor, when it is rolled back, drop the first one's account.
/// (Requests are refused up front; this is the case two requests raced past that check.)
#[test]
fn a_second_session_never_takes_over_the_account_of_a_live_one() {
    let exec = Executor::new();
    let config = CONFIG.replace("max_duration = \"20m\"", "max_duration = \"20m\"\naccount_host = \"10.1.0.0/16\"");
    let w = world_with(&exec, &config, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    exec.block_on(async move {
        let first = w.approved().await;
        w.sweep_for(2).await;
        assert_eq!(w.session(&first).state, State::Active);
        let password = w.grants.accounts().into_iter().map(|a| a.password).collect::<Vec<_>>();
        assert_eq!(password.len(), 1, "one account for the first session");

        // A second request of Alice's that got past the request-time check, approved.
        let wf = &w.lifecycle.workflow;
        let mut second = w.session(&first);
        second.id = SessionId::derived_from("racing-request");
        second.state = State::Pending;
        second.version = 0;
        (second.approvals, second.instance_id, second.private_ip, second.account_host) = (vec![], None, None, None);
        (second.expires_at, second.warn_at, second.slack) = (None, None, Default::default());
        let event = powerpole::domain::AuditEvent::ok(powerpole::domain::AuditKind::Requested, powerpole::domain::Actor::User(user("U0ALICE")), wf.clock.now(), "racing");
        wf.store.create(&second, &event).await.unwrap();
        wf.approve(w.lifecycle.notifier.as_ref(), &user("U0BOB"), &second.id, None).await.unwrap();
        w.sweep_for(3).await;

        let refused = w.session(&second.id);
        assert!(matches!(refused.state, State::Closed(Outcome::Failed)), "{:?}", refused.state);
        assert!(refused.decision_reason.as_deref().is_some_and(|r| r.contains(first.as_str())), "the person is told which session holds the account: {:?}", refused.decision_reason);
        assert_eq!(w.session(&first).state, State::Active, "the first session is untouched");
        let now: Vec<_> = w.grants.accounts().into_iter().map(|a| a.password).collect();
        assert_eq!(now, password, "the first session's account and password are as they were");
    });
}

/// Slack is down from before a session's deadline until well after it: the account is dropped
/// and the instance terminated on time and the session closes (revocation never waits for
/// Slack); the notices wait in the outbox, and once Slack is back each arrives exactly once and
/// the hand-over DM is redacted.
#[test]
fn slack_down_across_a_deadline_delays_only_the_notices() {
    use std::sync::atomic::Ordering;
    let exec = Executor::new();
    let w = world(&exec, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    exec.block_on(async move {
        let id = w.approved().await;
        w.sweep_for(2).await;
        let active = w.session(&id);
        assert_eq!(active.state, State::Active);
        let expires = active.expires_at.unwrap();

        w.slack.down.store(true, Ordering::SeqCst);
        w.sweep_for(12).await;
        let closed = w.session(&id);
        assert!(matches!(closed.state, State::Closed(Outcome::Expired)), "{:?}", closed.state);
        w.nothing_left();
        let dropped = w.grants.lives().iter().filter_map(|l| l.dropped).max().unwrap();
        let dropped_at = w.lifecycle.workflow.clock.now() - chrono::Duration::from_std(w.time.now() - dropped).unwrap();
        assert!(dropped_at <= expires + chrono::Duration::seconds(20), "dropped at {dropped_at}, deadline {expires}");
        assert!(closed.outbox.iter().all(|n| n.sent_at.is_none() && n.attempts > 0), "nothing could be delivered: {:?}", closed.outbox);
        let ended = |w: &World| w.slack.messages().into_iter().filter(|m| m.versions[0].contains(&format!("({id}) has ended"))).count();
        assert_eq!(ended(&w), 0);

        w.slack.down.store(false, Ordering::SeqCst);
        w.sweep_for(5).await;
        let done = w.session(&id);
        assert!(done.outbox.iter().all(|n| n.sent_at.is_some()), "every notice delivered: {:?}", done.outbox);
        assert_eq!(ended(&w), 1, "the requester is told exactly once");
        let handover = w.slack.messages().into_iter().find(|m| Some(&m.ts) == done.slack.handover_ts.as_ref()).unwrap();
        assert!(handover.now_reads().contains("redacted"), "{}", handover.now_reads());
        assert_eq!(done.next_action_at(), None, "nothing is owed any more");
    });
}

/// A database whose admin connection fails while switched off.
struct SwitchedGrants(MemGrants, Arc<std::sync::atomic::AtomicBool>);

#[async_trait]
impl powerpole::grants::Grants for SwitchedGrants {
    async fn create_account(&self, target: &powerpole::config::TargetConfig, request: &powerpole::grants::AccountRequest) -> Result<powerpole::grants::Password, powerpole::grants::GrantError> {
        self.0.create_account(target, request).await
    }
    async fn revoke(&self, target: &powerpole::config::TargetConfig, user: &powerpole::domain::DbUsername, host: &str) -> Result<powerpole::grants::RevokeReport, powerpole::grants::GrantError> {
        if self.1.load(std::sync::atomic::Ordering::SeqCst) {
            let message = "connection refused".to_string();
            return Err(powerpole::grants::GrantError::AdminConnect { target: target.name.clone(), host: "db".into(), port: 3306, user: "admin".into(), message });
        }
        self.0.revoke(target, user, host).await
    }
    async fn account_state(&self, target: &powerpole::config::TargetConfig, user: &powerpole::domain::DbUsername, host: &str) -> Result<powerpole::grants::AccountState, powerpole::grants::GrantError> {
        self.0.account_state(target, user, host).await
    }
    async fn list_accounts(&self, target: &powerpole::config::TargetConfig) -> Result<Vec<(String, String)>, powerpole::grants::GrantError> {
        self.0.list_accounts(target).await
    }
}

/// The database is down when a session ends and stays down past `teardown_alert_after`: the
/// instance is terminated at once, the approvals channel is alerted once, naming the database
/// and its error, and the account is dropped on the first attempt after it is back.
#[test]
fn a_teardown_stuck_on_the_database_names_it_in_one_alert() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let exec = Executor::new();
    let config = CONFIG.replace("teardown_alert_after = \"5m\"", "teardown_alert_after = \"1m\"");
    let w = world_with(&exec, &config, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    let down = Arc::new(AtomicBool::new(false));
    let mut lifecycle = w.lifecycle.clone();
    lifecycle.grants = Arc::new(SwitchedGrants(MemGrants::new(w.grants.clone(), Node::new("test", Faults::none(w.time.clone()))), down.clone()));
    exec.block_on(async move {
        let id = w.approved().await;
        w.sweep_for(2).await;
        assert_eq!(w.session(&id).state, State::Active);
        down.store(true, Ordering::SeqCst);
        let wf = &lifecycle.workflow;
        wf.end(lifecycle.notifier.as_ref(), &user("U0ALICE"), &id).await.unwrap();
        let sweep = |minutes: u64| {
            let lifecycle = lifecycle.clone();
            let (time, spawner) = (w.time.clone(), w.spawner.clone());
            async move {
                for _ in 0..minutes * 4 {
                    if let Ok(plan) = lifecycle.plan(chrono::Duration::seconds(15)).await {
                        for session in plan.due {
                            let lifecycle = lifecycle.clone();
                            spawner.detach(async move { drop(lifecycle.act(session).await) });
                        }
                    }
                    time.sleep(Duration::from_secs(15)).await;
                }
            }
        };
        sweep(4).await;
        let stuck = w.session(&id);
        assert!(matches!(stuck.state, State::TearingDown(_)), "{:?}", stuck.state);
        assert!(w.bastions.instances().iter().all(|i| i.terminated), "the instance is terminated although the database is down");
        assert_eq!(w.grants.accounts().len(), 1, "the account is still there");
        let alerts: Vec<String> = w.slack.messages().into_iter().filter(|m| m.channel == "C0APPROVALS" && m.versions[0].contains("Teardown of")).map(|m| m.versions[0].clone()).collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].contains("stuck on the database (MySQL)") && alerts[0].contains("connection refused"), "{}", alerts[0]);

        down.store(false, Ordering::SeqCst);
        sweep(6).await;
        assert_eq!(w.session(&id).state, State::Closed(Outcome::EndedByRequester));
        w.nothing_left();
        let alerts = w.slack.messages().into_iter().filter(|m| m.versions[0].contains("Teardown of")).count();
        assert_eq!(alerts, 1, "alerted once");
    });
}

/// Sweeps with `lifecycle` every 15 s for `minutes`, each due step in its own task.
async fn sweep_with(w: &World, lifecycle: &Lifecycle, minutes: u64) {
    for _ in 0..minutes * 4 {
        if let Ok(plan) = lifecycle.plan(chrono::Duration::seconds(15)).await {
            for session in plan.due {
                let lifecycle = lifecycle.clone();
                w.spawner.detach(async move { drop(lifecycle.act(session).await) });
            }
        }
        w.time.sleep(Duration::from_secs(15)).await;
    }
}

/// A target removed from the configuration while one of its sessions is live: at the deadline
/// the instance is still terminated (that needs no target), the account cannot be revoked
/// without the target's admin credential, so the session stays tearing down and the remaining
/// approvals channels are alerted, naming what to do. Once the target is back, the next attempt
/// drops the account and closes the session.
#[test]
fn a_removed_target_still_terminates_its_bastion_and_alerts_until_the_account_is_revoked() {
    let exec = Executor::new();
    let at = CONFIG.find("[targets.billing]").unwrap();
    let ledger = CONFIG[at..].replace("[targets.billing]", "[targets.ledger]").replace("[targets.billing.", "[targets.ledger.").replace("C0APPROVALS", "C0LEDGER");
    let (both, without_billing) = (format!("{CONFIG}\n{ledger}"), format!("{}\n{ledger}", &CONFIG[..at]));
    let w = world_with(&exec, &both, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    let mut removed = w.lifecycle.clone();
    removed.workflow.config = Arc::new(Config::from_toml_str(&without_billing).unwrap());
    exec.block_on(async move {
        let id = w.approved().await;
        w.sweep_for(2).await;
        assert_eq!(w.session(&id).state, State::Active);

        // The operator drops `billing` from the configuration; the 10-minute access runs out.
        sweep_with(&w, &removed, 20).await;
        let stuck = w.session(&id);
        assert!(matches!(stuck.state, State::TearingDown(_)), "{:?}", stuck.state);
        assert!(w.bastions.instances().iter().all(|i| i.terminated), "the bastion is terminated without its target");
        assert_eq!(w.grants.accounts().len(), 1, "the account waits for the target's admin credential");
        let alerts: Vec<String> = w.slack.messages().into_iter().filter(|m| m.channel == "C0LEDGER" && m.versions[0].contains("no longer configured")).map(|m| m.versions[0].clone()).collect();
        assert_eq!(alerts.len(), 1, "one alert in the approvals channel that remains: {:?}", w.slack.messages());
        assert!(alerts[0].contains("restore the target"), "the alert says what to do: {}", alerts[0]);

        // The target is back: the next attempt revokes the account and closes the session.
        sweep_with(&w, &w.lifecycle, 10).await;
        assert!(matches!(w.session(&id).state, State::Closed(_)), "{:?}", w.session(&id).state);
        w.nothing_left();
    });
}

/// Two requests of one person on a target whose accounts are bound to a proxy pattern, approved
/// together, provision at the same moment: both pass the check made before recording the
/// account. Each looks again after recording it, so they never both go on to share (and reset,
/// and drop) one account: here both see the other and give way, each told which session holds
/// the account, and nothing of either is left.
#[test]
fn two_sessions_provisioning_at_once_never_share_one_account() {
    let exec = Executor::new();
    let config = CONFIG.replace("max_duration = \"20m\"", "max_duration = \"20m\"\naccount_host = \"10.1.0.0/16\"");
    let w = world_with(&exec, &config, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    exec.block_on(async move {
        let wf = &w.lifecycle.workflow;
        let mut ids = Vec::new();
        for (request, reason) in [("request-one", "INC-1"), ("request-two", "INC-2")] {
            let id = SessionId::derived_from(request);
            let draft = wf.check_request("billing", "READ", "10m", reason).unwrap();
            let filed = wf.request(w.lifecycle.notifier.as_ref(), id.clone(), &user("U0ALICE"), draft).await;
            if filed.is_err() {
                // The request-time check refuses the second while the first is pending: file it
                // as the race that got past that check would have.
                let mut second = w.session(&ids[0]);
                second.id = id.clone();
                second.version = 0;
                second.slack = Default::default();
                let event = powerpole::domain::AuditEvent::ok(powerpole::domain::AuditKind::Requested, powerpole::domain::Actor::User(user("U0ALICE")), wf.clock.now(), "racing");
                wf.store.create(&second, &event).await.unwrap();
            }
            ids.push(id);
        }
        for id in &ids {
            wf.approve(w.lifecycle.notifier.as_ref(), &user("U0BOB"), id, None).await.unwrap();
        }
        w.sweep_for(3).await;

        let sessions: Vec<_> = ids.iter().map(|id| w.session(id)).collect();
        let active: Vec<_> = sessions.iter().filter(|s| s.state == State::Active).collect();
        assert!(active.len() <= 1, "both sessions went on with one account: {:?}", sessions.iter().map(|s| &s.state).collect::<Vec<_>>());
        for (s, other) in sessions.iter().zip(ids.iter().rev()) {
            if s.state != State::Active {
                assert!(matches!(s.state, State::Closed(Outcome::Failed)), "{:?}", s.state);
                assert!(s.decision_reason.as_deref().is_some_and(|r| r.contains(other.as_str())), "told which session holds the account: {:?}", s.decision_reason);
            }
        }
        assert_eq!(w.grants.accounts().len(), active.len(), "an account only for a session that went on");
        w.sweep_for(1).await;
        if active.is_empty() {
            w.nothing_left();
        }
    });
}

/// The database keeps the account (the grants adapter found it the DEFINER of a trigger; proven
/// against MariaDB in `tests/grants_db.rs`): here the database answers so.
struct DefinerGrants(MemGrants);

#[async_trait]
impl powerpole::grants::Grants for DefinerGrants {
    async fn create_account(&self, target: &powerpole::config::TargetConfig, request: &powerpole::grants::AccountRequest) -> Result<powerpole::grants::Password, powerpole::grants::GrantError> {
        self.0.create_account(target, request).await
    }
    async fn revoke(&self, _target: &powerpole::config::TargetConfig, user: &powerpole::domain::DbUsername, host: &str) -> Result<powerpole::grants::RevokeReport, powerpole::grants::GrantError> {
        let account = format!("'{user}'@'{host}'");
        let reason = format!("{account} is the DEFINER of trigger billing.audit_t; the account is locked (no login, its sessions killed) and keeps its privileges");
        Ok(powerpole::grants::RevokeReport { account, killed: 1, outcome: powerpole::grants::RevokeOutcome::KeptLocked { reason } })
    }
    async fn account_state(&self, target: &powerpole::config::TargetConfig, user: &powerpole::domain::DbUsername, host: &str) -> Result<powerpole::grants::AccountState, powerpole::grants::GrantError> {
        self.0.account_state(target, user, host).await
    }
    async fn list_accounts(&self, target: &powerpole::config::TargetConfig) -> Result<Vec<(String, String)>, powerpole::grants::GrantError> {
        self.0.list_accounts(target).await
    }
}

/// An account kept locked at the end because it defines a trigger: the session still closes
/// (access is over: locked, sessions killed), the approvals channel gets one alert naming the
/// trigger and what to do, and the trail's teardown record names it too.
#[test]
fn an_account_kept_locked_for_its_trigger_is_named_in_one_alert_and_in_the_trail() {
    let exec = Executor::new();
    let w = world(&exec, Duration::ZERO, |b| Arc::new(b), |n| Arc::new(n));
    let mut lifecycle = w.lifecycle.clone();
    lifecycle.grants = Arc::new(DefinerGrants(MemGrants::new(w.grants.clone(), Node::new("test", Faults::none(w.time.clone())))));
    exec.block_on(async move {
        let id = w.approved().await;
        sweep_with(&w, &lifecycle, 2).await;
        assert_eq!(w.session(&id).state, State::Active);
        sweep_with(&w, &lifecycle, 12).await;

        assert!(matches!(w.session(&id).state, State::Closed(_)), "{:?}", w.session(&id).state);
        let alerts: Vec<String> = w.slack.messages().into_iter().filter(|m| m.channel == "C0APPROVALS" && m.versions[0].contains("trigger billing.audit_t")).map(|m| m.versions[0].clone()).collect();
        assert_eq!(alerts.len(), 1, "one alert naming the trigger: {:?}", w.slack.messages());
        let trail = lifecycle.workflow.store.audit_trail(&id).await.unwrap();
        let torn_down = trail.iter().find(|r| r.event.kind == powerpole::domain::AuditKind::TornDown).expect("a teardown record");
        assert!(torn_down.event.detail.contains("kept locked") && torn_down.event.detail.contains("trigger billing.audit_t"), "{}", torn_down.event.detail);

        // Reconcile finds the account no live session owns, and says it is still there: not
        // "revoked", and nothing posted (the teardown's alert said it once).
        let posted_before = w.slack.messages().len();
        let found = lifecycle.reconcile(false, chrono::Duration::zero()).await.expect("reconcile");
        let account = found.iter().find(|f| matches!(f.finding, powerpole::workflow::Finding::Account { .. })).expect("the kept account is found");
        assert!(matches!(&account.result, Some(Err(e)) if e.contains("still there") && e.contains("kept locked")), "{account}");
        assert!(!account.removed(), "{account}");
        assert_eq!(w.slack.messages().len(), posted_before, "nothing posted as revoked: {:?}", w.slack.messages());
    });
}
