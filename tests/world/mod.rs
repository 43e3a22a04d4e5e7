//! A whole world for lifecycle tests, built in the stand-ins: a private network, an instance
//! profile and a target's admin secret in moto; a schema with rows in MariaDB; the Slack and SSM
//! stand-ins; a DynamoDB table of its own; and the configuration that ties them together.
//!
//! Everything is named uniquely per world (moto and MariaDB are shared by every test running),
//! and dropping the world terminates its instances and drops its schema and accounts.
#![allow(dead_code)]

pub mod faulty;
pub mod process;
pub mod proxy;
pub mod reconcile;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use mysql_async::prelude::Queryable;
use rand::RngExt;

use powerpole::app::App;
use powerpole::bastion::{tags, Ec2Bastions};
use powerpole::config::Config;
use powerpole::domain::{AuditKind, Session, SessionId};
use powerpole::secrets::Secret;
use powerpole::slack::{serve, SlackApp};
use powerpole::workflow::Clock;
use powerpole_standins::driver::{ButtonClick, DriverResponse, SlackDriver, SlashCommand};
use powerpole_standins::slack::{RecordedCall, SlackStandin};
use powerpole_standins::ssm::SsmStandin;

pub const SECRET: &str = "powerpole-world-signing-secret";
pub const BOT_TOKEN: &str = "xoxb-powerpole-world";
pub const ALICE: &str = "U0ALICE";
pub const BOB: &str = "U0BOB";
pub const APPROVALS: &str = "C0APPROVALS";
pub const SOON: Duration = Duration::from_secs(20);
/// The test-host bridge's address, where MariaDB also listens (scripts/netns.sh).
pub const DB_HOST_ON_BRIDGE: &str = "10.200.0.1";

const HOW_TO_START: &str = "run `make test`, or `scripts/standins.sh start && source .local/standins.env`";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: the stand-ins are not running; {HOW_TO_START}"))
}

pub fn suffix() -> String {
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)])).collect()
}

/// The MariaDB admin login from POWERPOLE_TEST_MYSQL_URL.
#[derive(Debug, Clone)]
pub struct Db {
    pub url: String,
    pub user: String,
    pub password: String,
    pub port: u16,
}

impl Db {
    fn from_env() -> Db {
        let url = env("POWERPOLE_TEST_MYSQL_URL");
        let parsed = url::Url::parse(&url).expect("POWERPOLE_TEST_MYSQL_URL is a URL");
        Db {
            user: parsed.username().to_string(),
            password: parsed.password().unwrap_or_default().to_string(),
            port: parsed.port().unwrap_or(3306),
            url,
        }
    }

    pub async fn root(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.url.as_str()).await.expect("connect to MariaDB as root")
    }
}

/// Options that differ between tests.
#[derive(Debug, Clone)]
pub struct Options {
    pub warning_lead: &'static str,
    pub ssm_online_timeout: &'static str,
    pub tick: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options { warning_lead: "10m", ssm_online_timeout: "20s", tick: "15s" }
    }
}

pub struct World {
    pub id: String,
    pub table: String,
    pub schema: String,
    pub subnet_id: String,
    pub security_group_id: String,
    pub instance_profile: String,
    pub admin_secret: String,
    pub slack: SlackStandin,
    pub ssm: SsmStandin,
    pub ec2: aws_sdk_ec2::Client,
    pub aws: aws_config::SdkConfig,
    pub db: Db,
    pub options: Options,
}

pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// SDK settings for moto, with few retries (moto answers what it lacks with a 500).
pub async fn aws() -> aws_config::SdkConfig {
    install_crypto();
    env("AWS_ENDPOINT_URL");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// As [`aws`], in `region` (moto keeps EC2, DynamoDB and Secrets Manager apart by region, so a
/// test that lists every bastion, like reconcile, sees only its own there).
pub async fn aws_in(region: &str) -> aws_config::SdkConfig {
    install_crypto();
    env("AWS_ENDPOINT_URL");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

impl World {
    pub async fn new(options: Options) -> World {
        Self::with_aws(options, aws().await).await
    }

    /// A world whose AWS resources are all in `region`; run its processes with
    /// [`World::process_env`], which names that region.
    pub async fn new_in_region(options: Options, region: &str) -> World {
        Self::with_aws(options, aws_in(region).await).await
    }

    async fn with_aws(options: Options, aws: aws_config::SdkConfig) -> World {
        let id = suffix();
        let ec2 = aws_sdk_ec2::Client::new(&aws);
        let ssm = SsmStandin::start(&env("AWS_ENDPOINT_URL")).await.expect("the SSM stand-in starts");
        let vpc = ec2.create_vpc().cidr_block("10.200.0.0/16").send().await.expect("moto creates a VPC");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("a VPC id").to_string();
        // Bastion addresses come from this subnet. 10.200.0.x is the host side of the bridge and
        // `make demo` uses 10.200.8.0/24: keep clear of both.
        let third = rand::rng().random_range(16..=250u8);
        let subnet = ec2.create_subnet().vpc_id(&vpc_id).cidr_block(format!("10.200.{third}.0/24")).send().await.expect("moto creates a subnet");
        let subnet_id = subnet.subnet().and_then(|s| s.subnet_id()).expect("a subnet id").to_string();
        let sg = ec2
            .create_security_group()
            .group_name(format!("powerpole-bastion-{id}"))
            .description("bastions: no inbound rules")
            .vpc_id(&vpc_id)
            .send()
            .await
            .expect("moto creates a security group");
        let instance_profile = format!("powerpole-bastion-{id}");
        create_instance_profile(&env("AWS_ENDPOINT_URL"), &instance_profile).await;

        let db = Db::from_env();
        let admin_secret = format!("powerpole/world/{id}/admin");
        let value = serde_json::json!({"host": "127.0.0.1", "port": db.port, "username": db.user, "password": db.password});
        aws_sdk_secretsmanager::Client::new(&aws)
            .create_secret()
            .name(&admin_secret)
            .secret_string(value.to_string())
            .send()
            .await
            .expect("moto stores the admin secret");
        let schema = format!("world_{id}");
        let mut root = db.root().await;
        root.query_drop(format!("CREATE DATABASE `{schema}`")).await.expect("create the schema");
        root.query_drop(format!("CREATE TABLE `{schema}`.refunds (id INT PRIMARY KEY, amount DECIMAL(10,2))")).await.expect("create a table");
        root.query_drop(format!("INSERT INTO `{schema}`.refunds VALUES (1, 10.00), (2, 25.50), (3, 99.99)")).await.expect("insert rows");
        drop(root);

        let slack = SlackStandin::start().await;
        // The requester's DB user is unique to the world: MariaDB is shared by every test.
        slack.add_user(ALICE, &format!("alice{id}@example.com"), "Europe/Berlin");
        slack.add_user(BOB, "bob@example.com", "Europe/London");

        let table = format!("powerpole-world-{id}");
        powerpole::store::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&aws), &table).await.expect("create the table");
        World {
            id,
            table,
            schema,
            subnet_id,
            security_group_id: sg.group_id().expect("a group id").to_string(),
            instance_profile,
            admin_secret,
            slack,
            ssm,
            ec2,
            aws,
            db,
            options,
        }
    }

    /// The configuration of this world: one MariaDB target `billing` reached by bastions at the
    /// bridge address, Bob its approver.
    pub fn config_text(&self) -> String {
        let Options { warning_lead, ssm_online_timeout, tick } = &self.options;
        format!(
            r#"
[slack]
api_url = "{api}/"
signing_secret = {{ env = "SLACK_SIGNING_SECRET" }}
bot_token = {{ env = "SLACK_BOT_TOKEN" }}

[store]
table = "{table}"

[scheduler]
tick = "{tick}"
warning_lead = "{warning_lead}"

[access]
max_duration = "12h"
home_domains = ["example.com"]

[deployment]
id = "test"

[bastion]
instance_profile = "{profile}"
ssm_online_timeout = "{ssm_online_timeout}"

[targets.billing]
writer_endpoint = "{DB_HOST_ON_BRIDGE}"
port = {port}
schemas = ["{schema}"]
admin_secret = "{secret}"
subnet_id = "{subnet}"
security_group_id = "{sg}"
approvers = ["{BOB}"]
approvals_channel = "{APPROVALS}"
max_duration = "4h"
dialect = "mariadb"
kill_statement = "kill_connection"
# The shared stand-in has no TLS (tests/grants_db.rs covers verified TLS on a server of its own).
admin_tls = "disabled"
# The bridge only this host reaches (scripts/netns.sh).
local_endpoint = true
require_ssl = false
"#,
            api = self.slack.api_url(),
            table = self.table,
            profile = self.instance_profile,
            port = self.db.port,
            schema = self.schema,
            secret = self.admin_secret,
            subnet = self.subnet_id,
            sg = self.security_group_id,
        )
    }

    pub fn config(&self) -> Config {
        // The bot token reference reads SLACK_BOT_TOKEN; give it the stand-in's token.
        std::env::set_var("SLACK_BOT_TOKEN", BOT_TOKEN);
        Config::from_toml_str(&self.config_text()).expect("the world's config is valid")
    }

    /// The environment a `powerpole` process needs to live in this world.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        if let Some(region) = self.aws.region() {
            // The world's own region (the same as AWS_REGION unless made with `new_in_region`).
            vars.retain(|(k, _)| k != "AWS_REGION");
            vars.push(("AWS_REGION".into(), region.to_string()));
        }
        vars.push(("AWS_ENDPOINT_URL_SSM".into(), self.ssm.url()));
        vars.push(("SLACK_SIGNING_SECRET".into(), SECRET.into()));
        vars.push(("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()));
        vars
    }

    /// powerpole assembled as `serve` assembles it, with `clock`, and bastions that ask the SSM
    /// stand-in (which serves the call moto lacks) every 50 ms.
    pub async fn app(&self, clock: Arc<dyn Clock>) -> App {
        let mut app = App::build_with(self.config(), self.aws.clone(), clock).await.expect("powerpole assembles");
        let ssm = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::config::Builder::from(&self.aws).endpoint_url(self.ssm.url()).build());
        let bastions = Ec2Bastions::new(self.ec2.clone(), ssm, app.config.bastion.clone())
            .in_deployment(app.config.deployment.id.clone())
            .with_poll_interval(Duration::from_millis(50));
        app.lifecycle.bastions = Arc::new(bastions);
        app
    }

    /// As [`World::app`], with a configuration of the test's own (e.g. `config_text()` plus a
    /// setting or a second target).
    pub async fn app_with(&self, config_text: &str, clock: Arc<dyn Clock>) -> App {
        std::env::set_var("SLACK_BOT_TOKEN", BOT_TOKEN);
        let config = Config::from_toml_str(config_text).expect("the test's config is valid");
        let mut app = App::build_with(config, self.aws.clone(), clock).await.expect("powerpole assembles");
        let ssm = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::config::Builder::from(&self.aws).endpoint_url(self.ssm.url()).build());
        let bastions = Ec2Bastions::new(self.ec2.clone(), ssm, app.config.bastion.clone())
            .in_deployment(app.config.deployment.id.clone())
            .with_poll_interval(Duration::from_millis(50));
        app.lifecycle.bastions = Arc::new(bastions);
        app
    }

    /// Points the target's admin secret at `host:port` (a proxy in front of MariaDB, or another
    /// server). Processes started afterwards log in there.
    pub async fn point_admin_secret_at(&self, host: &str, port: u16) {
        self.point_admin_secret_with(host, port, &self.db.user, &self.db.password).await;
    }

    /// As [`World::point_admin_secret_at`], with other admin credentials.
    pub async fn point_admin_secret_with(&self, host: &str, port: u16, user: &str, password: &str) {
        let value = serde_json::json!({"host": host, "port": port, "username": user, "password": password});
        aws_sdk_secretsmanager::Client::new(&self.aws)
            .put_secret_value()
            .secret_id(&self.admin_secret)
            .secret_string(value.to_string())
            .send()
            .await
            .expect("moto updates the admin secret");
    }

    /// Every instance moto holds in this world's subnet, in any state.
    pub async fn instances_in_subnet(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let filter = Filter::builder().name("subnet-id").values(&self.subnet_id).build();
        let answer = self.ec2.describe_instances().filters(filter).send().await.expect("DescribeInstances");
        answer.reservations().iter().flat_map(|r| r.instances()).cloned().collect()
    }

    /// Serves Slack for `app` on a free loopback port, as `powerpole serve` does.
    pub async fn serve(&self, app: &App) -> Http {
        let slack_app = SlackApp::new(app.workflow.clone(), app.notifier.clone(), Secret::new(SECRET));
        let listening = serve::listen(slack_app, "127.0.0.1:0").await.expect("the service listens");
        let driver = SlackDriver::new(&format!("http://{}", listening.addr), SECRET).with_slack(&self.slack);
        Http { addr: listening.addr, driver }
    }

    /// Every instance moto holds for `session`, in any state.
    pub async fn instances_of(&self, session: &SessionId) -> Vec<aws_sdk_ec2::types::Instance> {
        let filter = Filter::builder().name(format!("tag:{}", tags::SESSION)).values(session.as_str()).build();
        let answer = self.ec2.describe_instances().filters(filter).send().await.expect("DescribeInstances");
        answer.reservations().iter().flat_map(|r| r.instances()).cloned().collect()
    }

    /// The requester's database user name (from their e-mail, `alice<world id>`).
    pub fn db_user(&self) -> String {
        format!("alice{}", self.id)
    }

    /// `(user, host)` rows of mysql.user for `user`.
    pub async fn accounts_named(&self, user: &str) -> Vec<(String, String)> {
        let mut root = self.db.root().await;
        root.exec("SELECT User, Host FROM mysql.user WHERE User = ?", (user,)).await.expect("read mysql.user")
    }

    /// Whether alice's account holds the role's privileges: every statement of the grant but the
    /// final unlock has run. A test that stops powerpole "after the grant" waits for this, since
    /// a stop in the middle of the grant's statements leaves a half-made account (closing note of
    /// issue 16).
    pub async fn account_granted(&self) -> bool {
        let Some((user, host)) = self.accounts_named(&self.db_user()).await.into_iter().next() else { return false };
        let mut root = self.db.root().await;
        // SHOW GRANTS takes no placeholders; the names are this world's own.
        let grants: Vec<String> = root.query(format!("SHOW GRANTS FOR '{user}'@'{host}'")).await.unwrap_or_default();
        grants.iter().any(|g| g.contains("GRANT SELECT"))
    }

    /// The kinds in a session's audit trail, in order.
    pub async fn audit_kinds(&self, app: &App, id: &SessionId) -> Vec<AuditKind> {
        app.workflow.store.audit_trail(id).await.expect("the trail is readable").into_iter().map(|r| r.event.kind).collect()
    }

    /// Waits until the request flow has stored where its approval card is (it writes that just
    /// after posting the card). A click before that would race the write, as no person can.
    pub async fn card_stored(&self, app: &App, id: &SessionId) {
        let deadline = tokio::time::Instant::now() + SOON;
        while self.session(app, id).await.slack.approval_ts.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "session {id}: the card's place was never stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn session(&self, app: &App, id: &SessionId) -> Session {
        app.workflow.store.get(id).await.expect("the store answers").expect("the session exists")
    }

    /// DMs to `user` (`D` + user id on the stand-in), posted or updated.
    pub fn dms_to(&self, user: &str) -> Vec<RecordedCall> {
        let channel = format!("D{user}");
        self.slack.calls().into_iter().filter(|c| c.method == "chat.postMessage" && c.response["channel"] == channel.as_str()).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let (ec2, subnet_id, db, schema, user) = (self.ec2.clone(), self.subnet_id.clone(), self.db.clone(), self.schema.clone(), self.db_user());
        // Drop cannot await and the test's runtime is shutting down: use a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                let filter = Filter::builder().name("subnet-id").values(&subnet_id).build();
                if let Ok(answer) = ec2.describe_instances().filters(filter).send().await {
                    let ids: Vec<String> = answer.reservations().iter().flat_map(|r| r.instances()).filter_map(|i| i.instance_id()).map(str::to_string).collect();
                    if !ids.is_empty() {
                        let _ = ec2.terminate_instances().set_instance_ids(Some(ids)).send().await;
                    }
                }
                if let Ok(mut root) = mysql_async::Conn::from_url(db.url.as_str()).await {
                    let _ = root.query_drop(format!("DROP DATABASE IF EXISTS `{schema}`")).await;
                    // A test that failed mid-session leaves its account: the user name is the world's own.
                    let hosts: Vec<String> = root.exec("SELECT Host FROM mysql.user WHERE User = ?", (user.as_str(),)).await.unwrap_or_default();
                    for host in hosts {
                        let _ = root.exec_drop("DROP USER ?@?", (user.as_str(), host.as_str())).await;
                    }
                }
            })
        });
        let _ = cleanup.join();
    }
}

