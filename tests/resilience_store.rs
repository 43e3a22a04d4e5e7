//! Nothing acknowledged is lost when the store throttles: the real `powerpole serve` runs with
//! every DynamoDB call going through a stand-in that answers `ThrottlingException` for 30 s,
//! outlasting the SDK's own retries by far, while Carol and Dave file requests and Bob approves
//! Alice's. Once
//! DynamoDB answers again, every acknowledged request is filed (its card posted once), the
//! approval is recorded exactly once, and the people who acted were told their action was waiting.

mod world;

use std::sync::Arc;
use std::time::Duration;

use powerpole::domain::{AuditKind, State};
use powerpole::workflow::SystemClock;
use world::faulty::FaultyHttp;
use world::process::{wait_until, Serve};
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

/// How long DynamoDB throttles: far longer than the SDK's own three attempts.
const THROTTLED_FOR: Duration = Duration::from_secs(30);
const CAROL: &str = "U0CAROL";
const DAVE: &str = "U0DAVE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_approvals_made_while_dynamodb_throttles_are_done_once_when_it_answers() {
    world::install_crypto();
    let world = World::new(Options::default()).await;
    let dynamodb = FaultyHttp::start(&world::env("AWS_ENDPOINT_URL")).await;
    let serve = Serve::start(&world, &world.config_text(), &[("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url())]).await;
    let reader = world.app(Arc::new(SystemClock)).await;

    // Before the throttling: a request whose card Bob will click during it.
    let reply = serve.http.command(ALICE, "request billing READ 1h before the storm").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the first card is posted");
    let first_card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card in the approvals channel").clone();
    let first = session_on_card(&first_card);
    world.card_stored(&reader, &first).await;

    // One live session per person and target: the requests during the throttling are Carol's and Dave's.
    let id = &world.id;
    world.slack.add_user(CAROL, &format!("carol{id}@example.com"), "Europe/Berlin");
    world.slack.add_user(DAVE, &format!("dave{id}@example.com"), "Europe/Berlin");
    dynamodb.throttle_dynamodb();
    let during = [(CAROL, "request billing READ 1h during the storm, one"), (DAVE, "request billing DML 2h during the storm, two")];
    for (who, text) in during {
        let reply = serve.http.command(who, text).await;
        assert_eq!(reply.status, 200, "acknowledged at once, whatever DynamoDB does: {}", reply.body);
    }
    let reply = serve.http.click(&first_card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let throttled = wait_until(SOON, || async { (dynamodb.refused() >= 6).then_some(()) }).await;
    assert!(throttled.is_some(), "the follow-ups reached the throttled DynamoDB");
    // The fault lasts as long as the scenario says; nothing here waits for a result.
    tokio::time::sleep(THROTTLED_FOR).await;
    assert_eq!(world.slack.calls_to("chat.postMessage").iter().filter(|c| c.param_str("channel") == Some(APPROVALS)).count(), 1, "no card without a stored request");
    dynamodb.heal();

    // Every acknowledged request is filed, and its card posted once.
    let filed = wait_until(Duration::from_secs(60), || async {
        let mut filed = Vec::new();
        for who in [CAROL, DAVE] {
            filed.extend(reader.workflow.store.by_requester(&powerpole::domain::SlackUserId::parse(who).unwrap(), 10).await.ok()?);
        }
        let carded = filed.iter().filter(|s| s.slack.approval_ts.is_some()).count();
        (filed.len() == 2 && carded == 2).then_some(filed)
    })
    .await
    .expect("the requests acknowledged during the throttling are filed once DynamoDB answers");
    for reason in ["during the storm, one", "during the storm, two"] {
        assert_eq!(filed.iter().filter(|s| s.reason == reason).count(), 1, "filed exactly once: {reason}");
    }
    let cards = world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.param_str("channel") == Some(APPROVALS)).count();
    assert_eq!(cards, 3, "one card per request, none twice");

    // The approval is recorded exactly once.
    let approved = wait_until(Duration::from_secs(60), || async {
        let s = reader.workflow.store.get(&first).await.ok()??;
        (s.state != State::Pending).then_some(s)
    })
    .await
    .expect("the approval clicked during the throttling is recorded once DynamoDB answers");
    assert_eq!(approved.approvals.len(), 1, "one approval, not two");
    let kinds = world.audit_kinds(&reader, &first).await;
    assert_eq!(kinds.iter().filter(|k| **k == AuditKind::Approved).count(), 1, "one approval in the trail: {kinds:?}");

    // The people who acted were told their action was waiting for the store.
    let waiting = |text: &str| text.contains("not answering right now") && text.contains("kept");
    let told: Vec<_> = world.slack.calls().into_iter().filter(|c| waiting(&c.text())).collect();
    assert!(told.len() >= 3, "Carol, Dave (a request each) and Bob (an approval) are told their action waits: {} notes", told.len());
}
