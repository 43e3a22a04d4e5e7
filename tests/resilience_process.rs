//! Issue 16 through the real `powerpole serve` process: a dependency refuses or is cut across a
//! deadline, and the revocation still happens on time, while what depends on the outage waits and
//! is done exactly once when it is back.

#[allow(dead_code)]
mod world;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use powerpole::domain::{Outcome, Session, SessionId, State};
use powerpole::workflow::{ManualClock, StepOutcome};
use world::process::{wait_until, Serve};
use world::{password_in, session_on_card, Options, World, ALICE, BOB, SOON};

/// The methods powerpole's notices use.
/// Every Web API method the teardown's outbox calls (the stray hand-over search included).
const MESSAGE_METHODS: [&str; 5] = ["chat.postMessage", "chat.update", "chat.delete", "conversations.open", "conversations.history"];

async fn get(app: &powerpole::app::App, id: &SessionId) -> Session {
    app.workflow.store.get(id).await.expect("the store answers").expect("the session exists")
}

/// What `/readyz` of `serve` says it last saw of `dependency` (its `observed` entry).
async fn observed(serve: &Serve, dependency: &str) -> serde_json::Value {
    let body: serde_json::Value = reqwest::get(format!("http://{}/readyz", serve.addr)).await.expect("GET /readyz").json().await.expect("a JSON body");
    body["observed"].as_array().and_then(|o| o.iter().find(|d| d["name"] == dependency)).cloned().unwrap_or_else(|| panic!("no {dependency} in {body}"))
}

/// Alice's "has ended" DMs that Slack accepted.
fn ended_dms(world: &World, id: &SessionId) -> usize {
    world.dms_to(ALICE).iter().filter(|dm| dm.text().contains(&format!("({id}) has ended"))).count()
}

