//! The lifecycle as the real `powerpole serve` process lives it: killed with SIGKILL at the worst
//! moments of provisioning and started again, started long after a deadline, and run as two
//! replicas on one table. Each test drives Slack through signed requests to the process and checks
//! what a security team would: the instances in moto, the accounts in MariaDB, the DMs, the audit
//! trail, and that ending the session leaves nothing behind.
//!
//! The moments are made deterministic with the stand-ins, never with sleeps: a proxy that
//! withholds moto's answer to `RunInstances` (the instance exists, the process does not know it),
//! a proxy that holds the grant before it reaches MariaDB, and the SSM stand-in holding agents
//! offline (so the hand-over cannot happen yet).

mod world;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use powerpole::app::App;
use powerpole::domain::{AuditKind, Outcome, Session, SessionId, State};
use powerpole::workflow::{ManualClock, StepOutcome, SystemClock};
use world::process::{wait_until, Serve};
use world::proxy::Proxy;
use world::{password_in, session_on_card, Options, TestHost, World, ALICE, APPROVALS, BOB, SOON};

/// The provisioning lease the process tests run with: a killed worker's session is resumed
/// within this (it is renewed every third of it while a live worker waits).
const LEASE_SECS: u64 = 4;

/// The world's configuration with a short provisioning lease.
fn config(world: &World) -> String {
    world.config_text().replacen("[scheduler]\n", &format!("[scheduler]\nprovisioning_lease = \"{LEASE_SECS}s\"\n"), 1)
}

/// A store reader (the process is the one that acts).
async fn reader(world: &World) -> App {
    world.app(Arc::new(SystemClock)).await
}

async fn get(app: &App, id: &SessionId) -> Session {
    app.workflow.store.get(id).await.expect("the store answers").expect("the session exists")
}

/// Alice asks through the process, Bob approves through it; the session id.
async fn request_and_approve(world: &World, serve: &Serve, text: &str) -> SessionId {
    let reply = serve.http.command(ALICE, text).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the approval card is posted");
    let card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card in the approvals channel").clone();
    let id = session_on_card(&card);
    let reply = serve.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    id
}

/// Waits until the stored session satisfies `done`.
async fn wait_for_session(app: &App, id: &SessionId, within: Duration, what: &str, done: impl Fn(&Session) -> bool) -> Session {
    let found = wait_until(within, || async {
        let s = get(app, id).await;
        done(&s).then_some(s)
    })
    .await;
    match found {
        Some(s) => s,
        None => panic!("{what}: not within {within:?}; the session is {:?}", get(app, id).await),
    }
}

fn state_name(instance: &aws_sdk_ec2::types::Instance) -> &str {
    instance.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or("?")
}

fn handover_dms(world: &World) -> Vec<powerpole_standins::slack::RecordedCall> {
    world.dms_to(ALICE).into_iter().filter(|c| c.text().contains("is ready")).collect()
}

/// What must hold after a resumed provisioning: one instance for the session (no second
/// launch), one account bound to its address, one hand-over DM whose command line works from
/// the bastion's address.
async fn assert_handed_over_once(world: &World, app: &App, id: &SessionId) -> Session {
    let session = get(app, id).await;
    assert_eq!(session.state, State::Active);
    let instances = world.instances_of(id).await;
    assert_eq!(instances.len(), 1, "exactly one launch for the session: {instances:?}");
    let instance = &instances[0];
    assert_eq!(state_name(instance), "running");
    assert_eq!(session.instance_id.as_deref(), instance.instance_id(), "the session records the instance moto has");
    let ip = instance.private_ip_address().expect("a private IP").to_string();
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip.clone())], "one account, bound to the bastion");
    let dms = handover_dms(world);
    assert_eq!(dms.len(), 1, "one hand-over DM");
    let text = powerpole_standins::slack::text_of(&dms[0]);
    let password = password_in(&text).filter(|p| p.len() >= 24).expect("the DM carries the password");
    let mysql = world::mysql_line_in(&text).expect("the DM has a mysql command line");
    let mysql = world::typing_password(&mysql, &password);
    let bastion = TestHost::add(&ip);
    let rows = bastion.mysql(&mysql, &format!("SELECT COUNT(*) FROM {}.refunds", world.schema));
    assert_eq!(rows.as_deref(), Ok("3"), "the handed-over password works from the bastion's address");
    session
}

