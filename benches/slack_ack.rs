//! Acknowledgement latency of `POST /slack/commands` and `POST /slack/interactions` under 200
//! concurrent signed requests on loopback, with the stand-ins running (moto for the store, the
//! Slack stand-in for the follow-up calls). Run with `cargo bench --bench slack_ack` after
//! `make standins` and `source .local/standins.env`. Not part of `make test`.
//!
//! Each round sends 200 requests at once and times each one from just before it is signed to
//! its answer (what Slack waits for; its limit is 3 s). The follow-up work each request spawns
//! (users.info, DynamoDB, chat.postMessage) runs at the same time, as it would in production.
//! One warm-up round opens the connections first.
//!
//! Two views of the same requests: `client` is what the sender waits for (it includes queueing
//! on this 2-core machine, where the 200 senders, the service, its follow-up work, the Slack
//! stand-in and moto all share the CPUs); `server` is the time from the router receiving the
//! request to its answer being ready (an axum middleware around the service's router). A round
//! of `help` commands, which spawn nothing, shows the cost of the acknowledgement alone.

#[path = "../tests/slack_support/mod.rs"]
mod slack_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use powerpole_standins::driver::SlackDriver;

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
        "{what:<27} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {}",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(percentile(&samples, 1.0)),
        if percentile(&samples, 0.99) < Duration::from_millis(10) { "(goal p99 < 10 ms: met)" } else { "(goal p99 < 10 ms: missed)" }
    );
}

type Samples = Arc<Mutex<Vec<Duration>>>;

/// The service's router with a timer around it, on its own port.
async fn timed(t: &TestApp) -> (SlackDriver, Samples) {
    let samples = Samples::default();
    let record = samples.clone();
    let router = powerpole::slack::router(t.app.clone()).layer(middleware::from_fn(move |request: Request, next: Next| {
        let record = record.clone();
        async move {
            let started = Instant::now();
            let response: Response = next.run(request).await;
            record.lock().expect("not poisoned").push(started.elapsed());
            response
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serves") });
    (SlackDriver::new(&format!("http://{addr}"), SECRET).with_slack(&t.slack), samples)
}

fn take(samples: &Samples) -> Vec<Duration> {
    std::mem::take(&mut *samples.lock().expect("not poisoned"))
}

async fn commands(driver: &SlackDriver, round: usize, help: bool) -> Vec<Duration> {
    let tasks = (0..CONCURRENT).map(|i| {
        let driver = driver.clone();
        let user = format!("U0B{i:04}");
        let text = if help { "help".to_string() } else { format!("request billing READ 1h bench round {round} #{i}") };
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = driver.command(SlashCommand::new(&user, "bench", ACCESS, &text)).await.expect("an answer");
            assert_eq!(reply.status, 200, "{}", reply.body);
            started.elapsed()
        })
    });
    futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("the task ran")).collect()
}

async fn clicks(driver: &SlackDriver, card: &powerpole_standins::slack::RecordedCall) -> Vec<Duration> {
    let tasks = (0..CONCURRENT).map(|i| {
        let driver = driver.clone();
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
        let (driver, server) = timed(&t).await;
        commands(&driver, 0, false).await;
        clicks(&driver, &card).await;
        take(&server);

        let (mut help, mut help_server) = (Vec::new(), Vec::new());
        let (mut command_samples, mut command_server) = (Vec::new(), Vec::new());
        let (mut click_samples, mut click_server) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            help.extend(commands(&driver, round, true).await);
            help_server.extend(take(&server));
            command_samples.extend(commands(&driver, round, false).await);
            command_server.extend(take(&server));
            click_samples.extend(clicks(&driver, &card).await);
            click_server.extend(take(&server));
        }
        println!("slack_ack: {CONCURRENT} concurrent signed requests per round, {ROUNDS} rounds, loopback, stand-ins running");
        report("commands (help) client", help);
        report("commands (help) server", help_server);
        report("/slack/commands client", command_samples);
        report("/slack/commands server", command_server);
        report("/slack/interactions client", click_samples);
        report("/slack/interactions server", click_server);
    });
}
