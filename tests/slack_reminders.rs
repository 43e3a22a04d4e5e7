//! Requests nobody decides, on an injected clock: approvers are reminded in the card's thread
//! every `renotify_after`, the escalation group is mentioned once after `escalate_after`, the
//! requester's `list` says since when it waits, and every reminder is in the trail.

mod slack_support;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use powerpole::app::App;
use powerpole::config::Config;
use powerpole::domain::{AuditKind, SessionId, State};
use powerpole::secrets::Secret;
use powerpole::slack::{serve, SlackApp};
use powerpole::workflow::{ManualClock, StepOutcome};
use powerpole_standins::driver::{SlackDriver, SlashCommand};
use powerpole_standins::slack::{RecordedCall, SlackStandin};
use slack_support::*;

const ONCALL: &str = "S0ONCALL";

fn thread_replies(slack: &SlackStandin, card_ts: &str) -> Vec<RecordedCall> {
    slack.calls_to("chat.postMessage").into_iter().filter(|c| c.param_str("thread_ts") == Some(card_ts)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecided_requests_are_reminded_then_escalated_then_time_out() {
    install_crypto();
    let slack = SlackStandin::start().await;
    for (id, email) in [(ALICE, "alice@example.com"), (BOB, "bob@example.com"), (CAROL, "carol@example.com")] {
        slack.add_user(id, email, "UTC");
    }
    // A table of this test's own on the shared moto.
    let client = dynamodb().await;
    let table = format!("powerpole-remind-{}", SessionId::random());
    powerpole::store::dynamo::create_table(&client, &table).await.expect("a table on moto");
    let text = format!(
        "{}\n[store]\ntable = \"{table}\"\n[scheduler]\nrenotify_after = \"15m\"\nescalate_after = \"45m\"\n",
        config_text(&slack.api_url()).replace("[access]", &format!("escalation_group = \"{ONCALL}\"\n\n[access]"))
    );
    std::env::set_var("SLACK_BOT_TOKEN", "xoxb-powerpole-test");
    let config = Config::from_toml_str(&text).expect("the test config is valid");
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let app = App::build_with(config, aws, clock.clone()).await.expect("powerpole assembles");
    let slack_app = SlackApp::new(app.workflow.clone(), app.notifier.clone(), Secret::new(SECRET));
    let listening = serve::listen(slack_app, "127.0.0.1:0").await.expect("the service listens");
    let driver = SlackDriver::new(&format!("http://{}", listening.addr), SECRET).with_slack(&slack);

    let reply = driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-42 nobody answers")).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let card = slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card").remove(0);
    let card_ts = card.response["ts"].as_str().expect("the card's ts").to_string();
    // The card's place is stored just after it is posted: wait for it (the reminder threads on it).
    let alice = powerpole::domain::SlackUserId::parse(ALICE).unwrap();
    let deadline = tokio::time::Instant::now() + SOON;
    let id = loop {
        let sessions = app.workflow.list(&alice).await.unwrap();
        if let Some(s) = sessions.into_iter().find(|s| s.slack.approval_ts.is_some()) {
            break s.id;
        }
        assert!(tokio::time::Instant::now() < deadline, "the card was never stored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let lookahead = Duration::seconds(15);
    let tick = |at: Duration| {
        clock.set(t0 + at);
        let lifecycle = app.lifecycle.clone();
        async move { lifecycle.tick(lookahead).await.expect("the sweep reads the store").acted().map(|(_, o)| o.clone().expect("the step works")).collect::<Vec<_>>() }
    };

    // Not before renotify_after.
    assert!(tick(Duration::minutes(14)).await.is_empty());
    assert!(thread_replies(&slack, &card_ts).is_empty());

    // 15 min: one reminder in the card's thread, naming the approvers but not the requester.
    assert_eq!(tick(Duration::minutes(15)).await, vec![StepOutcome::Reminded]);
    assert!(tick(Duration::minutes(15)).await.is_empty(), "once per interval, however often the sweeper runs");
    let replies = thread_replies(&slack, &card_ts);
    assert_eq!(replies.len(), 1);
    let first = replies[0].text();
    assert!(first.contains("<@U0BOB>") && first.contains("<@U0CAROL>") && first.contains("waiting for approval since"), "{first}");
    assert!(!first.contains("<@U0ALICE> Still"), "the requester is not asked to decide: {first}");
    assert!(!first.contains(ONCALL), "no escalation yet: {first}");

    // The requester's list says since when it waits.
    let before = slack.calls_to("response_url").len();
    driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "list")).await.unwrap();
    let answers = slack.wait_for("response_url", before + 1, SOON).await.unwrap();
    assert!(answers[before].text().contains("waiting for approval since"), "{}", answers[before].text());

    // 30 min: a second reminder; 45 min: the escalation group is mentioned, once.
    assert_eq!(tick(Duration::minutes(30)).await, vec![StepOutcome::Reminded]);
    assert_eq!(tick(Duration::minutes(45)).await, vec![StepOutcome::Reminded]);
    let replies = thread_replies(&slack, &card_ts);
    assert_eq!(replies.len(), 3);
    assert!(!replies[1].text().contains(ONCALL));
    assert!(replies[2].text().contains(&format!("<!subteam^{ONCALL}>")), "{}", replies[2].text());

    // 60 min: the pending timeout closes it; no more reminders after that.
    assert_eq!(tick(Duration::minutes(60)).await, vec![StepOutcome::TimedOut]);
    assert!(tick(Duration::minutes(90)).await.is_empty());
    assert_eq!(thread_replies(&slack, &card_ts).len(), 3);
    let session = app.workflow.store.get(&id).await.unwrap().unwrap();
    assert!(matches!(session.state, State::Closed(_)));
    let kinds: Vec<AuditKind> = app.workflow.store.audit_trail(&id).await.unwrap().into_iter().map(|r| r.event.kind).collect();
    assert_eq!(kinds, [AuditKind::Requested, AuditKind::Reminded, AuditKind::Reminded, AuditKind::Reminded, AuditKind::PendingTimedOut]);
}
