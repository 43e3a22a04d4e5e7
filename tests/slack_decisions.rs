//! Approval cards: who may decide, how many must, and that races, repeats and retries make
//! exactly one decision. Each test asserts the HTTP answer, what Slack was sent, and the store.

mod slack_support;

use powerpole::domain::{AuditKind, Outcome, State};
use powerpole_standins::driver::{InputValue, ViewSubmission};
use slack_support::*;

const BILLING: &str = "request billing READ 1h INC-42 fix a refund";
const ORDERS: &str = "request orders DML 2h INC-43 replay orders";

#[tokio::test]
async fn a_non_approver_clicking_approve_changes_nothing() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, BILLING).await;

    let reply = t.click(&card, "approve", DAVE).await;

    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let told = t.wait_for_ephemeral(1).await;
    assert_eq!(told, [":warning: only the approvers of `billing` can decide on its sessions"]);
    let stored = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.approvals.len(), stored.version), (State::Pending, 0, session.version));
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested]);
    assert!(t.slack.calls_to("chat.update").is_empty());
    assert!(t.posts_to(&format!("D{ALICE}")).is_empty(), "the requester got no DM");
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let t = spawn_app().await;
    // Alice is one of billing's approvers, and asks for billing herself.
    let (session, card) = t.file_request(ALICE, BILLING).await;

    let reply = t.click(&card, "approve", ALICE).await;

    assert_eq!(reply.status, 200);
    assert_eq!(t.wait_for_ephemeral(1).await, [":warning: you asked for this access yourself: another approver has to decide"]);
    let stored = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.approvals.len()), (State::Pending, 0));
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested]);
    assert!(t.slack.calls_to("chat.update").is_empty());
}

#[tokio::test]
async fn an_approval_updates_the_card_dms_the_requester_and_wakes_the_sweeper() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, BILLING).await;
    let woken = t.app.workflow.wake.clone();
    let wake = woken.notified();

    assert_eq!(t.click(&card, "approve", BOB).await.status, 200);

    let updates = t.slack.wait_for("chat.update", 1, SOON).await.unwrap();
    assert_eq!(updates[0].param_str("ts"), card.response["ts"].as_str());
    let card_now = t.slack.message(APPROVALS, card.response["ts"].as_str().unwrap()).unwrap();
    let shown = serde_json::to_string(&card_now).unwrap();
    assert!(shown.contains("Approved by <@U0BOB>") && !shown.contains("\"action_id\":\"approve\""), "{shown}");
    let dm = t.slack.wait_until("a DM to alice", SOON, |calls| calls.iter().any(|c| c.response["channel"] == format!("D{ALICE}"))).await.unwrap();
    assert!(dm.iter().any(|c| c.text().contains("is approved by <@U0BOB>")));
    tokio::time::timeout(SOON, wake).await.expect("the sweeper is woken");
    let stored = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Approved);
    assert!(stored.approved_at.is_some());
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::Approved]);
}

#[tokio::test]
async fn two_approvers_clicking_at_once_make_one_decision() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, BILLING).await;

    let (a, b) = tokio::join!(t.click(&card, "approve", BOB), t.click(&card, "approve", CAROL));

    assert_eq!((a.status, b.status), (200, 200));
    let told = t.wait_for_ephemeral(1).await;
    assert_eq!(told.len(), 1);
    let stored = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    assert_eq!(stored.approvals.len(), 1);
    let winner = stored.approvals[0].approver.to_string();
    assert_eq!(told[0], format!(":warning: {} was already approved by <@{winner}>", session.id));
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::Approved]);
    t.slack.wait_until("the card update and the DM", SOON, |calls| calls.iter().any(|c| c.response["channel"] == format!("D{ALICE}"))).await.unwrap();
    assert_eq!(t.slack.calls_to("chat.update").len(), 1, "the card is updated once");
    assert_eq!(t.posts_to(&format!("D{ALICE}")).len(), 1, "one DM for one decision");
}

