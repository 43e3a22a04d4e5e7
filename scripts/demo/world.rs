//! The world powerpole runs in, built fresh in the stand-ins for each run with names unique to it:
//! in moto a VPC, a private subnet and a bastion security group, the bastions' instance profile,
//! the target's admin secret; in MariaDB the `billing` schema with a small table; and the demo's
//! configuration file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::report::Report;

/// The VPC the demo's bastions live in, the same /16 as the test-host bridge (scripts/netns.sh).
pub const VPC_CIDR: &str = "10.200.0.0/16";
/// Bastions get addresses from here: never the host's 10.200.0.1.
pub const SUBNET_CIDR: &str = "10.200.8.0/24";
pub const SUBNET_PREFIX: &str = "10.200.8.";
/// Where bastions reach the database: MariaDB also listens on the bridge's host address.
pub const DB_BRIDGE_HOST: &str = "10.200.0.1";
pub const SCHEMA: &str = "billing";
pub const APPROVALS_CHANNEL: &str = "C0APPROVALS";
pub const REQUESTER: (&str, &str, &str) = ("U0ALICE", "alice@example.com", "Europe/Berlin");
pub const APPROVER: (&str, &str, &str) = ("U0BOB", "bob@example.com", "America/New_York");

/// The stand-ins' addresses, from `.local/standins.env` (scripts/demo.sh sources it).
pub struct StandinEnv {
    pub moto_url: String,
    pub mysql_url: String,
}

impl StandinEnv {
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).with_context(|| {
                format!("{name} is not set: run the demo with `make demo` (it starts the stand-ins and sources .local/standins.env)")
            })
        };
        Ok(Self { moto_url: var("POWERPOLE_TEST_MOTO_URL")?, mysql_url: var("POWERPOLE_TEST_MYSQL_URL")? })
    }
}

/// Everything the run created, by id.
pub struct World {
    pub run: String,
    pub env: StandinEnv,
    pub aws: aws_config::SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub subnet_id: String,
    pub security_group_id: String,
    pub instance_profile: String,
    pub admin_secret: String,
    pub dynamo_table: String,
    /// `billing.<this>`: the table the requester will read.
    pub data_table: String,
    pub admin: mysql_async::Pool,
}

impl World {
    /// Creates the AWS side in moto and the data in MariaDB.
    pub async fn create(report: &Report, run: &str, env: StandinEnv) -> Result<World> {
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let ec2 = aws_sdk_ec2::Client::new(&aws);
        let name = format!("powerpole-demo-{run}");

        let vpc_id = create_vpc(&ec2, &name).await?;
        let subnet_id = create_subnet(&ec2, &vpc_id, &name).await?;
        let security_group_id = create_security_group(&ec2, &vpc_id, &name).await?;
        report.say(format!("moto EC2: VPC {vpc_id} ({VPC_CIDR}), private subnet {subnet_id} ({SUBNET_CIDR}), bastion security group {security_group_id} (no ingress)"));

        let instance_profile = format!("{name}-bastion");
        create_instance_profile(&env.moto_url, &instance_profile).await?;
        report.say(format!("moto IAM: instance profile {instance_profile} for the bastions"));

        let admin = MysqlUrl::parse(&env.mysql_url)?;
        let admin_secret = format!("powerpole-demo/{run}/billing-admin");
        create_admin_secret(&aws, &admin_secret, &admin).await?;
        report.say(format!(
            "moto Secrets Manager: {admin_secret} = MariaDB's {} at {}:{} (the admin credential powerpole reads)",
            admin.username, admin.host, admin.port
        ));

        let pool = mysql_async::Pool::new(env.mysql_url.as_str());
        let data_table = format!("refunds_{}", run.replace('-', "_"));
        let rows = create_billing_data(&pool, &data_table).await?;
        report.say(format!("MariaDB: {SCHEMA}.{data_table} with {rows} rows"));

        Ok(World {
            run: run.to_owned(),
            env,
            aws,
            ec2,
            subnet_id,
            security_group_id,
            instance_profile,
            admin_secret,
            dynamo_table: name,
            data_table,
            admin: pool,
        })
    }

    /// Writes the demo's configuration for `powerpole serve` and checks that powerpole accepts it.
    pub fn write_config(&self, dir: &Path, slack_api_url: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join("powerpole.toml");
        std::fs::write(&path, self.config_toml(slack_api_url)).with_context(|| format!("write {}", path.display()))?;
        powerpole::config::Config::load(&path).map_err(|e| anyhow::anyhow!("powerpole refuses {}: {e}", path.display()))?;
        Ok(path)
    }

    fn config_toml(&self, slack_api_url: &str) -> String {
        let (approver, _, _) = APPROVER;
        format!(
            r#"# Written by `make demo` (run {run}): powerpole against the local stand-ins, with durations
# scaled down so that a whole session (2 minutes, warned 1 minute before expiry) fits in the demo.
# The Slack signing secret and bot token come from SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN;
# AWS endpoints from AWS_ENDPOINT_URL (moto) and AWS_ENDPOINT_URL_SSM (the SSM stand-in).

[slack]
mode = "http"
api_url = "{slack_api_url}/"

[store]
table = "{table}"

[scheduler]
tick = "5s"
warning_lead = "1m"

[access]
max_duration = "1h"
home_domains = ["example.com"]

[deployment]
id = "demo"

[bastion]
instance_profile = "{profile}"
ssm_online_timeout = "1m"

[targets.billing]
description = "Billing (the MariaDB stand-in, reached on the test-host bridge)"
writer_endpoint = "{db_host}"
port = {port}
schemas = ["{schema}"]
admin_secret = "{secret}"
subnet_id = "{subnet}"
security_group_id = "{sg}"
approvers = ["{approver}"]
approvals_channel = "{channel}"
max_duration = "1h"
dialect = "mariadb"
kill_statement = "kill_connection"
admin_tls = "disabled"
local_endpoint = true
require_ssl = false
"#,
            run = self.run,
            table = self.dynamo_table,
            profile = self.instance_profile,
            db_host = DB_BRIDGE_HOST,
            port = self.db_port(),
            schema = SCHEMA,
            secret = self.admin_secret,
            subnet = self.subnet_id,
            sg = self.security_group_id,
            channel = APPROVALS_CHANNEL,
        )
    }