/// Alice ends the session through `serve`; afterwards nothing of it exists: the session is
/// closed, every instance in the world's subnet is terminated, the account is gone.
async fn end_and_assert_nothing_left(world: &World, app: &App, serve: &Serve, id: &SessionId) {
    let reply = serve.http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for_session(app, id, Duration::from_secs(20), "the session is torn down", |s| s.state == State::Closed(Outcome::EndedByRequester)).await;
    let instances = world.instances_in_subnet().await;
    assert!(!instances.is_empty());
    for instance in &instances {
        assert_eq!(state_name(instance), "terminated", "{:?} is left running", instance.instance_id());
    }
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is gone");
    assert_teardown_notice(world).await;
    let live = app.workflow.store.live().await.expect("the store lists live sessions");
    assert!(live.is_empty(), "no live session is left: {live:?}");
}

/// The requester's "has ended" DM. The outbox delivers it after the write that closes the
/// session, so it may arrive a moment after the session reads closed.
async fn assert_teardown_notice(world: &World) {
    let told = wait_until(SOON, || async { world.dms_to(ALICE).iter().any(|c| c.text().contains("has ended")).then_some(()) }).await;
    assert!(told.is_some(), "the teardown notice reaches the requester");
}

fn count(kinds: &[AuditKind], kind: AuditKind) -> usize {
    kinds.iter().filter(|k| **k == kind).count()
}

// ---------------------------------------------------------------------------------------------
// Crash safety
// ---------------------------------------------------------------------------------------------

/// SIGKILL while moto has launched the instance but its answer has not reached the process: the
/// instance exists and nothing records it. The restarted service finds it by its session tag,
/// launches nothing, and completes the hand-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_run_instances_the_restarted_service_adopts_the_instance_and_hands_over() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    let ec2 = Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    ec2.withhold_answers_to("Action=RunInstances");
    let mut first = Serve::start(&world, &config(&world), &[("AWS_ENDPOINT_URL_EC2", ec2.url())]).await;
    let id = request_and_approve(&world, &first, "request billing READ 1h INC-101 crash after launch").await;

    // The moment: moto holds the session's instance, the process is still waiting for the answer.
    let launched = wait_until(SOON, || async { (ec2.withheld() > 0).then_some(()) }).await;
    assert!(launched.is_some(), "RunInstances reached moto; log:\n{}", first.logs());
    let seen = wait_until(SOON, || async { Some(world.instances_of(&id).await).filter(|i| !i.is_empty()) }).await;
    assert_eq!(seen.map(|i| i.len()), Some(1), "moto has the session's instance");
    let before = get(&store, &id).await;
    assert_eq!(before.state, State::Provisioning);
    assert_eq!(before.instance_id, None, "nothing records the instance yet");
    first.kill().await;

    let killed_at = Instant::now();
    let second = Serve::start(&world, &config(&world), &[]).await;
    let resumed = wait_for_session(&store, &id, Duration::from_secs(30), "the restarted service hands over", |s| s.state == State::Active).await;
    let took = killed_at.elapsed();
    println!("resumed and handed over {took:?} after the kill (lease {LEASE_SECS}s)");
    assert!(took < Duration::from_secs(LEASE_SECS + 15), "resumed within about one lease: {took:?}");
    assert_eq!(resumed.private_ip.as_deref(), world.instances_of(&id).await[0].private_ip_address());
    assert_handed_over_once(&world, &store, &id).await;

    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::ProvisioningStarted), 2, "started, then resumed: {kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Launched), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::HandedOver), 1, "{kinds:?}");
    assert!(second.log_lines(&["bastion already launched", id.as_str()]).len() == 1, "the instance was found by its tag");

    end_and_assert_nothing_left(&world, &store, &second, &id).await;
}

