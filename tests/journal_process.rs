//! Nothing `serve` acknowledged is lost when it is killed (issue 23 item 7): Slack got its 200
//! for three Approve clicks and a request, the process was SIGKILLed before any of their
//! follow-ups reached the store, and the restarted process carried each one out exactly once.
//!
//! The moment is made deterministic with a proxy in front of DynamoDB, never with sleeps: from
//! just before the clicks, answers to `GetItem` (an approval's first read of its session) and
//! `TransactWriteItems` (a request's first write of its session) are withheld, so each follow-up
//! stops there while the acknowledgements (and their journal writes, `PutItem`) go through.

mod world;

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use powerpole::app::App;
use powerpole::domain::{AuditKind, Session, SessionId, State};
use powerpole::workflow::SystemClock;
use world::process::{wait_until, Serve};
use world::proxy::Proxy;
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

const CAROL: &str = "U0CAROL";
const DAVE: &str = "U0DAVE";
const ERIN: &str = "U0ERIN";

/// The world's configuration with a short provisioning lease.
fn config(world: &World) -> String {
    world.config_text().replacen("[scheduler]\n", "[scheduler]\nprovisioning_lease = \"4s\"\n", 1)
}

async fn get(app: &App, id: &SessionId) -> Option<Session> {
    app.workflow.store.get(id).await.expect("the store answers")
}

fn count(kinds: &[AuditKind], kind: AuditKind) -> usize {
    kinds.iter().filter(|k| **k == kind).count()
}

