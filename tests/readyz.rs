//! `GET /readyz` tells an orchestrator whether `serve` can do its job: it fails once the sweeper
//! (which keeps every deadline) has not finished a tick within its bound, with the workflow's
//! clock injected so that "a minute later" is a step, not a wait.

mod world;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};

use powerpole::secrets::Secret;
use powerpole::slack::{serve, SlackApp};
use powerpole::workflow::ManualClock;
use world::{Options, World, SECRET, SOON};

async fn readyz(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let answer = reqwest::get(format!("http://{addr}/readyz")).await.expect("GET /readyz");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON body"))
}

fn state<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["dependencies"].as_array().and_then(|d| d.iter().find(|d| d["name"] == name)).unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_once_the_sweeper_has_not_ticked_within_its_bound() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = world.app(clock.clone()).await;
    let slack_app = SlackApp::new(app.workflow.clone(), app.notifier.clone(), Secret::new(SECRET));
    let tick = StdDuration::from_secs(15);
    let bound = serve::sweeper_bound(tick);
    assert_eq!(bound, Duration::seconds(60));
    let sweeper = serve::start_sweeper(&slack_app, app.lifecycle.clone(), tick);
    let listening = serve::listen(slack_app, "127.0.0.1:0").await.expect("listen");

    // The first tick runs at once.
    let ticked = async {
        loop {
            let (status, body) = readyz(listening.addr).await;
            if status == 200 && state(&body, "sweeper")["detail"].as_str().is_some_and(|d| d.starts_with("last successful tick")) {
                return body;
            }
            tokio::task::yield_now().await;
        }
    };
    let body = tokio::time::timeout(SOON, ticked).await.expect("the sweeper ticks and /readyz is 200");
    assert_eq!(state(&body, "store")["ready"], true, "{body}");

    // The sweeper dies. Within its bound the service is still ready; past it, it is not.
    sweeper.abort();
    let _ = sweeper.await;
    clock.advance(bound);
    let (status, body) = readyz(listening.addr).await;
    assert_eq!(status, 200, "{body}");
    clock.advance(Duration::seconds(1));
    let (status, body) = readyz(listening.addr).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(state(&body, "sweeper")["ready"], false, "{body}");
    assert!(state(&body, "sweeper")["detail"].as_str().is_some_and(|d| d.contains("no successful tick for 61s (bound 60s)")), "{body}");
    assert_eq!(state(&body, "store")["ready"], true, "the store still answers: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_store_does_not_answer() {
    let world = World::new(Options::default()).await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let broken = world.config_text().replace(&format!("table = \"{}\"", world.table), "table = \"powerpole-readyz-no-such-table\"");
    let app = world.app_with(&broken, clock).await;
    let slack_app = SlackApp::new(app.workflow.clone(), app.notifier.clone(), Secret::new(SECRET));
    let listening = serve::listen(slack_app, "127.0.0.1:0").await.expect("listen");
    let (status, body) = readyz(listening.addr).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(state(&body, "store")["ready"], false, "{body}");
}