/// A running Slack endpoint and a driver that signs requests for it.
pub struct Http {
    pub addr: SocketAddr,
    pub driver: SlackDriver,
}

impl Http {
    pub async fn command(&self, user: &str, text: &str) -> DriverResponse {
        self.driver.command(SlashCommand::new(user, &user.to_lowercase(), "C0ACCESS", text)).await.expect("the service answers")
    }

    pub async fn click(&self, message: &RecordedCall, action: &str, user: &str) -> DriverResponse {
        let click = ButtonClick::on(message, action, user, &user.to_lowercase()).expect("the message has the button");
        self.driver.interaction(self.driver.block_actions(&click)).await.expect("the service answers")
    }
}

/// A test host holding `ip` on the stand-ins' bridge (scripts/netns.sh), removed when dropped.
pub struct TestHost {
    name: String,
}

impl TestHost {
    pub fn add(ip: &str) -> TestHost {
        let name = format!("ppw{}", suffix());
        let out = std::process::Command::new(script("netns.sh")).args(["add", &name, ip]).output().expect("run scripts/netns.sh");
        assert!(out.status.success(), "scripts/netns.sh add {name} {ip}: {}", String::from_utf8_lossy(&out.stderr));
        TestHost { name }
    }

    /// Runs the `mysql` command line a requester would paste, from this host; returns stdout or
    /// the client's error.
    pub fn mysql(&self, command_line: &str, sql: &str) -> Result<String, String> {
        let line = format!("{} --batch --skip-column-names -e \"{sql}\"", command_line.replacen("mysql ", "mariadb --no-defaults ", 1));
        let out = std::process::Command::new(script("netns.sh")).args(["exec", &self.name, "sh", "-c", &line]).output().expect("run the client");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script("netns.sh")).args(["del", &self.name]).output();
    }
}