    /// The MariaDB port (the same on loopback and on the bridge).
    pub fn db_port(&self) -> u16 {
        MysqlUrl::parse(&self.env.mysql_url).map(|u| u.port).unwrap_or(3306)
    }

    /// Removes what would otherwise pile up in MariaDB over runs (moto forgets on restart).
    pub async fn cleanup(&self) {
        if let Ok(mut conn) = self.admin.get_conn().await {
            let _ = conn.query_drop(format!("DROP TABLE IF EXISTS `{SCHEMA}`.`{}`", self.data_table)).await;
        }
    }
}

async fn create_vpc(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<String> {
    let vpc = ec2
        .create_vpc()
        .cidr_block(VPC_CIDR)
        .tag_specifications(name_tag(ResourceType::Vpc, name))
        .send()
        .await
        .context("moto: CreateVpc")?;
    vpc.vpc().and_then(|v| v.vpc_id()).map(str::to_owned).context("moto: CreateVpc returned no id")
}

async fn create_subnet(ec2: &aws_sdk_ec2::Client, vpc_id: &str, name: &str) -> Result<String> {
    let subnet = ec2
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(SUBNET_CIDR)
        .tag_specifications(name_tag(ResourceType::Subnet, &format!("{name}-private")))
        .send()
        .await
        .context("moto: CreateSubnet")?;
    subnet.subnet().and_then(|s| s.subnet_id()).map(str::to_owned).context("moto: CreateSubnet returned no id")
}

async fn create_security_group(ec2: &aws_sdk_ec2::Client, vpc_id: &str, name: &str) -> Result<String> {
    let sg = ec2
        .create_security_group()
        .group_name(format!("{name}-bastion"))
        .description("powerpole demo bastions: no ingress")
        .vpc_id(vpc_id)
        .send()
        .await
        .context("moto: CreateSecurityGroup")?;
    sg.group_id().map(str::to_owned).context("moto: CreateSecurityGroup returned no id")
}

fn name_tag(kind: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).tags(Tag::builder().key("Name").value(name).build()).build()
}

/// powerpole never calls IAM, so no IAM SDK is compiled for this one call: moto's IAM Query API
/// takes a form POST (it reads the account from the credential scope and checks no signature).
async fn create_instance_profile(moto_url: &str, name: &str) -> Result<()> {
    let body = serde_urlencoded::to_string([
        ("Action", "CreateInstanceProfile"),
        ("Version", "2010-05-08"),
        ("InstanceProfileName", name),
    ])?;
    let answer = reqwest::Client::new()
        .post(moto_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .body(body)
        .send()
        .await
        .context("moto: CreateInstanceProfile")?;
    if !answer.status().is_success() {
        bail!("moto: CreateInstanceProfile answered {}: {}", answer.status(), answer.text().await.unwrap_or_default());
    }
    Ok(())
}

/// The parts of `mysql://user:password@host:port`.
pub struct MysqlUrl {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

impl MysqlUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let opts = mysql_async::Opts::from_url(text).context("POWERPOLE_TEST_MYSQL_URL is not a mysql:// URL")?;
        Ok(Self {
            host: opts.ip_or_hostname().to_owned(),
            port: opts.tcp_port(),
            username: opts.user().unwrap_or("root").to_owned(),
            password: opts.pass().unwrap_or_default().to_owned(),
        })
    }
}

async fn create_admin_secret(aws: &aws_config::SdkConfig, name: &str, admin: &MysqlUrl) -> Result<()> {
    let secret = json!({"host": admin.host, "port": admin.port, "username": admin.username, "password": admin.password});
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(name)
        .secret_string(secret.to_string())
        .send()
        .await
        .context("moto: CreateSecret")?;
    Ok(())
}

/// `billing.<table>` with a few refunds; returns how many rows.
async fn create_billing_data(pool: &mysql_async::Pool, table: &str) -> Result<usize> {
    let rows = [("ORD-1001", 1250, "refunded"), ("ORD-1002", 4999, "pending"), ("ORD-1003", 1250, "mismatch")];
    let mut conn = pool.get_conn().await.context("connect to MariaDB as its admin")?;
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{SCHEMA}`")).await?;
    conn.query_drop(format!(
        "CREATE TABLE `{SCHEMA}`.`{table}` (id INT AUTO_INCREMENT PRIMARY KEY, order_ref VARCHAR(32) NOT NULL, amount_cents INT NOT NULL, status VARCHAR(16) NOT NULL)"
    ))
    .await
    .with_context(|| format!("create {SCHEMA}.{table}"))?;
    conn.exec_batch(
        format!("INSERT INTO `{SCHEMA}`.`{table}` (order_ref, amount_cents, status) VALUES (?, ?, ?)"),
        rows.iter().map(|(order, cents, status)| (*order, *cents, *status)),
    )
    .await?;
    Ok(rows.len())
}
