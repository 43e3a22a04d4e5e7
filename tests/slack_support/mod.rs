//! Shared by the `slack_*` integration tests and the `slack_ack` benchmark: starts the service's
//! router on a free loopback port (what `powerpole serve` runs), wired to the real DynamoDB store
//! on moto (a fresh table per app) and to the recording Slack stand-in, with a driver that signs
//! requests as Slack does.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use powerpole::config::{Config, StoreConfig};
use powerpole::domain::{AuditKind, Session, SessionId, SlackUserId};
use powerpole::notify::{Notifier, SlackNotifier};
use powerpole::secrets::Secret;
use powerpole::slack::{serve, FollowUpPool, SlackApp};
use powerpole::store::dynamo::DynamoStore;
use powerpole::store::Store;
use powerpole::workflow::{SystemClock, Workflow};
use powerpole_standins::driver::{ButtonClick, DriverResponse, SlackDriver, SlashCommand};
use powerpole_standins::slack::{RecordedCall, SlackStandin};
use tokio::sync::Notify;

pub const SECRET: &str = "powerpole-test-signing-secret";
pub const SOON: Duration = Duration::from_secs(10);
pub const APPROVALS: &str = "C0APPROVALS";
pub const ACCESS: &str = "C0ACCESS";

/// Requester, approvers and a bystander.
pub const ALICE: &str = "U0ALICE";
pub const BOB: &str = "U0BOB";
pub const CAROL: &str = "U0CAROL";
pub const DAVE: &str = "U0DAVE";
/// Members of the `orders` approver group.
pub const ERIN: &str = "U0ERIN";
pub const GROUP: &str = "S0DBAS";

/// `billing`: one approval from bob, carol or alice (alice is also an approver, to test that a
/// requester never approves their own request). `orders`: two approvals (2-of-N) from bob,
/// carol or the group S0DBAS.
pub fn config_text(api_url: &str) -> String {
    format!(
        r#"
[slack]
api_url = "{api_url}/"
signing_secret = {{ env = "UNUSED_IN_TESTS" }}

[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
description = "Billing"
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
reader_endpoint = "billing.cluster-ro-abc.eu-west-1.rds.amazonaws.com"
instance_endpoints = ["billing-1.abc.eu-west-1.rds.amazonaws.com", "billing-2.abc.eu-west-1.rds.amazonaws.com"]
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["{BOB}", "{CAROL}", "{ALICE}"]
approvals_channel = "{APPROVALS}"
max_duration = "4h"

[targets.orders]
writer_endpoint = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
schemas = ["orders"]
admin_secret = "powerpole/orders-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["{BOB}", "{CAROL}"]
approver_group = "{GROUP}"
required_approvals = 2
approvals_channel = "{APPROVALS}"
max_duration = "2h"
"#
    )
}

/// A running service and everything around it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub driver: SlackDriver,
    pub slack: SlackStandin,
    pub store: Arc<dyn Store>,
    pub app: Arc<SlackApp>,
}

/// Installs the TLS provider (two are linked in; see STACK-NOTES) once per test binary.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// An SDK client for moto with few retries (moto answers what it lacks with a 500).
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    powerpole_standins::moto_url_from_env();
    install_crypto();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// A store on moto with a fresh table of its own (shared moto: never reset it).
pub async fn fresh_store() -> Arc<dyn Store> {
    let client = dynamodb().await;
    let table = format!("powerpole-slack-test-{}", SessionId::random());
    powerpole::store::dynamo::create_table(&client, &table).await.unwrap_or_else(|e| panic!("creating {table} on moto: {e}"));
    let config = StoreConfig { table, session_retention: "400d".parse().expect("valid"), audit_retention: "400d".parse().expect("valid"), unavailable_retry_for: "2m".parse().expect("valid") };
    Arc::new(DynamoStore::new(client, &config))
}

/// Starts the service against the stand-ins.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_pool(None).await
}

/// As [`spawn_app`], with follow-ups running through `pool` (else the configured default).
pub async fn spawn_app_with_pool(pool: Option<Arc<FollowUpPool>>) -> TestApp {
    spawn_app_with(pool, |text| text).await
}