/// The approval cards posted so far, by session.
fn cards(world: &World) -> Vec<(SessionId, powerpole_standins::slack::RecordedCall)> {
    world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.param_str("channel") == Some(APPROVALS)).map(|c| (session_on_card(&c), c)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_a_request_acknowledged_right_before_a_kill_take_effect_once_after_the_restart() {
    let world = World::new(Options::default()).await;
    for (user, name) in [(CAROL, "carol"), (DAVE, "dave"), (ERIN, "erin")] {
        world.slack.add_user(user, &format!("{name}{}@example.com", world.id), "Europe/Paris");
    }
    let store = world.app(Arc::new(SystemClock)).await;
    let dynamodb = Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    let mut first = Serve::start(&world, &config(&world), &[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url())]).await;

    // Three pending requests, each with its card.
    for who in [ALICE, CAROL, DAVE] {
        let reply = first.http.command(who, "request billing READ 1h INC-23 journal").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let posted = world.slack.wait_until("three approval cards", SOON, |calls| calls.iter().filter(|c| c.method == "chat.postMessage" && c.param_str("channel") == Some(APPROVALS)).count() >= 3).await;
    assert!(posted.is_ok(), "three cards are posted; log:\n{}", first.logs());
    let pending = cards(&world);
    for (id, _) in &pending {
        world.card_stored(&store, id).await;
    }

    // The moment: every follow-up from now on stops at its first read or write of a session.
    dynamodb.withhold_answers_to_any(&["DynamoDB_20120810.GetItem", "DynamoDB_20120810.TransactWriteItems"]);
    for (_, card) in &pending {
        let reply = first.http.click(card, "approve", BOB).await;
        assert_eq!(reply.status, 200, "the click is acknowledged: {}", reply.body);
    }
    let reply = first.http.command(ERIN, "request billing READ 1h INC-23 after the clicks").await;
    assert_eq!(reply.status, 200, "the request is acknowledged: {}", reply.body);
    let stopped = wait_until(SOON, || async { (dynamodb.withheld() >= 4).then_some(()) }).await;
    assert!(stopped.is_some(), "each follow-up reached the store ({} stopped); log:\n{}", dynamodb.withheld(), first.logs());
    first.kill().await;

    // Nothing of them took effect before the kill.
    for (id, _) in &pending {
        let s = get(&store, id).await.expect("the session exists");
        assert_eq!((s.state, s.approvals.len()), (State::Pending, 0), "{id}: no approval stored before the kill");
    }
    assert_eq!(cards(&world).len(), 3, "no card for Erin's request before the kill");

    let second = Serve::start(&world, &config(&world), &[]).await;
    for (id, _) in &pending {
        let found = wait_until(Duration::from_secs(90), || async { get(&store, id).await.filter(|s| s.state == State::Active) }).await;
        assert!(found.is_some(), "{id} is approved and handed over after the restart: {:?}; log:\n{}", get(&store, id).await, second.logs());
    }
    let erin_card = wait_until(Duration::from_secs(40), || async { cards(&world).into_iter().find(|(id, _)| !pending.iter().any(|(p, _)| p == id)) }).await;
    let (erin_id, _) = erin_card.unwrap_or_else(|| panic!("Erin's acknowledged request is filed and its card posted after the restart; log:\n{}", second.logs()));

    // Each took effect once: one approval, one launch, the card updated, the requester told once.
    // The cards come in the order their follow-ups ran, not the order of the requests: each
    // session names its own requester, and the three are the three who asked.
    let mut requesters = Vec::new();
    for (id, _) in &pending {
        requesters.push(get(&store, id).await.expect("the session exists").requester.slack_id.to_string());
    }
    requesters.sort();
    assert_eq!(requesters, [ALICE, CAROL, DAVE].map(String::from), "one session for each request");
    for (id, card) in &pending {
        let requester = get(&store, id).await.expect("the session exists").requester.slack_id;
        let who = requester.as_str();
        let kinds = world.audit_kinds(&store, id).await;
        assert_eq!(count(&kinds, AuditKind::Approved), 1, "{id}: {kinds:?}");
        assert_eq!(count(&kinds, AuditKind::Launched), 1, "{id}: {kinds:?}");
        assert_eq!(world.instances_of(id).await.len(), 1, "{id}: one bastion");
        let ts = card.response["ts"].as_str().expect("the card's ts").to_string();
        // The approval's card update and DM are its follow-up's, which may finish after the
        // hand-over the loop above waited for.
        let updated = wait_until(SOON, || async { world.slack.calls_to("chat.update").into_iter().any(|u| u.param_str("ts") == Some(ts.as_str())).then_some(()) }).await;
        assert!(updated.is_some(), "{id}: the card was updated");
        let approved_dm = |t: &String| t.contains(id.as_str()) && t.contains("is approved by");
        wait_until(SOON, || async { world.dms_to(who).iter().map(|c| c.text()).any(|t| approved_dm(&t)).then_some(()) }).await;
        let told: Vec<String> = world.dms_to(who).iter().map(|c| c.text()).filter(approved_dm).collect();
        let all: Vec<String> = world.dms_to(who).iter().map(|c| c.text()).collect();
        assert_eq!(told.len(), 1, "{id}: the requester is told of the approval once: {told:?}; every DM to them: {all:?}; log:\n{}", second.logs());
    }
    let erin = get(&store, &erin_id).await.expect("Erin's session is stored");
    assert_eq!(erin.state, State::Pending);
    assert_eq!(cards(&world).iter().filter(|(id, _)| *id == erin_id).count(), 1, "one card for Erin's request");
    let kinds = world.audit_kinds(&store, &erin_id).await;
    assert_eq!(count(&kinds, AuditKind::Requested), 1, "{kinds:?}");
    let replayed = second.log_lines(&["replaying a follow-up its process did not finish"]).len();
    assert_eq!(replayed, 4, "the restarted process replayed the four acknowledged follow-ups; log:\n{}", second.logs());

    // The other requesters' accounts (the world drops Alice's).
    let mut root = world.db.root().await;
    for (id, _) in &pending {
        if let Some(s) = get(&store, id).await {
            let user = s.requester.db_user.to_string();
            let hosts: Vec<String> = root.exec("SELECT Host FROM mysql.user WHERE User = ?", (user.as_str(),)).await.unwrap_or_default();
            for host in hosts {
                let _ = root.exec_drop("DROP USER ?@?", (user.as_str(), host.as_str())).await;
            }
        }
    }
}

/// The other side of the moment: the approval reached the store (its write landed; only the
/// answer was withheld) but the process was killed before it told anyone. The restarted process
/// replays the click, recognises the approval as this click's own (it keeps the request id), and
/// finishes what the kill cut off: the card is updated and the requester told, once; nothing is
/// approved twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_stored_right_before_a_kill_is_told_once_after_the_restart() {
    let world = World::new(Options::default()).await;
    world.slack.add_user(CAROL, &format!("carol{}@example.com", world.id), "Europe/Paris");
    let store = world.app(Arc::new(SystemClock)).await;
    let dynamodb = Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    let mut first = Serve::start(&world, &config(&world), &[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url())]).await;

    let reply = first.http.command(CAROL, "request billing READ 1h INC-23 stored then killed").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let posted = world.slack.wait_until("an approval card", SOON, |calls| calls.iter().any(|c| c.method == "chat.postMessage" && c.param_str("channel") == Some(APPROVALS))).await;
    assert!(posted.is_ok(), "the card is posted; log:\n{}", first.logs());
    let (id, card) = cards(&world).pop().expect("a card");
    world.card_stored(&store, &id).await;

    // The approval's write goes through; its answer (and any later write's) never comes back.
    dynamodb.withhold_answers_to("DynamoDB_20120810.TransactWriteItems");
    let reply = first.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "the click is acknowledged: {}", reply.body);
    let stored = wait_until(SOON, || async { get(&store, &id).await.filter(|s| !s.approvals.is_empty()) }).await;
    assert!(stored.is_some(), "the approval reached the store; log:\n{}", first.logs());
    first.kill().await;
    let told = |world: &World| world.dms_to(CAROL).iter().map(|c| c.text()).filter(|t| t.contains(id.as_str()) && t.contains("is approved by")).count();
    assert_eq!(told(&world), 0, "nobody was told before the kill");
    let ts = card.response["ts"].as_str().expect("the card's ts").to_string();
    let updates = |world: &World| world.slack.calls_to("chat.update").into_iter().filter(|u| u.param_str("ts") == Some(ts.as_str())).count();
    assert_eq!(updates(&world), 0, "the card was not updated before the kill");

    let second = Serve::start(&world, &config(&world), &[]).await;
    let dm = wait_until(Duration::from_secs(60), || async { (told(&world) > 0).then_some(()) }).await;
    assert!(dm.is_some(), "Carol is told of the approval after the restart; log:\n{}", second.logs());
    let active = wait_until(Duration::from_secs(90), || async { get(&store, &id).await.filter(|s| s.state == State::Active) }).await;
    assert!(active.is_some(), "{id} is handed over after the restart: {:?}; log:\n{}", get(&store, &id).await, second.logs());
    assert_eq!(told(&world), 1, "Carol is told of the approval once");
    assert!(updates(&world) >= 1, "the card was updated");
    let session = get(&store, &id).await.expect("stored");
    assert_eq!(session.approvals.len(), 1, "one approval: {:?}", session.approvals);
    let kinds = world.audit_kinds(&store, &id).await;
    assert_eq!(count(&kinds, AuditKind::Approved), 1, "{kinds:?}");
    assert_eq!(count(&kinds, AuditKind::Launched), 1, "{kinds:?}");
    assert_eq!(second.log_lines(&["approval was stored before a restart"]).len(), 1, "the replay recognised its own approval; log:\n{}", second.logs());

    let mut root = world.db.root().await;
    let user = session.requester.db_user.to_string();
    let hosts: Vec<String> = root.exec("SELECT Host FROM mysql.user WHERE User = ?", (user.as_str(),)).await.unwrap_or_default();
    for host in hosts {
        let _ = root.exec_drop("DROP USER ?@?", (user.as_str(), host.as_str())).await;
    }
}
