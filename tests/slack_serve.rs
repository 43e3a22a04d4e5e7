//! `powerpole serve` itself: the binary starts with `powerpole.example.toml` and the stand-ins,
//! although no target's admin secret exists; it logs the unreachable target and refuses requests
//! for it with the reason and when it tries again, and keeps serving.

mod slack_support;

use std::process::Stdio;
use std::time::Duration;

use powerpole_standins::driver::{SlackDriver, SlashCommand};
use powerpole_standins::slack::SlackStandin;
use slack_support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Kills the child when the test ends, however it ends.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
async fn serve_starts_with_the_example_config_and_refuses_an_unreachable_target() {
    install_crypto();
    let moto = powerpole_standins::moto_url_from_env();
    let slack = SlackStandin::start().await;
    slack.add_user(ALICE, "alice@example.com", "Europe/Berlin");
    // The example reads the Slack secrets from Secrets Manager; give this run its own secret.
    let unique = powerpole::domain::SessionId::random().to_string();
    let secret_id = format!("powerpole/test-slack-{unique}");
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(&secret_id)
        .secret_string(serde_json::json!({"signing_secret": SECRET, "bot_token": "xoxb-serve-test"}).to_string())
        .send()
        .await
        .expect("moto stores the Slack secret");
    let table = format!("powerpole-slack-serve-test-{unique}");
    powerpole::store::dynamo::create_table(&dynamodb().await, &table).await.expect("the table is created");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/powerpole.example.toml");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["serve", "--config", example, "--listen", "127.0.0.1:0"])
        .env("AWS_ENDPOINT_URL", &moto)
        .env("POWERPOLE_SLACK__API_URL", slack.api_url())
        .env("POWERPOLE_SLACK__SIGNING_SECRET__SECRETS_MANAGER", &secret_id)
        .env("POWERPOLE_SLACK__BOT_TOKEN__SECRETS_MANAGER", &secret_id)
        .env("POWERPOLE_STORE__TABLE", &table)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let _child = Child(child);

    let mut lines = BufReader::new(stderr).lines();
    let mut unreachable_logged = false;
    let mut addr = None;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            assert!(!line.contains(SECRET) && !line.contains("xoxb-serve-test"), "a secret was logged: {line}");
            if line.contains("target unreachable") && line.contains("billing") {
                unreachable_logged = true;
            }
            if let Some(rest) = line.split("\"addr\":\"").nth(1) {
                addr = rest.split('"').next().map(str::to_owned);
            }
            if line.contains("ready: Slack requests are served") {
                return;
            }
        }
    })
    .await
    .expect("serve is ready within a minute");
    let addr = addr.expect("serve logs its address");
    assert!(unreachable_logged, "the unreachable target (its secret does not exist) was logged by the first check");

    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let driver = SlackDriver::new(&format!("http://{addr}"), SECRET).with_slack(&slack);
    let reply = driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-1")).await.unwrap();
    assert_eq!(reply.status, 200);
    let said = reply.json().unwrap()["text"].as_str().unwrap().to_string();
    assert!(said.contains("`billing` cannot be requested right now") && said.contains("cannot log in to this database"), "{said}");
    assert!(!said.contains("powerpole doctor") && !said.contains("ResourceNotFound"), "no operator's command or AWS error for the requester: {said}");
    assert!(said.contains("tries again at"), "the requester is told when powerpole tries again: {said}");
    assert!(slack.calls().is_empty(), "nothing was sent to Slack for a refused target");
}