/// A bastion only its tag knows (moto launched it, its answer never reached the process), ended
/// by its requester: the teardown finds it by its tag and terminates it, and the process is
/// killed before it can close (TerminateInstances' answer withheld; if the call gives up first,
/// the attempt fails instead of closing, which leaves the same state). The tag lookup of the
/// restarted service no longer shows a terminated instance; its teardown still names the
/// instance in the trail, because the first recorded it in the session before terminating it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_terminating_a_bastion_only_its_tag_knew_the_restarted_teardown_names_it() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    let ec2 = Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    ec2.withhold_answers_to_any(&["Action=RunInstances", "Action=TerminateInstances"]);
    // EC2 calls give up after 2 s: the provisioning worker stops waiting for its launch's answer
    // (the session is not in flight in this process any more), so the teardown can start.
    let config = format!("{}\n[calls.ec2]\nmax_attempts = 1\ntimeout = \"2s\"\n", config(&world));
    let mut first = Serve::start(&world, &config, &[("AWS_ENDPOINT_URL_EC2", ec2.url())]).await;
    let id = request_and_approve(&world, &first, "request billing READ 1h INC-106 crash in the teardown").await;
    let launched = wait_until(SOON, || async { Some(world.instances_of(&id).await).filter(|i| !i.is_empty()) }).await;
    let instance = launched.expect("moto has the session's instance")[0].instance_id().expect("an id").to_string();
    assert_eq!(get(&store, &id).await.instance_id, None, "nothing records the instance yet");

    let reply = first.http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let terminated = wait_until(SOON, || async {
        let gone = world.instances_of(&id).await.iter().all(|i| matches!(state_name(i), "terminated" | "shutting-down"));
        (gone && ec2.withheld() >= 2).then_some(())
    })
    .await;
    assert!(terminated.is_some(), "the teardown terminated the bastion and waits for the answer; log:\n{}", first.logs());
    assert_eq!(get(&store, &id).await.state, State::TearingDown(Outcome::EndedByRequester), "not closed yet");
    first.kill().await;

    let second = Serve::start(&world, &config, &[]).await;
    let closed = wait_for_session(&store, &id, Duration::from_secs(90), "the restarted service closes the session", |s| s.state.is_closed()).await;
    assert_eq!(closed.state, State::Closed(Outcome::EndedByRequester));
    let trail = store.workflow.store.audit_trail(&id).await.expect("the trail is readable");
    let torn_down = trail.iter().rev().find(|r| r.event.kind == AuditKind::TornDown).expect("a torn_down event");
    assert!(torn_down.event.detail.contains(&instance), "the trail names the terminated bastion {instance}: {:?}", torn_down.event.detail);
    assert_teardown_notice(&world).await;
    drop(second);
}

/// SIGKILL after the launch is recorded, while the grant is held before it reaches MariaDB and
/// the agent is held offline. The restarted service resumes with the recorded instance and
/// creates the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_launch_with_the_grant_in_flight_the_restarted_service_completes() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    let db = Proxy::start(&format!("127.0.0.1:{}", world.db.port)).await;
    world.point_admin_secret_at("127.0.0.1", db.port()).await;
    world.ssm.hold_all_offline(true);
    let mut first = Serve::start(&world, &config(&world), &[]).await;
    // Held once serve has checked the target (it logs in as a grant does before it accepts
    // requests for it): what holds is the grant's own connection.
    db.hold();
    let id = request_and_approve(&world, &first, "request billing READ 1h INC-102 crash during the grant").await;

    // The moment: the launch is recorded and the grant has set out, but holds at the proxy.
    let recorded = wait_for_session(&store, &id, SOON, "the launch is recorded", |s| s.instance_id.is_some()).await;
    let grant_sent = wait_until(SOON, || async { (db.connections() > 0).then_some(()) }).await;
    assert!(grant_sent.is_some(), "the grant set out; log:\n{}", first.logs());
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "no account yet");
    assert_eq!(world.instances_of(&id).await.len(), 1);
    first.kill().await;
    db.release();
    world.ssm.hold_all_offline(false);

    let second = Serve::start(&world, &config(&world), &[]).await;
    let resumed = wait_for_session(&store, &id, Duration::from_secs(30), "the restarted service hands over", |s| s.state == State::Active).await;
    assert_eq!(resumed.instance_id, recorded.instance_id, "the recorded instance is used");
    assert_handed_over_once(&world, &store, &id).await;
    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::ProvisioningStarted), 2, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Launched), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Granted), 1, "{kinds:?}");

    end_and_assert_nothing_left(&world, &store, &second, &id).await;
}

