//! What the grants tests share: the stand-ins' addresses, a target whose admin secret lives in
//! moto's Secrets Manager, schemas and accounts that are cleaned up even when a test fails, and
//! a way to log in as the account a test created.
//!
//! Everything a test makes carries a random suffix, because the MariaDB and moto stand-ins are
//! shared with other engineers' tests running at the same time.

#![allow(dead_code)] // each test binary uses part of this module

pub mod netns;
pub mod private;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use rand::RngExt;

use powerpole::config::{AccountHost, AdminTls, Approvers, Dialect, KillStatement, TargetConfig};
use powerpole::domain::{AccessDuration, Role, SchemaName, TargetName};
use powerpole::grants::{MysqlGrants, SecretsManagerAdmin};

const HOW_TO_START: &str = "run `make test`, or start the stand-ins with `scripts/standins.sh start` and `source .local/standins.env`";

/// A required environment variable, or a failure that says how to get it.
pub fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!("{name} is not set: this test needs the stand-ins; {HOW_TO_START}"),
    }
}

/// Eight random characters from `[a-z0-9]`, for names no other test uses.
pub fn suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// A random address in 10.250.0.0/16, for accounts that no test connects with: every test's
/// accounts are then told apart by host.
pub fn random_host() -> String {
    let mut rng = rand::rng();
    format!("10.250.{}.{}", rng.random_range(0..=255u8), rng.random_range(1..=254u8))
}

/// Root's login on a MariaDB, parsed from `mysql://user:password@host:port`.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Server {
    /// The shared stand-in, from `POWERPOLE_TEST_MYSQL_URL`.
    pub fn shared() -> Server {
        let url = required_env("POWERPOLE_TEST_MYSQL_URL");
        let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("POWERPOLE_TEST_MYSQL_URL is not a mysql:// URL ({e}); {HOW_TO_START}"));
        Server {
            host: parsed.host_str().unwrap_or("127.0.0.1").to_string(),
            port: parsed.port().unwrap_or(3306),
            user: parsed.username().to_string(),
            password: parsed.password().unwrap_or("").to_string(),
        }
    }

    pub async fn root(&self) -> Conn {
        self.login(&self.user, &self.password).await.unwrap_or_else(|e| panic!("root cannot log in to {}:{} ({e}); {HOW_TO_START}", self.host, self.port))
    }

    /// Logs in over TCP (never the Unix socket: the server must see the client's address).
    pub async fn login(&self, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts(user, password)).await
    }

    /// As [`Server::login`], over TLS verified against `ca` alone.
    pub async fn login_over_tls(&self, user: &str, password: &str, ca: &std::path::Path) -> Result<Conn, mysql_async::Error> {
        let tls = SslOpts::default().with_root_certs(vec![ca.to_path_buf().into()]).with_disable_built_in_roots(true);
        Conn::new(self.opts(user, password).ssl_opts(tls)).await
    }

    fn opts(&self, user: &str, password: &str) -> OptsBuilder {
        OptsBuilder::default().ip_or_hostname(self.host.clone()).tcp_port(self.port).user(Some(user)).pass(Some(password)).prefer_socket(false)
    }

    /// Runs SQL as root with the command line client: usable from `Drop`, where nothing async is.
    pub fn root_cli(&self, sql: &str) -> std::io::Result<std::process::Output> {
        Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "-h", &self.host, "-P", &self.port.to_string(), "-u", &self.user])
            .arg(format!("-p{}", self.password))
            .args(["-e", sql])
            .output()
    }
}

/// Creates a secret in moto holding the server's root login, the way an operator stores a
/// target's admin credential.
pub async fn put_admin_secret(server: &Server) -> String {
    let id = format!("powerpole/test/admin-{}", suffix());
    let value = serde_json::json!({"host": server.host, "port": server.port, "username": server.user, "password": server.password});
    secrets_client()
        .create_secret()
        .name(&id)
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto refused CreateSecret ({}); {HOW_TO_START}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)));
    id
}

