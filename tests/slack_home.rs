//! App Home through the signed driver and the recording Slack stand-in: a requester sees their
//! own sessions with End and Extend, an approver the requests they may decide with Approve and
//! Deny, nobody sees anyone else's data, and every action re-publishes the Home tab.

mod slack_support;

use powerpole_standins::driver::{event_callback, ButtonClick};
use powerpole_standins::slack::RecordedCall;
use serde_json::{json, Value};
use slack_support::*;

/// Opens `user`'s Home tab and returns the view powerpole published for them.
async fn open_home(t: &TestApp, user: &str) -> Value {
    let before = published_to(t, user).len();
    let event = json!({"type": "app_home_opened", "user": user, "channel": format!("D{user}"), "tab": "home", "event_ts": "1700000000.000100"});
    let reply = t.driver.event(event_callback(event), None).await.expect("the service answers");
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_published(t, user, before + 1).await
}

fn published_to(t: &TestApp, user: &str) -> Vec<RecordedCall> {
    t.slack.calls_to("views.publish").into_iter().filter(|c| c.param_str("user_id") == Some(user)).collect()
}

async fn wait_published(t: &TestApp, user: &str, n: usize) -> Value {
    let published = |calls: &[RecordedCall]| calls.iter().filter(|c| c.method == "views.publish" && c.param_str("user_id") == Some(user)).count() >= n;
    t.slack.wait_until("an App Home publish", SOON, published).await.unwrap_or_else(|e| panic!("no App Home published for {user}: {e}"));
    let call = published_to(t, user).pop().expect("a publish");
    assert!(call.ok(), "Slack refused the view: {:?}", call.error());
    call.param_json("view").expect("a view")
}

/// `(action_id, value)` of every button in a view.
fn buttons(view: &Value) -> Vec<(String, String)> {
    view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["type"] == "button")
        .map(|e| (e["action_id"].as_str().unwrap_or_default().to_string(), e["value"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Clicks a button on a Home tab as Slack sends it: the container is the view, and there is no
/// response_url (answers go by DM).
async fn click_home(t: &TestApp, user: &str, action: &str, session: &str) -> u16 {
    let click = ButtonClick {
        user_id: user.into(),
        user_name: user.to_lowercase(),
        channel_id: String::new(),
        message_ts: String::new(),
        action_id: action.into(),
        block_id: "home".into(),
        value: session.into(),
        label: action.into(),
        message: None,
        response_url: None,
    };
    let mut payload = t.driver.block_actions(&click);
    let map = payload.as_object_mut().expect("an object");
    map.insert("container".into(), json!({"type": "view", "view_id": format!("VH{user}")}));
    for key in ["channel", "message", "response_url"] {
        map.remove(key);
    }
    t.driver.interaction(payload).await.expect("the service answers").status
}

#[tokio::test]
async fn a_requester_sees_their_own_sessions_and_an_approver_what_they_may_decide() {
    let t = spawn_app().await;
    let (mine, _) = t.file_request(ALICE, "request billing READ 1h INC-7 check a refund").await;
    let (daves, _) = t.file_request(DAVE, "request orders DML 30m INC-8 fix an order").await;

    // Alice: her pending request, waiting since its time, with a Withdraw (end) button; not Dave's.
    let home = open_home(&t, ALICE).await;
    let text = home.to_string();
    assert!(text.contains(mine.id.as_str()) && text.contains("waiting for approval since"), "{text}");
    assert!(!text.contains(daves.id.as_str()), "Alice approves billing, not orders: Dave's request is not hers to see");
    assert_eq!(buttons(&home), [("end_now".to_string(), mine.id.to_string())], "her own request is not hers to approve");

    // Dave approves nothing: his own request only, and no decision section at all.
    let home = open_home(&t, DAVE).await;
    let text = home.to_string();
    assert!(text.contains(daves.id.as_str()));
    assert!(!text.contains(mine.id.as_str()) && !text.contains("Waiting for your decision"), "{text}");

    // Bob approves both targets: both requests, with Approve and Deny, and none of his own.
    let home = open_home(&t, BOB).await;
    let got = buttons(&home);
    for id in [&mine.id, &daves.id] {
        assert!(got.contains(&("approve".to_string(), id.to_string())) && got.contains(&("deny".to_string(), id.to_string())), "{got:?}");
    }
    // Erin decides orders only through the S0DBAS group.
    let home = open_home(&t, ERIN).await;
    assert!(buttons(&home).iter().all(|(_, id)| id == daves.id.as_str()), "{:?}", buttons(&home));
}

#[tokio::test]
async fn buttons_on_the_home_tab_act_and_republish_it() {
    let t = spawn_app().await;
    let (mine, _) = t.file_request(ALICE, "request billing READ 1h INC-7 check a refund").await;
    let (other, _) = t.file_request(ALICE, "request orders READ 1h INC-9 second thoughts").await;
    open_home(&t, BOB).await;
    let alice_before = published_to(&t, ALICE).len();
    let bob_before = published_to(&t, BOB).len();

    // Bob approves from his Home tab: stored, and both Homes re-published.
    assert_eq!(click_home(&t, BOB, "approve", mine.id.as_str()).await, 200);
    let approved = t.wait_for_session(&mine.id, |s| s.state == powerpole::domain::State::Approved).await;
    assert_eq!(approved.approvals.len(), 1);
    let bob_home = wait_published(&t, BOB, bob_before + 1).await;
    assert!(!buttons(&bob_home).contains(&("approve".to_string(), mine.id.to_string())), "decided: no longer waiting for Bob");
    let alice_home = wait_published(&t, ALICE, alice_before + 1).await;
    assert!(alice_home.to_string().contains("approved; the bastion is being set up"), "{alice_home}");

    // Alice withdraws her other request from her Home tab.
    let alice_before = published_to(&t, ALICE).len();
    assert_eq!(click_home(&t, ALICE, "end_now", other.id.as_str()).await, 200);
    t.wait_for_session(&other.id, |s| s.state.is_closed()).await;
    let alice_home = wait_published(&t, ALICE, alice_before + 1).await;
    let recent = alice_home.to_string();
    assert!(recent.contains("Your last sessions") && recent.contains(other.id.as_str()), "{recent}");
    assert!(!buttons(&alice_home).iter().any(|(_, id)| id == other.id.as_str()), "a closed session has no buttons");

    // Dave cannot approve by forging a click on a Home he never saw.
    let (third, _) = t.file_request(ALICE, "request orders READ 30m INC-10 one more").await;
    assert_eq!(click_home(&t, DAVE, "approve", third.id.as_str()).await, 200);
    let refusal = t.slack.wait_until("a DM to Dave", SOON, |calls: &[RecordedCall]| calls.iter().any(|c| c.method == "chat.postMessage" && c.param_str("channel") == Some(DAVE) && c.text().contains("only the approvers"))).await;
    assert!(refusal.is_ok(), "Dave is told he may not decide");
    assert_eq!(t.store.get(&third.id).await.unwrap().unwrap().state, powerpole::domain::State::Pending);
}
