//! A requester whose identity a bastion cannot carry is refused when they ask, through the
//! signed Slack driver: in words for them, before anything is stored or any card is posted.

mod slack_support;

use slack_support::*;

const OBRIEN: &str = "U0OBRIEN";
const CONTRACTOR: &str = "U0CONTRACT";

/// Nothing was filed for `user`, and no card, no DM, nothing in any channel.
async fn nothing_filed(t: &TestApp, user: &str) {
    assert!(t.sessions_of(user).await.is_empty(), "nothing is stored for {user}");
    assert!(t.slack.calls_to("chat.postMessage").is_empty(), "no card and no message: {:?}", t.slack.calls_to("chat.postMessage"));
}

#[tokio::test]
async fn an_address_aws_cannot_carry_is_refused_when_they_ask_before_any_card() {
    let t = spawn_app().await;
    t.slack.add_user(OBRIEN, "o'brien@example.com", "Europe/Dublin");

    let reply = t.command(OBRIEN, "request billing READ 1h INC-7 check a refund").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let told = t.wait_for_ephemeral(1).await;
    let said = &told[0];
    assert!(said.contains("o'brien@example.com") && said.contains("`'`"), "what happened: {said}");
    assert!(said.contains("Nothing was filed and no approver was asked"), "what did not happen: {said}");
    assert!(said.contains("platform team") && said.contains("has been told"), "whom to ask, who knows: {said}");
    assert!(!said.contains("identity_source") && !said.contains("powerpole:identity") && !said.contains("U0OBRIEN has no usable"), "no operator text: {said}");
    nothing_filed(&t, OBRIEN).await;

    // The same person is served under slack_user_id (the documented way for every address).
    let t = spawn_app_with(None, |text| format!("[bastion]\nidentity_source = \"slack_user_id\"\n{text}")).await;
    t.slack.add_user(OBRIEN, "o'brien@example.com", "Europe/Dublin");
    let (session, card) = t.file_request(OBRIEN, "request billing READ 1h INC-7 check a refund").await;
    assert_eq!(session.requester.email, "o'brien@example.com");
    assert_eq!(card.param_str("channel"), Some(APPROVALS));
}

#[tokio::test]
async fn email_local_part_refuses_an_address_outside_the_home_domains_when_they_ask() {
    let t = spawn_app_with(None, |text| format!("[bastion]\nidentity_source = \"email_local_part\"\n{text}")).await;
    // Alice at a contractor would otherwise be `alice`, the identity of alice@example.com.
    t.slack.add_user(CONTRACTOR, "alice@contractor.io", "UTC");

    let reply = t.command(CONTRACTOR, "request billing READ 1h INC-8 look at invoices").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let said = t.wait_for_ephemeral(1).await.remove(0);
    assert!(said.contains("contractor.io") && said.contains("Nothing was filed"), "{said}");
    assert!(!said.contains("email_local_part") && !said.contains("home_domains"), "no configuration in a person's words: {said}");
    nothing_filed(&t, CONTRACTOR).await;

    // The home-domain Alice is served.
    let (session, _) = t.file_request(ALICE, "request billing READ 1h INC-8 look at invoices").await;
    assert_eq!(session.requester.email, "alice@example.com");
}