pub fn secrets_client() -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .endpoint_url(required_env("AWS_ENDPOINT_URL"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "powerpole-tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The AWS settings of moto, built without I/O.
pub fn moto_sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_secretsmanager::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .endpoint_url(required_env("AWS_ENDPOINT_URL"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "powerpole-tests")))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build()
}

/// The adapter under test, reading admin credentials from moto.
pub fn grants() -> MysqlGrants {
    let secrets = powerpole::secrets::Secrets::new(&moto_sdk_config());
    MysqlGrants::new(Arc::new(SecretsManagerAdmin::new(secrets, SecretsManagerAdmin::DEFAULT_TTL)))
}

/// A MariaDB target over `schemas`, its admin credential in `secret_id`.
pub fn target(server: &Server, secret_id: &str, schemas: &[&str]) -> TargetConfig {
    TargetConfig {
        name: TargetName::parse(&format!("t-{}", suffix())).expect("a valid target name"),
        description: None,
        writer_endpoint: server.host.clone(),
        reader_endpoint: None,
        port: server.port,
        schemas: schemas.iter().map(|s| SchemaName::parse(s).expect("a valid schema name")).collect(),
        admin_secret: secret_id.to_string(),
        subnet_id: "subnet-0test".into(),
        security_group_id: "sg-0test".into(),
        approvers: Approvers::default(),
        approvals_channel: "C0TEST".into(),
        required_approvals: 1,
        max_duration: AccessDuration::from_minutes(60).expect("an hour is valid"),
        account_host: AccountHost::InstanceIp,
        dialect: Dialect::Mariadb,
        kill_statement: KillStatement::KillConnection,
        // The shared stand-in has no TLS; tests/grants_db.rs starts servers that do.
        require_ssl: false,
        max_user_connections: 5,
        admin_tls: AdminTls::Disabled,
        instance_endpoints: vec![],
        statement_timeout: std::time::Duration::from_secs(30),
        grant_deadline: std::time::Duration::from_secs(120),
        privileges: Role::ALL.into_iter().map(|r| (r, r.default_privileges())).collect::<BTreeMap<_, _>>(),
        ami: None,
        instance_type: None,
        launch_on_request: false,
        breakglass: None,
        policy: Default::default(),
    }
}

/// Schemas and accounts a test made, dropped when it ends, failed or not.
pub struct Cleanup {
    server: Server,
    schemas: Vec<String>,
    accounts: Vec<(String, String)>,
}

impl Cleanup {
    pub fn new(server: &Server) -> Cleanup {
        Cleanup { server: server.clone(), schemas: vec![], accounts: vec![] }
    }

    /// Creates `name` with a table `t (id, v)` holding one row.
    pub async fn schema(&mut self, root: &mut Conn, name: &str) {
        self.schemas.push(name.to_string());
        root.query_drop(format!("CREATE DATABASE `{name}`")).await.expect("root creates a schema");
        root.query_drop(format!("CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v VARCHAR(40))")).await.expect("root creates a table");
        root.query_drop(format!("INSERT INTO `{name}`.t VALUES (1, 'one')")).await.expect("root inserts a row");
    }

    /// Remembers an account to drop at the end, in case the test does not get to revoke it.
    pub fn account(&mut self, user: &str, host: &str) {
        self.accounts.push((user.to_string(), host.to_string()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut sql = String::new();
        for (user, host) in &self.accounts {
            sql.push_str(&format!("DROP USER IF EXISTS '{user}'@'{host}';"));
        }
        for schema in &self.schemas {
            sql.push_str(&format!("DROP DATABASE IF EXISTS `{schema}`;"));
        }
        if !sql.is_empty() {
            match self.server.root_cli(&sql) {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!("cleanup failed: {}", String::from_utf8_lossy(&out.stderr)),
                Err(e) => eprintln!("cleanup could not run mariadb: {e}"),
            }
        }
    }
}

/// The MySQL error code of a refused statement, or a failure naming what happened instead.
pub fn refusal_code<T: std::fmt::Debug>(result: Result<T, mysql_async::Error>, what: &str) -> u16 {
    match result {
        Err(mysql_async::Error::Server(e)) => e.code,
        other => panic!("{what}: expected the server to refuse it, got {other:?}"),
    }
}