#[tokio::test]
async fn one_approver_double_clicking_makes_one_decision() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, BILLING).await;

    let (a, b) = tokio::join!(t.click(&card, "approve", BOB), t.click(&card, "approve", BOB));

    assert_eq!((a.status, b.status), (200, 200));
    let told = t.wait_for_ephemeral(1).await;
    assert_eq!(told, [format!(":warning: {} was already approved by <@{BOB}>", session.id)]);
    let stored = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    assert_eq!(stored.approvals.len(), 1);
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::Approved]);
    t.slack.wait_until("the DM", SOON, |calls| calls.iter().any(|c| c.response["channel"] == format!("D{ALICE}"))).await.unwrap();
    assert_eq!(t.slack.calls_to("chat.update").len(), 1);
    assert_eq!(t.posts_to(&format!("D{ALICE}")).len(), 1);
}

#[tokio::test]
async fn two_of_n_needs_two_distinct_approvers() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, ORDERS).await;

    t.click(&card, "approve", BOB).await;
    t.slack.wait_for("chat.update", 1, SOON).await.unwrap();
    let after_one = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!((after_one.state, after_one.approvals.len()), (State::Pending, 1));
    let card_now = serde_json::to_string(&t.slack.message(APPROVALS, card.response["ts"].as_str().unwrap()).unwrap()).unwrap();
    assert!(card_now.contains("1 of 2; waiting for 1 more") && card_now.contains("\"action_id\":\"approve\""), "{card_now}");

    t.click(&card, "approve", BOB).await;
    assert_eq!(t.wait_for_ephemeral(1).await, [format!(":warning: you already approved {}; it needs 1 more approval(s) from other approvers", session.id)]);
    assert_eq!(t.store.get(&session.id).await.unwrap().unwrap().approvals.len(), 1);

    // A member of the approver group is the second, distinct approver.
    t.click(&card, "approve", ERIN).await;
    let approved = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    let who: Vec<String> = approved.approvals.iter().map(|a| a.approver.to_string()).collect();
    assert_eq!(who, [BOB, ERIN]);
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::ApprovalRecorded, AuditKind::Approved]);
    assert_eq!(t.slack.calls_to("usergroups.users.list").len(), 1);
    t.slack.wait_for("chat.update", 2, SOON).await.unwrap();
}

#[tokio::test]
async fn two_of_n_approvers_clicking_at_once_both_count() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, ORDERS).await;

    tokio::join!(t.click(&card, "approve", BOB), t.click(&card, "approve", CAROL));

    let approved = t.wait_for_session(&session.id, |s| s.state == State::Approved).await;
    assert_eq!(approved.approvals.len(), 2);
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::ApprovalRecorded, AuditKind::Approved]);
    assert!(t.ephemeral_texts().is_empty(), "nobody was refused: {:?}", t.ephemeral_texts());
}

#[tokio::test]
async fn deny_asks_for_a_reason_and_closes_the_request() {
    let t = spawn_app().await;
    let (session, card) = t.file_request(ALICE, BILLING).await;

    assert_eq!(t.click(&card, "deny", CAROL).await.status, 200);
    let opened = t.slack.wait_for("views.open", 1, SOON).await.unwrap();
    let empty = ViewSubmission::of(&opened[0], CAROL, "carol").unwrap().input("reason", "reason", InputValue::Text("  ".into()));
    let refused = t.driver.interaction(t.driver.view_submission(&empty)).await.unwrap();
    assert_eq!(refused.json().unwrap()["errors"]["reason"], "Say why, so the requester knows what to do instead.");
    let form = ViewSubmission::of(&opened[0], CAROL, "carol").unwrap().input("reason", "reason", InputValue::Text("use the replica".into()));
    let reply = t.driver.interaction(t.driver.view_submission(&form)).await.unwrap();

    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let denied = t.wait_for_session(&session.id, |s| s.state.is_closed()).await;
    assert_eq!(denied.state, State::Closed(Outcome::Denied));
    assert_eq!(denied.denied_by.as_ref().map(|u| u.to_string()), Some(CAROL.to_string()));
    assert_eq!(denied.decision_reason.as_deref(), Some("use the replica"));
    let trail = t.store.audit_trail(&session.id).await.unwrap();
    assert_eq!(trail.last().map(|r| (r.event.kind, r.event.detail.as_str())), Some((AuditKind::Denied, "use the replica")));
    t.slack.wait_for("chat.update", 1, SOON).await.unwrap();
    let dm = t.slack.wait_until("a DM to alice", SOON, |calls| calls.iter().any(|c| c.response["channel"] == format!("D{ALICE}"))).await.unwrap();
    assert!(dm.iter().any(|c| c.text().contains("<@U0CAROL> denied your request") && c.text().contains("use the replica")));

    // A late Approve finds the request decided.
    t.click(&card, "approve", BOB).await;
    assert_eq!(t.wait_for_ephemeral(1).await, [format!(":warning: {} was already denied by <@{CAROL}>", session.id)]);
    assert_eq!(t.store.get(&session.id).await.unwrap().unwrap().state, State::Closed(Outcome::Denied));
}

