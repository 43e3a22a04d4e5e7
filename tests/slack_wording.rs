//! What a new user reads, tried through the signed driver and the recording Slack stand-in.

mod slack_support;

use slack_support::*;

/// A user whose Slack e-mail cannot become a database user name.
const FRANK: &str = "U0FRANK";

#[tokio::test]
async fn an_email_that_cannot_be_mapped_is_refused_and_nothing_ever_said_sent() {
    let t = spawn_app().await;
    t.slack.add_user(FRANK, "frank", "UTC");
    let reply = t.command(FRANK, "request billing READ 1h INC-1 first try").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let first = reply.json().expect("an ephemeral answer")["text"].as_str().unwrap_or_default().to_string();
    assert!(!first.contains("sent"), "the first answer must not say sent: {first}");

    let told = t.wait_for_ephemeral(1).await;
    assert!(told[0].contains("is not an e-mail address"), "the refusal says why: {told:?}");
    assert!(told.iter().all(|m| !m.contains("sent to the approvers")), "{told:?}");
    assert!(t.posts_to(APPROVALS).is_empty(), "no card for a refused request");
    assert!(t.sessions_of(FRANK).await.is_empty(), "nothing stored");
}
