//! `powerpole serve` stops cleanly on SIGTERM (what ECS, Kubernetes and systemd send): it stops
//! accepting, lets the follow-up in flight finish, and exits 0 within its bound.

mod world;

use std::time::Duration;

use powerpole::slack::serve::SHUTDOWN_BOUND;
use world::process::Serve;
use world::{Options, World, ALICE, APPROVALS, SOON};

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
