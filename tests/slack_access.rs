//! The buttons of a running session: the warning DM's Extend and End now, and the extension card.
//! Provisioning is not part of this crate's Slack side, so the tests move an approved session to
//! `active` in the store the way the sweeper will (state machine and audit included).

mod slack_support;

use powerpole::domain::{Actor, AuditEvent, AuditKind, Event, Outcome, Session, State};
use powerpole::notify::messages;
use powerpole_standins::driver::{InputValue, ViewSubmission};
use slack_support::*;

/// Files a billing request, has bob approve it, and makes it active as the sweeper would.
async fn active_session(t: &TestApp) -> Session {
    let (session, card) = t.file_request(ALICE, "request billing READ 1h INC-50 look at refunds").await;
    t.click(&card, "approve", BOB).await;
    let mut s = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    let now = chrono::Utc::now();
    for (event, kind) in [(Event::ProvisioningStarted, AuditKind::Launched), (Event::HandedOver, AuditKind::HandedOver)] {
        let from = s.state;
        s.apply(event).unwrap();
        if event == Event::HandedOver {
            s.start_clock(now, "10m".parse().unwrap());
        }
        s = t.store.update(from, &s, Some(&AuditEvent::ok(kind, Actor::System, now, "test"))).await.unwrap();
    }
    s
}

#[tokio::test]
async fn end_now_on_the_warning_dm_starts_the_teardown() {
    let t = spawn_app().await;
    let session = active_session(&t).await;
    let posted = t.app.notifier.dm(&session.requester.slack_id, &messages::warning_dm(&session)).await.unwrap();
    let warning = t.posts_to(&posted.channel).pop().unwrap();
    let wake = t.app.workflow.wake.clone();
    let woken = wake.notified();

    t.click(&warning, "end_now", DAVE).await;
    assert_eq!(t.wait_for_ephemeral(1).await, [format!(":warning: {} is not your session; only the person who asked for it can do that", session.id)]);
    t.click(&warning, "end_now", ALICE).await;

    let told = t.wait_for_ephemeral(2).await;
    assert!(told[1].contains("is ending"), "{told:?}");
    let ended = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!(ended.state, State::TearingDown(Outcome::EndedByRequester));
    assert_eq!(t.audit_kinds(&session.id).await.last(), Some(&AuditKind::Ended));
    tokio::time::timeout(SOON, woken).await.expect("the sweeper is woken to tear down");
}

#[tokio::test]
async fn an_extension_goes_to_the_approvers_and_moves_the_expiry() {
    let t = spawn_app().await;
    let session = active_session(&t).await;
    let posted = t.app.notifier.dm(&session.requester.slack_id, &messages::warning_dm(&session)).await.unwrap();
    let warning = t.posts_to(&posted.channel).pop().unwrap();

    t.click(&warning, "extend", ALICE).await;
    let opened = t.slack.wait_for("views.open", 1, SOON).await.unwrap();
    let choices = opened[0].param_json("view").unwrap()["blocks"][0]["element"]["options"].as_array().unwrap().len();
    assert_eq!(choices, 5, "15m .. 3h: billing allows 4h and the session has 1h");
    let form = ViewSubmission::of(&opened[0], ALICE, "alice").unwrap().input("duration", "duration", InputValue::Selected("30m".into()));
    let reply = t.driver.interaction(t.driver.view_submission(&form)).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));

    let cards = t.slack.wait_until("the extension card", SOON, |calls| calls.iter().any(|c| c.method == "chat.postMessage" && c.text().contains("asks to extend"))).await.unwrap();
    let card = cards.into_iter().find(|c| c.method == "chat.postMessage" && c.text().contains("asks to extend")).unwrap();
    let asked = t.wait_for_session(&session.id, |s| s.extension.as_ref().is_some_and(|e| e.card_ts.is_some())).await;
    assert_eq!(asked.extension.as_ref().map(|e| e.by.to_string()), Some("30m".into()));

    t.click(&card, "approve_extension", ALICE).await;
    assert_eq!(t.wait_for_ephemeral(1).await, [":warning: you asked for this access yourself: another approver has to decide"]);
    let (a, b) = tokio::join!(t.click(&card, "approve_extension", BOB), t.click(&card, "deny_extension", CAROL));
    assert_eq!((a.status, b.status), (200, 200));

    let decided = t.wait_for_session(&session.id, |s| s.extension.is_none()).await;
    let kinds = t.audit_kinds(&session.id).await;
    let decisions: Vec<_> = kinds.iter().filter(|k| matches!(k, AuditKind::Extended | AuditKind::ExtensionDenied)).collect();
    assert_eq!(decisions.len(), 1, "exactly one decision: {kinds:?}");
    if decisions[0] == &AuditKind::Extended {
        assert_eq!(decided.duration.to_string(), "1h30m");
        assert_eq!(decided.expires_at, session.expires_at.map(|e| e + chrono::Duration::minutes(30)));
    } else {
        assert_eq!(decided.duration.to_string(), "1h");
        assert_eq!(decided.expires_at, session.expires_at);
    }
    let told = t.wait_for_ephemeral(2).await;
    assert!(told[1].contains("the extension of") && told[1].contains("was already decided"), "{told:?}");
}

/// The real Slack adapter finds a hand-over DM that nothing recorded (by its "is ready (<id>)"
/// text, in the requester's DM history after `since`) and deletes it; the person's other DMs and
/// messages elsewhere are left alone, and deleting it again is not an error.
#[tokio::test]
async fn a_hand_over_dm_nothing_recorded_is_found_in_the_dm_history_and_deleted() {
    use powerpole::notify::Notifier;
    install_crypto();
    let slack = powerpole_standins::slack::SlackStandin::start().await;
    let notifier = powerpole::notify::SlackNotifier::new(&slack.api_url(), "xoxb-powerpole-test");
    let alice = powerpole::domain::SlackUserId::parse(ALICE).unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let marker = "is ready (pp-aaaaaaaaaa)";
    let stray = notifier.dm(&alice, &powerpole::notify::Message::plain(format!("Your READ access to billing {marker}. Expires 18:00."))).await.unwrap();
    let other = notifier.dm(&alice, &powerpole::notify::Message::plain("Your READ access to billing is ready (pp-bbbbbbbbbb).")).await.unwrap();
    let elsewhere = notifier.post(APPROVALS, &powerpole::notify::Message::plain(format!("quoted: {marker}"))).await.unwrap();

    let found = notifier.find_dms(&alice, Some(before), marker).await.unwrap();
    assert_eq!(found, vec![stray.clone()]);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(notifier.find_dms(&alice, Some(later), marker).await.unwrap(), vec![], "`since` bounds the search");

    notifier.delete(&stray).await.unwrap();
    assert_eq!(slack.message(&stray.channel, &stray.ts), None, "the stray DM is gone");
    assert!(slack.message(&other.channel, &other.ts).is_some(), "another session's DM stays");
    assert!(slack.message(&elsewhere.channel, &elsewhere.ts).is_some(), "a message outside the DM stays");
    assert_eq!(notifier.find_dms(&alice, Some(before), marker).await.unwrap(), vec![]);
    notifier.delete(&stray).await.expect("a message already gone counts as deleted");
}
