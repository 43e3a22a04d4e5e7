//! `powerpole serve` answers from the moment it starts, whatever its dependencies do: the real
//! binary is started with every Secrets Manager call held at a proxy, so the admin-secret check of
//! its target cannot finish. It must answer `/healthz`, tell a requester of that target when it
//! tries again and whom to tell (filing nothing), and accept the target without a restart once
//! Secrets Manager answers again.

mod world;

use std::time::Duration;

use world::process::{wait_until, Serve};
use world::proxy::Proxy;
use world::{Options, World, ALICE, APPROVALS};

const REQUEST: &str = "request billing READ 1h check a refund";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_secrets_manager_delays_only_its_target_and_heals_without_a_restart() {
    world::install_crypto();
    let world = World::new(Options::default()).await;
    let secrets_manager = Proxy::start(&world::env("AWS_ENDPOINT_URL")).await;
    secrets_manager.hold();
    let serve = Serve::start(&world, &world.config_text(), &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_manager.url())]).await;

    // The check of the target's admin secret has reached Secrets Manager and is held there.
    let checking = wait_until(Duration::from_secs(20), || async { (secrets_manager.connections() > 0).then_some(()) }).await;
    assert!(checking.is_some(), "serve never asked Secrets Manager about the admin secret; its log:\n{}", serve.logs());
    let health = reqwest::get(format!("http://{}/healthz", serve.addr)).await.expect("/healthz answers");
    assert!(health.status().is_success(), "/healthz must answer while a dependency is held: {}", health.status());
    // It listened before the check gave up (that takes the check's whole timeout), not after.
    let logs = serve.logs();
    let listening = logs.find("listening for Slack").expect("serve says where it listens");
    let gave_up = logs.find("target unreachable").unwrap_or(usize::MAX);
    assert!(listening < gave_up, "serve listened only after the admin-secret check had given up:\n{logs}");

    let refused = serve.http.command(ALICE, REQUEST).await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(refused.body.contains("tries again at"), "the requester is told when powerpole tries again: {}", refused.body);
    assert!(refused.body.contains(&format!("<#{APPROVALS}>")), "the requester is told whom to ask: {}", refused.body);
    assert!(world.slack.calls_to("chat.postMessage").is_empty(), "nothing is announced for a target that cannot be served");

    secrets_manager.release();
    let accepted = wait_until(Duration::from_secs(30), || async {
        let reply = serve.http.command(ALICE, REQUEST).await;
        (!reply.body.contains("tries again at")).then_some(reply)
    })
    .await
    .expect("the target is accepted once Secrets Manager answers, without a restart");
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, world::SOON).await.expect("the request is filed and its card posted");
    assert!(cards.iter().any(|c| c.param_str("channel") == Some(APPROVALS)), "the approval card is in the approvals channel");
}