/// SIGKILL once the account exists in MariaDB but before the hand-over (the agent is held
/// offline). The restarted service converges the account to a new password and hands that over:
/// one account, and the password in the DM is the one that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_the_grant_the_restarted_service_hands_over_a_working_password() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    world.ssm.hold_all_offline(true);
    let mut first = Serve::start(&world, &config(&world), &[]).await;
    let id = request_and_approve(&world, &first, "request billing READ 1h INC-103 crash after the grant").await;

    // After the grant: the account is complete (its grant recorded), and the worker waits for SSM.
    // (A kill in the middle of the grant's statements is the next test.)
    let granted = wait_until(SOON, || async { world.account_granted().await.then_some(()) }).await;
    assert!(granted.is_some(), "the account was created and granted; log:\n{}", first.logs());
    assert!(handover_dms(&world).is_empty(), "nothing handed over yet");
    first.kill().await;
    world.ssm.hold_all_offline(false);

    let second = Serve::start(&world, &config(&world), &[]).await;
    wait_for_session(&store, &id, Duration::from_secs(30), "the restarted service hands over", |s| s.state == State::Active).await;
    assert_handed_over_once(&world, &store, &id).await;
    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::ProvisioningStarted), 2, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Launched), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Granted), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::HandedOver), 1, "{kinds:?}");

    end_and_assert_nothing_left(&world, &store, &second, &id).await;
}

/// SIGKILL in the middle of the grant's statements: `CREATE USER` ran on MariaDB but its answer
/// is withheld at the proxy, so the account exists locked, without privileges and without the
/// marker role. The restarted service finishes that account (its session recorded it before
/// creating it) and hands over a password that works: one account, one grant, one DM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_of_creating_the_account_the_restarted_service_finishes_it() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    let db = Proxy::start(&format!("127.0.0.1:{}", world.db.port)).await;
    world.point_admin_secret_at("127.0.0.1", db.port()).await;
    db.withhold_answers_to("CREATE USER IF NOT EXISTS");
    world.ssm.hold_all_offline(true);
    let mut first = Serve::start(&world, &config(&world), &[]).await;
    let id = request_and_approve(&world, &first, "request billing READ 1h INC-105 crash in the middle of the grant").await;

    let created = wait_until(SOON, || async { (db.withheld() > 0 && !world.accounts_named(&world.db_user()).await.is_empty()).then_some(()) }).await;
    assert!(created.is_some(), "CREATE USER ran and its answer is withheld; log:\n{}", first.logs());
    assert!(!world.account_granted().await, "the account is not granted yet");
    first.kill().await;
    db.stop_withholding();
    world.ssm.hold_all_offline(false);

    let second = Serve::start(&world, &config(&world), &[]).await;
    wait_for_session(&store, &id, Duration::from_secs(30), "the restarted service hands over", |s| s.state == State::Active).await;
    assert_handed_over_once(&world, &store, &id).await;
    assert_eq!(second.log_lines(&["finishing the account an earlier attempt of this session left unfinished"]).len(), 1, "{}", second.logs());
    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::Granted), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::HandedOver), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Failed), 0, "{kinds:?}");

    end_and_assert_nothing_left(&world, &store, &second, &id).await;
}

