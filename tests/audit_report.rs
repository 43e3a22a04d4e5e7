//! The security team's session report after a whole lifecycle in which the person ran
//! statements: the store's trail, the Session Manager transcript read back from moto's CloudWatch
//! Logs (written as the agent streams it), and the server_audit events of a private MariaDB for
//! the person's account, in one ordered timeline; the summary in the security channel at
//! teardown. The HTML page is written to target/tmp/session-report.html, which
//! scripts/report-browser-check.sh opens in headless Chromium (not part of `make test`).

mod grants_support;
mod world;

use std::sync::Arc;

use chrono::{DurationRound, TimeDelta, Utc};
use powerpole::domain::{AuditKind, State};
use powerpole::report::{self, Source};
use powerpole::transcripts::CloudWatchLogs;
use powerpole::workflow::ManualClock;
use powerpole_standins::slack::RecordedCall;
use serde_json::json;
use grants_support::private::{self, PrivateMariadb};
use world::{session_on_card, Options, TestHost, World, ALICE, APPROVALS, BOB, DB_HOST_ON_BRIDGE, SOON};

const SECURITY: &str = "C0SECURITY";

fn now_whole_second() -> chrono::DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::seconds(1)).expect("a time")
}

/// Writes a Session Manager session to CloudWatch Logs as the SSM agent streams it.
async fn stream_session(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, instance: &str, chunks: &[&[&str]]) {
    logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.expect("a log stream on moto");
    let mut request = logs.put_log_events().log_group_name(group).log_stream_name(stream);
    for chunk in chunks {
        let at = Utc::now();
        let event = json!({
            "eventVersion": "1.0",
            "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "awsRegion": "us-east-1",
            "target": {"id": instance},
            "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/powerpole-engineer/alice@example.com"},
            "runAsEnabled": false,
            "runAsUser": "ssm-user",
            "sessionId": stream,
            "sessionData": chunk,
        });
        request = request.log_events(aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(at.timestamp_millis()).message(event.to_string()).build().expect("an event"));
    }
    request.send().await.expect("events written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_joins_trail_transcript_and_database_audit_in_one_timeline() {
    let world = World::new(Options::default()).await;
    // A database of the test's own, logging with server_audit (the shared stand-in does not), on
    // the bridge too so the bastion's address can log in.
    let db = tokio::task::spawn_blocking(|| PrivateMariadb::start(private::Options { server_audit: true, also_bind: Some(DB_HOST_ON_BRIDGE.into()), ..private::Options::default() }))
        .await
        .expect("the private MariaDB starts");
    db.socket_sql(&format!("CREATE DATABASE `{s}`; CREATE TABLE `{s}`.refunds (id INT PRIMARY KEY, amount DECIMAL(10,2)); INSERT INTO `{s}`.refunds VALUES (1, 10.00), (2, 25.50), (3, 99.99);", s = world.schema))
        .expect("the schema on the private MariaDB");
    world.point_admin_secret_with("127.0.0.1", db.port, "root", private::ROOT_PASSWORD).await;
    let group = format!("/powerpole/ssm-sessions-{}", world.id);
    let audit_file = db.audit_log().display().to_string();
    let text = world
        .config_text()
        .replace(&format!("port = {}", world.db.port), &format!("port = {}", db.port))
        .replace(
            "[store]",
            &format!("security_channel = \"{SECURITY}\"\n\n[audit]\nsession_log_group = \"{group}\"\n\n[audit.database_logs]\nbilling = \"file:{audit_file}\"\n\n[store]"),
        );
    assert!(text.contains(&format!("port = {}", db.port)), "the target is the private MariaDB");
    // Real time: MariaDB and CloudWatch stamp what happens with the wall clock.
    let clock = Arc::new(ManualClock::new(now_whole_second()));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&world.aws);
    logs.create_log_group().log_group_name(&group).send().await.expect("the session log group on moto");

    // Request, approval, hand-over.
    http.command(ALICE, "request billing READ 1h INC-42 check refunds").await;
    let card = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the card").into_iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card");
    let id = session_on_card(&card);
    world.card_stored(&app, &id).await;
    let updates = world.slack.calls_to("chat.update").len();
    http.click(&card, "approve", BOB).await;
    world.slack.wait_for("chat.update", updates + 1, SOON).await.expect("the card shows the approval");
    clock.set(now_whole_second());
    app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("the sweep");
    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Active);
    let instance = session.instance_id.clone().expect("a bastion");
    let ip = session.private_ip.clone().expect("its IP");

    // Alice works: the shell (as the agent streams it) and the database (as server_audit logs it).
    let dm = world.dms_to(ALICE).into_iter().find(|c| c.text().contains("is ready")).expect("the hand-over DM");
    let dm_text = powerpole_standins::slack::text_of(&dm);
    let line = world::mysql_line_in(&dm_text).expect("a mysql line");
    // The password typed at mysql's prompt, as the DM asks.
    let line = world::typing_password(&line, &world::password_in(&dm_text).expect("the DM carries the password"));
    let bastion = TestHost::add(&ip);
    assert_eq!(bastion.mysql(&line, &format!("SELECT COUNT(*) FROM {}.refunds", world.schema)).as_deref(), Ok("3"));
    let denied = bastion.mysql(&line, &format!("DELETE FROM {}.refunds", world.schema));
    assert!(denied.is_err(), "READ cannot delete: {denied:?}");
    stream_session(&logs, &group, "alice@example.com-0a1b2c3d4e", &instance, &[&["sh-5.2$ mysql -h 10.200.0.1 -u alice -p", "Enter password:"][..], &["mysql> SELECT COUNT(*) FROM refunds;", "sh-5.2$ exit"][..]]).await;
    stream_session(&logs, &group, "carol@example.com-0f0f0f0f0f", "i-0someoneelse", &[&["sh-5.2$ cat /etc/passwd"][..]]).await;

    // Alice ends it; teardown posts the summary to the security channel.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the audit log has 1 s resolution; the end must come after
    clock.set(Utc::now());
    http.command(ALICE, &format!("end {id}")).await;
    world.slack.wait_for("response_url", 1, SOON).await.ok();
    clock.set(Utc::now());
    app.lifecycle.tick(chrono::Duration::seconds(15)).await.expect("the sweep");
    assert!(world.session(&app, &id).await.state.is_closed());
    let summaries = world.slack.wait_until("the security summary", SOON, |calls: &[RecordedCall]| calls.iter().any(|c| c.method == "chat.postMessage" && c.param_str("channel") == Some(SECURITY))).await.expect("a summary in the security channel");
    let summary = summaries.into_iter().find(|c| c.method == "chat.postMessage" && c.param_str("channel") == Some(SECURITY)).expect("the summary");
    let said = powerpole_standins::slack::text_of(&summary);
    for expected in ["<@U0ALICE>", "READ", "billing", "<@U0BOB>", "2 shell command(s)", "refused", &format!("--session {id} --report")] {
        assert!(said.contains(expected), "{expected} missing from the summary: {said}");
    }

    // The full report: the three sources, in time order.
    let cloudwatch = CloudWatchLogs::new(&world.aws);
    let report = report::gather(&app.config, app.workflow.store.as_ref(), Some(&cloudwatch), &id, Utc::now()).await.expect("the report");
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    assert!(report.timeline.windows(2).all(|w| w[0].at <= w[1].at), "ordered by time");
    let position = |f: &dyn Fn(&report::Entry) -> bool| report.timeline.iter().position(f).unwrap_or_else(|| panic!("missing in {}", report.text()));
    let approved = position(&|e| e.source == Source::Trail && e.what.starts_with(AuditKind::Approved.as_str()));
    let handed_over = position(&|e| e.source == Source::Trail && e.what.starts_with(AuditKind::HandedOver.as_str()));
    let select = position(&|e| e.source == Source::Database && e.what.contains("SELECT COUNT(*)") && e.problem.is_none());
    let delete = position(&|e| e.source == Source::Database && e.what.contains("DELETE FROM") && e.problem.is_some());
    let typed = position(&|e| e.source == Source::Shell && e.what.contains("sh-5.2$ mysql"));
    let torn_down = position(&|e| e.source == Source::Trail && e.what.starts_with(AuditKind::TornDown.as_str()));
    assert!(approved < handed_over && handed_over <= select && select <= delete && delete < torn_down && typed < torn_down, "{}", report.text());
    assert!(!report.text().contains("/etc/passwd"), "another bastion's session is not in this report");
    assert_eq!(report.shell_commands, 2);
    assert!(report.statements.get("read").copied().unwrap_or(0) >= 1 && report.refused >= 1, "{}", report.text());
    assert!(report.timeline.iter().filter(|e| e.source == Source::Database).all(|e| e.who.starts_with(&format!("'{}'@'{ip}'", world.db_user()))), "only Alice's account from her bastion");

    // The HTML page, for scripts/report-browser-check.sh to open in a real browser.
    let html = report::html::render(&report);
    assert!(html.contains("Shell commands: 2") && html.contains("DELETE FROM") && html.contains(&format!("Session {id}")));
    assert!(html.contains("<dt>Requester</dt><dd>@U0ALICE (database user") && !html.contains("&lt;@U0"), "people read as user ids, not Slack markup");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-report.html");
    std::fs::write(&path, &html).expect("the page is written");
}
