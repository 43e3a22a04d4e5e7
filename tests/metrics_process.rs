//! `GET /metrics` of the real `powerpole serve` after a whole lifecycle: request, approval,
//! hand-over, end, teardown. The scrape shows what an operator's dashboard would: one
//! approve-to-hand-over sample, one deadline-to-torn-down sample, one session closed, no live
//! session, the Slack 429 the card post met, and the AWS and MySQL calls the lifecycle made.

mod world;

use std::sync::Arc;
use std::time::Duration;

use powerpole::domain::{Outcome, State};
use powerpole::workflow::SystemClock;
use world::process::{wait_until, Serve};
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

/// The value of the sample `name` (with its labels, exactly as exposed), if it is there.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

async fn scrape(serve: &Serve) -> String {
    let answer = reqwest::get(format!("http://{}/metrics", serve.addr)).await.expect("/metrics answers");
    assert_eq!(answer.status(), 200);
    answer.text().await.expect("a body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_lifecycle_shows_in_the_scrape() {
    let world = World::new(Options::default()).await;
    let store = world.app(Arc::new(SystemClock)).await;
    let serve = Serve::start(&world, &world.config_text(), &[]).await;
    let before = scrape(&serve).await;
    assert_eq!(sample(&before, "powerpole_handover_seconds_count"), Some(0.0), "{before}");

    // Slack rate-limits the approval card once: a 429 the card post waits out.
    world.slack.rate_limit_next("chat.postMessage", 1, 1);
    let reply = serve.http.command(ALICE, "request billing READ 1h INC-301 metrics drill").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let posted = |calls: &[powerpole_standins::slack::RecordedCall]| calls.iter().any(|c| c.method == "chat.postMessage" && c.ok() && c.param_str("channel") == Some(APPROVALS));
    world.slack.wait_until("the card, posted after the 429", SOON, posted).await.expect("the approval card is posted");
    let card = world.slack.calls_to("chat.postMessage").into_iter().find(|c| c.ok() && c.param_str("channel") == Some(APPROVALS)).expect("a card in the approvals channel");
    let id = session_on_card(&card);
    let reply = serve.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let active = wait_until(Duration::from_secs(30), || async {
        let s = store.workflow.store.get(&id).await.ok().flatten()?;
        (s.state == State::Active).then_some(s)
    })
    .await;
    assert!(active.is_some(), "handed over; log:\n{}", serve.logs());

    let during = scrape(&serve).await;
    assert_eq!(sample(&during, r#"powerpole_sessions{state="active"}"#), Some(1.0), "{during}");
    assert_eq!(sample(&during, "powerpole_handover_seconds_count"), Some(1.0), "one hand-over: {during}");

    let asked_to_end = chrono::Utc::now();
    let reply = serve.http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let closed = wait_until(Duration::from_secs(20), || async {
        let s = store.workflow.store.get(&id).await.ok().flatten()?;
        (s.state == State::Closed(Outcome::EndedByRequester)).then_some(s)
    })
    .await;
    assert!(closed.is_some(), "torn down; log:\n{}", serve.logs());
    let seen_closed = chrono::Utc::now();

    let after = scrape(&serve).await;
    let expect = |name: &str, value: f64| assert_eq!(sample(&after, name), Some(value), "{name}:\n{after}");
    expect("powerpole_handover_seconds_count", 1.0);
    expect(r#"powerpole_teardown_lag_seconds_count{reason="ended_by_requester"}"#, 1.0);
    expect(r#"powerpole_sessions_closed_total{outcome="ended_by_requester"}"#, 1.0);
    for state in ["pending", "approved", "provisioning", "active", "tearing_down"] {
        expect(&format!(r#"powerpole_sessions{{state="{state}"}}"#), 0.0);
    }
    expect(r#"powerpole_slack_rate_limited_total{method="chat.postMessage"}"#, 1.0);
    expect(r#"powerpole_call_seconds_count{adapter="ec2",operation="launch"}"#, 1.0);
    expect(r#"powerpole_call_seconds_count{adapter="ec2",operation="terminate"}"#, 1.0);
    expect(r#"powerpole_call_seconds_count{adapter="ssm",operation="wait_online"}"#, 1.0);
    expect(r#"powerpole_call_seconds_count{adapter="mysql",operation="create_account"}"#, 1.0);
    expect(r#"powerpole_call_seconds_count{adapter="mysql",operation="revoke"}"#, 1.0);
    assert!(sample(&after, r#"powerpole_call_seconds_count{adapter="dynamodb",operation="update"}"#).is_some_and(|n| n >= 5.0), "{after}");
    // Nothing failed.
    expect("powerpole_provisioning_failures_total", 0.0);
    expect("powerpole_teardown_retries_total", 0.0);
    assert!(!after.contains("powerpole_teardown_failures_total{"), "no failed teardown step: {after}");
    assert!(!after.contains("powerpole_slack_api_errors_total{"), "no failed Slack call: {after}");
    // The lag is measured from Alice's `end`, not from the request or the hand-over: it fits
    // between the moment the test asked and the moment it saw the session closed.
    let lag = sample(&after, r#"powerpole_teardown_lag_seconds_sum{reason="ended_by_requester"}"#).expect("a lag sum");
    let window = (seen_closed - asked_to_end).num_milliseconds() as f64 / 1000.0;
    assert!(lag >= 0.0 && lag <= window + 1.0, "lag {lag}s, window {window}s");
}