/// As [`spawn_app_with_pool`], with the test config changed by `edit` first.
pub async fn spawn_app_with(pool: Option<Arc<FollowUpPool>>, edit: impl FnOnce(String) -> String) -> TestApp {
    install_crypto();
    let slack = SlackStandin::start().await;
    for (id, email, tz) in [
        (ALICE, "alice@example.com", "Europe/Berlin"),
        (BOB, "bob@example.com", "Europe/London"),
        (CAROL, "carol@example.com", "America/New_York"),
        (DAVE, "dave@example.com", "UTC"),
        (ERIN, "erin@example.com", "Asia/Tokyo"),
    ] {
        slack.add_user(id, email, tz);
    }
    slack.add_group(GROUP, &[ERIN]);
    let config = Arc::new(Config::from_toml_str(&edit(config_text(&slack.api_url()))).expect("the test config is valid"));
    let store = fresh_store().await;
    let notifier: Arc<dyn Notifier> = Arc::new(SlackNotifier::new(&config.slack.api_url, "xoxb-powerpole-test"));
    let workflow = Workflow { config, store: store.clone(), clock: Arc::new(SystemClock), wake: Arc::new(Notify::new()) };
    let app = match pool {
        Some(pool) => SlackApp::with_pool(workflow, notifier, Secret::new(SECRET), pool),
        None => SlackApp::new(workflow, notifier, Secret::new(SECRET)),
    };
    let listening = serve::listen(app.clone(), "127.0.0.1:0").await.expect("the service listens");
    let driver = SlackDriver::new(&format!("http://{}", listening.addr), SECRET).with_slack(&slack);
    TestApp { addr: listening.addr, driver, slack, store, app }
}

impl TestApp {
    pub async fn command(&self, user: &str, text: &str) -> DriverResponse {
        self.driver.command(SlashCommand::new(user, &user.to_lowercase(), ACCESS, text)).await.expect("the service answers")
    }

    /// Files a request by typing it, and returns the stored session and the posted card.
    pub async fn file_request(&self, user: &str, text: &str) -> (Session, RecordedCall) {
        let before = self.slack.calls_to("chat.postMessage").len();
        let reply = self.command(user, text).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let cards = self.slack.wait_for("chat.postMessage", before + 1, SOON).await.expect("the approval card is posted");
        let card = cards[before].clone();
        let id = card.blocks().iter().flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default()).find_map(|e| e["value"].as_str().map(str::to_owned)).expect("the card carries the session id");
        let id = SessionId::parse(&id).expect("a session id");
        let session = self.wait_for_session(&id, |s| s.slack.approval_ts.is_some()).await;
        (session, card)
    }

    /// Clicks `action` on a posted message as `user`.
    pub async fn click(&self, message: &RecordedCall, action: &str, user: &str) -> DriverResponse {
        let click = ButtonClick::on(message, action, user, &user.to_lowercase()).expect("the message has the button");
        self.driver.interaction(self.driver.block_actions(&click)).await.expect("the service answers")
    }

    /// Reads the session until `done` holds. The store has no change feed, so this polls it (at
    /// most a few times: every caller first waits for a Slack call that follows the write).
    pub async fn wait_for_session(&self, id: &SessionId, done: impl Fn(&Session) -> bool) -> Session {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            if let Some(s) = self.store.get(id).await.expect("the store answers") {
                if done(&s) {
                    return s;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "session {id} did not reach the expected state");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn audit_kinds(&self, id: &SessionId) -> Vec<AuditKind> {
        self.store.audit_trail(id).await.expect("the trail is readable").into_iter().map(|r| r.event.kind).collect()
    }

    pub async fn sessions_of(&self, user: &str) -> Vec<Session> {
        let user = SlackUserId::parse(user).expect("a user id");
        self.store.by_requester(&user, 50).await.expect("the store answers")
    }

    /// The ephemeral answers posted to response URLs, as text.
    pub fn ephemeral_texts(&self) -> Vec<String> {
        self.slack.calls_to("response_url").iter().map(|c| c.param_str("text").unwrap_or_default().to_string()).collect()
    }

    /// Waits until `n` ephemeral answers were posted, and returns their texts.
    pub async fn wait_for_ephemeral(&self, n: usize) -> Vec<String> {
        self.slack.wait_for("response_url", n, SOON).await.expect("an ephemeral answer is posted");
        self.ephemeral_texts()
    }

    /// Posts (not updates) into a channel, DMs included (`D` + user id on the stand-in).
    pub fn posts_to(&self, channel: &str) -> Vec<RecordedCall> {
        self.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == channel).collect()
    }
}