/// A session handed over three hours ago for one hour; Slack then refuses every message (HTTP
/// 429 on every call the outbox makes) while `serve` starts: the start-up tick drops the account,
/// terminates the instance and closes the session although not one notice can be sent. Once
/// Slack takes messages again, the outbox delivers them: Alice is told once, and the hand-over
/// DM no longer shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_refusing_across_a_deadline_delays_only_the_notices() {
    let world = World::new(Options { tick: "1s", ..Options::default() }).await;
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(3)));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 1h INC-201 slack down at the deadline").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    let report = app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("sweep");
    assert_eq!(report.acted().map(|(_, o)| o.clone()).collect::<Vec<_>>(), vec![Ok(StepOutcome::HandedOver)]);
    let handed_over = get(&app, &id).await;
    let ip = handed_over.private_ip.clone().expect("an address");
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip)]);

    for method in MESSAGE_METHODS {
        world.slack.rate_limit_next(method, 100_000, 1);
    }
    let config = format!("{}\n[calls.slack]\nmax_attempts = 1\ntimeout = \"2s\"\n", world.config_text());
    let serve = Serve::start(&world, &config, &[]).await;
    let closed = wait_until(SOON, || async {
        let s = get(&app, &id).await;
        s.state.is_closed().then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the session was not torn down while Slack refused; log:\n{}", serve.logs()));
    assert_eq!(closed.state, State::Closed(Outcome::Expired));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is gone");
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1);
    assert!(matches!(instances[0].state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated" | "shutting-down")));
    assert!(!closed.outbox.is_empty() && closed.outbox.iter().all(|n| n.sent_at.is_none()), "nothing was delivered: {:?}", closed.outbox);
    assert_eq!(ended_dms(&world, &id), 0);
    let slack = observed(&serve, "slack").await;
    assert_eq!(slack["failing"], true, "/readyz shows Slack failing: {slack}");
    assert!(slack["last_error"].as_str().is_some_and(|e| e.contains("rate-limit")), "{slack}");
    let (database, ec2) = (observed(&serve, "database").await, observed(&serve, "ec2").await);
    assert!(database["failing"] == false && database["last_success"].is_string(), "the revoke succeeded: {database}");
    assert!(ec2["failing"] == false && ec2["last_success"].is_string(), "the termination succeeded: {ec2}");

    // Slack takes messages again.
    for method in MESSAGE_METHODS {
        world.slack.rate_limit_next(method, 0, 0);
    }
    let delivered = wait_until(Duration::from_secs(90), || async {
        let s = get(&app, &id).await;
        s.outbox.iter().all(|n| n.sent_at.is_some()).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the notices were not delivered once Slack was back; log:\n{}", serve.logs()));
    assert_eq!(ended_dms(&world, &id), 1, "Alice is told exactly once");
    assert_eq!(observed(&serve, "slack").await["failing"], false, "/readyz shows Slack answering again");
    let (channel, ts) = (delivered.slack.handover_channel.clone().expect("a hand-over DM"), delivered.slack.handover_ts.clone().expect("its ts"));
    let now_reads = world.slack.message(&channel, &ts).map(|m| m.to_string()).unwrap_or_default();
    assert!(password_in(&now_reads).is_none() && now_reads.contains("redacted"), "the hand-over DM still reads: {now_reads}");
    assert_eq!(delivered.next_action_at(), None, "nothing is owed any more");
}

/// The database cannot be reached (its connections hang at a proxy) when a session's deadline
/// passes: `serve` terminates the instance on time anyway, keeps the session tearing down with
/// the database named as what it is stuck on (in the session and on `/readyz`), and drops the
/// account on its next attempt once the database answers again; the session closes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_across_a_deadline_terminates_on_time_and_drops_once_back() {
    use world::proxy::Proxy;
    let world = World::new(Options { tick: "1s", ..Options::default() }).await;
    let db = Proxy::start(&format!("127.0.0.1:{}", world.db.port)).await;
    world.point_admin_secret_at("127.0.0.1", db.port()).await;
    let clock = Arc::new(ManualClock::new(Utc::now() - chrono::Duration::hours(3)));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 1h INC-202 database down at the deadline").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    let report = app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("sweep");
    assert_eq!(report.acted().map(|(_, o)| o.clone()).collect::<Vec<_>>(), vec![Ok(StepOutcome::HandedOver)]);
    assert_eq!(world.accounts_named(&world.db_user()).await.len(), 1);

    db.hold();
    let config = format!("{}\n[calls.mysql]\ntimeout = \"1s\"\n", world.config_text());
    let serve = Serve::start(&world, &config, &[]).await;
    let stuck = wait_until(SOON, || async {
        let s = get(&app, &id).await;
        (s.teardown.attempts > 0).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("no teardown attempt while the database was down; log:\n{}", serve.logs()));
    assert!(matches!(stuck.state, State::TearingDown(_)), "{:?}", stuck.state);
    assert_eq!(stuck.teardown.last_dependency, Some(powerpole::domain::Dependency::Database), "{:?}", stuck.teardown);
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1);
    assert!(matches!(instances[0].state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated" | "shutting-down")), "the instance is terminated on time although the database is down");
    assert_eq!(world.accounts_named(&world.db_user()).await.len(), 1, "the account could not be dropped yet");
    let database = observed(&serve, "database").await;
    assert_eq!(database["failing"], true, "/readyz shows the database failing: {database}");

    db.release();
    let closed = wait_until(Duration::from_secs(60), || async {
        let s = get(&app, &id).await;
        s.state.is_closed().then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the session did not close once the database was back; log:\n{}", serve.logs()));
    assert_eq!(closed.state, State::Closed(Outcome::Expired));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is dropped once the database is back");
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(kinds.iter().filter(|k| **k == powerpole::domain::AuditKind::TornDown).count(), 1, "closed once: {kinds:?}");
    assert!(kinds.contains(&powerpole::domain::AuditKind::TeardownFailed), "{kinds:?}");
}

/// EC2 answers 503 to every call for a while as a session is provisioned: the SDK's retries (the
/// `[calls.ec2]` policy) ride it out, or provisioning fails and rolls back. Either way the end is
/// clean: exactly one running instance for an active session, or none (and no account) for a
/// failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_answering_503_during_a_launch_leaves_one_instance_or_a_clean_rollback() {
    use world::faulty::FaultyHttp;
    let world = World::new(Options { tick: "1s", ..Options::default() }).await;
    let store = world.app(Arc::new(powerpole::workflow::SystemClock)).await;
    let ec2 = FaultyHttp::start(&world::env("AWS_ENDPOINT_URL")).await;
    let unavailable = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>Unavailable</Code><Message>The service is unavailable. Please try again shortly.</Message></Error></Errors><RequestID>powerpole-test</RequestID></Response>";
    ec2.fail_with(503, "text/xml", unavailable);
    let serve = Serve::start(&world, &world.config_text(), &[("AWS_ENDPOINT_URL_EC2", ec2.url())]).await;
    let reply = serve.http.command(ALICE, "request billing READ 1h INC-203 ec2 unavailable").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&store, &id).await;
    let reply = serve.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let retried = wait_until(SOON, || async { (ec2.refused() >= 2).then_some(()) }).await;
    assert!(retried.is_some(), "EC2 was called and answered 503; log:\n{}", serve.logs());
    ec2.heal();
    let settled = wait_until(Duration::from_secs(90), || async {
        let s = get(&store, &id).await;
        (s.state == State::Active || s.state.is_closed()).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("provisioning did not settle; log:\n{}", serve.logs()));
    let instances = world.instances_of(&id).await;
    let running: Vec<_> = instances.iter().filter(|i| !matches!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated" | "shutting-down"))).collect();
    match settled.state {
        State::Active => {
            assert_eq!(instances.len(), 1, "exactly one instance was launched: {instances:?}");
            assert_eq!(running.len(), 1);
            assert_eq!(settled.instance_id.as_deref(), instances[0].instance_id());
        }
        State::Closed(Outcome::Failed) => {
            assert!(running.is_empty(), "a failed launch leaves nothing running: {running:?}");
            assert!(world.accounts_named(&world.db_user()).await.is_empty(), "and no account");
        }
        other => panic!("unexpected {other:?}; log:\n{}", serve.logs()),
    }
    println!("EC2 refused {} call(s); the session ended up {}", ec2.refused(), settled.state);
}
