//! Where the handed-over password may be: in the requester's DM, until the session ends. The real
//! `powerpole serve` process lives a whole session against moto (DynamoDB, EC2, Secrets Manager),
//! the SSM stand-in, MariaDB and the Slack stand-in: request, approval, hand-over, end, teardown.
//! Then the password the DM carried (read from the DM, as the requester would) is looked for in
//! every item the table holds (the session and every audit record of its trail), in every call
//! the service made to Slack outside the requester's DM (cards, updates, ephemeral answers, other
//! DMs), and in everything `serve` logged, at the `debug` level so that no log line is spared.

mod world;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use powerpole::domain::{Outcome, State};
use powerpole::workflow::SystemClock;
use world::process::{wait_until, Serve};
use world::{password_in, session_on_card, Options, World, ALICE, APPROVALS, BOB, SOON};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_whole_session_the_password_is_nowhere_but_the_requesters_dm() {
    let world = World::new(Options::default()).await;
    let serve = Serve::start(&world, &world.config_text(), &[("RUST_LOG", "debug,aws_smithy_runtime=info,aws_config=info,hyper=info,h2=info,rustls=info".to_string())]).await;
    let reader = world.app(Arc::new(SystemClock)).await;

    let reply = serve.http.command(ALICE, "request billing READ 1h INC-77 where may the password be").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cards = world.slack.wait_for("chat.postMessage", 1, SOON).await.expect("the approval card is posted");
    let card = cards.iter().find(|c| c.param_str("channel") == Some(APPROVALS)).expect("a card in the approvals channel").clone();
    let id = session_on_card(&card);
    let reply = serve.http.click(&card, "approve", BOB).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let dm = wait_until(Duration::from_secs(60), || async { world.dms_to(ALICE).into_iter().find(|c| c.text().contains("is ready")) })
        .await
        .unwrap_or_else(|| panic!("no hand-over DM within a minute; serve logged:\n{}", serve.logs()));
    let text = powerpole_standins::slack::text_of(&dm);
    let password = password_in(&text).filter(|p| p.len() >= 24).expect("the hand-over DM carries the password");
    assert!(world.account_granted().await, "the account exists in MariaDB");

    let reply = serve.http.command(ALICE, &format!("end {id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let closed = wait_until(Duration::from_secs(30), || async {
        let s = reader.workflow.store.get(&id).await.ok().flatten()?;
        (s.state == State::Closed(Outcome::EndedByRequester)).then_some(s)
    })
    .await;
    assert!(closed.is_some(), "the session was not torn down; serve logged:\n{}", serve.logs());
    // The redaction of the DM is the teardown's last Slack call: wait for it, so every call is in.
    let redacted = wait_until(SOON, || async {
        world.slack.calls().into_iter().any(|c| c.method == "chat.update" && c.param_str("ts") == dm.response["ts"].as_str() && !serde_json::to_string(&c.params).unwrap_or_default().contains(&password)).then_some(())
    })
    .await;
    assert!(redacted.is_some(), "the hand-over DM was not redacted after the end");

    // The table: every item, each attribute however nested (the session and its whole trail).
    let dynamo = aws_sdk_dynamodb::Client::new(&world.aws);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo.scan().table_name(&world.table).set_exclusive_start_key(start).send().await.expect("moto scans the table");
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert!(items.len() >= 6, "the session and its trail are in the table: {} items", items.len());
    for item in &items {
        let mut texts = Vec::new();
        for (name, value) in item {
            texts.push(name.clone());
            strings(value, &mut texts);
        }
        assert!(!texts.iter().any(|t| t.contains(&password)), "the password is in a table item: {item:?}");
    }

    // Slack: every call the service made, except those to Alice's DM (the hand-over and its
    // redaction); the ephemeral answers to her commands count as outside.
    let dm_channel = format!("D{ALICE}");
    let in_dm = |c: &powerpole_standins::slack::RecordedCall| {
        [c.param_str("channel"), c.response["channel"].as_str()].into_iter().flatten().any(|ch| ch == dm_channel || ch == ALICE)
    };
    let calls = world.slack.calls();
    let outside: Vec<_> = calls.iter().filter(|c| !in_dm(c)).collect();
    assert!(outside.iter().any(|c| c.param_str("channel") == Some(APPROVALS)), "the approvals channel's calls are among those scanned");
    for call in outside {
        let sent = serde_json::to_string(&call.params).unwrap_or_default();
        assert!(!sent.contains(&password), "the password was sent to Slack outside the requester's DM: {} {sent}", call.method);
    }

    // The service's log, every line of it.
    let logs = serve.logs();
    assert!(logs.lines().count() > 10, "serve logged the session: {logs}");
    assert!(logs.contains(id.as_str()), "the log speaks of the session");
    assert!(!logs.contains(&password), "the password is in serve's log: {}", logs.lines().find(|l| l.contains(&password)).unwrap_or_default());
}

/// Every string inside an attribute value, however deeply nested.
fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => out.extend(v.iter().cloned()),
        AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
        AttributeValue::Bs(v) => out.extend(v.iter().map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())),
        AttributeValue::L(v) => v.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}
