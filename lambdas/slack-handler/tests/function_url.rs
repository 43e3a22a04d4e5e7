//! The two Slack functions as Lambda runs them: the real `slack-handler` and `slack-worker`
//! binaries, each polling a Lambda Runtime API stand-in, configured only through the environment
//! `infra/modules/powerpole/lambda.tf` sets (the TOML in a Parameter Store parameter, secrets as
//! Secrets Manager references). Slack's side is the signed-request driver of the stand-ins,
//! talking to a function URL stand-in that turns each request into a function URL event; the
//! queue is a real SQS queue on moto, delivered by an event source mapping stand-in.
//!
//! Needs the stand-ins: `make test`, or `scripts/standins.sh start && source .local/standins.env`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use powerpole::domain::{SessionId, SlackUserId, State};
use powerpole::notify::messages::actions;
use powerpole::store::dynamo::DynamoStore;
use powerpole::store::Store;
use powerpole_lambda_testkit::{EventSourceMapping, Function, FunctionUrl, RuntimeApi};
use powerpole_standins::driver::{ButtonClick, SlackDriver, SlashCommand, Tamper};
use powerpole_standins::slack::SlackStandin;
use serde_json::Value;

const SIGNING_SECRET: &str = "powerpole-lambda-test-signing-secret";
const BOT_TOKEN: &str = "xoxb-powerpole-lambda-test";
const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const APPROVALS: &str = "C0APPROVALS";
const ACCESS: &str = "C0ACCESS";

fn unique() -> String {
    SessionId::random().as_str().trim_start_matches("pp-").to_string()
}

