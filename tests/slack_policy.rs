//! The policy layer end to end, through signed Slack requests and the recording Slack stand-in,
//! with the real store (moto), bastions (moto EC2 + the SSM stand-in) and database (MariaDB), on
//! an injected clock: eligibility (refused before anything is filed), a role's own maximum, a DDL
//! request that needs two approvals from the DBA group, an auto-approved READ handed over with no
//! click (its card and trail naming the rule), the per-person cap on auto-approved sessions, and
//! `powerpole policy explain` (the binary, reading the groups from the Slack stand-in) for each.

mod world;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use powerpole::domain::{Actor, AuditKind, SlackUserId, State};
use powerpole::workflow::{ManualClock, StepOutcome, TickReport};
use powerpole_standins::slack::RecordedCall;
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

const CAROL: &str = "U0CAROL";
const DAVE: &str = "U0DAVE";
const ERIN: &str = "U0ERIN";
/// Engineers: may ask; READ is auto-approved for them.
const ENG: &str = "S0ENG";
/// DBAs: DDL needs two of them.
const DBA: &str = "S0DBA";

fn outcomes(report: &TickReport) -> Vec<StepOutcome> {
    report.acted().map(|(id, o)| o.clone().unwrap_or_else(|e| panic!("step for {id} failed: {e}"))).collect()
}

fn posts_in(world: &World, channel: &str) -> Vec<RecordedCall> {
    world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.param_str("channel") == Some(channel)).collect()
}

fn buttons(message: &RecordedCall) -> Vec<String> {
    message.blocks().iter().flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["action_id"].as_str().map(str::to_owned)).collect()
}

fn everything(message: &RecordedCall) -> String {
    format!("{} {}", message.text(), serde_json::Value::Array(message.blocks().to_vec()))
}

const POLICY: &str = r##"
[targets.billing.policy]
eligible_groups = ["S0ENG"]
contact = "#db-access"
max_auto_sessions = 1
[targets.billing.policy.READ]
auto_approve_groups = ["S0ENG"]
auto_approve_max = "1h"
[targets.billing.policy.DML]
max_duration = "30m"
[targets.billing.policy.DDL]
approvals = 2
approver_groups = ["S0DBA"]
"##;

/// The world's config with the policy, and a second target `ledger` with the same auto-approval
/// rule (for the cap, which counts a person's auto-approved sessions on every target).
fn config_text(world: &World) -> String {
    let base = world.config_text();
    let billing = base.split("[targets.billing]").nth(1).expect("the world has billing");
    format!(
        "{base}{POLICY}\n[targets.ledger]{}\n[targets.ledger.policy]\neligible_groups = [\"S0ENG\"]\nmax_auto_sessions = 1\n[targets.ledger.policy.READ]\nauto_approve_groups = [\"S0ENG\"]\nauto_approve_max = \"1h\"\n",
        billing
    )
}

async fn world_with_people() -> World {
    let world = World::new(Options::default()).await;
    world.slack.add_user(CAROL, "carol@example.com", "UTC");
    world.slack.add_user(DAVE, "dave@example.com", "UTC");
    world.slack.add_user(ERIN, "erin@example.com", "UTC");
    world.slack.add_group(ENG, &[ALICE, CAROL, ERIN]);
    world.slack.add_group(DBA, &[ALICE, CAROL, ERIN]);
    world
}

