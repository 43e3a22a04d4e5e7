//! Acknowledgement latency of `POST /slack/commands` and `POST /slack/interactions` under 200
//! concurrent signed requests on loopback, with the stand-ins running (moto for the store, the
//! Slack stand-in for the follow-up calls). Run with `cargo bench --bench slack_ack` after
//! `make standins` and `source .local/standins.env`. Not part of `make test`.
//!
//! Each round sends 200 requests at once and times each one from just before it is signed to
//! its answer (what Slack waits for; its limit is 3 s). The follow-up work each request spawns
//! (users.info, DynamoDB, chat.postMessage) runs at the same time, as it would in production.
//! One warm-up round opens the connections first.

#[path = "../tests/slack_support/mod.rs"]
mod slack_support;

use std::time::{Duration, Instant};

use powerpole_standins::driver::{ButtonClick, SlashCommand};
use slack_support::*;

const CONCURRENT: usize = 200;
const ROUNDS: usize = 3;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<22} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {}",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(percentile(&samples, 1.0)),
        if percentile(&samples, 0.99) < Duration::from_millis(10) { "(goal p99 < 10 ms: met)" } else { "(goal p99 < 10 ms: missed)" }
    );
}

async fn commands(t: &TestApp, round: usize) -> Vec<Duration> {
    let tasks = (0..CONCURRENT).map(|i| {
        let driver = t.driver.clone();
        let user = format!("U0B{i:04}");
        let text = format!("request billing READ 1h bench round {round} #{i}");
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = driver.command(SlashCommand::new(&user, "bench", ACCESS, &text)).await.expect("an answer");
            assert_eq!(reply.status, 200, "{}", reply.body);
            started.elapsed()
        })
    });
    futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("the task ran")).collect()
}

async fn clicks(t: &TestApp, card: &powerpole_standins::slack::RecordedCall) -> Vec<Duration> {
    let tasks = (0..CONCURRENT).map(|i| {
        let driver = t.driver.clone();
        // Approvers and bystanders alike: every click is acknowledged the same way.
        let click = ButtonClick::on(card, "approve", &format!("U0B{i:04}"), "bench").expect("the card has Approve");
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = driver.interaction(driver.block_actions(&click)).await.expect("an answer");
            assert_eq!(reply.status, 200, "{}", reply.body);
            started.elapsed()
        })
    });
    futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("the task ran")).collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let t = spawn_app().await;
        for i in 0..CONCURRENT {
            t.slack.add_user(&format!("U0B{i:04}"), &format!("bench{i}@example.com"), "UTC");
        }
        let (_, card) = t.file_request(ALICE, "request billing READ 1h bench card").await;
        commands(&t, 0).await;
        clicks(&t, &card).await;

        let mut command_samples = Vec::new();
        let mut click_samples = Vec::new();
        for round in 1..=ROUNDS {
            command_samples.extend(commands(&t, round).await);
            click_samples.extend(clicks(&t, &card).await);
        }
        println!("slack_ack: {CONCURRENT} concurrent signed requests per round, {ROUNDS} rounds, loopback, stand-ins running");
        report("/slack/commands", command_samples);
        report("/slack/interactions", click_samples);
    });
}