async fn aws() -> aws_config::SdkConfig {
    powerpole_standins::moto_url_from_env();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// The part of powerpole.toml an operator writes; everything the Terraform knows comes from
/// `POWERPOLE_*__*` variables instead (see [`World::function_env`]).
fn operator_toml(api_url: &str) -> String {
    format!(
        r#"
[slack]
api_url = "{api_url}/"

[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
schemas = ["billing"]
approvers = ["{BOB}"]
approvals_channel = "{APPROVALS}"
max_duration = "4h"
"#
    )
}

/// Everything around the two functions, named uniquely (moto is shared by every test).
struct World {
    id: String,
    slack: SlackStandin,
    store: Arc<dyn Store>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    dlq_url: String,
    config_parameter: String,
    slack_secret_arn: String,
    admin_secret_arn: String,
    table: String,
}

impl World {
    async fn new() -> World {
        let aws = aws().await;
        let id = unique();
        let slack = SlackStandin::start().await;
        slack.add_user(ALICE, "alice@example.com", "Europe/Berlin");
        slack.add_user(BOB, "bob@example.com", "Europe/London");

        let table = format!("powerpole-lambda-test-{id}");
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        powerpole::store::dynamo::create_table(&dynamodb, &table).await.expect("moto creates the table");
        let store_config = powerpole::config::StoreConfig { table: table.clone(), session_retention: "400d".parse().unwrap(), audit_retention: "400d".parse().unwrap(), unavailable_retry_for: "2m".parse().unwrap() };
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb, &store_config));

        let secrets = aws_sdk_secretsmanager::Client::new(&aws);
        let slack_secret = serde_json::json!({"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN}).to_string();
        let created = secrets.create_secret().name(format!("powerpole-lambda-test/{id}/slack")).secret_string(slack_secret).send().await.expect("moto stores the Slack secret");
        let slack_secret_arn = created.arn().expect("an ARN").to_string();
        let admin = secrets
            .create_secret()
            .name(format!("powerpole-lambda-test/{id}/billing-admin"))
            .secret_string(r#"{"host":"127.0.0.1","port":3306,"username":"admin","password":"unused"}"#)
            .send()
            .await
            .expect("moto stores the admin secret");
        let admin_secret_arn = admin.arn().expect("an ARN").to_string();

        let config_parameter = format!("/powerpole-lambda-test/{id}/config");
        aws_sdk_ssm::Client::new(&aws)
            .put_parameter()
            .name(&config_parameter)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(operator_toml(&slack.api_url()))
            .send()
            .await
            .expect("moto stores the configuration parameter");

        let sqs = aws_sdk_sqs::Client::new(&aws);
        use aws_sdk_sqs::types::QueueAttributeName as Q;
        let dlq = sqs.create_queue().queue_name(format!("powerpole-lambda-test-{id}-dlq")).send().await.expect("moto creates the DLQ");
        let dlq_url = dlq.queue_url().expect("a URL").to_string();
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
        let queue = sqs
            .create_queue()
            .queue_name(format!("powerpole-lambda-test-{id}"))
            .attributes(Q::RedrivePolicy, redrive)
            .attributes(Q::VisibilityTimeout, "60")
            .send()
            .await
            .expect("moto creates the queue");
        let queue_url = queue.queue_url().expect("a URL").to_string();
        let queue_arn = queue_arn(&sqs, &queue_url).await;
        World { id, slack, store, sqs, queue_url, queue_arn, dlq_url, config_parameter, slack_secret_arn, admin_secret_arn, table }
    }

    /// What lambda.tf gives both functions (`local.lambda_environment`), plus what AWS gives
    /// every function (region, credentials) and the stand-ins' endpoint.
    fn function_env(&self, queue_url: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let vars = [
            ("AWS_MAX_ATTEMPTS", "2".to_string()),
            ("RUST_LOG", "info".to_string()),
            ("POWERPOLE_CONFIG", format!("ssm:{}", self.config_parameter)),
            ("POWERPOLE_FOLLOW_UP_QUEUE_URL", queue_url.to_string()),
            ("POWERPOLE_STORE__TABLE", self.table.clone()),
            ("POWERPOLE_SLACK__MODE", "http".to_string()),
            ("POWERPOLE_SLACK__SIGNING_SECRET__SECRETS_MANAGER", self.slack_secret_arn.clone()),
            ("POWERPOLE_SLACK__SIGNING_SECRET__KEY", "signing_secret".to_string()),
            ("POWERPOLE_SLACK__BOT_TOKEN__SECRETS_MANAGER", self.slack_secret_arn.clone()),
            ("POWERPOLE_SLACK__BOT_TOKEN__KEY", "bot_token".to_string()),
            ("POWERPOLE_BASTION__INSTANCE_PROFILE", "powerpole-bastion".to_string()),
            ("POWERPOLE_BASTION__INSTANCE_TYPE", "t3.micro".to_string()),
            ("POWERPOLE_BASTION__AMI_PARAMETER", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".to_string()),
            ("POWERPOLE_TARGETS__BILLING__ADMIN_SECRET", self.admin_secret_arn.clone()),
            ("POWERPOLE_TARGETS__BILLING__PORT", "3306".to_string()),
            ("POWERPOLE_TARGETS__BILLING__SECURITY_GROUP_ID", "sg-0a1b2c3d4e5f60001".to_string()),
            ("POWERPOLE_TARGETS__BILLING__SUBNET_ID", "subnet-0a1b2c3d4e5f60001".to_string()),
        ];
        env.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        env
    }

    /// Both functions running, the handler behind a function URL, the worker behind the queue.
    async fn deploy(&self, handler_queue_url: &str) -> Deployed {
        let handler_runtime = RuntimeApi::start(&format!("powerpole-{}-slack-handler", self.id)).await;
        let worker_runtime = RuntimeApi::start(&format!("powerpole-{}-slack-worker", self.id)).await;
        let handler = Function::start(Path::new(env!("CARGO_BIN_EXE_slack-handler")), handler_runtime.clone(), &self.function_env(handler_queue_url)).await;
        let worker = Function::start(Path::new(env!("CARGO_BIN_EXE_slack-worker")), worker_runtime.clone(), &self.function_env(&self.queue_url)).await;
        let url = FunctionUrl::start(handler_runtime).await;
        let driver = SlackDriver::new(&url.base_url(), SIGNING_SECRET).with_slack(&self.slack);
        let queue = EventSourceMapping { sqs: self.sqs.clone(), queue_url: self.queue_url.clone(), queue_arn: self.queue_arn.clone(), runtime: worker_runtime, batch_size: 10 };
        Deployed { handler, worker, url, driver, queue }
    }

    async fn session(&self, id: &SessionId) -> Option<powerpole::domain::Session> {
        self.store.get(id).await.expect("the store answers")
    }

    /// Messages now on `queue_url`, read without taking them (visibility timeout 0).
    async fn peek(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let answer = self.sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).visibility_timeout(0).send().await.expect("ReceiveMessage");
        answer.messages.unwrap_or_default()
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    attributes.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).expect("a queue ARN").to_string()
}

struct Deployed {
    handler: Function,
    worker: Function,
    url: FunctionUrl,
    driver: SlackDriver,
    queue: EventSourceMapping,
}

impl Deployed {
    fn logs(&self) -> String {
        format!("--- slack-handler log:\n{}\n--- slack-worker log:\n{}", self.handler.logs(), self.worker.logs())
    }
}

/// The `pp-...` session id in an answer's text.
fn session_in(text: &str) -> SessionId {
    let at = text.find("pp-").unwrap_or_else(|| panic!("no session id in {text:?}"));
    SessionId::parse(&text[at..at + 13]).unwrap_or_else(|e| panic!("{e}: in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_slash_command_is_answered_through_the_function_url_and_its_follow_up_runs_once_in_the_worker() {
    let world = World::new().await;
    let deployed = world.deploy(&world.queue_url).await;

    // Slack posts the slash command; the function URL turns it into a payload-2.0 event.
    let reply = deployed.driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-42 check the ledger")).await.expect("the URL answers");
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, deployed.logs());
    let answer = reply.json().unwrap_or_else(|| panic!("a JSON answer: {}", reply.body));
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    let text = answer["text"].as_str().unwrap_or_default().to_string();
    let id = session_in(&text);
    let event = deployed.url.events.lock().unwrap()[0].clone();
    assert_eq!((event["version"].as_str(), event["rawPath"].as_str()), (Some("2.0"), Some("/slack/commands")), "{event}");
    assert_eq!(event["isBase64Encoded"], true, "a form body reaches the function base64-encoded");

    // The answer did nothing: no session, no card; the follow-up waits on the queue.
    assert!(world.session(&id).await.is_none(), "the acknowledgement must not store anything");
    assert!(world.slack.calls_to("chat.postMessage").is_empty(), "the acknowledgement must not post anything");
    let queued = world.peek(&world.queue_url).await;
    assert_eq!(queued.len(), 1, "one follow-up is queued\n{}", deployed.logs());
    let queued_body = queued[0].body().expect("a body").to_string();
    let deferred: Value = serde_json::from_str(&queued_body).expect("the message is JSON");
    assert_eq!(deferred["endpoint"], "commands");

    // The event source mapping delivers it to the worker, which files the request.
    let delivery = deployed.queue.poll_once(Duration::from_secs(2)).await;
    assert_eq!((delivery.delivered.len(), delivery.failed.len()), (1, 0), "{delivery:?}\n{}", deployed.logs());
    let cards: Vec<_> = world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == APPROVALS).collect();
    assert_eq!(cards.len(), 1, "the approval card is posted once\n{}", deployed.logs());
    let stored = world.session(&id).await.expect("the worker stored the session the answer named");
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.requester.slack_id, SlackUserId::parse(ALICE).unwrap());
    assert_eq!(stored.slack.approval_ts.as_deref(), cards[0].response["ts"].as_str(), "the card's place is stored");

    // SQS delivers a message again now and then: the same request is not filed twice.
    world.sqs.send_message().queue_url(&world.queue_url).message_body(&queued_body).send().await.expect("SendMessage");
    let again = deployed.queue.poll_once(Duration::from_secs(2)).await;
    assert_eq!((again.delivered.len(), again.failed.len()), (1, 0), "a repeat is done (as nothing), not failed: {again:?}");
    let cards_after = world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == APPROVALS).count();
    assert_eq!(cards_after, 1, "no second card\n{}", deployed.logs());

    // Bob approves on the card: an interaction, acknowledged at once and applied by the worker.
    let click = ButtonClick::on(&cards[0], actions::APPROVE, BOB, "bob").expect("the card has an Approve button");
    let clicked = deployed.driver.interaction(deployed.driver.block_actions(&click)).await.expect("the URL answers");
    assert_eq!(clicked.status, 200, "{}\n{}", clicked.body, deployed.logs());
    assert_eq!(world.session(&id).await.map(|s| s.state), Some(State::Pending), "the click's acknowledgement decides nothing");
    let delivery = deployed.queue.poll_once(Duration::from_secs(2)).await;
    assert_eq!((delivery.delivered.len(), delivery.failed.len()), (1, 0), "{delivery:?}\n{}", deployed.logs());
    let approved = world.session(&id).await.expect("the session");
    assert_eq!(approved.state, State::Approved, "{}", deployed.logs());
    assert!(world.slack.calls_to("chat.update").iter().any(|c| c.param_str("ts") == stored.slack.approval_ts.as_deref()), "the card is updated in place");
    assert!(world.slack.calls_to("chat.postMessage").iter().any(|c| c.response["channel"] == format!("D{ALICE}")), "the requester is told");
    assert!(world.peek(&world.queue_url).await.is_empty(), "the queue is empty");
    assert!(world.peek(&world.dlq_url).await.is_empty(), "nothing was dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_queue_does_not_take_is_answered_with_try_again_and_nothing_happens() {
    let world = World::new().await;
    let missing_queue = format!("{}/{}/powerpole-lambda-test-{}-missing", std::env::var("AWS_ENDPOINT_URL").unwrap(), powerpole_lambda_testkit::ACCOUNT, world.id);
    let deployed = world.deploy(&missing_queue).await;

    // Unsigned: refused by the router before anything else, as under `serve`.
    let refused = deployed.driver.tampered(Tamper::Unsigned).command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h x")).await.expect("the URL answers");
    assert_eq!(refused.status, 401, "{}", refused.body);

    let reply = deployed.driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-43 the queue is gone")).await.expect("the URL answers");
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, deployed.logs());
    let answer = reply.json().expect("a JSON answer");
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap_or_default().contains("try again"), "{answer}");
    assert!(!answer["text"].as_str().unwrap_or_default().contains("pp-"), "no session is announced: {answer}");

    // A bad request (unknown target) is still answered inline and needs no queue at all.
    let problem = deployed.driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request payments READ 1h x")).await.expect("the URL answers");
    assert!(problem.body.contains("there is no target"), "{}", problem.body);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let alice = SlackUserId::parse(ALICE).unwrap();
    assert!(world.store.by_requester(&alice, 10).await.expect("the store answers").is_empty(), "nothing was stored");
    assert!(world.slack.calls().iter().all(|c| c.method != "chat.postMessage"), "nothing was posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_message_not_signed_by_slack_is_refused_by_the_worker() {
    let world = World::new().await;
    let deployed = world.deploy(&world.queue_url).await;
    let body = "token=x&team_id=T0&channel_id=C0ACCESS&user_id=U0ALICE&user_name=alice&command=%2Fpowerpole&text=request+billing+READ+1h+forged&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fr&trigger_id=1.2.3";
    let now = chrono::Utc::now().timestamp();
    let forged = serde_json::json!({
        "endpoint": "commands",
        "request_id": "0123456789abcdef",
        "timestamp": now.to_string(),
        "signature": powerpole_standins::sign::signature("not-the-signing-secret", now, body.as_bytes()),
        "body": body,
    });
    let sent = world.sqs.send_message().queue_url(&world.queue_url).message_body(forged.to_string()).send().await.expect("SendMessage");
    let delivery = deployed.queue.poll_once(Duration::from_secs(2)).await;
    assert_eq!(delivery.failed, vec![sent.message_id().unwrap().to_string()], "reported as failed, so SQS retries it and then dead-letters it\n{}", deployed.logs());
    assert!(deployed.worker.logs().contains("not signed by Slack"), "{}", deployed.logs());
    let alice = SlackUserId::parse(ALICE).unwrap();
    assert!(world.store.by_requester(&alice, 10).await.expect("the store answers").is_empty(), "nothing was stored");
    assert!(world.slack.calls().is_empty(), "Slack was not called: {:?}", world.slack.calls());
}

/// A slash command as Slack would sign it at `signed_at`, wrapped as the handler queues it.
fn queued_command(request_id: &str, signed_at: i64, body: &str) -> String {
    serde_json::json!({
        "endpoint": "commands",
        "request_id": request_id,
        "timestamp": signed_at.to_string(),
        "signature": powerpole_standins::sign::signature(SIGNING_SECRET, signed_at, body.as_bytes()),
        "body": body,
    })
    .to_string()
}

const REPLAYED_COMMAND: &str = "token=x&team_id=T0&channel_id=C0ACCESS&user_id=U0ALICE&user_name=alice&command=%2Fpowerpole&text=request+billing+READ+1h+INC-44+replayed&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fr&trigger_id=1.2.3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_older_than_the_queue_bound_is_refused_and_nothing_happens() {
    let world = World::new().await;
    let deployed = world.deploy(&world.queue_url).await;
    // Correctly signed with the real secret, but signed longer ago than MAX_QUEUED_AGE.
    let signed_at = chrono::Utc::now().timestamp() - powerpole::slack::deferred::MAX_QUEUED_AGE.num_seconds() - 60;
    let old = queued_command("00000000000000aa", signed_at, REPLAYED_COMMAND);
    let sent = world.sqs.send_message().queue_url(&world.queue_url).message_body(old).send().await.expect("SendMessage");
    let delivery = deployed.queue.poll_once(Duration::from_secs(2)).await;
    assert_eq!(delivery.failed, vec![sent.message_id().unwrap().to_string()], "refused (and so dead-lettered in the end)\n{}", deployed.logs());
    assert!(deployed.worker.logs().contains("more than the 3600 s a queued request may wait"), "{}", deployed.logs());
    let alice = SlackUserId::parse(ALICE).unwrap();
    assert!(world.store.by_requester(&alice, 10).await.expect("the store answers").is_empty(), "nothing was stored");
    assert!(world.slack.calls().is_empty(), "Slack was not called: {:?}", world.slack.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signed_request_queued_twice_under_different_ids_files_one_session() {
    let world = World::new().await;
    let deployed = world.deploy(&world.queue_url).await;
    let signed_at = chrono::Utc::now().timestamp();
    // The same signed request in two messages whose request ids (and so SQS message ids) differ:
    // what someone who can copy a queued message and edit its envelope would send.
    for request_id in ["00000000000000bb", "00000000000000cc"] {
        let message = queued_command(request_id, signed_at, REPLAYED_COMMAND);
        world.sqs.send_message().queue_url(&world.queue_url).message_body(message).send().await.expect("SendMessage");
    }
    let mut delivered = 0;
    for _ in 0..4 {
        let delivery = deployed.queue.poll_once(Duration::from_secs(2)).await;
        assert!(delivery.failed.is_empty(), "{delivery:?}\n{}", deployed.logs());
        delivered += delivery.delivered.len();
        if delivered == 2 {
            break;
        }
    }
    assert_eq!(delivered, 2, "both messages were delivered\n{}", deployed.logs());
    let alice = SlackUserId::parse(ALICE).unwrap();
    let filed = world.store.by_requester(&alice, 10).await.expect("the store answers");
    assert_eq!(filed.len(), 1, "one session, not one per message id: {filed:?}\n{}", deployed.logs());
    let cards = world.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == APPROVALS).count();
    assert_eq!(cards, 1, "one approval card\n{}", deployed.logs());
}