/// `powerpole policy explain` as an operator runs it: (exit code, stdout).
fn explain(world: &World, config_text: &str, args: &[&str]) -> (Option<i32>, String) {
    let file = world::process::ConfigFile::write(config_text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["policy", "explain", "--config"])
        .arg(&file.path)
        .args(args)
        .envs(world.process_env())
        .output()
        .expect("run powerpole policy explain");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ineligible_and_the_too_long_are_refused_with_nothing_filed() {
    let world = world_with_people().await;
    let text = config_text(&world);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;

    // Dave is in no group the policy names: refused after the groups are read, nothing filed.
    let reply = http.command(DAVE, "request billing READ 30m INC-4 look at refunds").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = world.slack.wait_for("response_url", 1, SOON).await.expect("Dave is answered");
    let refusal = answers[0].text();
    assert!(refusal.contains("you may not ask for READ on `billing`") && refusal.contains("<!subteam^S0ENG>"), "{refusal}");
    assert!(refusal.contains("ask #db-access") && refusal.contains("Nothing was filed"), "who grants eligibility: {refusal}");
    let dave = SlackUserId::parse(DAVE).unwrap();
    assert!(app.workflow.store.by_requester(&dave, 10).await.unwrap().is_empty(), "nothing filed for Dave");
    assert!(posts_in(&world, APPROVALS).is_empty(), "no card for Dave");

    // DML has its own maximum of 30m: refused in the answer itself.
    let reply = http.command(ALICE, "request billing DML 1h INC-4 fix a refund").await;
    assert!(reply.body.contains("`billing` allows DML for at most 30m per session"), "{}", reply.body);
    let alice = SlackUserId::parse(ALICE).unwrap();
    assert!(app.workflow.store.by_requester(&alice, 10).await.unwrap().is_empty(), "nothing filed for Alice");

    // The request form offers Dave nothing: it does not open, and he reads why.
    http.command(DAVE, "request").await;
    let answers = world.slack.wait_for("response_url", 2, SOON).await.expect("Dave is answered");
    assert!(answers[1].text().contains("you may not ask for any database"), "{}", answers[1].text());
    assert!(world.slack.calls_to("views.open").is_empty(), "no form for Dave");
    // Alice's form offers only what she may ask for, with each role's limit.
    http.command(ALICE, "request").await;
    let form = world.slack.wait_for("views.open", 1, SOON).await.expect("Alice's form opens")[0].clone();
    let view = form.params.get("view").map(|v| v.to_string()).unwrap_or_default();
    assert!(view.contains("billing: READ up to 4h, DML up to 30m, DDL up to 4h"), "{view}");
    let (code, out) = explain(&world, &text, &["--user", DAVE, "--target", "billing", "--role", "READ"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("eligibility: NOT eligible: targets.billing.policy allows only group S0ENG"), "{out}");
    assert!(out.contains("outcome: refused when asked (not eligible)"), "{out}");
    let (code, out) = explain(&world, &text, &["--user", ALICE, "--target", "billing", "--role", "DML", "--duration", "1h"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("duration: 1h is over the maximum of 30m (the role's max_duration): refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddl_request_needs_two_approvals_from_the_dba_group() {
    let world = world_with_people().await;
    let text = config_text(&world);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;

    let (code, out) = explain(&world, &text, &["--user", ALICE, "--target", "billing", "--role", "DDL", "--duration", "1h"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("approval rule: 2 distinct approval(s) from group S0DBA"), "{out}");
    assert!(out.contains("auto-approval: none configured for this role"), "{out}");
    assert!(out.contains("outcome: filed; waits for 2 approval(s) from group S0DBA"), "{out}");

    http.command(ALICE, "request billing DDL 1h INC-5 add an index").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card is posted")[0].clone();
    assert_eq!(buttons(&card), ["approve", "deny"]);
    assert!(everything(&card).contains("2 approval(s) from <!subteam^S0DBA>"), "{}", everything(&card));
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;

    // Alice is a DBA but asked herself; Bob approves billing but is no DBA.
    let answered = |n: usize| world.slack.wait_for("response_url", n, SOON);
    let before = world.slack.calls_to("response_url").len();
    http.click(&card, "approve", ALICE).await;
    let said = answered(before + 1).await.expect("Alice is answered")[before].text().to_string();
    assert!(said.contains("you asked for this access yourself"), "{said}");
    http.click(&card, "approve", BOB).await;
    let said = answered(before + 2).await.expect("Bob is answered")[before + 1].text().to_string();
    assert!(said.contains("DDL on `billing` is decided by <!subteam^S0DBA> only"), "{said}");
    assert!(world.session(&app, &id).await.approvals.is_empty());

    // Carol approves: 1 of 2 on the card; again: counted once.
    let updates = world.slack.calls_to("chat.update").len();
    http.click(&card, "approve", CAROL).await;
    let updated = world.slack.wait_for("chat.update", updates + 1, SOON).await.expect("the card is updated")[updates].clone();
    assert!(everything(&updated).contains("1 of 2"), "{}", everything(&updated));
    assert_eq!(world.session(&app, &id).await.state, State::Pending, "not approved early");
    let before = world.slack.calls_to("response_url").len();
    http.click(&card, "approve", CAROL).await;
    let said = answered(before + 1).await.expect("Carol is answered")[before].text().to_string();
    assert!(said.contains("you already approved"), "{said}");

    // Erin's approval completes it.
    http.click(&card, "approve", ERIN).await;
    let deadline = tokio::time::Instant::now() + SOON;
    while world.session(&app, &id).await.state != State::Approved {
        assert!(tokio::time::Instant::now() < deadline, "never approved");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let session = world.session(&app, &id).await;
    let approvers: Vec<&str> = session.approvals.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(approvers, [CAROL, ERIN]);
    assert_eq!(world.audit_kinds(&app, &id).await, [AuditKind::Requested, AuditKind::ApprovalRecorded, AuditKind::Approved]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dba_clicks_at_once_count_once_each_and_approve_once() {
    let world = world_with_people().await;
    let text = config_text(&world);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;
    http.command(ALICE, "request billing DDL 1h INC-6 add an index").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card is posted")[0].clone();
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    let updates = world.slack.calls_to("chat.update").len();
    tokio::join!(http.click(&card, "approve", CAROL), http.click(&card, "approve", ERIN), http.click(&card, "approve", CAROL));
    world.slack.wait_for("chat.update", updates + 2, SOON).await.expect("both approvals update the card");
    let deadline = tokio::time::Instant::now() + SOON;
    while world.session(&app, &id).await.state != State::Approved {
        assert!(tokio::time::Instant::now() < deadline, "never approved");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let session = world.session(&app, &id).await;
    assert_eq!(session.approvals.len(), 2, "{:?}", session.approvals);
    let kinds = world.audit_kinds(&app, &id).await;
    assert_eq!(kinds.iter().filter(|k| **k == AuditKind::Approved).count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == AuditKind::ApprovalRecorded).count(), 1, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_approved_read_is_handed_over_with_no_click_and_the_cap_holds() {
    let world = world_with_people().await;
    let text = config_text(&world);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;

    let (code, out) = explain(&world, &text, &["--user", ALICE, "--target", "billing", "--role", "READ", "--duration", "30m"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("eligibility: eligible, a member of group S0ENG (targets.billing.policy)"), "{out}");
    assert!(out.contains("auto-approval: yes, by targets.billing.policy.READ (a member of group S0ENG)"), "{out}");
    assert!(out.contains("auto-approved sessions held: 0 of at most 1"), "{out}");

    // Auto-approved: the card announces it with the rule and no buttons; Alice is told.
    http.command(ALICE, "request billing READ 30m INC-7 check refunds").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card is posted")[0].clone();
    assert!(buttons(&card).is_empty(), "nothing to click: {:?}", card.blocks());
    assert!(everything(&card).contains("Auto-approved by rule `targets.billing.policy.READ`"), "{}", everything(&card));
    let alice = SlackUserId::parse(ALICE).unwrap();
    let id = app.workflow.store.by_requester(&alice, 10).await.unwrap()[0].id.clone();
    assert!(everything(&card).contains(id.as_str()), "the card names the session");
    let told = world.slack.wait_for("response_url", 1, SOON).await.expect("Alice is answered");
    assert!(told[0].text().contains("auto-approved by rule `targets.billing.policy.READ`"), "{}", told[0].text());
    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Approved);
    assert_eq!(session.auto_approved.as_deref(), Some("targets.billing.policy.READ"));
    assert!(session.approvals.is_empty(), "no person approved it");

    // Handed over by the sweeper, with no click.
    clock.set(t0 + Duration::minutes(1));
    assert_eq!(outcomes(&app.lifecycle.tick(Duration::seconds(15)).await.unwrap()), [StepOutcome::HandedOver]);
    assert_eq!(world.session(&app, &id).await.state, State::Active);
    let trail = app.workflow.store.audit_trail(&id).await.unwrap();
    let kinds: Vec<AuditKind> = trail.iter().map(|r| r.event.kind).collect();
    assert_eq!(kinds, [AuditKind::Requested, AuditKind::Approved, AuditKind::ProvisioningStarted, AuditKind::Launched, AuditKind::Granted, AuditKind::HandedOver]);
    let approved = &trail[1].event;
    assert_eq!(approved.actor, Actor::System);
    assert!(approved.detail.contains("auto-approved by targets.billing.policy.READ (a member of S0ENG)"), "{}", approved.detail);

    // The cap: one auto-approved session at once. On ledger she goes to the approvers.
    let (code, out) = explain(&world, &text, &["--user", ALICE, "--target", "ledger", "--role", "READ", "--duration", "30m"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("auto-approval: no (targets.ledger.policy.READ): you already hold 1 auto-approved session(s)"), "{out}");
    assert!(out.contains("outcome: filed; waits for 1 approval(s)"), "{out}");
    http.command(ALICE, "request ledger READ 30m INC-7 and the ledger").await;
    let deadline = tokio::time::Instant::now() + SOON;
    while posts_in(&world, APPROVALS).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the second card was never posted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = posts_in(&world, APPROVALS)[1].clone();
    assert_eq!(buttons(&second), ["approve", "deny"], "over the cap: the approvers decide");
    let other = session_on_card(&second);
    world.card_stored(&app, &other).await;
    let pending = world.session(&app, &other).await;
    assert_eq!((pending.state, pending.auto_approved), (State::Pending, None));
}
