//! Break-glass end to end, through signed Slack requests and the recording Slack stand-in, with
//! the real store (moto), bastions (moto EC2 + the SSM stand-in) and database (MariaDB), on an
//! injected clock: an on-call engineer takes access at once, it is announced in the approvals and
//! security channels, the review card waits, the alert comes back after `review_within`, an
//! approver acknowledges, and the audit trail has every step in order. Someone outside the
//! on-call group is refused and nothing is filed.

mod world;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use powerpole::domain::{AuditKind, Outcome, SlackUserId, State};
use powerpole::workflow::{ManualClock, StepOutcome, TickReport};
use powerpole_standins::slack::RecordedCall;
use world::{session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

const ONCALL: &str = "S0ONCALL";
const SECURITY: &str = "C0SECURITY";
const DAVE: &str = "U0DAVE";

fn outcomes(report: &TickReport) -> Vec<StepOutcome> {
    report.acted().map(|(id, o)| o.clone().unwrap_or_else(|e| panic!("step for {id} failed: {e}"))).collect()
}

fn posts_in(world: &World, channel: &str) -> Vec<RecordedCall> {
    world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.param_str("channel") == Some(channel)).collect()
}

fn buttons(message: &RecordedCall) -> Vec<String> {
    message.blocks().iter().flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["action_id"].as_str().map(str::to_owned)).collect()
}

