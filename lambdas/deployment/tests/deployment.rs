//! The deployment test: powerpole as `infra/modules/powerpole` deploys it, run end to end.
//!
//! - **The four functions** (`slack-handler`, `slack-worker`, `sweeper`, `export`): the real
//!   binaries, built from their crates' own source files, each started as Lambda starts it
//!   against the Runtime API stand-in of `lambdas/testkit` (`RuntimeApi`, `Function`), with the
//!   environment `lambda.tf` and `export.tf` give it (read from those files), plus what Lambda
//!   itself gives a function: region and the role's credentials. Two more variables point the
//!   AWS SDK at the stand-ins: `AWS_ENDPOINT_URL` (moto) and `AWS_ENDPOINT_URL_SSM` (the SSM
//!   stand-in, which answers `DescribeInstanceInformation` from moto's EC2 state and passes
//!   every other SSM call to moto unchanged).
//! - **Their roles**: one moto IAM role per function, as `iam.tf`/`export.tf` make them (the
//!   worker and the sweeper each their own role with the orchestrator policy), whose inline
//!   policy is the module's file of `policies/` rendered as `templatefile()` renders it with
//!   this deployment's values (`powerpole_deployment_test::terraform`), given to moto as moto can
//!   evaluate it (`policy::as_moto_evaluates`: actions exactly as written; resources kept for S3
//!   and SQS, `*` for the rest; conditions dropped). A moto server of the test's own runs with
//!   IAM enforcement switched on once the set-up is done, so an action the code calls and the
//!   policy lacks is refused, and the test fails naming the role and the action.
//! - **What moto does not evaluate**, covered here instead: resources of the services other
//!   than S3 and SQS (each call the functions make is checked against the rendered policy with
//!   `policy::allows`, resource ARN and all, in `every_resource_the_functions_used_is_in_their_rendered_policy`
//!   below), and conditions (`tests/policies.rs`: `kms:ViaService`, the `RunInstances` shape and
//!   Denies, the tag conditions of `CreateTags` and `TerminateInstances`, `aws:RequestedRegion`).
//!   Not covered by moto at all: `iam:PassRole`, KMS behind Parameter Store / Secrets Manager /
//!   DynamoDB / S3 (so neither the powerpole key nor the audit bucket's own key,
//!   `audit_kms_key_arn`, is exercised; their `kms:ViaService` conditions are in
//!   `tests/policies.rs`), `ssm:DescribeInstanceInformation` (answered by the SSM stand-in), and
//!   the export role's `s3:if-none-match` condition on `s3:PutObject` (moto drops it with the
//!   other conditions; `tests/policies.rs` checks the rendered statement requires `*`, and the
//!   trail below checks a redelivery writes no second version).
//! - **The configuration**: `infra/examples/complete/powerpole.toml.example` (the operator's
//!   file, `var.powerpole_toml`) in the parameter `config.tf` writes, with `[deployment]` as that
//!   file's heredoc adds it, and the fragments of `config_layers.tf` (rendered from its heredoc
//!   and its per-target `join`), with the names of `terraform.tfvars.example`. Changed for the
//!   stand-ins, each said in [`for_the_stand_ins`]: Slack's API URL, and the admin connection
//!   (the local MariaDB has no TLS, and is MariaDB).
//! - **Slack**: signed requests through a function URL stand-in (payload 2.0 events), the
//!   follow-up queue on moto delivered by an event source mapping stand-in under the worker's
//!   role, the Slack Web API stand-in. Time passes by moving a session's deadline in the table
//!   (the functions run on the system clock).
//! - **The trail**: the table's stream read under the export role's credentials (as the event
//!   source mapping reads it with the function's role), filtered as the mapping's filter does,
//!   delivered to `export`, which writes to an Object Lock bucket on moto; then the hourly
//!   re-export (`{"action": "redrive"}`, export.tf's EventBridge rule) under the same role, which
//!   scans the table and writes the one event the stream delivery left out.
//!
//! Needs the stand-ins (`make test`, or `scripts/standins.sh start && source .local/standins.env`):
//! MariaDB, and moto's installation in `.local/venv-moto`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials as SdkCredentials;
use mysql_async::prelude::Queryable;
use powerpole::domain::{AuditKind, Outcome, Session, SessionId, State};
use powerpole::notify::messages::actions;
use powerpole::store::dynamo::DynamoStore;
use powerpole::store::Store;
use powerpole_deployment_test::moto::{Moto, ACCOUNT};
use powerpole_deployment_test::sigv4::{self, Credentials};
use powerpole_deployment_test::terraform::{self, Refs};
use powerpole_deployment_test::model::{render_configuration, template_vars, Known, NAME_PREFIX};
use powerpole_deployment_test::{example_dir, module_dir, policy, tfvars};
use powerpole_lambda_testkit::{scheduled_event, EventSourceMapping, Function, FunctionUrl, Invoked, RuntimeApi};
use powerpole_standins::driver::{ButtonClick, InputValue, SlackDriver, SlashCommand, ViewSubmission};
use powerpole_standins::slack::{RecordedCall, SlackStandin};
use powerpole_standins::ssm::SsmStandin;
use serde_json::{json, Value};

