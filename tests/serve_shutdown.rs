//! `powerpole serve` stops cleanly on SIGTERM (what ECS, Kubernetes and systemd send): it stops
//! accepting, lets the follow-up in flight finish, gives back the claims of the sweeper steps it
//! was running, and exits 0 within its bound.

mod world;

use std::sync::Arc;
use std::time::Duration;

use powerpole::domain::State;
use powerpole::slack::serve::{RELEASE_BOUND, SHUTDOWN_BOUND};
use powerpole::workflow::SystemClock;
use world::process::{wait_until, Serve};
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_follow_up_lets_it_finish_and_exits_zero() {
    let world = World::new(Options::default()).await;
    let mut serve = Serve::start(&world, &world.config_text(), &[]).await;

    // Slack rate-limits the approval card once and asks for 2 s: the follow-up that posts it is
    // in flight when the signal arrives.
    world.slack.rate_limit_next("chat.postMessage", 1, 2);
    let reply = serve.http.command(ALICE, "request billing READ 1h INC-9 shutdown drill").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    world.slack.wait_until("the rate-limited card post", SOON, |calls| calls.iter().any(|c| c.rate_limited)).await.expect("the card's first post is rate-limited");
    assert!(!world.slack.calls_to("chat.postMessage").iter().any(|c| c.ok()), "the card is not posted yet");

    let code = serve.terminate(SHUTDOWN_BOUND + Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "serve exits 0 within its bound; its log:\n{}", serve.logs());
    let cards: Vec<_> = world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.ok() && c.param_str("channel") == Some(APPROVALS)).collect();
    assert_eq!(cards.len(), 1, "the follow-up finished: the card was posted after SIGTERM");
    assert!(!serve.log_lines(&["stopped cleanly"]).is_empty(), "{}", serve.logs());
    // Nothing listens any more.
    assert!(reqwest::get(format!("http://{}/healthz", serve.addr)).await.is_err(), "the listener is closed");
}

/// SIGTERM while the sweeper is provisioning (the bastion's agent is held offline, so the step
/// waits, renewing a one-minute lease): the process stops the step and clears the lease with a
/// conditional write, so the session is due at once for another replica instead of a minute
/// later; a second process then resumes it, adopts the same instance and hands over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_provisioning_releases_the_claim_for_another_replica() {
    let world = World::new(Options::default()).await;
    let store = world.app(Arc::new(SystemClock)).await.workflow.store;
    let config = world.config_text().replacen("[scheduler]\n", "[scheduler]\nprovisioning_lease = \"60s\"\n", 1);
    world.ssm.hold_all_offline(true);
    let mut first = Serve::start(&world, &config, &[]).await;
    let reply = first.http.command(ALICE, "request billing READ 1h INC-10 release drill").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the approval card");
    let card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card").clone();
    let id = session_on_card(&card);
    assert_eq!(first.http.click(&card, "approve", BOB).await.status, 200);
    let leased = wait_until(SOON, || async {
        let s = store.get(&id).await.ok().flatten()?;
        (s.state == State::Provisioning && s.instance_id.is_some() && s.lease_until.is_some()).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("provisioning, waiting for SSM; log:\n{}", first.logs()));
    assert!(leased.lease_until.is_some_and(|l| l > chrono::Utc::now() + chrono::Duration::seconds(20)), "a lease of about a minute: {leased:?}");

    // Stopped after the grant, while it waits for SSM (a stop in the middle of the grant's
    // statements: `lifecycle_process`'s `killed_in_the_middle_of_creating_the_account…`).
    let granted = wait_until(SOON, || async { world.account_granted().await.then_some(()) }).await;
    assert!(granted.is_some(), "the account was granted; log:\n{}", first.logs());
    let code = first.terminate(SHUTDOWN_BOUND + RELEASE_BOUND + Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "serve exits 0; its log:\n{}", first.logs());
    assert!(!first.log_lines(&["claim released at shutdown", id.as_str()]).is_empty(), "{}", first.logs());
    let released = store.get(&id).await.expect("the store answers").expect("the session");
    assert_eq!(released.state, State::Provisioning, "still provisioning: nothing was undone");
    assert_eq!(released.lease_until, None, "the lease is given back");
    assert_eq!(released.instance_id, leased.instance_id, "the launched instance stays recorded for the next replica");
    assert!(released.next_action_at().is_some_and(|at| at <= chrono::Utc::now()), "due now, not when the lease would have run out: {released:?}");

    // Another replica picks it up and finishes with the same instance.
    world.ssm.hold_all_offline(false);
    let second = Serve::start(&world, &config, &[]).await;
    let active = wait_until(Duration::from_secs(30), || async {
        let s = store.get(&id).await.ok().flatten()?;
        (s.state == State::Active).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the second replica hands over; log:\n{}", second.logs()));
    assert_eq!(active.instance_id, leased.instance_id, "the same bastion, adopted");
    assert_eq!(world.instances_of(&id).await.len(), 1, "no second launch");
}
