//! The `sweeper` binary as Lambda runs it: polling a Lambda Runtime API stand-in, configured as the
//! Terraform module configures it (the operator's `powerpole.toml` in one Parameter Store
//! parameter, the module's fragments under a path, nothing per target in the environment),
//! invoked with the event an EventBridge schedule delivers; it logs JSON lines and writes its
//! metrics as CloudWatch embedded-metric-format lines.
//!
//! Needs the stand-ins: `make test`, or `scripts/standins.sh start && source .local/standins.env`.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};
use powerpole::domain::{Actor, AuditEvent, AuditKind, DbUsername, Outcome, Requester, Role, Session, SessionId, SlackUserId, State, TargetName, UsernamePolicy};
use powerpole::store::dynamo::DynamoStore;
use powerpole::store::Store;
use powerpole_lambda_testkit::{scheduled_event, Function, Invoked, RuntimeApi};
use powerpole_standins::slack::SlackStandin;

const ALICE: &str = "U0ALICE";

fn config_toml(api_url: &str) -> String {
    format!(
        r#"
[slack]
api_url = "{api_url}/"
bot_token = {{ env = "SLACK_BOT_TOKEN" }}

[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
schemas = ["billing"]
approvers = ["U0BOB"]
approvals_channel = "C0APPROVALS"
"#
    )
}

/// What infra/modules/powerpole/config_layers.tf writes: the table, and per target what only
/// the module knows.
fn module_fragments(table: &str) -> Vec<(&'static str, String)> {
    vec![
        ("common", format!("[store]\ntable = \"{table}\"\n")),
        (
            "target-billing",
            "[targets.billing]\nadmin_secret = \"powerpole/billing-admin\"\nport = 3306\nsecurity_group_id = \"sg-0a1b2c3d4e5f60001\"\nsubnet_id = \"subnet-0a1b2c3d4e5f60001\"\n".to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_event_runs_one_tick_that_does_the_due_work() {
    powerpole_standins::moto_url_from_env();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let slack = SlackStandin::start().await;
    slack.add_user(ALICE, "alice@example.com", "Europe/Berlin");
    let id = SessionId::random();
    let table = format!("powerpole-sweeper-test-{}", id.as_str());
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    powerpole::store::dynamo::create_table(&dynamodb, &table).await.expect("moto creates the table");
    let store_config = powerpole::config::StoreConfig { table: table.clone(), session_retention: "400d".parse().unwrap(), audit_retention: "400d".parse().unwrap(), unavailable_retry_for: "2m".parse().unwrap() };
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb, &store_config));

    // A request nobody decided: filed two hours ago, with the default one-hour pending timeout.
    let alice = SlackUserId::parse(ALICE).unwrap();
    let requester = Requester {
        slack_id: alice.clone(),
        email: "alice@example.com".into(),
        db_user: DbUsername::from_slack_email("alice@example.com", &UsernamePolicy::default()).unwrap(),
        tz: None,
    };
    let filed = Utc::now() - Duration::hours(2);
    let session = Session::new(id.clone(), requester, TargetName::parse("billing").unwrap(), Role::Read, "1h".parse().unwrap(), "INC-9".into(), filed, "1h".parse().unwrap());
    store.create(&session, &AuditEvent::ok(AuditKind::Requested, Actor::User(alice), filed, "INC-9")).await.expect("the session is stored");

    // The configuration in Parameter Store, as the module writes it.
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let base = format!("/powerpole-sweeper-test-{}/config", id.as_str());
    let put = |name: String, value: String| {
        let ssm = ssm.clone();
        async move {
            ssm.put_parameter().name(name).value(value).r#type(aws_sdk_ssm::types::ParameterType::SecureString).overwrite(true).send().await.expect("moto stores the parameter");
        }
    };
    put(base.clone(), config_toml(&slack.api_url())).await;
    for (name, text) in module_fragments(&table) {
        put(format!("{base}.d/{name}"), text).await;
    }
    let mut env: Vec<(String, String)> = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    env.extend(
        [
            ("AWS_MAX_ATTEMPTS", "2".to_string()),
            ("RUST_LOG", "info".to_string()),
            ("POWERPOLE_CONFIG", format!("ssm:{base}")),
            ("POWERPOLE_CONFIG_LAYERS", format!("ssm:{base}.d")),
            ("SLACK_BOT_TOKEN", "xoxb-powerpole-sweeper-test".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let runtime = RuntimeApi::start(&format!("powerpole-{}-sweeper", id.as_str())).await;
    let sweeper = Function::start(Path::new(env!("CARGO_BIN_EXE_sweeper")), runtime, &env).await;

    // The schedule fires: one tick closes the request and tells Alice.
    let answer = sweeper.invoke(scheduled_event("powerpole-sweeper", Utc::now())).await;
    let summary = match answer {
        Invoked::Response(v) => v,
        Invoked::Error(e) => panic!("the tick failed: {e}\n{}", sweeper.logs()),
    };
    assert_eq!(summary["acted"], 1, "{summary}\n{}", sweeper.logs());
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    let closed = store.get(&id).await.expect("the store answers").expect("the session");
    assert_eq!(closed.state, State::Closed(Outcome::PendingTimedOut), "{}", sweeper.logs());
    let dms: Vec<_> = slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == format!("D{ALICE}")).collect();
    assert_eq!(dms.len(), 1, "the requester is told once: {:?}", slack.calls());

    // The next tick finds nothing due: ticks repeat nothing.
    let again = sweeper.invoke(scheduled_event("powerpole-sweeper", Utc::now())).await.expect_response("the second tick");
    assert_eq!(again["acted"], 0, "{again}");
    assert_eq!(slack.calls_to("chat.postMessage").len(), 1);

    // Every line the function wrote is JSON: its logs, and its metrics in embedded metric
    // format (what CloudWatch turns into the metrics the alarms watch).
    let logs = sweeper.logs();
    let lines: Vec<serde_json::Value> = logs.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "sweeper tick done"), "JSON log lines: {logs}");
    let emf: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    let pending = emf.iter().filter(|l| l["State"] == "pending").collect::<Vec<_>>();
    assert_eq!(pending.len(), 2, "one Sessions line per tick: {logs}");
    assert_eq!(pending[1]["Sessions"], serde_json::json!(0.0), "no pending session after the tick: {logs}");
    let directive = &pending[1]["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Powerpole");
    assert_eq!(directive["Dimensions"], serde_json::json!([["Deployment", "State"]]));
    assert_eq!(pending[1]["Deployment"], "test");
    assert!(emf.iter().any(|l| l["Adapter"] == "dynamodb" && l["Operation"] == "due" && l.get("CallSeconds").is_some()), "the store's latency: {logs}");
}