fn script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

/// The `mysql ...` command line in a hand-over DM.
pub fn mysql_line_in(dm_text: &str) -> Option<String> {
    // The line sits in a code block: "```mysql -h ... -p```".
    let line = dm_text.lines().find_map(|l| l.find("mysql -h ").map(|at| &l[at..]))?;
    Some(line.trim_end_matches('`').trim().to_string())
}

/// The session id an approval card carries on its buttons.
pub fn session_on_card(card: &RecordedCall) -> SessionId {
    let id = card
        .blocks()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["value"].as_str().map(str::to_owned))
        .expect("the card carries the session id");
    SessionId::parse(&id).expect("a session id")
}

/// The password in a hand-over DM: the code block after "*Password*", on its own.
pub fn password_in(dm_text: &str) -> Option<String> {
    let after = &dm_text[dm_text.find("*Password*")?..];
    let start = after.find("```")? + 3;
    let end = after[start..].find("```")? + start;
    Some(after[start..end].trim().to_string()).filter(|p| !p.is_empty())
}

/// A DM's `mysql ... -p` line as a person runs it: the client asks for the password and they
/// type it. The test host has no terminal to type into, so the test puts it after `-p` instead.
pub fn typing_password(mysql_line: &str, password: &str) -> String {
    let line = mysql_line.strip_suffix(" -p").unwrap_or(mysql_line);
    format!("{line} -p'{}'", password.replace('\'', r"'\''"))
}

/// moto's IAM Query API (the product never calls IAM, so no SDK for one call): a form POST.
pub async fn create_instance_profile(moto: &str, name: &str) {
    let body = serde_urlencoded::to_string([("Action", "CreateInstanceProfile"), ("Version", "2010-05-08"), ("InstanceProfileName", name)])
        .expect("a form body");
    let answer = reqwest::Client::new()
        .post(moto)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .body(body)
        .send()
        .await
        .expect("moto answers IAM");
    assert!(answer.status().is_success(), "CreateInstanceProfile: {}", answer.text().await.unwrap_or_default());
}