#[tokio::test]
async fn a_rate_limited_card_is_posted_after_retry_after() {
    let t = spawn_app().await;
    t.slack.rate_limit_next("chat.postMessage", 1, 1);
    let started = std::time::Instant::now();

    let (session, _) = t.file_request(ALICE, BILLING).await;

    let posts = t.slack.calls_to("chat.postMessage");
    assert!(posts[0].rate_limited && posts[1].ok(), "{posts:?}");
    assert!(posts[1].received_at - posts[0].received_at >= chrono::Duration::milliseconds(950), "waited as Retry-After asked");
    assert!(started.elapsed().as_secs_f64() >= 0.95);
    assert_eq!(session.state, State::Pending);
}

#[tokio::test]
async fn a_card_slack_keeps_refusing_withdraws_the_request_and_says_so() {
    let t = spawn_app().await;
    t.slack.rate_limit_next("chat.postMessage", 10, 0);

    let reply = t.command(ALICE, BILLING).await;

    assert_eq!(reply.status, 200);
    let told = t.wait_for_ephemeral(1).await;
    assert!(told[0].contains("the approval card could not be posted") && told[0].contains("withdrawn"), "{told:?}");
    let sessions = t.sessions_of(ALICE).await;
    assert_eq!(sessions[0].state, State::Closed(Outcome::Cancelled));
    let trail = t.store.audit_trail(&sessions[0].id).await.unwrap();
    assert_eq!(trail.iter().map(|r| r.event.kind).collect::<Vec<_>>(), [AuditKind::Requested, AuditKind::Cancelled]);
    assert!(trail[1].event.outcome.is_err());
}

#[tokio::test]
async fn revoke_is_for_approvers_and_end_is_for_the_requester() {
    let t = spawn_app().await;
    let (session, _) = t.file_request(ALICE, ORDERS).await;

    t.command(DAVE, &format!("revoke {}", session.id)).await;
    t.command(BOB, &format!("end {}", session.id)).await;
    let told = t.wait_for_ephemeral(2).await;
    assert!(told.contains(&":warning: only the approvers of `orders` can decide on its sessions".to_string()), "{told:?}");
    assert!(told.contains(&format!(":warning: {} is not your session; only the person who asked for it can do that", session.id)), "{told:?}");
    assert_eq!(t.store.get(&session.id).await.unwrap().unwrap().state, State::Pending);

    t.command(ALICE, &format!("end {}", session.id)).await;
    let told = t.wait_for_ephemeral(3).await;
    assert!(told.contains(&format!("{} was withdrawn.", session.id)), "{told:?}");
    let ended = t.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!(ended.state, State::Closed(Outcome::Cancelled));
    assert_eq!(t.audit_kinds(&session.id).await, [AuditKind::Requested, AuditKind::Cancelled]);
}

#[tokio::test]
async fn list_shows_the_requesters_sessions() {
    let t = spawn_app().await;
    let (session, _) = t.file_request(ALICE, BILLING).await;
    let reply = t.command(ALICE, "list").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    let told = t.wait_for_ephemeral(1).await;
    assert!(told[0].contains(&format!("*{}* `billing` READ for 1h: waiting for approval since", session.id)), "{told:?}");
}