/// The renewal that makes a short lease safe: a live worker whose SSM wait lasts two leases keeps
/// its claim, and a second replica sweeping all the while never resumes the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_its_claim_while_ssm_outlasts_the_lease() {
    let world = World::new(Options::default()).await;
    let config = config(&world);
    let app = world.app_with(&config, Arc::new(SystemClock)).await;
    let replica = world.app_with(&config, Arc::new(SystemClock)).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 1h INC-104 slow agent").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    world.ssm.hold_all_offline(true);

    let lookahead = chrono::Duration::seconds(15);
    let worker = tokio::spawn({
        let lifecycle = app.lifecycle.clone();
        async move { lifecycle.tick(lookahead).await }
    });
    wait_for_session(&app, &id, SOON, "the worker launched", |s| s.instance_id.is_some()).await;
    // Two leases of sweeping by the replica while the worker waits for SSM.
    let until = Instant::now() + Duration::from_secs(2 * LEASE_SECS + 1);
    let mut sweeps = 0;
    while Instant::now() < until {
        let report = replica.lifecycle.tick(lookahead).await.expect("the replica sweeps");
        let acted: Vec<_> = report.acted().collect();
        assert!(acted.is_empty(), "the replica took over a live worker's session: {acted:?}");
        sweeps += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lease = get(&app, &id).await.lease_until.expect("a lease");
    assert!(lease > Utc::now(), "the lease was renewed");
    world.ssm.hold_all_offline(false);
    let report = worker.await.expect("the worker finishes").expect("the sweep reads the store");
    let outcomes: Vec<_> = report.acted().map(|(_, o)| o.clone()).collect();
    assert_eq!(outcomes, vec![Ok(StepOutcome::HandedOver)]);
    assert_eq!(world.instances_of(&id).await.len(), 1);
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(count(&kinds, AuditKind::ProvisioningStarted), 1, "never resumed by the replica ({sweeps} sweeps): {kinds:?}");
    assert_eq!(handover_dms(&world).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// A deadline missed while the service was down
// ---------------------------------------------------------------------------------------------

/// A session handed over three hours ago for one hour (the service was down when it expired) is
/// torn down by the tick `serve` runs at start, not by a periodic one: the tick is a minute, and
/// everything is gone within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_missed_while_down_is_torn_down_by_the_start_up_tick() {
    let world = World::new(Options { tick: "60s", ..Options::default() }).await;
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(3)));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 1h INC-105 expired while down").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    let report = app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("sweep");
    assert_eq!(report.acted().map(|(_, o)| o.clone()).collect::<Vec<_>>(), vec![Ok(StepOutcome::HandedOver)]);
    let session = get(&app, &id).await;
    let expired_for = Utc::now() - session.expires_at.expect("an expiry");
    assert!(expired_for > chrono::Duration::minutes(110), "the session expired two hours ago: {expired_for}");
    let ip = session.private_ip.clone().expect("an address");
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip)]);

    let serve = Serve::start(&world, &world.config_text(), &[]).await;
    let closed = wait_for_session(&app, &id, Duration::from_secs(20), "torn down after the start", |s| s.state == State::Closed(Outcome::Expired)).await;
    let took = serve.started.elapsed();
    println!("torn down {took:?} after the process started ({:?} of which to listen); tick 60s", serve.listening_after);
    assert!(took < Duration::from_secs(15), "the start-up tick did it, not a periodic one 60 s later: {took:?}");
    assert!(closed.closed_at.is_some());
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1);
    assert_eq!(state_name(&instances[0]), "terminated");
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is gone");
    assert_teardown_notice(&world).await;
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(&kinds[kinds.len() - 2..], &[AuditKind::Expired, AuditKind::TornDown], "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Warned), 0, "no warning for a session already over: {kinds:?}");
}

// ---------------------------------------------------------------------------------------------
// Two replicas
// ---------------------------------------------------------------------------------------------

