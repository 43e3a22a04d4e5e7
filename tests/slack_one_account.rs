//! One database account per live session, told to the user in Slack (issue 11): the same person
//! asking again on a target where a session is live (the CIDR scenario: the second session would
//! reset, then drop, the first one's account), and two people whose addresses give one name.

mod slack_support;

use slack_support::*;

const READ: &str = "request billing READ 1h INC-7 look at ledger";
const DML: &str = "request billing DML 1h INC-7 fix ledger";

#[tokio::test]
async fn a_second_session_on_the_same_target_is_refused_naming_the_first() {
    let t = spawn_app().await;
    let (first, _) = t.file_request(DAVE, READ).await;
    let cards = t.slack.calls_to("chat.postMessage").len();

    let reply = t.command(DAVE, DML).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let told = t.wait_for_ephemeral(1).await;
    let text = told.iter().find(|m| m.contains("already have session")).unwrap_or_else(|| panic!("not told: {told:?}"));
    assert!(text.contains(first.id.as_str()) && text.contains("/powerpole end"), "{text}");
    // Nothing announced the second request and nothing stored it.
    assert_eq!(t.slack.calls_to("chat.postMessage").len(), cards);
    assert_eq!(t.sessions_of(DAVE).await.len(), 1);
}

#[tokio::test]
async fn a_second_person_whose_address_gives_the_same_name_is_refused() {
    let t = spawn_app().await;
    // ASCII case folding makes both addresses `dave`: one name, two people.
    const DAVID: &str = "U0DAVID";
    t.slack.add_user(DAVID, "DAVE@example.com", "UTC");
    t.file_request(DAVE, READ).await;
    let cards = t.slack.calls_to("chat.postMessage").len();

    let reply = t.command(DAVID, READ).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let told = t.wait_for_ephemeral(1).await;
    let text = told.iter().find(|m| m.contains("belongs to another person")).unwrap_or_else(|| panic!("not told: {told:?}"));
    assert!(text.contains("dave"), "{text}");
    assert_eq!(t.slack.calls_to("chat.postMessage").len(), cards);
    assert!(t.sessions_of(DAVID).await.is_empty());
}