const SIGNING_SECRET: &str = "powerpole-deployment-test-signing-secret";
const BOT_TOKEN: &str = "xoxb-powerpole-deployment-test";
/// The requester (a member of the example's on-call group).
const ALICE: &str = "U0ALICE";
/// The example's approvers and channels.
const BOB: &str = "U0123ABCDE";
const CAROL: &str = "U0456FGHIJ";
const APPROVALS: &str = "C0123APPROVALS";
const ONCALL: &str = "S0123ONCALL";
const ACCESS: &str = "C0ACCESS";


fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

fn mysql_url() -> String {
    std::env::var("POWERPOLE_TEST_MYSQL_URL").expect("POWERPOLE_TEST_MYSQL_URL is not set: run `make test`, or `scripts/standins.sh start && source .local/standins.env`")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces the one line of `text` that starts with `prefix` (after indentation).
fn replace_line(text: &str, prefix: &str, with: &str) -> String {
    let matching = text.lines().filter(|l| l.trim_start().starts_with(prefix)).count();
    assert_eq!(matching, 1, "the example has {matching} lines starting `{prefix}`; the test replaces exactly one:\n{text}");
    text.lines().map(|l| if l.trim_start().starts_with(prefix) { with.to_string() } else { l.to_string() }).collect::<Vec<_>>().join("\n") + "\n"
}

/// The example's powerpole.toml, changed only where the stand-ins differ from AWS:
/// - `[slack] api_url`: the Slack Web API stand-in (the example leaves the default commented);
/// - `tls_ca_bundle` becomes `admin_tls = "disabled"` and `require_ssl = false` (the local
///   MariaDB has no TLS), with `dialect = "mariadb"` and `kill_statement = "kill_connection"`
///   (it is MariaDB, not Aurora);
/// - `writer_endpoint`, `reader_endpoint` and `instance_endpoints` are that MariaDB, on the
///   loopback address (the admin secret's host and port say where it is; `admin_tls = "disabled"`
///   is accepted only for a loopback endpoint).
fn for_the_stand_ins(example: &str, slack_api: &str) -> String {
    let text = replace_line(example, "# api_url = ", &format!("api_url = \"{slack_api}/\""));
    let text = replace_line(&text, "writer_endpoint = ", "writer_endpoint = \"127.0.0.1\"");
    let text = replace_line(&text, "reader_endpoint = ", "reader_endpoint = \"127.0.0.1\"");
    let text = replace_line(&text, "tls_ca_bundle = ", "admin_tls = \"disabled\"\nrequire_ssl = false\ndialect = \"mariadb\"\nkill_statement = \"kill_connection\"");
    replace_line(&text, "instance_endpoints = ", "instance_endpoints = [\"127.0.0.1\"]")
}

async fn sdk_config(url: &str, credentials: &Credentials) -> aws_config::SdkConfig {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let credentials = SdkCredentials::new(credentials.access_key_id.clone(), credentials.secret_access_key.clone(), credentials.session_token.clone(), None, "deployment-test");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new(region()))
        .credentials_provider(credentials)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// One function's role: its name, the policy file it is rendered from.
struct RoleSpec {
    function: &'static str,
    role: String,
    file: &'static str,
}

fn roles() -> Vec<RoleSpec> {
    vec![
        RoleSpec { function: "slack-handler", role: format!("{NAME_PREFIX}-slack-handler"), file: "slack-handler.json" },
        RoleSpec { function: "slack-worker", role: format!("{NAME_PREFIX}-slack-worker"), file: "orchestrator.json" },
        RoleSpec { function: "sweeper", role: format!("{NAME_PREFIX}-orchestrator"), file: "orchestrator.json" },
        RoleSpec { function: "export", role: format!("{NAME_PREFIX}-export"), file: "export.json" },
    ]
}

/// What the deployment is made of, in moto and around it.
struct Deployment {
    moto: Moto,
    admin: aws_config::SdkConfig,
    slack: SlackStandin,
    _ssm: SsmStandin,
    store: Arc<dyn Store>,
    table: String,
    bucket: String,
    /// Rendered policies, by role name (exactly as the module renders them).
    policies: BTreeMap<String, Value>,
    credentials: BTreeMap<String, Credentials>,
    handler: Function,
    worker: Function,
    sweeper: Function,
    export: Function,
    url: FunctionUrl,
    driver: SlackDriver,
    queue: EventSourceMapping,
    requester_email: String,
}

impl Deployment {
    /// Everything deployed; `remove` takes one action out of one role's policy.
    async fn start(remove: Option<(&str, &str)>) -> Deployment {
        let moto = Moto::start().await;
        let admin_credentials = moto.admin().await;
        let admin = sdk_config(&moto.url, &admin_credentials).await;
        let region = region();
        let tfvars = tfvars::parse(&read(&example_dir().join("terraform.tfvars.example"))).expect("terraform.tfvars.example parses");
        let tfvar = |name: &str| tfvars.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("terraform.tfvars.example has no {name}")).to_string();

        // Slack.
        let slack = SlackStandin::start().await;
        let id = SessionId::random().as_str().trim_start_matches("pp-").to_string();
        let requester_email = format!("alice-{id}@example.com");
        slack.add_user(ALICE, &requester_email, "Europe/Berlin");
        slack.add_user(BOB, "bob@example.com", "Europe/London");
        slack.add_user(CAROL, "carol@example.com", "Europe/London");
        slack.add_group(ONCALL, &[ALICE]);

        // The network and the bastion profile (vpc.tf, network.tf, iam.tf).
        let ec2 = aws_sdk_ec2::Client::new(&admin);
        let vpc = ec2.create_vpc().cidr_block("10.40.0.0/16").send().await.expect("a VPC");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("a VPC id").to_string();
        let subnet = |cidr: &'static str| {
            let ec2 = ec2.clone();
            let vpc_id = vpc_id.clone();
            async move { ec2.create_subnet().vpc_id(vpc_id).cidr_block(cidr).send().await.expect("a subnet").subnet().and_then(|s| s.subnet_id()).expect("an id").to_string() }
        };
        let subnet_id = subnet("10.40.1.0/24").await;
        let lambda_subnet_id = subnet("10.40.11.0/24").await;
        let group = |name: &'static str| {
            let ec2 = ec2.clone();
            let vpc_id = vpc_id.clone();
            async move { ec2.create_security_group().group_name(name).description(name).vpc_id(vpc_id).send().await.expect("a group").group_id().expect("an id").to_string() }
        };
        let security_group_id = group("powerpole-bastion-billing").await;
        let lambda_security_group_id = group("powerpole-lambda").await;
        let profile = format!("{NAME_PREFIX}-bastion");
        moto.query("iam", &[("Action", "CreateInstanceProfile"), ("Version", "2010-05-08"), ("InstanceProfileName", &profile)]).await;

        // The secrets the example looks up by name (terraform.tfvars.example).
        let secrets = aws_sdk_secretsmanager::Client::new(&admin);
        let slack_secret = json!({"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN}).to_string();
        let created = secrets.create_secret().name(tfvar("slack_secret_name")).secret_string(slack_secret).send().await.expect("the Slack secret");
        let slack_secret_arn = created.arn().expect("an ARN").to_string();
        let db = url_parts(&mysql_url());
        let admin_secret = json!({"host": "127.0.0.1", "port": db.port, "username": db.user, "password": db.password}).to_string();
        let created = secrets.create_secret().name(tfvar("billing_admin_secret_name")).secret_string(admin_secret).send().await.expect("the admin secret");
        let admin_secret_arn = created.arn().expect("an ARN").to_string();
        let mut root = mysql_async::Conn::from_url(mysql_url().as_str()).await.expect("MariaDB answers");
        root.query_drop("CREATE DATABASE IF NOT EXISTS billing").await.expect("the billing schema");
        drop(root);

        // The table (dynamodb.tf: the schema of `powerpole table schema`, with its stream).
        let table = "powerpole".to_string(); // var.table_name's default
        let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
        powerpole::store::dynamo::create_table(&dynamodb, &table).await.expect("the table");
        dynamodb
            .update_table()
            .table_name(&table)
            .stream_specification(aws_sdk_dynamodb::types::StreamSpecification::builder().stream_enabled(true).stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewImage).build().expect("a stream"))
            .send()
            .await
            .expect("the table's stream");
        let store_config = powerpole::config::StoreConfig { table: table.clone(), session_retention: "400d".parse().unwrap(), audit_retention: "400d".parse().unwrap(), unavailable_retry_for: "2m".parse().unwrap() };
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb.clone(), &store_config));

        // The follow-up queue and its dead-letter queue (sqs.tf).
        let sqs = aws_sdk_sqs::Client::new(&admin);
        let dlq = sqs.create_queue().queue_name(format!("{NAME_PREFIX}-slack-follow-ups-dlq")).send().await.expect("the DLQ");
        let dlq_arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:{NAME_PREFIX}-slack-follow-ups-dlq");
        let _ = dlq;
        let queue = sqs
            .create_queue()
            .queue_name(format!("{NAME_PREFIX}-slack-follow-ups"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string())
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "60")
            .send()
            .await
            .expect("the queue");
        let queue_url = queue.queue_url().expect("a URL").to_string();

        // The Object Lock bucket (export.tf).
        let bucket = format!("{NAME_PREFIX}-audit-{ACCOUNT}");
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&admin).force_path_style(true).build());
        s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.expect("the bucket");
        use aws_sdk_s3::types::{DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule};
        s3.put_object_lock_configuration()
            .bucket(&bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(ObjectLockRule::builder().default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build()).build())
                    .build(),
            )
            .send()
            .await
            .expect("the bucket's lock");

        let known = Known {
            vars: template_vars(&region, &table, &slack_secret_arn, &admin_secret_arn, &subnet_id, &security_group_id, &lambda_subnet_id, &lambda_security_group_id),
            slack_secret_arn,
            admin_secret_arn,
            subnet_id,
            security_group_id,
            queue_url: queue_url.clone(),
        };

        // The configuration, as config.tf and config_layers.tf write it.
        let operator_toml = for_the_stand_ins(&read(&example_dir().join("powerpole.toml.example")), &slack.api_url());
        let (config, layers, layers_path, config_name) = render_configuration(&known, &operator_toml);
        let ssm = aws_sdk_ssm::Client::new(&admin);
        ssm.put_parameter().name(&config_name).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(&config).send().await.expect("the config parameter");
        for (name, text) in &layers {
            ssm.put_parameter().name(format!("{layers_path}/{name}")).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(text).send().await.expect("a fragment");
        }

        // The roles, each with its rendered policy; their credentials.
        let mut policies = BTreeMap::new();
        let mut credentials = BTreeMap::new();
        for spec in roles() {
            let rendered = terraform::policy(&module_dir(), spec.file, &known.vars).unwrap_or_else(|e| panic!("{e}"));
            let given = match remove {
                Some((role, action)) if role == spec.role => policy::without_action(&rendered, action),
                _ => rendered.clone(),
            };
            let arn = moto.role_with_policy(&spec.role, &format!("powerpole-{}", spec.file.trim_end_matches(".json")), &policy::as_moto_evaluates(&given)).await;
            credentials.insert(spec.role.clone(), moto.assume(&arn, spec.function).await);
            policies.insert(spec.role.clone(), rendered);
        }

        let ssm_standin = SsmStandin::start(&moto.url).await.expect("the SSM stand-in");
        ssm_standin.use_credentials(&admin_credentials.access_key_id, &admin_credentials.secret_access_key);

        // From here on, moto authorises every request.
        moto.enforce().await;

        let lambda_tf = read(&module_dir().join("lambda.tf"));
        let export_tf = read(&module_dir().join("export.tf"));
        let mut env_refs = known.vars.clone();
        for (k, v) in [
            ("var.log_level", json!("info")),
            ("aws_ssm_parameter.config.name", json!(config_name)),
            ("local.config_layers_path", json!(layers_path)),
            ("aws_sqs_queue.follow_ups.url", json!(known.queue_url)),
            ("aws_s3_bucket.audit_export.id", json!(bucket)),
            ("aws_dynamodb_table.sessions.name", json!(table)),
            ("var.audit_export_redrive_hours", json!(72)), // variables_export.tf's default
            ("sha256(jsonencode([local.rendered_powerpole_toml, local.config_layers]))", json!(sha256_hex(&format!("{config}{layers:?}")))),
        ] {
            env_refs.insert(k.into(), v);
        }
        let start = |function: &'static str, binary: &'static str, tf: &str, resource: &str| {
            let role = roles().into_iter().find(|r| r.function == function).expect("a role").role;
            let creds = credentials[&role].clone();
            let env = function_env(tf, &lambda_tf, resource, &env_refs, &moto.url, &ssm_standin.url(), &creds);
            async move {
                let runtime = RuntimeApi::start(&format!("{NAME_PREFIX}-{function}")).await;
                Function::start(Path::new(binary), runtime, &env).await
            }
        };
        let handler = start("slack-handler", env!("CARGO_BIN_EXE_deployed-slack-handler"), &lambda_tf, "slack_handler").await;
        let worker = start("slack-worker", env!("CARGO_BIN_EXE_deployed-slack-worker"), &lambda_tf, "slack_worker").await;
        let sweeper = start("sweeper", env!("CARGO_BIN_EXE_deployed-sweeper"), &lambda_tf, "sweeper").await;
        let export = start("export", env!("CARGO_BIN_EXE_deployed-export"), &export_tf, "export").await;
        let url = FunctionUrl::start(handler.runtime.clone()).await;
        let driver = SlackDriver::new(&url.base_url(), SIGNING_SECRET).with_slack(&slack);
        // The event source mapping polls with the worker's role (SlackWorkerEventSourceReadsFollowUps).
        let worker_sqs = aws_sdk_sqs::Client::new(&sdk_config(&moto.url, &credentials[&format!("{NAME_PREFIX}-slack-worker")]).await);
        let queue = EventSourceMapping {
            sqs: worker_sqs,
            queue_url: known.queue_url.clone(),
            queue_arn: format!("arn:aws:sqs:{region}:{ACCOUNT}:{NAME_PREFIX}-slack-follow-ups"),
            runtime: worker.runtime.clone(),
            batch_size: 1, // lambda.tf: aws_lambda_event_source_mapping.slack_follow_ups
        };
        let _ = (&known.slack_secret_arn, &known.admin_secret_arn, &known.subnet_id, &known.security_group_id);
        Deployment { moto, admin, slack, _ssm: ssm_standin, store, table, bucket, policies, credentials, handler, worker, sweeper, export, url, driver, queue, requester_email }
    }

    /// What IAM refused, by role, from every function's log; then the logs.
    fn diagnosis(&self) -> String {
        let refused = self.refused();
        let mut out = String::new();
        for line in &refused {
            out.push_str(&format!("IAM refused: {line}\n"));
        }
        for (name, f) in [("slack-handler", &self.handler), ("slack-worker", &self.worker), ("sweeper", &self.sweeper), ("export", &self.export)] {
            out.push_str(&format!("--- {name} log:\n{}\n", tail(&f.logs(), 60)));
        }
        out
    }

    /// `role: action` for each action IAM refused a function (moto's "is not authorized to
    /// perform" in the function's logged errors).
    fn refused(&self) -> Vec<String> {
        let mut found = Vec::new();
        for f in [&self.handler, &self.worker, &self.sweeper, &self.export] {
            let logs = f.logs();
            for (at, _) in logs.match_indices("is not authorized to perform: ") {
                let rest = &logs[at + "is not authorized to perform: ".len()..];
                let action: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-').collect();
                let before = &logs[..at];
                let role = before.rfind("assumed-role/").map(|r| before[r + "assumed-role/".len()..].split('/').next().unwrap_or_default().to_string()).unwrap_or_else(|| f.runtime.function_name().to_string());
                let line = format!("{role} lacks {action}");
                if !found.contains(&line) {
                    found.push(line);
                }
            }
        }
        found
    }

    /// `work`, or a panic with the diagnosis if a function does not answer in time (a function
    /// that died at start-up never answers; its log says why).
    async fn within<T>(&self, what: &str, work: impl std::future::Future<Output = T>) -> T {
        match tokio::time::timeout(Duration::from_secs(45), work).await {
            Ok(done) => done,
            Err(_) => panic!("{what}: no answer within 45 s\n{}", self.diagnosis()),
        }
    }

    async fn session(&self, id: &SessionId) -> Session {
        self.store.get(id).await.expect("the store answers").expect("the session exists")
    }

    /// Slack posts a slash command from Alice; the answer's text.
    async fn command(&self, text: &str) -> String {
        let reply = self.within(text, self.driver.command(SlashCommand::new(ALICE, "alice", ACCESS, text))).await.expect("the URL answers");
        assert_eq!(reply.status, 200, "{}\n{}", reply.body, self.diagnosis());
        reply.json().and_then(|j| j["text"].as_str().map(str::to_string)).unwrap_or_else(|| panic!("a JSON answer: {}\n{}", reply.body, self.diagnosis()))
    }

    /// Clicks `action` on `message` as `user`; the answer must be a 200.
    async fn click(&self, message: &RecordedCall, action: &str, user: &str) {
        let click = ButtonClick::on(message, action, user, "someone").unwrap_or_else(|| panic!("no {action} button on {}", message.text()));
        let answer = self.within(action, self.driver.interaction(self.driver.block_actions(&click))).await.expect("the URL answers");
        assert_eq!(answer.status, 200, "{action}: {}\n{}", answer.body, self.diagnosis());
    }

    /// The modal the last click opened (through the handler's `views.open`).
    fn opened_modal(&self, count_before: usize, what: &str) -> RecordedCall {
        let opened = self.slack.calls_to("views.open");
        assert!(opened.len() > count_before, "{what}: the handler opened no modal\n{}", self.diagnosis());
        opened.last().expect("a modal").clone()
    }

    async fn submit(&self, form: ViewSubmission) {
        let answer = self.within("a modal's submission", self.driver.interaction(self.driver.view_submission(&form))).await.expect("the URL answers");
        assert_eq!((answer.status, answer.body.as_str()), (200, ""), "{}", self.diagnosis());
    }

    /// The event source mapping delivers every queued follow-up to the worker; none may fail.
    async fn follow_ups(&self) {
        for _ in 0..20 {
            let delivery = self.within("the worker", self.queue.poll_once(Duration::from_secs(1))).await;
            if delivery.delivered.is_empty() {
                return;
            }
            assert!(delivery.failed.is_empty() && !matches!(delivery.answer, Some(Invoked::Error(_))), "a follow-up failed: {delivery:?}\n{}", self.diagnosis());
        }
        panic!("the queue did not drain\n{}", self.diagnosis());
    }

    /// One EventBridge tick of the sweeper; its summary.
    async fn tick(&self) -> Value {
        match self.within("a sweeper tick", self.sweeper.invoke(scheduled_event(&format!("{NAME_PREFIX}-sweeper"), chrono::Utc::now()))).await {
            Invoked::Response(v) => v,
            Invoked::Error(e) => panic!("the tick failed: {e}\n{}", self.diagnosis()),
        }
    }

    /// Moves the session's deadline to `in_` from now (the functions run on the system clock:
    /// this is time passing).
    async fn expire_in(&self, id: &SessionId, in_: chrono::Duration) {
        let mut session = self.session(id).await;
        let state = session.state;
        let expires = chrono::Utc::now() + in_;
        session.expires_at = Some(expires);
        // The warning is due `[scheduler] warning_lead` (its default, 10m) before the deadline.
        session.warn_at = Some(expires - chrono::Duration::minutes(10));
        self.store.update(state, &session, None).await.expect("the deadline moves");
    }

    fn posts_in(&self, channel: &str) -> Vec<RecordedCall> {
        self.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.response["channel"] == channel).collect()
    }

    fn dms(&self, user: &str) -> Vec<RecordedCall> {
        self.posts_in(&format!("D{user}"))
    }

    fn message_with(&self, channel: &str, action: &str, session: &SessionId) -> RecordedCall {
        self.posts_in(channel)
            .into_iter()
            .rev()
            .find(|c| c.text().contains(session.as_str()) && c.blocks().iter().any(|b| b.to_string().contains(&format!("\"action_id\":\"{action}\""))))
            .unwrap_or_else(|| panic!("no message in {channel} for {session} with {action}: {:?}\n{}", self.posts_in(channel).iter().map(|c| c.text()).collect::<Vec<_>>(), self.diagnosis()))
    }

    async fn account_hosts(&self, user: &str) -> Vec<String> {
        let mut root = mysql_async::Conn::from_url(mysql_url().as_str()).await.expect("MariaDB answers");
        root.exec("SELECT Host FROM mysql.user WHERE User = ?", (user,)).await.expect("mysql.user")
    }

    async fn instance_state(&self, id: &str) -> String {
        let ec2 = aws_sdk_ec2::Client::new(&self.admin);
        let found = ec2.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
        found.reservations().iter().flat_map(|r| r.instances()).filter_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string())).next().unwrap_or_default()
    }

    fn audit_kinds(trail: &[powerpole::store::AuditRecord]) -> Vec<AuditKind> {
        trail.iter().map(|r| r.event.kind).collect()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

struct DbParts {
    user: String,
    password: String,
    port: u16,
}

fn url_parts(url: &str) -> DbParts {
    // mysql://user:password@host:port
    let rest = url.trim_start_matches("mysql://");
    let (auth, host) = rest.split_once('@').expect("user@host");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let port = host.rsplit_once(':').and_then(|(_, p)| p.trim_end_matches('/').parse().ok()).unwrap_or(3306);
    DbParts { user: user.into(), password: password.into(), port }
}

/// The environment of `resource` (an aws_lambda_function of `tf`), as Terraform sets it, plus
/// what Lambda adds (region, the role's credentials) and the stand-ins' endpoints.
#[allow(clippy::too_many_arguments)]
fn function_env(tf: &str, lambda_tf: &str, resource: &str, refs: &Refs, moto_url: &str, ssm_url: &str, credentials: &Credentials) -> Vec<(String, String)> {
    let function = terraform::block(tf, &format!("resource \"aws_lambda_function\" \"{resource}\"")).unwrap_or_else(|e| panic!("{e}"));
    let environment = terraform::block(function, "environment {").unwrap_or_else(|e| panic!("{resource}: {e}"));
    let mut env = Vec::new();
    if environment.contains("local.lambda_environment") {
        let common = terraform::block(lambda_tf, "lambda_environment = merge(").unwrap_or_else(|e| panic!("{e}"));
        env.extend(terraform::assignments(common, refs).unwrap_or_else(|e| panic!("lambda.tf lambda_environment: {e}")));
        // var.lambda_environment: {} in the example.
    }
    env.extend(terraform::assignments(environment, refs).unwrap_or_else(|e| panic!("{resource}'s environment: {e}")));
    assert!(!env.is_empty(), "{resource} has an environment");
    env.extend([
        ("AWS_REGION".to_string(), region()),
        ("AWS_DEFAULT_REGION".to_string(), region()),
        ("AWS_ACCESS_KEY_ID".to_string(), credentials.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), credentials.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN".to_string(), credentials.session_token.clone().unwrap_or_default()),
        ("AWS_ENDPOINT_URL".to_string(), moto_url.to_string()),
        ("AWS_ENDPOINT_URL_SSM".to_string(), ssm_url.to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        ("AWS_MAX_ATTEMPTS".to_string(), "2".to_string()),
    ]);
    env
}

/// The `pp-...` session id in a text.
fn session_in(text: &str) -> SessionId {
    let at = text.find("pp-").unwrap_or_else(|| panic!("no session id in {text:?}"));
    SessionId::parse(&text[at..at + 13]).unwrap_or_else(|e| panic!("{e}: in {text:?}"))
}

/// The table's stream, read as the export function's event source mapping reads it (with the
/// export role's credentials: DescribeStream, GetShardIterator, GetRecords), filtered by the
/// mapping's filter (inserted audit items), as the `Records` Lambda delivers.
async fn stream_records(d: &Deployment) -> Vec<Value> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&d.admin);
    let described = dynamodb.describe_table().table_name(&d.table).send().await.expect("DescribeTable");
    let stream_arn = described.table().and_then(|t| t.latest_stream_arn()).expect("the table has a stream").to_string();
    let creds = &d.credentials[&format!("{NAME_PREFIX}-export")];
    let http = reqwest::Client::new();
    let call = |target: &'static str, body: Value| {
        let http = http.clone();
        let url = d.moto.url.clone();
        async move {
            let (status, answer) = sigv4::post_json(&http, &url, &region(), "dynamodb", &format!("DynamoDBStreams_20120810.{target}"), &body.to_string(), creds).await;
            assert_eq!(status, 200, "{target} as the export role: {answer}");
            answer
        }
    };
    let stream = call("DescribeStream", json!({"StreamArn": stream_arn})).await;
    let mut records = Vec::new();
    for shard in stream["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
        let iterator = call("GetShardIterator", json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"})).await;
        let mut next = iterator["ShardIterator"].clone();
        while next.is_string() {
            let page = call("GetRecords", json!({"ShardIterator": next, "Limit": 1000})).await;
            let got = page["Records"].as_array().cloned().unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got);
            next = page["NextShardIterator"].clone();
        }
    }
    // export.tf's filter_criteria: eventName INSERT, NewImage.kind.S = "audit".
    records
        .into_iter()
        .filter(|r| r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"]["kind"]["S"] == "audit")
        .map(|mut r| {
            r["eventSourceARN"] = json!(stream_arn);
            r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_module_deployment_runs_the_whole_lifecycle_under_its_own_policies() {
    let d = Deployment::start(None).await;

    // --- A request, denied with the form's reason. ---------------------------------------------
    let answer = d.command("request billing READ 1h INC-41 check the ledger").await;
    let denied = session_in(&answer);
    d.follow_ups().await;
    let card = d.message_with(APPROVALS, actions::DENY, &denied);
    let modals = d.slack.calls_to("views.open").len();
    d.click(&card, actions::DENY, BOB).await;
    let modal = d.opened_modal(modals, "Deny");
    d.submit(ViewSubmission::of(&modal, BOB, "bob").expect("a modal").input("reason", "reason", InputValue::Text("use the replica".into()))).await;
    d.follow_ups().await;
    let closed = d.session(&denied).await;
    assert_eq!(closed.state, State::Closed(Outcome::Denied), "{}", d.diagnosis());
    assert_eq!(closed.decision_reason.as_deref(), Some("use the replica"));

    // --- A request, approved, handed over. -----------------------------------------------------
    let answer = d.command("request billing READ 1h INC-42 check the ledger").await;
    let id = session_in(&answer);
    d.follow_ups().await;
    let card = d.message_with(APPROVALS, actions::APPROVE, &id);
    d.click(&card, actions::APPROVE, BOB).await;
    d.follow_ups().await;
    assert_eq!(d.session(&id).await.state, State::Approved, "{}", d.diagnosis());
    let summary = d.tick().await;
    assert_eq!(summary["failed"], json!([]), "{summary}\n{}", d.diagnosis());
    let active = d.session(&id).await;
    assert_eq!(active.state, State::Active, "{summary}\n{}", d.diagnosis());
    let instance = active.instance_id.clone().expect("the session's bastion");
    assert_eq!(d.instance_state(&instance).await, "running");
    let db_user = active.requester.db_user.as_str().to_string();
    assert_eq!(d.account_hosts(&db_user).await, vec![active.account_host.clone().expect("the account's host")], "one account, bound to the bastion");
    assert!(d.dms(ALICE).iter().any(|c| c.text().contains("is ready") && c.text().contains(id.as_str())), "the hand-over DM\n{}", d.diagnosis());

    // --- The warning; Extend with its form; the extension approved. ----------------------------
    d.expire_in(&id, chrono::Duration::minutes(5)).await;
    d.tick().await;
    let warning = d.message_with(&format!("D{ALICE}"), actions::EXTEND, &id);
    let modals = d.slack.calls_to("views.open").len();
    d.click(&warning, actions::EXTEND, ALICE).await;
    let modal = d.opened_modal(modals, "Extend");
    d.submit(ViewSubmission::of(&modal, ALICE, "alice").expect("a modal").input("duration", "duration", InputValue::Selected("30m".into()))).await;
    d.follow_ups().await;
    let extension_card = d.message_with(APPROVALS, actions::APPROVE_EXTENSION, &id);
    d.click(&extension_card, actions::APPROVE_EXTENSION, CAROL).await;
    d.follow_ups().await;
    let extended = d.session(&id).await;
    assert!(extended.extension.is_none() && extended.duration.to_string() == "1h30m", "the extension is granted: {extended:?}\n{}", d.diagnosis());

    // --- Expiry: the teardown removes the account and the bastion. -----------------------------
    d.expire_in(&id, chrono::Duration::seconds(-1)).await;
    d.tick().await;
    let expired = d.session(&id).await;
    assert_eq!(expired.state, State::Closed(Outcome::Expired), "{}", d.diagnosis());
    assert!(d.account_hosts(&db_user).await.is_empty(), "the account is dropped");
    assert!(matches!(d.instance_state(&instance).await.as_str(), "terminated" | "shutting-down"), "the bastion is terminated");

    // --- Break-glass; its review card's Flag with its form; End now. ---------------------------
    let answer = d.command("breakglass billing DML 30m INC-43 orders are stuck").await;
    let glass = session_in(&answer);
    d.follow_ups().await;
    d.tick().await;
    assert_eq!(d.session(&glass).await.state, State::Active, "{}", d.diagnosis());
    let review = d.message_with(APPROVALS, actions::REVIEW_FLAG, &glass);
    let modals = d.slack.calls_to("views.open").len();
    d.click(&review, actions::REVIEW_FLAG, BOB).await;
    let modal = d.opened_modal(modals, "Flag");
    d.submit(ViewSubmission::of(&modal, BOB, "bob").expect("a modal").input("reason", "reason", InputValue::Text("DML at 3am without a ticket".into()))).await;
    d.follow_ups().await;
    let flagged = d.session(&glass).await;
    assert!(flagged.breakglass.as_ref().and_then(|b| b.review.as_ref()).is_some(), "the break-glass is reviewed (flagged): {flagged:?}\n{}", d.diagnosis());
    d.expire_in(&glass, chrono::Duration::minutes(5)).await;
    d.tick().await;
    let warning = d.message_with(&format!("D{ALICE}"), actions::END_NOW, &glass);
    d.click(&warning, actions::END_NOW, ALICE).await;
    d.follow_ups().await;
    assert_eq!(d.session(&glass).await.state, State::TearingDown(Outcome::EndedByRequester), "{}", d.diagnosis());
    d.tick().await;
    assert_eq!(d.session(&glass).await.state, State::Closed(Outcome::EndedByRequester), "{}", d.diagnosis());

    // --- The scheduled reconcile finds nothing left behind. ------------------------------------
    let reconciled = d.within("reconcile", d.sweeper.invoke(json!({"action": "reconcile"}))).await;
    let reconciled = match reconciled {
        Invoked::Response(v) => v,
        Invoked::Error(e) => panic!("reconcile failed: {e}\n{}", d.diagnosis()),
    };
    assert_eq!(reconciled["failed"], json!([]), "{reconciled}\n{}", d.diagnosis());

    // --- The trail: the stream, through export, into the Object Lock bucket, once. -------------
    let records = stream_records(&d).await;
    let mut trail_len = 0;
    for session in [&denied, &id, &glass] {
        trail_len += d.store.audit_trail(session).await.expect("the trail").len();
    }
    assert_eq!(records.len(), trail_len, "one stream record per audit event");
    // The stream delivers all but the last event (as if its delivery had failed for good); the
    // hourly re-export writes it from the table.
    let (delivered, lost) = records.split_at(records.len() - 1);
    for batch in delivered.chunks(100) {
        let exported = d.within("export", d.export.invoke(json!({"Records": batch}))).await;
        assert!(matches!(exported, Invoked::Response(_)), "{exported:?}\n{}", d.diagnosis());
    }
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&d.admin).force_path_style(true).build());
    let listed = s3.list_objects_v2().bucket(&d.bucket).prefix("audit/").send().await.expect("ListObjectsV2");
    assert_eq!(listed.contents().len(), trail_len - 1, "every delivered audit event is in the bucket\n{}", d.diagnosis());
    let lost_key = format!("audit/{}/{}.json", lost[0]["dynamodb"]["NewImage"]["pk"]["S"].as_str().unwrap_or_default().trim_start_matches("SESSION#"), lost[0]["dynamodb"]["NewImage"]["sk"]["S"].as_str().unwrap_or_default().trim_start_matches("AUDIT#"));
    assert!(!listed.contents().iter().any(|o| o.key() == Some(lost_key.as_str())), "{lost_key} was not delivered");
    let redriven = d.within("redrive", d.export.invoke(json!({"action": "redrive"}))).await;
    match &redriven {
        Invoked::Response(done) => assert_eq!(done, &json!({"exported": 1, "already_exported": trail_len - 1}), "the re-export writes only what the bucket lacks\n{}", d.diagnosis()),
        Invoked::Error(e) => panic!("the re-export failed: {e}\n{}", d.diagnosis()),
    }
    let listed = s3.list_objects_v2().bucket(&d.bucket).prefix("audit/").send().await.expect("ListObjectsV2");
    assert_eq!(listed.contents().len(), trail_len, "every audit event is in the bucket\n{}", d.diagnosis());
    let again = d.export.invoke(json!({"Records": &records[..records.len().min(100)]})).await;
    assert!(matches!(again, Invoked::Response(_)), "a redelivered batch is done, not failed: {again:?}");
    let listed = s3.list_object_versions().bucket(&d.bucket).prefix("audit/").send().await.expect("ListObjectVersions");
    assert_eq!(listed.versions().len(), trail_len, "a redelivery writes no second version");
    let kinds = Deployment::audit_kinds(&d.store.audit_trail(&glass).await.expect("the trail"));
    assert!(kinds.contains(&AuditKind::BreakGlass), "{kinds:?}");

    // --- Nothing was refused anywhere, and every call was within the rendered policies. --------
    assert_eq!(d.refused(), Vec::<String>::new(), "{}", d.diagnosis());
    every_resource_the_functions_used_is_in_their_rendered_policy(&d);
    let _ = (&d.url, &d.requester_email, &d.worker);
}

/// What moto compares as `*` (see `policy`), checked against the rendered documents with the
/// resources this deployment's functions used.
fn every_resource_the_functions_used_is_in_their_rendered_policy(d: &Deployment) {
    let region = region();
    let table = format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{}", d.table);
    let handler = &d.policies[&format!("{NAME_PREFIX}-slack-handler")];
    let orchestrator = &d.policies[&format!("{NAME_PREFIX}-orchestrator")];
    let export = &d.policies[&format!("{NAME_PREFIX}-export")];
    let config = format!("arn:aws:ssm:{region}:{ACCOUNT}:parameter/{NAME_PREFIX}/config");
    let layers = format!("{config}.d");
    for p in [handler, orchestrator] {
        assert!(policy::allows(p, "ssm:GetParameter", &config), "{p}");
        assert!(policy::allows(p, "ssm:GetParametersByPath", &layers), "{p}");
        assert!(policy::allows(p, "dynamodb:GetItem", &table), "{p}");
        assert!(policy::allows(p, "dynamodb:Query", &format!("{table}/index/by_requester")), "{p}");
    }
    // The handler reads; it never writes the table.
    for action in ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:TransactWriteItems"] {
        assert!(!policy::allows(handler, action, &table), "the handler must not {action}");
    }
    assert!(policy::allows(orchestrator, "dynamodb:PutItem", &table));
    assert!(policy::allows(export, "dynamodb:GetRecords", &format!("{table}/stream/2026-12-05T00:00:00.000")));
    assert!(policy::allows(export, "dynamodb:Scan", &table), "the re-export scans the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_without_an_action_the_code_calls_fails_naming_the_action() {
    // The handler's role without sqs:SendMessage: a request cannot be queued.
    let d = Deployment::start(Some(("powerpole-slack-handler", "sqs:SendMessage"))).await;
    let reply = d.within("a command", d.driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "request billing READ 1h INC-42 check the ledger"))).await.expect("the URL answers");
    assert!(!reply.body.contains("pp-"), "nothing may be promised when the follow-up could not be queued: {}", reply.body);
    assert_eq!(d.refused(), ["powerpole-slack-handler lacks sqs:SendMessage"], "{}", d.diagnosis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_re_export_runs_under_the_export_role_and_needs_its_scan() {
    // The export role without dynamodb:Scan: the re-export cannot read the table.
    let d = Deployment::start(Some(("powerpole-export", "dynamodb:Scan"))).await;
    let redriven = d.within("redrive", d.export.invoke(json!({"action": "redrive"}))).await;
    assert!(matches!(redriven, Invoked::Error(_)), "the re-export must fail, not report success: {redriven:?}\n{}", d.diagnosis());
    assert_eq!(d.refused(), ["powerpole-export lacks dynamodb:Scan"], "{}", d.diagnosis());
}
