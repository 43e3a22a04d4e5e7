//! The whole PowerPole lifecycle against the stand-ins, with an injected clock: request and
//! approval through signed Slack requests, then the sweeper's ticks at chosen times. Each test
//! asserts what a user or the security team would check: the Slack messages, the audit trail,
//! the instance in EC2 and the account in MySQL.

mod world;
/// `make demo` reads the hand-over DM with this parser: checked here against the DM the product
/// really sends, so the README's first command cannot drift from the DM again.
#[allow(dead_code)]
#[path = "../scripts/demo/handover.rs"]
mod demo_handover;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use powerpole::domain::{AuditKind, Outcome, State};
use powerpole::workflow::{ManualClock, StepOutcome};
use world::{password_in, session_on_card, Options, TestHost, World, ALICE, APPROVALS, BOB, SOON};

fn lookahead() -> Duration {
    Duration::seconds(15)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lives_from_request_to_teardown() {
    let world = World::new(Options::default()).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;

    // Alice asks; the card reaches the approvals channel.
    let reply = http.command(ALICE, "request billing READ 1h INC-42 refund mismatch").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the approval card is posted");
    let card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card in the approvals channel").clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;

    // Bob approves. Nothing is launched by the click itself: the sweeper does it.
    let before = world.slack.calls_to("chat.update").len();
    let reply = http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    world.slack.wait_for("chat.update", before + 1, SOON).await.expect("the card is updated with the decision");
    assert_eq!(world.session(&app, &id).await.state, State::Approved);
    assert!(world.instances_of(&id).await.is_empty());

    // Provisioning: seven minutes later on the clock, so the access clock visibly starts at hand-over.
    clock.advance(Duration::minutes(7));
    let handover_at = clock.now_for_test();
    let report = app.lifecycle.tick(lookahead()).await.expect("the sweep reads the store");
    assert_eq!(outcomes(&report), vec![StepOutcome::HandedOver]);
    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Active);
    assert_eq!(session.expires_at, Some(handover_at + Duration::hours(1)), "expiry = hand-over + approved duration");

    // EC2: one running instance for the session, in the target's subnet, no public IP.
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1);
    let instance = &instances[0];
    assert_eq!(instance.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"));
    assert_eq!(instance.subnet_id(), Some(world.subnet_id.as_str()));
    assert_eq!(instance.public_ip_address(), None);
    let ip = instance.private_ip_address().expect("a private IP").to_string();
    assert_eq!(session.private_ip.as_deref(), Some(ip.as_str()));

    // MySQL: exactly one account for alice, bound to the bastion's IP.
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip.clone())]);

    // The hand-over DM: how to connect, with a password.
    let dm = world.dms_to(ALICE).into_iter().find(|c| c.text().contains("is ready")).expect("the hand-over DM");
    let dm_text = powerpole_standins::slack::text_of(&dm);
    let instance_id = instance.instance_id().expect("an instance id");
    let document = &app.config.bastion.session_document;
    assert!(dm_text.contains(&format!("aws ssm start-session --target {instance_id} --document-name {document} ")), "{dm_text}");
    assert!(!dm_text.contains("console.aws.amazon.com"), "no console link that would use the default document: {dm_text}");
    assert!(dm_text.contains(&format!("mysql -h {} -P {} -u {} -p```", world::DB_HOST_ON_BRIDGE, world.db.port, world.db_user())), "mysql asks for the password: {dm_text}");
    let password = password_in(&dm_text).expect("the DM carries the password");
    let demo = demo_handover::parse_mysql_line(&dm_text).expect("make demo reads the hand-over DM");
    assert_eq!((demo.host.as_str(), demo.port, demo.user.as_str(), demo.password.as_str()), (world::DB_HOST_ON_BRIDGE, world.db.port, world.db_user().as_str(), password.as_str()));
    assert!(password.len() >= 24);
    for line in dm_text.lines().filter(|l| l.contains(&password)) {
        assert_eq!(line.trim_matches('`'), password, "the password stands alone on its line, never next to -p: {line}");
    }
    // Only the requester may enter it: the bastion carries their identity (the Slack e-mail).
    let identity = instance.tags().iter().find(|t| t.key() == Some(powerpole::bastion::tags::IDENTITY)).and_then(|t| t.value());
    assert_eq!(identity, Some(session.requester.email.as_str()), "{:?}", instance.tags());

    // The command line from the DM, pasted on the bastion (a test host holding its IP) with the
    // password typed at its prompt, works and reads the target's schema; the same from any other
    // address is refused.
    let mysql = world::mysql_line_in(&dm_text).expect("the DM has a mysql command line");
    let mysql = world::typing_password(&mysql, &password);
    let bastion = TestHost::add(&ip);
    let rows = bastion.mysql(&mysql, &format!("SELECT COUNT(*) FROM {}.refunds", world.schema));
    assert_eq!(rows.as_deref(), Ok("3"), "login from the bastion's address");
    let written = bastion.mysql(&mysql, &format!("DELETE FROM {}.refunds", world.schema));
    assert!(written.as_ref().is_err_and(|e| e.contains("DELETE command denied")), "READ cannot write: {written:?}");
    let elsewhere = TestHost::add(&neighbour_of(&ip));
    let refused = elsewhere.mysql(&mysql, "SELECT 1");
    assert!(refused.as_ref().is_err_and(|e| e.contains("is not allowed to connect") || e.contains("Access denied")), "{refused:?}");

    // Fifty minutes in: the warning, with Extend and End-now buttons.
    clock.set(handover_at + Duration::minutes(50));
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::Warned]);
    let warning = world.dms_to(ALICE).into_iter().find(|c| c.text().contains("ends at")).expect("the warning DM");
    let buttons: Vec<String> = warning.blocks().iter().flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["action_id"].as_str().map(str::to_owned)).collect();
    assert_eq!(buttons.len(), 2, "{buttons:?}");
    // A second tick at the same time does nothing: the warning is sent once.
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert!(outcomes(&report).is_empty());

    // Expiry: everything is gone.
    clock.set(handover_at + Duration::hours(1));
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::TornDown]);
    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Closed(Outcome::Expired));
    assert_eq!(session.next_action_at(), None);
    let instance = &world.instances_of(&id).await[0];
    assert_eq!(instance.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated"));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is dropped");

    // The hand-over DM now shows no password; a completion notice was sent.
    let handover_now = world.slack.message(&format!("D{ALICE}"), session.slack.handover_ts.as_deref().expect("handover ts")).expect("the DM exists");
    let shown = powerpole_standins::slack::render_message(&handover_now);
    assert!(!shown.contains(&password), "the password is redacted: {shown}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(world.dms_to(ALICE).iter().any(|c| c.text().contains("has ended")), "the teardown notice");

    // The audit trail, in order, one event per step.
    assert_eq!(
        world.audit_kinds(&app, &id).await,
        vec![
            AuditKind::Requested,
            AuditKind::Approved,
            AuditKind::ProvisioningStarted,
            AuditKind::Launched,
            AuditKind::Granted,
            AuditKind::HandedOver,
            AuditKind::Warned,
            AuditKind::Expired,
            AuditKind::TornDown,
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bastion_that_never_comes_online_is_rolled_back_and_the_requester_told() {
    let world = World::new(Options { ssm_online_timeout: "1s", ..Options::default() }).await;
    world.ssm.hold_all_offline(true);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing DML 30m INC-7 fix a row").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");

    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    let outcome = outcomes(&report);
    assert!(matches!(outcome.as_slice(), [StepOutcome::ProvisioningFailed(cause)] if cause.contains("did not come online")), "{outcome:?}");

    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Closed(Outcome::Failed));
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1, "launched once");
    assert_eq!(instances[0].state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated"));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account created in parallel is dropped");
    assert!(world.dms_to(ALICE).iter().any(|c| c.text().contains("could not be set up")), "the requester is told");
    assert!(!world.dms_to(ALICE).iter().any(|c| c.text().contains("is ready")), "nothing was handed over");
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(&kinds[kinds.len() - 2..], &[AuditKind::Failed, AuditKind::TornDown]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_early_tears_down_at_once_and_a_second_sweeper_finds_nothing_to_do() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()));
    let app = world.app(clock.clone()).await;
    let replica = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing DDL 2h INC-9 add an index").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");

    // Two replicas sweep at the same moment: one provisions, the other loses the claim.
    let (a, b) = tokio::join!(app.lifecycle.tick(lookahead()), replica.lifecycle.tick(lookahead()));
    let mut all = outcomes(&a.expect("sweep a"));
    all.extend(outcomes(&b.expect("sweep b")));
    assert_eq!(all.iter().filter(|o| **o == StepOutcome::HandedOver).count(), 1, "{all:?}");
    assert_eq!(world.instances_of(&id).await.len(), 1, "one launch");
    assert_eq!(world.dms_to(ALICE).iter().filter(|c| c.text().contains("is ready")).count(), 1, "one hand-over DM");

    // Alice ends it from Slack twenty minutes in.
    clock.advance(Duration::minutes(20));
    let reply = http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ended = tokio::time::timeout(SOON, async {
        loop {
            if matches!(world.session(&app, &id).await.state, State::TearingDown(Outcome::EndedByRequester)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    ended.await.expect("the end command moves the session to tearing down");
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::TornDown]);
    assert_eq!(world.session(&app, &id).await.state, State::Closed(Outcome::EndedByRequester));
    assert!(world.accounts_named(&world.db_user()).await.is_empty());
    let report = replica.lifecycle.tick(lookahead()).await.expect("sweep");
    assert!(outcomes(&report).is_empty(), "nothing is left to do");
}

/// Another address in the same /24 as `ip`.
fn neighbour_of(ip: &str) -> String {
    let (prefix, last) = ip.rsplit_once('.').expect("an IPv4 address");
    let last: u8 = last.parse().expect("an octet");
    format!("{prefix}.{}", if last >= 200 { last - 100 } else { last + 50 })
}

/// What a tick did, leaving out sessions that were not due or that another worker had claimed.
fn outcomes(report: &powerpole::workflow::TickReport) -> Vec<StepOutcome> {
    report.acted().map(|(id, o)| o.clone().unwrap_or_else(|e| panic!("step for {id} failed: {e}"))).collect()
}

trait NowForTest {
    fn now_for_test(&self) -> chrono::DateTime<Utc>;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> chrono::DateTime<Utc> {
        powerpole::workflow::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_command_lists_a_persons_trail_in_order() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = world.app(clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 30m INC-5 look at refunds").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    app.lifecycle.tick(lookahead()).await.expect("sweep");

    let dir = std::env::temp_dir().join(format!("powerpole-audit-{}", world.id));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("powerpole.toml");
    std::fs::write(&file, world.config_text()).expect("write the config");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
            .arg("audit")
            .arg("--config")
            .arg(&file)
            .args(args)
            .envs(world.process_env())
            .output()
            .expect("run powerpole audit");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let by_user = run(&["--user", ALICE]);
    let kinds: Vec<&str> = by_user.iter().map(|l| l.split_whitespace().nth(6).unwrap_or_default()).collect();
    assert_eq!(kinds, ["requested", "approved", "provisioning_started", "launched", "granted", "handed_over"], "{by_user:#?}");
    assert!(by_user[1].contains(&format!("by {BOB}")), "{}", by_user[1]);
    assert!(by_user.iter().all(|l| l.contains(id.as_str()) && l.contains(&world.db_user())));
    assert_eq!(run(&["--session", id.as_str()]), by_user);
    assert_eq!(run(&["--target", "billing", "--since", "2000-01-01"]), by_user);
    assert!(run(&["--user", BOB]).is_empty(), "Bob requested nothing");
    let json = run(&["--session", id.as_str(), "--json"]);
    let first: serde_json::Value = serde_json::from_str(&json[0]).expect("one JSON object per line");
    assert_eq!(first["event"], "requested");

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["audit", "--config"])
        .arg(&file)
        .args(["--since", "last tuesday"])
        .output()
        .expect("run powerpole audit");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a time: use 2026-11-01"));
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------------------------------------------
// Launch on request (`launch_on_request = true`): the bastion boots while approvers decide.
// -------------------------------------------------------------------------------------------------

/// This world's configuration with launch on request for `billing`.
fn launching_on_request(world: &World) -> String {
    world.config_text().replace("[targets.billing]\n", "[targets.billing]\nlaunch_on_request = true\n")
}

fn identity_of(instance: &aws_sdk_ec2::types::Instance) -> Option<String> {
    instance.tags().iter().find(|t| t.key() == Some(powerpole::bastion::tags::IDENTITY)).and_then(|t| t.value()).map(str::to_string)
}

fn state_of(instance: &aws_sdk_ec2::types::Instance) -> Option<&str> {
    instance.state().and_then(|s| s.name()).map(|n| n.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_on_request_boots_the_bastion_before_approval_and_lets_its_requester_in_only_after() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()));
    let app = world.app_with(&launching_on_request(&world), clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 1h INC-77 refund mismatch").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;

    // Before anyone decided: the bastion runs, but carries nobody's identity, and no account exists.
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::LaunchedEarly]);
    let early = world.instances_of(&id).await;
    assert_eq!(early.len(), 1, "launched at request");
    assert_eq!(state_of(&early[0]), Some("running"));
    assert_eq!(identity_of(&early[0]), None, "nobody can start a session on it yet: {:?}", early[0].tags());
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "no database account before approval");
    let pending = world.session(&app, &id).await;
    assert_eq!((pending.state, pending.instance_id.as_deref()), (State::Pending, early[0].instance_id()));
    // A second tick launches nothing more.
    assert!(outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep")).is_empty());

    // Bob approves: the same instance is handed over, now tagged with alice's identity.
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", 1, SOON).await.expect("decision");
    let report = app.lifecycle.tick(lookahead()).await.expect("sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::HandedOver]);
    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1, "no second launch");
    assert_eq!(instances[0].instance_id(), early[0].instance_id());
    let session = world.session(&app, &id).await;
    assert_eq!(identity_of(&instances[0]).as_deref(), Some(session.requester.email.as_str()));
    let ip = instances[0].private_ip_address().expect("a private IP").to_string();
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), ip)]);
    // Launched twice: at request (untagged), and at provisioning (tagged, the account host recorded).
    let trail = app.workflow.store.audit_trail(&id).await.expect("the trail");
    let kinds: Vec<AuditKind> = trail.iter().map(|r| r.event.kind).collect();
    assert_eq!(
        kinds,
        vec![AuditKind::Requested, AuditKind::Launched, AuditKind::Approved, AuditKind::ProvisioningStarted, AuditKind::Launched, AuditKind::Granted, AuditKind::HandedOver]
    );
    assert!(trail[1].event.detail.contains("nobody can enter it before approval"), "{}", trail[1].event.detail);
    assert!(trail[4].event.detail.contains("now tagged with the requester's identity"), "{}", trail[4].event.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_on_request_terminates_the_bastion_of_a_denied_or_unanswered_request() {
    use powerpole_standins::driver::{InputValue, ViewSubmission};
    let world = World::new(Options::default()).await;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = world.app_with(&launching_on_request(&world), clock.clone()).await;
    let http = world.serve(&app).await;

    // Denied: the card's Deny, with a reason.
    http.command(ALICE, "request billing DML 30m INC-78 fix a row").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let denied = session_on_card(&card);
    world.card_stored(&app, &denied).await;
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep")), vec![StepOutcome::LaunchedEarly]);
    http.click(&card, "deny", BOB).await;
    let opened = world.slack.wait_for("views.open", 1, SOON).await.expect("the reason modal")[0].clone();
    let form = ViewSubmission::of(&opened, BOB, "bob").expect("a modal").input("reason", "reason", InputValue::Text("use the replica".into()));
    assert_eq!(http.driver.interaction(http.driver.view_submission(&form)).await.expect("submitted").status, 200);
    let tearing = tokio::time::timeout(SOON, async {
        loop {
            let s = world.session(&app, &denied).await;
            if s.state != State::Pending {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the denial is stored");
    assert_eq!(tearing.state, State::TearingDown(Outcome::Denied), "its bastion must go before it closes");
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep")), vec![StepOutcome::TornDown]);
    let gone = world.instances_of(&denied).await;
    assert_eq!((gone.len(), state_of(&gone[0])), (1, Some("terminated")));
    assert_eq!(identity_of(&gone[0]), None, "a denied request's bastion never carried anyone's identity");
    assert_eq!(world.session(&app, &denied).await.state, State::Closed(Outcome::Denied));
    assert_eq!(world.audit_kinds(&app, &denied).await, vec![AuditKind::Requested, AuditKind::Launched, AuditKind::Denied, AuditKind::TornDown]);
    let told: Vec<String> = world.dms_to(ALICE).iter().map(|c| c.text().to_string()).collect();
    assert!(told.iter().any(|t| t.contains("denied your request")), "{told:?}");
    assert!(!told.iter().any(|t| t.contains("has ended")), "no access-ended notice for access never given: {told:?}");

    // Unanswered: the pending timeout terminates it as well.
    let before = world.slack.calls_to("chat.postMessage").len();
    http.command(ALICE, "request billing READ 30m INC-79 look at refunds").await;
    let cards = world.slack.wait_for("chat.postMessage", before + 1, SOON).await.expect("card");
    let unanswered = session_on_card(cards.last().expect("the second card"));
    world.card_stored(&app, &unanswered).await;
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep")), vec![StepOutcome::LaunchedEarly]);
    clock.set(world.session(&app, &unanswered).await.pending_expires_at);
    let report = outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep"));
    assert!(report.contains(&StepOutcome::TimedOut), "{report:?}");
    let gone = world.instances_of(&unanswered).await;
    assert_eq!((gone.len(), state_of(&gone[0])), (1, Some("terminated")));
    assert_eq!(world.session(&app, &unanswered).await.state, State::Closed(Outcome::PendingTimedOut));
}

/// The early launch answers after the request was withdrawn (EC2 held at a proxy while the
/// requester ends it): the worker terminates the bastion itself, says so in the trail (an
/// `undone` event naming the instance), and gives its claim back in that write, so the teardown
/// closes the session on the next sweep instead of after the launch's claim runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_launch_that_answers_after_the_request_ended_is_undone_and_audited() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()));
    let mut app = world.app_with(&launching_on_request(&world), clock.clone()).await;
    let ec2_proxy = world::proxy::Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    let ec2 = aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(&world.aws).endpoint_url(ec2_proxy.url()).build());
    let ssm = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::config::Builder::from(&world.aws).endpoint_url(world.ssm.url()).build());
    let bastions = powerpole::bastion::Ec2Bastions::new(ec2, ssm, app.config.bastion.clone()).in_deployment(app.config.deployment.id.clone());
    app.lifecycle.bastions = Arc::new(bastions);
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing READ 30m INC-80 look at refunds").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;

    // The sweep claims the early launch; its RunInstances stops at the proxy while Alice withdraws.
    ec2_proxy.hold();
    let sweep = app.lifecycle.tick(lookahead());
    let meanwhile = async {
        let claimed = world::process::wait_until(SOON, || async { Some(world.session(&app, &id).await).filter(|s| s.lease_until.is_some()) }).await;
        assert!(claimed.is_some(), "the sweep claims the early launch");
        let reply = http.command(ALICE, &format!("end {id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let ended = world::process::wait_until(SOON, || async { Some(world.session(&app, &id).await).filter(|s| s.state != State::Pending) }).await;
        assert_eq!(ended.map(|s| s.state), Some(State::TearingDown(Outcome::Cancelled)), "withdrawn while its bastion launches");
        ec2_proxy.release();
    };
    let (report, ()) = tokio::join!(sweep, meanwhile);
    report.expect("sweep");

    let instances = world.instances_of(&id).await;
    assert_eq!(instances.len(), 1, "one bastion was launched");
    let instance = instances[0].instance_id().expect("an id").to_string();
    assert_eq!(state_of(&instances[0]), Some("terminated"), "the worker whose launch answered late terminated it");
    let trail = app.workflow.store.audit_trail(&id).await.expect("the trail");
    let undone: Vec<&str> = trail.iter().filter(|r| r.event.kind == AuditKind::Undone).map(|r| r.event.detail.as_str()).collect();
    assert_eq!(undone.len(), 1, "{trail:?}");
    assert!(undone[0].contains(&instance) && undone[0].contains("terminated"), "the trail names what was undone: {}", undone[0]);
    let session = world.session(&app, &id).await;
    assert_eq!((session.state, session.lease_until), (State::TearingDown(Outcome::Cancelled), None), "the claim is given back with the event");

    // The clock has not moved: the teardown runs now, not when the launch's claim would have run out.
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead()).await.expect("sweep")), vec![StepOutcome::TornDown]);
    assert_eq!(world.session(&app, &id).await.state, State::Closed(Outcome::Cancelled));
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(kinds, vec![AuditKind::Requested, AuditKind::Cancelled, AuditKind::Undone, AuditKind::TornDown]);
}

/// Issue 11's CIDR scenario against MariaDB. On a target whose accounts are bound to the bastions'
/// network (`account_host` a pattern), Alice's READ session is live. Her DML request on the same
/// target would reuse, reset and at its end drop that account: it is refused, naming the live
/// session and how to end it, and nothing is filed. The live account keeps its password (it still
/// logs in from the subnet) and only its READ privileges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cidr_target_a_second_session_never_resets_or_drops_the_live_account() {
    let world = World::new(Options::default()).await;
    let pattern = "10.200.0.0/255.255.0.0";
    let config = world.config_text().replace("require_ssl = false\n", &format!("require_ssl = false\naccount_host = \"{pattern}\"\n"));
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()));
    let app = world.app_with(&config, clock.clone()).await;
    let http = world.serve(&app).await;

    http.command(ALICE, "request billing READ 1h INC-44 look at ledger").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    let updates = world.slack.calls_to("chat.update").len();
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", updates + 1, SOON).await.expect("the decision");
    let report = app.lifecycle.tick(lookahead()).await.expect("the sweep");
    assert_eq!(outcomes(&report), vec![StepOutcome::HandedOver]);
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), pattern.to_string())], "one account, bound to the pattern");
    let dm = world.dms_to(ALICE).into_iter().find(|c| c.text().contains("is ready")).expect("the hand-over DM");
    let dm_text = powerpole_standins::slack::text_of(&dm);
    let password = password_in(&dm_text).expect("the password");
    let mysql = world::typing_password(&world::mysql_line_in(&dm_text).expect("the mysql line"), &password);
    let ip = world.session(&app, &id).await.private_ip.expect("the bastion's IP");
    let bastion = TestHost::add(&ip);
    let count = format!("SELECT COUNT(*) FROM {}.refunds", world.schema);
    assert_eq!(bastion.mysql(&mysql, &count).as_deref(), Ok("3"), "the READ session works from the subnet");

    // The DML request on the same target: refused, told which session holds the account.
    let answers = world.slack.calls_to("response_url").len();
    let reply = http.command(ALICE, "request billing DML 1h INC-44 fix ledger").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    world.slack.wait_for("response_url", answers + 1, SOON).await.expect("an answer");
    let told: Vec<String> = world.slack.calls_to("response_url").iter().map(|c| c.param_str("text").unwrap_or_default().to_string()).collect();
    let refusal = told.iter().find(|t| t.contains("already have session")).unwrap_or_else(|| panic!("not told: {told:?}"));
    assert!(refusal.contains(id.as_str()) && refusal.contains("/powerpole end"), "{refusal}");
    let report = app.lifecycle.tick(lookahead()).await.expect("the sweep");
    assert!(outcomes(&report).is_empty(), "nothing was filed for the refused request: {:?}", outcomes(&report));

    // The live account is as it was: same password, READ only.
    assert_eq!(world.accounts_named(&world.db_user()).await, vec![(world.db_user(), pattern.to_string())]);
    assert_eq!(bastion.mysql(&mysql, &count).as_deref(), Ok("3"), "the first password still works");
    let write = bastion.mysql(&mysql, &format!("DELETE FROM {}.refunds", world.schema));
    assert!(write.is_err(), "still READ only: {write:?}");
    assert_eq!(world.session(&app, &id).await.state, State::Active);
}