/// Two `serve` processes on one table, both sweeping every second: one approval gives one
/// launch, one account, one hand-over DM, and one of each provisioning event in the trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_give_one_launch_one_account_one_handover() {
    let world = World::new(Options { tick: "1s", ..Options::default() }).await;
    let store = reader(&world).await;
    let config = config(&world);
    let (a, b) = tokio::join!(Serve::start(&world, &config, &[]), Serve::start(&world, &config, &[]));
    // Asked through one replica, approved through the other: both see it due at once.
    let reply = a.http.command(ALICE, "request billing READ 1h INC-106 two replicas").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    let reply = b.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    wait_for_session(&store, &id, Duration::from_secs(30), "handed over", |s| s.state == State::Active).await;
    // Both replicas keep sweeping; give them three ticks to do anything twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_handed_over_once(&world, &store, &id).await;
    let kinds = world.audit_kinds(&store, &id).await;
    for kind in [AuditKind::ProvisioningStarted, AuditKind::Launched, AuditKind::Granted, AuditKind::HandedOver] {
        assert_eq!(count(&kinds, kind), 1, "{kind:?} once: {kinds:?}");
    }
    let provisioned_by: Vec<usize> = [&a, &b].iter().map(|s| s.log_lines(&["\"message\":\"provisioning\"", id.as_str()]).len()).collect();
    assert_eq!(provisioned_by.iter().sum::<usize>(), 1, "one replica provisioned: {provisioned_by:?}");

    end_and_assert_nothing_left(&world, &store, &a, &id).await;
    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::TornDown), 1, "{kinds:?}");
}

/// `/powerpole end` while the worker is provisioning: the launch is recorded and the grant has
/// set out but holds at the proxy. The session ends once, the grant that lands afterwards is
/// undone, nothing is left running, and the person is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_during_provisioning_leaves_one_closed_session_and_nothing_running() {
    let world = World::new(Options::default()).await;
    let store = reader(&world).await;
    let db = Proxy::start(&format!("127.0.0.1:{}", world.db.port)).await;
    world.point_admin_secret_at("127.0.0.1", db.port()).await;
    world.ssm.hold_all_offline(true);
    let serve = Serve::start(&world, &config(&world), &[]).await;
    // Held once serve has checked the target (it logs in as a grant does before it accepts
    // requests for it): what holds is the grant's own connection.
    db.hold();
    let id = request_and_approve(&world, &serve, "request billing READ 1h INC-103 end while provisioning").await;
    wait_for_session(&store, &id, SOON, "the launch is recorded", |s| s.instance_id.is_some()).await;
    let grant_sent = wait_until(SOON, || async { (db.connections() > 0).then_some(()) }).await;
    assert!(grant_sent.is_some(), "the grant set out; log:\n{}", serve.logs());

    let reply = serve.http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for_session(&store, &id, SOON, "the session leaves provisioning", |s| s.state != State::Provisioning).await;
    db.release();
    world.ssm.hold_all_offline(false);

    let closed = wait_for_session(&store, &id, Duration::from_secs(60), "the session closes", |s| s.state.is_closed()).await;
    assert_eq!(closed.state, State::Closed(Outcome::EndedByRequester), "{closed:?}");
    let nothing_left = wait_until(Duration::from_secs(60), || async {
        let running = world.instances_of(&id).await.iter().filter(|i| !matches!(state_name(i), "terminated" | "shutting-down")).count();
        let accounts = world.accounts_named(&world.db_user()).await;
        (running == 0 && accounts.is_empty()).then_some(())
    })
    .await;
    assert!(nothing_left.is_some(), "an instance or the account outlived the session: {:?} / {:?}; log:\n{}", world.instances_of(&id).await.iter().map(state_name).collect::<Vec<_>>(), world.accounts_named(&world.db_user()).await, serve.logs());
    assert!(handover_dms(&world).iter().all(|dm| password_in(&dm.text()).is_none() || dm.text().contains("redacted")), "no usable password was handed over");
    // The "has ended" DM comes from the outbox, after the write that closes the session.
    let told = wait_until(SOON, || async {
        world.dms_to(ALICE).iter().any(|dm| dm.text().contains(id.as_str()) && (dm.text().contains("ended") || dm.text().contains("ending"))).then_some(())
    })
    .await;
    assert!(told.is_some(), "Alice is told her session ended");
}