fn config_text(world: &World) -> String {
    world
        .config_text()
        .replace("bot_token = { env = \"SLACK_BOT_TOKEN\" }", &format!("bot_token = {{ env = \"SLACK_BOT_TOKEN\" }}\nsecurity_channel = \"{SECURITY}\""))
        .replace("max_duration = \"4h\"", &format!("max_duration = \"4h\"\noncall_group = \"{ONCALL}\"\nbreakglass_max_duration = \"30m\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oncall_break_glass_is_announced_lives_and_is_reviewed_in_the_trail() {
    let world = World::new(Options::default()).await;
    world.slack.add_user(DAVE, "dave@example.com", "UTC");
    world.slack.add_group(ONCALL, &[ALICE]);
    let text = config_text(&world);
    assert!(text.contains(SECURITY) && text.contains(ONCALL), "the test's config has break-glass: {text}");
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = world.app_with(&text, clock.clone()).await;
    let http = world.serve(&app).await;
    let lookahead = Duration::seconds(15);

    // Beyond the break-glass limits: refused in the answer itself.
    let reply = http.command(ALICE, "breakglass billing DDL 10m INC-9 drop the bad index").await;
    assert!(reply.body.contains("does not allow DDL"), "{}", reply.body);
    let reply = http.command(ALICE, "breakglass billing DML 2h INC-9 long one").await;
    assert!(reply.body.contains("allows at most 30m"), "{}", reply.body);

    // Dave is not on call: refused after the directory is read, and nothing is filed or posted.
    let reply = http.command(DAVE, "breakglass billing DML 30m INC-9 orders are stuck").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = world.slack.wait_for("response_url", 1, SOON).await.expect("Dave is answered");
    let refusal = answers[0].text();
    assert!(refusal.contains("not in the on-call group") && refusal.contains("/powerpole request"), "{refusal}");
    let dave = SlackUserId::parse(DAVE).unwrap();
    assert!(app.workflow.store.by_requester(&dave, 10).await.unwrap().is_empty(), "nothing filed for Dave");
    assert!(posts_in(&world, APPROVALS).is_empty() && posts_in(&world, SECURITY).is_empty(), "nothing posted for Dave");

    // Alice is on call: approved at once, loudly, with a review card in the security channel.
    let reply = http.command(ALICE, "breakglass billing DML 30m INC-9 orders are stuck").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    world.slack.wait_for("response_url", 2, SOON).await.expect("Alice is answered");
    let security = posts_in(&world, SECURITY);
    assert_eq!(security.len(), 2, "the alarm and the review card: {security:?}");
    let alarm = &posts_in(&world, APPROVALS)[0];
    assert!(alarm.text().contains("Break-glass") && alarm.text().contains("<@U0ALICE> took DML on `billing` for 30m"), "{}", alarm.text());
    assert!(security[0].text().contains("without approval"), "{}", security[0].text());
    let card = security[1].clone();
    assert_eq!(buttons(&card), ["review_acknowledge", "review_flag"]);
    let id = session_on_card(&card);
    let deadline = tokio::time::Instant::now() + SOON;
    while world.session(&app, &id).await.breakglass.and_then(|b| b.review_ts).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the review card's place was never stored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let session = world.session(&app, &id).await;
    assert_eq!(session.state, State::Approved, "nobody approved it: break-glass");
    assert!(session.approvals.is_empty());

    // The sweeper provisions it like any approved session; it ends at its 30 minutes.
    clock.set(t0 + Duration::minutes(1));
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()), [StepOutcome::HandedOver]);
    assert_eq!(world.accounts_named(&world.db_user()).await.len(), 1, "the account exists while it is active");
    clock.set(t0 + Duration::minutes(31));
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()), [StepOutcome::TornDown]);
    assert_eq!(world.session(&app, &id).await.state, State::Closed(Outcome::Expired));
    assert!(world.accounts_named(&world.db_user()).await.is_empty(), "the account is dropped");

    // Closed but unreviewed: nothing until review_within (24h), then the alert, once.
    clock.set(t0 + Duration::hours(23));
    assert!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()).is_empty());
    let before = posts_in(&world, SECURITY).len();
    clock.set(t0 + Duration::hours(24));
    assert_eq!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()), [StepOutcome::ReviewOverdue]);
    assert!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()).is_empty(), "one alert per interval");
    let alerts: Vec<RecordedCall> = posts_in(&world, SECURITY).into_iter().skip(before).filter(|c| c.text().contains("still not reviewed")).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].text().contains("<@U0BOB>"), "the approvers are asked: {}", alerts[0].text());

    // Alice cannot review her own break-glass; Bob acknowledges, and the card loses its buttons.
    let before = world.slack.calls_to("response_url").len();
    http.click(&card, "review_acknowledge", ALICE).await;
    let answers = world.slack.wait_for("response_url", before + 1, SOON).await.expect("Alice is answered");
    assert!(answers[before].text().contains("someone else has to review it"), "{}", answers[before].text());
    assert!(world.session(&app, &id).await.breakglass.unwrap().review.is_none());
    let updates = world.slack.calls_to("chat.update").len();
    http.click(&card, "review_acknowledge", BOB).await;
    let updated = world.slack.wait_for("chat.update", updates + 1, SOON).await.expect("the card is updated")[updates].clone();
    assert!(buttons(&updated).is_empty(), "{:?}", updated.blocks());
    assert!(updated.text().contains("Acknowledged by <@U0BOB>") || format!("{:?}", updated.blocks()).contains("Acknowledged by <@U0BOB>"));
    let review = world.session(&app, &id).await.breakglass.unwrap().review.expect("reviewed");
    assert_eq!(review.by.as_str(), BOB);

    // Reviewed: no more alerts, ever.
    clock.set(t0 + Duration::hours(72));
    assert!(outcomes(&app.lifecycle.tick(lookahead).await.unwrap()).is_empty());
    assert_eq!(world.session(&app, &id).await.next_action_at(), None);

    // Every step in the trail, in order.
    assert_eq!(
        world.audit_kinds(&app, &id).await,
        [
            AuditKind::BreakGlass,
            AuditKind::ProvisioningStarted,
            AuditKind::Launched,
            AuditKind::Granted,
            AuditKind::HandedOver,
            AuditKind::Expired,
            AuditKind::TornDown,
            AuditKind::ReviewOverdue,
            AuditKind::ReviewAcknowledged,
        ]
    );
}
