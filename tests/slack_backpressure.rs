//! Backpressure: follow-ups run through a bounded pool. A burst of slash commands beyond
//! workers + queue, sent through the signed driver: the excess is answered "busy, try again in
//! a minute" at once, every acknowledged command's follow-up completes, and the pool never runs
//! more than its workers nor queues more than its queue.

mod slack_support;

use std::sync::Arc;

use futures::future::join_all;
use powerpole::slack::pool::BUSY;
use powerpole::slack::FollowUpPool;
use powerpole_standins::driver::SlashCommand;
use slack_support::*;

const WORKERS: usize = 2;
const QUEUE: usize = 3;
const BURST: usize = 12;

#[tokio::test]
async fn a_burst_beyond_the_bound_is_answered_busy_and_every_acknowledged_follow_up_completes() {
    let pool = Arc::new(FollowUpPool::new(WORKERS, QUEUE));
    let t = spawn_app_with_pool(Some(pool.clone())).await;
    // `list` answers at once, then reads the store and posts to the command's response_url.
    // Slack holds those posts, so no follow-up can finish while the burst arrives.
    t.slack.hold_responses();
    let burst = (0..BURST).map(|i| {
        let command = SlashCommand { response_url: Some(t.slack.response_url(&format!("list-{i}"))), ..SlashCommand::new(ALICE, "alice", ACCESS, "list") };
        t.driver.command(command)
    });
    let answers: Vec<_> = join_all(burst).await.into_iter().map(|a| a.expect("the service answers")).collect();

    let mut acknowledged = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.status, 200, "Slack gets an answer, not an error: {}", answer.body);
        if answer.body.contains(BUSY) {
            let reply = answer.json().expect("the busy answer is a message");
            assert_eq!(reply["response_type"], "ephemeral");
            assert!(reply["text"].as_str().unwrap_or_default().contains("try again in a minute"), "{reply}");
        } else {
            assert!(answer.body.is_empty(), "`list` is acknowledged with an empty 200: {}", answer.body);
            acknowledged.push(i);
        }
    }
    assert_eq!(acknowledged.len(), WORKERS + QUEUE, "exactly workers + queue requests are taken");
    let stats = pool.stats();
    assert_eq!((stats.running, stats.waiting), (WORKERS, QUEUE), "{stats:?}");
    assert_eq!(stats.refused, BURST - WORKERS - QUEUE);

    t.slack.release_responses();
    t.slack.wait_for("response_url", acknowledged.len(), SOON).await.expect("every acknowledged follow-up answers");
    for i in 0..BURST {
        let answered = t.slack.responses_to(&format!("list-{i}")).len();
        let expected = usize::from(acknowledged.contains(&i));
        assert_eq!(answered, expected, "request {i}: acknowledged requests are answered once, refused ones never");
    }
    let deadline = tokio::time::Instant::now() + SOON;
    while pool.stats().done < acknowledged.len() {
        assert!(tokio::time::Instant::now() < deadline, "the pool did not finish: {:?}", pool.stats());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = pool.stats();
    assert_eq!((stats.running, stats.waiting), (0, 0), "{stats:?}");
    assert!(stats.most_running <= WORKERS && stats.most_waiting <= QUEUE, "the pool stayed within its bound: {stats:?}");

    // Room again: the next command is taken.
    let after = t.command(ALICE, "list").await;
    assert!(!after.body.contains(BUSY), "{}", after.body);
}
