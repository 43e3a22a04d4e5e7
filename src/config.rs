//! Configuration: `powerpole.toml`, then environment overrides, then validation into typed values.
//!
//! # The override rule
//!
//! Every environment variable that starts with `POWERPOLE_` **and contains `__`** overrides one
//! field: strip the prefix, lower-case the rest, and read each `__` as a step into a table.
//! `POWERPOLE_SLACK__API_URL` sets `[slack] api_url`; `POWERPOLE_TARGETS__BILLING__PORT` sets
//! `[targets.billing] port`. Values are parsed as TOML scalars where they can be (numbers,
//! booleans), otherwise taken as strings.
//!
//! Secrets are never values in the file: the Slack signing secret and tokens are *references*
//! (`{ env = "NAME" }`, `{ secrets_manager = "id", key = "field" }` or `{ ssm_parameter = "/name" }`)
//! that default to Slack's conventional `SLACK_SIGNING_SECRET`, `SLACK_BOT_TOKEN` and
//! `SLACK_APP_TOKEN`; each target's admin credential is a Secrets Manager secret id.
//! AWS endpoints and region come from the SDK's own variables (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`).
//!
//! [`Config::load`] reports *every* problem at once, each with its field path and what to do.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::domain::{
    AccessDuration, DeploymentId, PrivilegeSet, Role, SchemaName, SlackUserId, TargetName, UsernamePolicy,
};

/// One thing wrong with a configuration, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the configuration:\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

// ---------------------------------------------------------------------------------------------
// Typed, validated configuration.
// ---------------------------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub deployment: DeploymentConfig,
    pub slack: SlackConfig,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub scheduler: SchedulerConfig,
    pub access: AccessConfig,
    pub bastion: BastionConfig,
    pub targets: BTreeMap<TargetName, TargetConfig>,
    pub audit: AuditConfig,
    /// Each adapter's timeout and retries (`[calls]`, see [`crate::calls`]).
    pub calls: crate::calls::CallsConfig,
}

/// Where the security team's session report reads what happened during a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The CloudWatch Logs group Session Manager streams the bastions' sessions to.
    pub session_log_group: String,
    /// Each target's own database audit log, where it has one.
    pub database_logs: BTreeMap<TargetName, DbAuditSource>,
}

/// A database audit log: Aurora's log group in CloudWatch Logs, or a server_audit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbAuditSource {
    /// `cloudwatch:/aws/rds/cluster/<cluster>/audit`
    CloudWatch(String),
    /// `file:/var/lib/mysql/server_audit.log`
    File(std::path::PathBuf),
}

/// Where a secret comes from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A Secrets Manager secret id or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<String>,
    /// With `secrets_manager`: the field of a JSON secret (the whole string if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A Parameter Store parameter (SecureString), read with decryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
}

impl SecretRef {
    pub fn env(name: &str) -> SecretRef {
        SecretRef { env: Some(name.to_string()), secrets_manager: None, key: None, ssm_parameter: None }
    }

    fn problem(&self) -> Option<&'static str> {
        let sources = [self.env.is_some(), self.secrets_manager.is_some(), self.ssm_parameter.is_some()];
        match sources.iter().filter(|s| **s).count() {
            1 if self.key.is_some() && self.secrets_manager.is_none() => Some("`key` goes with `secrets_manager` only"),
            1 => None,
            0 => Some("name one source: { env = \"NAME\" }, { secrets_manager = \"id\", key = \"field\" } or { ssm_parameter = \"/name\" }"),
            _ => Some("name exactly one of env, secrets_manager, ssm_parameter"),
        }
    }
}

/// How Slack reaches powerpole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackMode {
    /// Slack POSTs to `/slack/*` over HTTPS.
    Http,
    /// powerpole opens a WebSocket to Slack (no inbound port).
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    pub mode: SlackMode,
    /// Base URL of the Web API, ending in `/` (tests point it at the stand-in).
    pub api_url: String,
    pub signing_secret: SecretRef,
    pub bot_token: SecretRef,
    /// App-level token (`xapp-`), for Socket Mode only.
    pub app_token: SecretRef,
    /// The slash command this app answers to.
    pub command: String,
    /// A user group (`S0123`) mentioned in a pending request's thread after
    /// `scheduler.escalate_after`, when nobody has decided.
    pub escalation_group: Option<String>,
    /// Where the security team hears of break-glass and gets each session's summary at
    /// teardown (a channel id); none: nothing is posted.
    pub security_channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: String,
    /// Follow-ups (the work after each acknowledgement) running at once.
    pub follow_up_workers: usize,
    /// Follow-ups waiting for a worker; past it, Slack is answered "busy, try again".
    pub follow_up_queue: usize,
    /// The level of the one log line per Slack request; `None` logs none.
    pub request_log: Option<tracing::Level>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub table: String,
    pub session_retention: AccessDuration,
    pub audit_retention: AccessDuration,
    /// How long a person's acknowledged action (a request, a decision) waits for an unavailable
    /// store (throttled or unreachable) before they are told it was not done.
    pub unavailable_retry_for: AccessDuration,
}

/// What `config check` says when `[deployment] id` is missing: there is no default, since two
/// installations that both kept one would share the bastion tag and the marker role (each one's
/// reconcile would remove the other's bastions and accounts).
pub const DEPLOYMENT_ID_MISSING: &str = "missing: name this installation with 1 to 16 characters from a-z, 0-9 and - \
(e.g. `prod` or `staging-eu`), unique among the installations that share an AWS account, region or database server; \
an installation that ran before this field was required ran as `default`: write `id = \"default\"` to keep its live \
bastions and accounts, and move to a name of its own when no session is live (README, \"Upgrading\")";

/// Which installation this is (see [`DeploymentId`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentConfig {
    pub id: DeploymentId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub tick: AccessDuration,
    pub warning_lead: AccessDuration,
    pub pending_timeout: AccessDuration,
    /// A teardown still failing after this long raises an alert in the approvals channel.
    pub teardown_alert_after: AccessDuration,
    /// How long a provisioning claim lasts. The worker renews it every third of it while it
    /// waits for the grant and for SSM, so a live worker keeps its session however long the wait,
    /// and a crashed worker's session is resumed by another within one lease.
    pub provisioning_lease: AccessDuration,
    /// How often `serve` runs reconcile in-process (the Lambda deployment has its own schedule).
    pub reconcile_every: AccessDuration,
    /// Reconcile spares bastions launched less than this long ago: their session may not be
    /// readable yet. Zero only for tests.
    pub reconcile_grace: chrono::Duration,
    /// Approvers are reminded in the card's thread this long after a request (and again every
    /// this long) while nobody has decided.
    pub renotify_after: AccessDuration,
    /// After this long undecided, `slack.escalation_group` is mentioned in the thread (once).
    pub escalate_after: Option<AccessDuration>,
    /// A break-glass session nobody has reviewed this long after it began raises an alert
    /// (and again every this long until someone does).
    pub review_within: AccessDuration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// No target may allow more than this in one session (extensions included).
    pub max_duration: AccessDuration,
    pub usernames: UsernamePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BastionConfig {
    pub instance_type: String,
    pub instance_profile: String,
    /// The public SSM parameter holding the AMI id (Amazon Linux 2023 by default).
    pub ami_parameter: String,
    pub root_volume_gib: u32,
    pub ssm_online_timeout: AccessDuration,
    /// What the `powerpole:identity` tag of a bastion holds (see [`crate::bastion::identity`]).
    pub identity_source: IdentitySource,
    /// powerpole's Session Manager document (Terraform output `session_document_name`).
    pub session_document: String,
    /// `[access] home_domains`: the addresses `email_local_part` gives an identity to.
    pub home_domains: Vec<String>,
}

/// Which of the requester's identities a bastion's `powerpole:identity` tag carries: the value
/// the engineer policy compares with the caller's principal tag (infra/README.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// The Slack profile e-mail, as IAM Identity Center's `email` attribute carries it.
    #[default]
    Email,
    /// The part of the e-mail before `@` (for identity providers that pass a user name).
    EmailLocalPart,
    /// The Slack user id (for principals tagged with it).
    SlackUserId,
}

/// The MySQL flavour a target speaks (statements differ slightly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// MySQL 8 and Aurora MySQL 3.
    Mysql8,
    /// MariaDB 10.11 (the local stand-in).
    Mariadb,
}

/// How to end another account's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillStatement {
    /// `KILL CONNECTION id` (MySQL, MariaDB with SUPER or CONNECTION ADMIN).
    KillConnection,
    /// `CALL mysql.rds_kill(id)` (RDS and Aurora, where the admin user has no SUPER).
    RdsKill,
}

/// Which host the per-person account is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountHost {
    /// The bastion's private IP (the database sees the bastion directly).
    InstanceIp,
    /// A fixed pattern: `10.1.2.0/255.255.255.0` or `10.1.%`, for databases behind a proxy, NLB
    /// or PrivateLink endpoint, where the database sees the proxy's address.
    Pattern(String),
}

impl AccountHost {
    /// The widest network a pattern may cover: a /16 is the largest VPC CIDR AWS allows, so a
    /// wider pattern would admit addresses outside any one VPC (peered networks, VPNs).
    pub const WIDEST_PREFIX: u32 = 16;

    /// Parses `instance_ip`, an exact IPv4 address, a CIDR (`10.1.0.0/16`) or an
    /// address/netmask (`10.1.0.0/255.255.0.0`), turned into the netmask form both MySQL and
    /// MariaDB accept. Refused: `%` anywhere (MySQL's wildcard; with it a pattern cannot be
    /// bounded), a non-contiguous netmask (`255.0.255.0` matches scattered networks), and a
    /// prefix wider than [`AccountHost::WIDEST_PREFIX`].
    pub fn parse(text: &str) -> Result<AccountHost, String> {
        let t = text.trim();
        if t == "instance_ip" {
            return Ok(AccountHost::InstanceIp);
        }
        let widest = Self::WIDEST_PREFIX;
        let hint = format!("use instance_ip, an IPv4 address, or a CIDR from /{widest} to /32 such as 10.1.0.0/{widest}");
        if t.contains('%') || t.contains('_') {
            return Err(format!("`{t}`: `%` and `_` are wildcards in a MySQL host and are not allowed; {hint}"));
        }
        if let Some((addr, mask)) = t.split_once('/') {
            let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| format!("`{t}`: `{addr}` is not an IPv4 address; {hint}"))?;
            let bits = match mask.parse::<u32>() {
                Ok(bits) if bits <= 32 => bits,
                Ok(_) => return Err(format!("`{t}`: /{mask} is not a prefix length; {hint}")),
                Err(_) => {
                    let netmask: std::net::Ipv4Addr = mask.parse().map_err(|_| format!("`{t}`: `{mask}` is not a prefix length or netmask; {hint}"))?;
                    let m = u32::from(netmask);
                    // Contiguous: ones, then zeros (the inverse plus one is a power of two).
                    if (!m).wrapping_add(1) & !m != 0 {
                        return Err(format!("`{t}`: the netmask `{mask}` is not contiguous; {hint}"));
                    }
                    m.count_ones()
                }
            };
            if bits < widest {
                return Err(format!("`{t}`: /{bits} is wider than /{widest}; {hint}"));
            }
            let netmask = std::net::Ipv4Addr::from(if bits == 0 { 0 } else { u32::MAX << (32 - bits) });
            let masked = std::net::Ipv4Addr::from(u32::from(ip) & u32::from(netmask));
            return Ok(AccountHost::Pattern(format!("{masked}/{netmask}")));
        }
        match t.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => Ok(AccountHost::Pattern(ip.to_string())),
            Err(_) => Err(format!("`{t}` is not an account host; {hint}")),
        }
    }
}

/// How powerpole's own admin connection to a target is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTls {
    /// TLS, the server certificate checked against this CA bundle and the endpoint's host name.
    Verify { ca_bundle: std::path::PathBuf },
    /// No TLS: only for a local database (the stand-ins). Passwords cross the network in clear.
    Disabled,
}

/// Where the RDS CA bundle is looked for when a target does not name one.
pub const DEFAULT_CA_BUNDLE: &str = "/etc/powerpole/rds-ca-bundle.pem";

/// `[server] follow_up_workers` by default: follow-ups running at once (`slack/pool.rs`). Each
/// mostly waits on DynamoDB or Slack, so a few dozen keep up with any real Slack workspace while
/// holding a few dozen connections.
pub const DEFAULT_FOLLOW_UP_WORKERS: usize = 32;
/// `[server] follow_up_queue` by default: follow-ups waiting for a worker. At ~0.2 s each, 32
/// workers drain 512 in about 3 s, well inside the 30 minutes a `response_url` lasts.
pub const DEFAULT_FOLLOW_UP_QUEUE: usize = 512;

/// How approvers are named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Approvers {
    pub users: Vec<SlackUserId>,
    /// A Slack user group id (`S0123`), resolved with `usergroups.users.list`.
    pub group: Option<String>,
}

/// One database cluster people can ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub name: TargetName,
    pub description: Option<String>,
    pub writer_endpoint: String,
    pub reader_endpoint: Option<String>,
    pub port: u16,
    pub schemas: Vec<SchemaName>,
    /// Secrets Manager secret id of the admin credential (JSON: host, port, username, password).
    pub admin_secret: String,
    pub subnet_id: String,
    pub security_group_id: String,
    pub approvers: Approvers,
    pub approvals_channel: String,
    pub required_approvals: u8,
    pub max_duration: AccessDuration,
    pub account_host: AccountHost,
    pub dialect: Dialect,
    pub kill_statement: KillStatement,
    /// Per-person accounts are created `REQUIRE SSL` (default true).
    pub require_ssl: bool,
    pub max_user_connections: u32,
    /// TLS of the admin connection (default: verified against [`DEFAULT_CA_BUNDLE`]).
    pub admin_tls: AdminTls,
    /// Every instance endpoint of the cluster (writer and readers), where revocation looks for
    /// and kills the account's sessions. Empty (the default, accepted only when there is no
    /// reader endpoint): the admin connection's own host, the writer.
    pub instance_endpoints: Vec<String>,
    /// The limit of one admin statement, on the server and in the client.
    pub statement_timeout: std::time::Duration,
    /// The limit of the whole account creation; past it the account is rolled back.
    pub grant_deadline: std::time::Duration,
    /// The privileges of each role on this target (defaults unless overridden).
    pub privileges: BTreeMap<Role, PrivilegeSet>,
    /// An AMI id instead of the default parameter.
    pub ami: Option<String>,
    pub instance_type: Option<String>,
    /// Launch the bastion when the request is filed, so it is online by the time an approver
    /// clicks (default false). It carries no identity tag, so nobody can enter it, until approval;
    /// the database account is still created only after approval.
    pub launch_on_request: bool,
    /// On-call break-glass (`/powerpole breakglass`), if this target allows it.
    pub breakglass: Option<BreakGlassConfig>,
    /// Who may ask for what, whose approvals each role needs, and what is auto-approved
    /// (`[targets.NAME.policy]`, see [`crate::policy`]); empty: anyone may ask.
    pub policy: crate::policy::TargetPolicy,
}

/// Who may take access at once, without an approver, and within what limits. Each use is posted
/// loudly and must be reviewed afterwards (`scheduler.review_within`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassConfig {
    /// The Slack user group (`S0123`) whose members may break the glass.
    pub oncall_group: Option<String>,
    /// People who may break the glass by user id (`oncall_users`), instead of or besides the group.
    pub oncall_users: Vec<SlackUserId>,
    /// The longest break-glass session (default 1h; at most the target's `max_duration`).
    pub max_duration: AccessDuration,
    /// Whether break-glass may take the DDL role (default false).
    pub ddl: bool,
}

impl TargetConfig {
    /// The endpoint a role connects to: the reader for READ when there is one.
    pub fn endpoint_for(&self, role: Role) -> &str {
        match (role, &self.reader_endpoint) {
            (Role::Read, Some(reader)) => reader,
            _ => &self.writer_endpoint,
        }
    }

    pub fn privileges_for(&self, role: Role) -> PrivilegeSet {
        self.privileges.get(&role).cloned().unwrap_or_else(|| role.default_privileges())
    }
}

impl Config {
    /// Reads `path`, applies the environment overrides, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError {
                problems: vec![ConfigProblem {
                    path: path.display().to_string(),
                    message: "no such file; start from powerpole.example.toml".into(),
                }],
            });
        }
        Self::from_figment(Figment::from(Toml::file(path)).merge(env_overrides()))
    }

    /// Validates a configuration given as TOML text, with the environment overrides applied.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_layers(text, &[])
    }

    /// As [`Config::from_toml_str`], with further TOML documents merged over `base` in order
    /// (a later one wins per key) before the environment overrides: on Lambda, the operator's
    /// powerpole.toml and the fragments the Terraform module writes (one per target), so that
    /// the functions' environment stays the same size whatever the number of targets.
    pub fn from_toml_layers(base: &str, layers: &[String]) -> Result<Config, ConfigError> {
        let figment = layers.iter().fold(Figment::from(Toml::string(base)), |figment, layer| figment.merge(Toml::string(layer)));
        Self::from_figment(figment.merge(env_overrides()))
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(|err| ConfigError {
            problems: err
                .into_iter()
                .map(|e| ConfigProblem {
                    path: if e.path.is_empty() { "(file)".to_string() } else { e.path.join(".") },
                    message: format!("{}", e.kind),
                })
                .collect(),
        })?;
        raw.validate()
    }

    pub fn target(&self, name: &TargetName) -> Option<&TargetConfig> {
        self.targets.get(name)
    }

    /// What is valid but worth an operator's attention: `config check` prints these and every
    /// process logs them at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.deployment.id.as_str() == "default" {
            warnings.push(
                "deployment.id: `default` is the id every installation had before it was required; another installation \
                 still on `default` in this account, region or database server shares its bastions and accounts (each \
                 one's reconcile removes the other's): move to a name of its own when no session is live (README, \"Upgrading\")"
                    .to_string(),
            );
        }
        for t in self.targets.values() {
            if t.admin_tls == AdminTls::Disabled {
                warnings.push(format!(
                    "targets.{}.admin_tls: disabled: the admin password and the generated passwords cross the network in clear to {}",
                    t.name, t.writer_endpoint
                ));
            }
        }
        warnings
    }
}

fn env_overrides() -> Env {
    Env::prefixed("POWERPOLE_").filter(|key| key.as_str().contains("__")).split("__")
}

/// `[server] request_log`: a tracing level, or `off`.
fn request_log_level(text: &str, p: &mut Problems) -> Option<tracing::Level> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" => None,
        "error" => Some(tracing::Level::ERROR),
        "warn" => Some(tracing::Level::WARN),
        "info" => Some(tracing::Level::INFO),
        "debug" => Some(tracing::Level::DEBUG),
        "trace" => Some(tracing::Level::TRACE),
        other => {
            p.add("server.request_log", format!("`{other}` is not a log level: use off, error, warn, info, debug or trace"));
            Some(tracing::Level::INFO)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form, exactly as written, and its validation.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    deployment: RawDeployment,
    #[serde(default)]
    slack: RawSlack,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    bastion: RawBastion,
    #[serde(default)]
    targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    calls: crate::calls::RawCalls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    mode: Option<SlackMode>,
    api_url: Option<String>,
    signing_secret: Option<SecretRef>,
    bot_token: Option<SecretRef>,
    app_token: Option<SecretRef>,
    command: Option<String>,
    escalation_group: Option<String>,
    security_channel: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    session_log_group: Option<String>,
    #[serde(default)]
    database_logs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    follow_up_workers: Option<usize>,
    follow_up_queue: Option<usize>,
    request_log: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    table: Option<String>,
    session_retention: Option<String>,
    audit_retention: Option<String>,
    unavailable_retry_for: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    tick: Option<String>,
    warning_lead: Option<String>,
    pending_timeout: Option<String>,
    teardown_alert_after: Option<String>,
    provisioning_lease: Option<String>,
    reconcile_every: Option<String>,
    reconcile_grace: Option<String>,
    renotify_after: Option<String>,
    escalate_after: Option<String>,
    review_within: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    max_duration: Option<String>,
    home_domains: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBastion {
    instance_type: Option<String>,
    instance_profile: Option<String>,
    ami_parameter: Option<String>,
    root_volume_gib: Option<u32>,
    ssm_online_timeout: Option<String>,
    identity_source: Option<IdentitySource>,
    session_document: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    description: Option<String>,
    writer_endpoint: Option<String>,
    reader_endpoint: Option<String>,
    port: Option<u16>,
    schemas: Option<Vec<String>>,
    admin_secret: Option<String>,
    subnet_id: Option<String>,
    security_group_id: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
    approver_group: Option<String>,
    approvals_channel: Option<String>,
    required_approvals: Option<u8>,
    max_duration: Option<String>,
    account_host: Option<String>,
    dialect: Option<Dialect>,
    kill_statement: Option<KillStatement>,
    require_ssl: Option<bool>,
    max_user_connections: Option<u32>,
    admin_tls: Option<String>,
    /// With `admin_tls = "disabled"` and an endpoint that is not a loopback address: the
    /// operator says the database is on a network only this host reaches.
    local_endpoint: Option<bool>,
    tls_ca_bundle: Option<String>,
    instance_endpoints: Option<Vec<String>>,
    statement_timeout: Option<String>,
    grant_deadline: Option<String>,
    #[serde(default)]
    privileges: BTreeMap<String, Vec<String>>,
    ami: Option<String>,
    instance_type: Option<String>,
    launch_on_request: Option<bool>,
    oncall_group: Option<String>,
    oncall_users: Option<Vec<String>>,
    breakglass_max_duration: Option<String>,
    breakglass_ddl: Option<bool>,
    #[serde(default)]
    policy: crate::policy::RawPolicy,
}

/// Collects problems while validating, so that every one is reported.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem { path: path.into(), message: message.into() });
    }

    fn duration(&mut self, path: &str, value: Option<&str>, default: &str) -> AccessDuration {
        let text = value.unwrap_or(default);
        match text.parse::<AccessDuration>() {
            Ok(d) => d,
            Err(e) => {
                self.add(path, e.to_string());
                default.parse().unwrap_or(ONE_MINUTE)
            }
        }
    }

    fn required<T: Clone>(&mut self, path: &str, value: &Option<T>, what: &str) -> Option<T> {
        if value.is_none() {
            self.add(path, format!("missing: {what}"));
        }
        value.clone()
    }

    fn secret(&mut self, path: &str, value: Option<SecretRef>, default_env: &str) -> SecretRef {
        let value = value.unwrap_or_else(|| SecretRef::env(default_env));
        if let Some(p) = value.problem() {
            self.add(path, p);
        }
        value
    }
}

const ONE_MINUTE: AccessDuration = match AccessDuration::const_minutes(1) {
    Some(d) => d,
    None => panic!("one minute is a valid duration"),
};

const ONE_HOUR: AccessDuration = match AccessDuration::const_minutes(60) {
    Some(d) => d,
    None => panic!("one hour is a valid duration"),
};

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let deployment = match self.deployment.id.as_deref().map(DeploymentId::parse) {
            Some(Ok(id)) => DeploymentConfig { id },
            Some(Err(e)) => {
                p.add("deployment.id", e.to_string());
                DeploymentConfig::default()
            }
            None => {
                p.add("deployment.id", DEPLOYMENT_ID_MISSING);
                DeploymentConfig::default()
            }
        };
        let slack = SlackConfig {
            mode: self.slack.mode.unwrap_or(SlackMode::Http),
            api_url: normalise_api_url(self.slack.api_url.as_deref().unwrap_or("https://slack.com/api/"), &mut p),
            signing_secret: p.secret("slack.signing_secret", self.slack.signing_secret, "SLACK_SIGNING_SECRET"),
            bot_token: p.secret("slack.bot_token", self.slack.bot_token, "SLACK_BOT_TOKEN"),
            app_token: p.secret("slack.app_token", self.slack.app_token, "SLACK_APP_TOKEN"),
            command: self.slack.command.unwrap_or_else(|| "/powerpole".into()),
            escalation_group: self.slack.escalation_group,
            security_channel: self.slack.security_channel,
        };
        if let Some(g) = &slack.escalation_group {
            if !(g.starts_with('S') && g.len() > 1 && g.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())) {
                p.add("slack.escalation_group", format!("`{g}` is not a Slack user group id (S0123...)"));
            }
        }
        if let Some(c) = &slack.security_channel {
            if !(c.len() > 1 && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())) {
                p.add("slack.security_channel", format!("`{c}` is not a Slack channel id (C0123...)"));
            }
        }
        if !slack.command.starts_with('/') {
            p.add("slack.command", "a slash command starts with `/`, e.g. /powerpole");
        }
        let server = ServerConfig {
            listen: self.server.listen.unwrap_or_else(|| "127.0.0.1:3000".into()),
            follow_up_workers: self.server.follow_up_workers.unwrap_or(DEFAULT_FOLLOW_UP_WORKERS),
            follow_up_queue: self.server.follow_up_queue.unwrap_or(DEFAULT_FOLLOW_UP_QUEUE),
            request_log: request_log_level(self.server.request_log.as_deref().unwrap_or("info"), &mut p),
        };
        if server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.add("server.listen", format!("`{}` is not an address:port such as 0.0.0.0:3000", server.listen));
        }
        if !(1..=4096).contains(&server.follow_up_workers) {
            p.add("server.follow_up_workers", "must be between 1 and 4096 (follow-ups running at once)");
        }
        if server.follow_up_queue > 1_000_000 {
            p.add("server.follow_up_queue", "must be at most 1000000 (follow-ups waiting for a worker)");
        }
        let mut call_problems = Vec::new();
        let calls = self.calls.validate(&mut call_problems);
        call_problems.into_iter().for_each(|(path, message)| p.add(path, message));
        let store = StoreConfig {
            table: self.store.table.unwrap_or_else(|| "powerpole".into()),
            session_retention: p.duration("store.session_retention", self.store.session_retention.as_deref(), "400d"),
            audit_retention: p.duration("store.audit_retention", self.store.audit_retention.as_deref(), "400d"),
            unavailable_retry_for: p.duration("store.unavailable_retry_for", self.store.unavailable_retry_for.as_deref(), "2m"),
        };
        let table_ok = (3..=255).contains(&store.table.len())
            && store.table.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !table_ok {
            p.add("store.table", "a DynamoDB table name is 3 to 255 characters from A-Z, a-z, 0-9, _, - and .");
        }
        let scheduler = SchedulerConfig {
            tick: p.duration("scheduler.tick", self.scheduler.tick.as_deref(), "15s"),
            warning_lead: p.duration("scheduler.warning_lead", self.scheduler.warning_lead.as_deref(), "10m"),
            pending_timeout: p.duration("scheduler.pending_timeout", self.scheduler.pending_timeout.as_deref(), "1h"),
            teardown_alert_after: p.duration("scheduler.teardown_alert_after", self.scheduler.teardown_alert_after.as_deref(), "15m"),
            provisioning_lease: p.duration("scheduler.provisioning_lease", self.scheduler.provisioning_lease.as_deref(), "1m"),
            reconcile_every: p.duration("scheduler.reconcile_every", self.scheduler.reconcile_every.as_deref(), "10m"),
            reconcile_grace: match self.scheduler.reconcile_grace.as_deref() {
                Some("0s") => chrono::Duration::zero(),
                other => p.duration("scheduler.reconcile_grace", other, "10m").to_chrono(),
            },
            renotify_after: p.duration("scheduler.renotify_after", self.scheduler.renotify_after.as_deref(), "15m"),
            escalate_after: self.scheduler.escalate_after.as_deref().map(|e| p.duration("scheduler.escalate_after", Some(e), "1h")),
            review_within: p.duration("scheduler.review_within", self.scheduler.review_within.as_deref(), "24h"),
        };
        if scheduler.provisioning_lease.as_secs() < 3 {
            p.add("scheduler.provisioning_lease", "must be at least 3s (it is renewed every third of it)");
        }
        let access = AccessConfig {
            max_duration: p.duration("access.max_duration", self.access.max_duration.as_deref(), "12h"),
            usernames: UsernamePolicy { home_domains: home_domains(self.access.home_domains, &mut p) },
        };
        let bastion = BastionConfig {
            instance_type: self.bastion.instance_type.unwrap_or_else(|| "t3.micro".into()),
            instance_profile: self.bastion.instance_profile.unwrap_or_else(|| "powerpole-bastion".into()),
            ami_parameter: self
                .bastion
                .ami_parameter
                .unwrap_or_else(|| "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into()),
            root_volume_gib: self.bastion.root_volume_gib.unwrap_or(8),
            ssm_online_timeout: p.duration("bastion.ssm_online_timeout", self.bastion.ssm_online_timeout.as_deref(), "5m"),
            identity_source: self.bastion.identity_source.unwrap_or_default(),
            session_document: self.bastion.session_document.unwrap_or_else(|| "powerpole-session".into()),
            home_domains: access.usernames.home_domains.clone(),
        };
        let document_ok = (3..=128).contains(&bastion.session_document.len())
            && bastion.session_document.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !document_ok {
            p.add("bastion.session_document", "an SSM document name is 3 to 128 characters from A-Z, a-z, 0-9, _, - and . (the Terraform output session_document_name)");
        }
        if !(8..=64).contains(&bastion.root_volume_gib) {
            p.add("bastion.root_volume_gib", "must be between 8 and 64 (GiB)");
        }
        if self.targets.is_empty() {
            p.add("targets", "no target configured: add a [targets.NAME] table (see powerpole.example.toml)");
        }
        let mut targets = BTreeMap::new();
        for (name, raw) in self.targets {
            if let Some(target) = raw.validate(&name, &access, &mut p) {
                targets.insert(target.name.clone(), target);
            }
        }
        let mut database_logs = BTreeMap::new();
        for (name, source) in self.audit.database_logs {
            let path = format!("audit.database_logs.{name}");
            let Some(target) = TargetName::parse(&name).ok().filter(|t| targets.contains_key(t)) else {
                p.add(path, format!("`{name}` is not a configured target"));
                continue;
            };
            match (source.strip_prefix("cloudwatch:"), source.strip_prefix("file:")) {
                (Some(group), _) if !group.is_empty() => drop(database_logs.insert(target, DbAuditSource::CloudWatch(group.to_string()))),
                (_, Some(file)) if file.starts_with('/') => drop(database_logs.insert(target, DbAuditSource::File(file.into()))),
                _ => p.add(path, format!("`{source}` is neither cloudwatch:/aws/rds/cluster/<cluster>/audit nor file:/absolute/path")),
            }
        }
        let audit = AuditConfig { session_log_group: self.audit.session_log_group.unwrap_or_else(|| "/powerpole/ssm-sessions".into()), database_logs };
        if p.0.is_empty() {
            Ok(Config { deployment, slack, server, store, scheduler, access, bastion, targets, audit, calls })
        } else {
            Err(ConfigError { problems: p.0 })
        }
    }
}

/// Required: without it, `alice@contractor.io` and the employee `alice@example.com` would be
/// told apart only by whether a domain is listed, so an empty list would have to mean "all are
/// home" (collisions) or "none is" (everyone hashed); the operator says which domains are theirs.
fn home_domains(value: Option<Vec<String>>, p: &mut Problems) -> Vec<String> {
    let why = "list the e-mail domains whose people get their plain local part as database user name (e.g. [\"example.com\"]); \
               people from other domains get a hashed name, so that alice@contractor.io can never take the account of alice@example.com";
    match value {
        None => {
            p.add("access.home_domains", format!("missing: {why}"));
            vec![]
        }
        Some(list) if list.is_empty() => {
            p.add("access.home_domains", format!("empty: {why}"));
            vec![]
        }
        Some(list) => {
            for d in &list {
                if !is_host_name(d.trim()) || !d.contains('.') {
                    p.add("access.home_domains", format!("`{d}` is not a domain such as example.com"));
                }
            }
            list.into_iter().map(|d| d.trim().to_ascii_lowercase()).collect()
        }
    }
}

fn normalise_api_url(url: &str, p: &mut Problems) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {
            let s = u.to_string();
            if s.ends_with('/') {
                s
            } else {
                format!("{s}/")
            }
        }
        _ => {
            p.add("slack.api_url", format!("`{url}` is not an http(s) URL such as https://slack.com/api/"));
            url.to_string()
        }
    }
}

impl RawTarget {
    fn validate(self, name: &str, access: &AccessConfig, p: &mut Problems) -> Option<TargetConfig> {
        let at = |field: &str| format!("targets.{name}.{field}");
        let target_name = match TargetName::parse(name) {
            Ok(n) => Some(n),
            Err(e) => {
                p.add(format!("targets.{name}"), e.to_string());
                None
            }
        };
        let writer = p.required(&at("writer_endpoint"), &self.writer_endpoint, "the cluster's writer endpoint host name");
        for (field, host) in [("writer_endpoint", &writer), ("reader_endpoint", &self.reader_endpoint)] {
            if let Some(h) = host {
                if !is_host_name(h) {
                    p.add(at(field), format!("`{h}` is not a host name (no scheme, no port: the port goes in `port`)"));
                }
            }
        }
        let schemas: Vec<SchemaName> = match p.required(&at("schemas"), &self.schemas, "the list of schemas the grants cover") {
            Some(list) if list.is_empty() => {
                p.add(at("schemas"), "empty: name at least one schema");
                vec![]
            }
            Some(list) => list
                .iter()
                .filter_map(|s| SchemaName::parse(s).map_err(|e| p.add(at("schemas"), e.to_string())).ok())
                .collect(),
            None => vec![],
        };
        let admin_secret = p.required(&at("admin_secret"), &self.admin_secret, "the Secrets Manager secret id of the admin credential");
        let subnet_id = p.required(&at("subnet_id"), &self.subnet_id, "the private subnet for bastions (subnet-...)");
        if let Some(s) = &subnet_id {
            if !s.starts_with("subnet-") {
                p.add(at("subnet_id"), format!("`{s}` is not a subnet id (subnet-...)"));
            }
        }
        let security_group_id = p.required(&at("security_group_id"), &self.security_group_id, "the bastion security group (sg-...)");
        if let Some(s) = &security_group_id {
            if !s.starts_with("sg-") {
                p.add(at("security_group_id"), format!("`{s}` is not a security group id (sg-...)"));
            }
        }
        let users: Vec<SlackUserId> = self
            .approvers
            .iter()
            .filter_map(|u| SlackUserId::parse(u).map_err(|e| p.add(at("approvers"), e.to_string())).ok())
            .collect();
        if users.is_empty() && self.approver_group.is_none() {
            p.add(at("approvers"), "missing: list approver Slack user ids, or set approver_group to a user group id (S...)");
        }
        if let Some(g) = &self.approver_group {
            if !is_group_id(g) {
                p.add(at("approver_group"), format!("`{g}` is not a Slack user group id (S0123ABCD)"));
            }
        }
        let approvals_channel = p.required(&at("approvals_channel"), &self.approvals_channel, "the Slack channel id for approval cards (C...)");
        let required_approvals = self.required_approvals.unwrap_or(1);
        if required_approvals == 0 {
            p.add(at("required_approvals"), "must be at least 1");
        } else if self.approver_group.is_none() && usize::from(required_approvals) > users.len() {
            p.add(at("required_approvals"), format!("{required_approvals} approvals required but only {} approver(s) listed", users.len()));
        }
        let max_duration = p.duration(&at("max_duration"), self.max_duration.as_deref(), &access.max_duration.to_string());
        if let Err(e) = max_duration.check_within(access.max_duration, "global limit") {
            p.add(at("max_duration"), e.to_string());
        }
        let account_host = match AccountHost::parse(self.account_host.as_deref().unwrap_or("instance_ip")) {
            Ok(h) => h,
            Err(e) => {
                p.add(at("account_host"), e);
                AccountHost::InstanceIp
            }
        };
        let admin_tls = match self.admin_tls.as_deref().unwrap_or("verify") {
            "verify" => AdminTls::Verify { ca_bundle: self.tls_ca_bundle.clone().unwrap_or_else(|| DEFAULT_CA_BUNDLE.into()).into() },
            "disabled" => AdminTls::Disabled,
            other => {
                p.add(at("admin_tls"), format!("`{other}` is neither `verify` (TLS checked against tls_ca_bundle) nor `disabled` (local databases only)"));
                AdminTls::Disabled
            }
        };
        if self.tls_ca_bundle.is_some() && admin_tls == AdminTls::Disabled {
            p.add(at("tls_ca_bundle"), "set, but admin_tls is `disabled`: remove one of them");
        }
        // No TLS only where the network between powerpole and the database is the machine's own
        // (a loopback address) or one the operator vouches for as local (`local_endpoint`).
        match (admin_tls == AdminTls::Disabled, self.local_endpoint.unwrap_or(false)) {
            (true, false) => {
                let hosts = writer.iter().chain(self.reader_endpoint.iter()).chain(self.instance_endpoints.iter().flatten());
                let remote: Vec<&String> = hosts.filter(|h| !is_loopback(h)).collect();
                if !remote.is_empty() {
                    let list = remote.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ");
                    p.add(
                        at("admin_tls"),
                        format!(
                            "`disabled` sends the admin and session passwords in clear, so it is accepted only for a loopback \
                             address (127.0.0.1, localhost) and {list} is not one: use `verify` with the database's CA bundle, \
                             or, for a database on a network only this host can reach (a local container bridge), add \
                             `local_endpoint = true` to say so"
                        ),
                    );
                }
            }
            (false, true) => p.add(at("local_endpoint"), "set, but admin_tls is not `disabled`: remove it (it only allows `disabled` for a non-loopback endpoint)"),
            _ => {}
        }
        let instance_endpoints = match &self.instance_endpoints {
            Some(list) if list.is_empty() => {
                p.add(at("instance_endpoints"), "empty: list every instance endpoint of the cluster (writer and readers)");
                vec![]
            }
            Some(list) => list.clone(),
            None => {
                if self.reader_endpoint.is_some() {
                    p.add(
                        at("instance_endpoints"),
                        "missing: with a reader endpoint, list every instance endpoint (writer and each reader, e.g. billing-1.abc.eu-west-1.rds.amazonaws.com) so that revocation kills sessions on readers too",
                    );
                }
                vec![]
            }
        };
        for h in &instance_endpoints {
            if !is_host_name(h) {
                p.add(at("instance_endpoints"), format!("`{h}` is not a host name (no scheme, no port: the port goes in `port`)"));
            }
        }
        let statement_timeout = p.duration(&at("statement_timeout"), self.statement_timeout.as_deref(), "30s");
        let grant_deadline = p.duration(&at("grant_deadline"), self.grant_deadline.as_deref(), "2m");
        if grant_deadline.as_secs() < statement_timeout.as_secs() {
            p.add(at("grant_deadline"), format!("{grant_deadline} is shorter than statement_timeout ({statement_timeout}); make it at least as long"));
        }
        let mut privileges = BTreeMap::new();
        for (role_name, names) in &self.privileges {
            match role_name.parse::<Role>() {
                Ok(role) => match PrivilegeSet::parse_override_all(name, role, names) {
                    Ok(set) => {
                        privileges.insert(role, set);
                    }
                    Err(errors) => errors.into_iter().for_each(|e| p.add(at(&format!("privileges.{role_name}")), e.to_string())),
                },
                Err(e) => p.add(at(&format!("privileges.{role_name}")), e.to_string()),
            }
        }
        for role in Role::ALL {
            privileges.entry(role).or_insert_with(|| role.default_privileges());
        }
        // Objects that run on their own as the account after the session: an event keeps
        // running on its schedule (a kept-locked account's events still run), and a routine
        // with SQL SECURITY DEFINER runs with its privileges for whoever may call it. Refused
        // here rather than disabled at teardown, so no session can ever leave one behind.
        for (role, set) in &privileges {
            for (privilege, what) in [
                (crate::domain::Privilege::Event, "an event keeps running on its schedule as the account after the session ends, even while the account is locked"),
                (crate::domain::Privilege::CreateRoutine, "a stored routine runs with the account's privileges (SQL SECURITY DEFINER) for anyone allowed to call it, after the session ends"),
            ] {
                if set.contains(privilege) {
                    p.add(at(&format!("privileges.{}", role.as_str())), format!("`{privilege}` is not granted by powerpole: {what}; remove it (create such objects through your deployment pipeline)"));
                }
            }
        }
        let breakglass = self.breakglass(&at, max_duration, p);
        let mut policy_problems = Vec::new();
        let policy = self.policy.validate(
            &crate::policy::Context {
                target: name,
                target_max: max_duration,
                required_approvals,
                approver_users: users.len(),
                approver_group: self.approver_group.is_some(),
            },
            &mut policy_problems,
        );
        policy_problems.into_iter().for_each(|(path, message)| p.add(path, message));
        Some(TargetConfig {
            name: target_name?,
            description: self.description,
            writer_endpoint: writer?,
            reader_endpoint: self.reader_endpoint,
            port: self.port.unwrap_or(3306),
            schemas,
            admin_secret: admin_secret?,
            subnet_id: subnet_id?,
            security_group_id: security_group_id?,
            approvers: Approvers { users, group: self.approver_group },
            approvals_channel: approvals_channel?,
            required_approvals,
            max_duration,
            account_host,
            dialect: self.dialect.unwrap_or(Dialect::Mysql8),
            kill_statement: self.kill_statement.unwrap_or(KillStatement::RdsKill),
            require_ssl: self.require_ssl.unwrap_or(true),
            max_user_connections: self.max_user_connections.unwrap_or(5),
            admin_tls,
            instance_endpoints,
            statement_timeout: statement_timeout.to_std(),
            grant_deadline: grant_deadline.to_std(),
            privileges,
            ami: self.ami,
            instance_type: self.instance_type,
            launch_on_request: self.launch_on_request.unwrap_or(false),
            breakglass,
            policy,
        })
    }

    /// `oncall_group`, `breakglass_max_duration` and `breakglass_ddl`: break-glass needs the group;
    /// the limits without it are a mistake worth saying.
    fn breakglass(&self, at: &dyn Fn(&str) -> String, target_max: AccessDuration, p: &mut Problems) -> Option<BreakGlassConfig> {
        if self.oncall_group.is_none() && self.oncall_users.is_none() {
            if self.breakglass_max_duration.is_some() || self.breakglass_ddl.is_some() {
                p.add(at("oncall_group"), "missing: break-glass settings need the on-call user group (S...) or oncall_users (U...) who may use it");
            }
            return None;
        }
        if let Some(group) = &self.oncall_group {
            if !is_group_id(group) {
                p.add(at("oncall_group"), format!("`{group}` is not a Slack user group id (S0123ABCD)"));
            }
        }
        let oncall_users: Vec<SlackUserId> = self
            .oncall_users
            .iter()
            .flatten()
            .filter_map(|u| SlackUserId::parse(u).map_err(|e| p.add(at("oncall_users"), e.to_string())).ok())
            .collect();
        if self.oncall_group.is_none() && self.oncall_users.as_ref().is_some_and(|u| u.is_empty()) {
            p.add(at("oncall_users"), "empty: list the on-call user ids (U...) or set oncall_group, or remove both to turn break-glass off");
        }
        let default = std::cmp::min(target_max, ONE_HOUR).to_string();
        let max_duration = p.duration(&at("breakglass_max_duration"), self.breakglass_max_duration.as_deref(), &default);
        if let Err(e) = max_duration.check_within(target_max, "target's max_duration") {
            p.add(at("breakglass_max_duration"), e.to_string());
        }
        Some(BreakGlassConfig { oncall_group: self.oncall_group.clone(), oncall_users, max_duration, ddl: self.breakglass_ddl.unwrap_or(false) })
    }
}

fn is_group_id(g: &str) -> bool {
    g.starts_with('S') && g.len() > 2 && g.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `localhost`, or an IPv4 address in 127.0.0.0/8.
fn is_loopback(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty() && h.len() <= 253 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0APPROVER"]
approvals_channel = "C0APPROVALS"
"#;

    #[test]
    fn a_minimal_target_gets_the_documented_defaults() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        let t = c.target(&TargetName::parse("billing").unwrap()).unwrap();
        assert_eq!(t.port, 3306);
        assert_eq!(t.max_duration.to_string(), "12h");
        assert_eq!(t.account_host, AccountHost::InstanceIp);
        assert_eq!(t.privileges_for(Role::Read).to_sql_list(), "SELECT, SHOW VIEW");
        assert_eq!(c.scheduler.warning_lead.to_string(), "10m");
        assert_eq!(c.scheduler.pending_timeout.to_string(), "1h");
        assert_eq!(c.scheduler.provisioning_lease.to_string(), "1m");
        assert_eq!(c.slack.bot_token, SecretRef::env("SLACK_BOT_TOKEN"));
        assert_eq!(c.slack.api_url, "https://slack.com/api/");
    }

    /// MINIMAL with another `[deployment]` table (or none).
    fn with_deployment(table: &str) -> String {
        MINIMAL.replace("[deployment]\nid = \"test\"\n", table)
    }

    #[test]
    fn the_deployment_id_has_no_default_and_must_be_a_short_name() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(c.deployment.id.as_str(), "test");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        assert_eq!(c.scheduler.reconcile_every.to_string(), "10m");
        assert_eq!(c.scheduler.reconcile_grace, chrono::Duration::minutes(10));
        let staging = Config::from_toml_str(&with_deployment("[deployment]\nid = \"staging-eu\"\n")).unwrap();
        assert_eq!(staging.deployment.id.as_str(), "staging-eu");
        let err = Config::from_toml_str(&with_deployment("[deployment]\nid = \"Staging_EU\"\n")).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].path, "deployment.id", "{err}");
        assert!(err.problems[0].message.contains("a-z, 0-9 and -"), "{err}");
    }

    #[test]
    fn config_check_refuses_a_missing_deployment_id_and_says_what_to_write() {
        for missing in ["", "[deployment]\n"] {
            let err = Config::from_toml_str(&with_deployment(missing)).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            assert_eq!(err.problems[0].path, "deployment.id", "{err}");
            let m = &err.problems[0].message;
            assert!(m.starts_with("missing:") && m.contains("id = \"default\"") && m.contains("Upgrading"), "{m}");
        }
        // An installation upgrading from the old default keeps it by writing it, and is warned.
        let kept = Config::from_toml_str(&with_deployment("[deployment]\nid = \"default\"\n")).unwrap();
        assert_eq!(kept.deployment.id.as_str(), "default");
        assert!(kept.warnings().iter().any(|w| w.starts_with("deployment.id:") && w.contains("a name of its own")), "{:?}", kept.warnings());
    }

    #[test]
    fn admin_tls_disabled_is_refused_for_an_endpoint_not_marked_local() {
        let disabled = |endpoint: &str, extra: &str| {
            MINIMAL.replace("billing.cluster-abc.eu-west-1.rds.amazonaws.com", endpoint).replace("schemas =", &format!("admin_tls = \"disabled\"\n{extra}schemas ="))
        };
        let e = Config::from_toml_str(&disabled("billing.cluster-abc.eu-west-1.rds.amazonaws.com", "")).unwrap_err().to_string();
        assert!(e.contains("targets.billing.admin_tls:") && e.contains("local_endpoint = true") && e.contains("`verify`"), "{e}");
        for loopback in ["127.0.0.1", "localhost", "127.0.0.53"] {
            let c = Config::from_toml_str(&disabled(loopback, "")).unwrap();
            assert!(c.warnings().iter().any(|w| w.starts_with("targets.billing.admin_tls")), "{loopback}: {:?}", c.warnings());
        }
        Config::from_toml_str(&disabled("172.17.0.2", "local_endpoint = true\n")).expect("an endpoint the operator marks as local");
        // A reader that is not local is refused as well.
        let e = Config::from_toml_str(&disabled("127.0.0.1", "reader_endpoint = \"ro.example.com\"\ninstance_endpoints = [\"127.0.0.1\"]\n")).unwrap_err().to_string();
        assert!(e.contains("`ro.example.com`"), "{e}");
        let e = Config::from_toml_str(&MINIMAL.replace("schemas =", "local_endpoint = true\nschemas =")).unwrap_err().to_string();
        assert!(e.contains("targets.billing.local_endpoint: set, but admin_tls is not `disabled`"), "{e}");
    }

    #[test]
    fn event_and_create_routine_are_refused_in_any_role() {
        let text = format!("{MINIMAL}\n[targets.billing.privileges]\nDDL = [\"SELECT\", \"CREATE\", \"EVENT\", \"CREATE ROUTINE\"]\nDML = [\"SELECT\", \"event\"]\n");
        let err = Config::from_toml_str(&text).unwrap_err();
        let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("targets.billing.privileges.DDL: `EVENT`") && l.contains("keeps running")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("targets.billing.privileges.DDL: `CREATE ROUTINE`")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("targets.billing.privileges.DML: `EVENT`")), "{lines:?}");
        let fine = format!("{MINIMAL}\n[targets.billing.privileges]\nDDL = [\"SELECT\", \"CREATE\", \"TRIGGER\"]\n");
        Config::from_toml_str(&fine).expect("TRIGGER stays allowed (the account is kept locked when it defines one)");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
[access]
max_duration = "12h"
home_domains = ["example.com"]

[deployment]
id = "test"
[targets.billing]
writer_endpoint = "billing.example.com"
schemas = ["billing"]
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0APPROVER"]
approvals_channel = "C0APPROVALS"
max_duration = "3d"
[targets.billing.privileges]
DML = ["SELECT", "SUPER"]
"#;
        let err = Config::from_toml_str(text).unwrap_err();
        let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
        assert!(lines.contains(&"targets.billing.max_duration: 3d exceeds the global limit of 12h".to_string()), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("targets.billing.admin_secret: missing")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("targets.billing.privileges.DML:") && l.contains("SUPER")), "{lines:?}");
        assert_eq!(lines.len(), 3, "{lines:?}");
    }

    #[test]
    fn a_provisioning_lease_too_short_to_renew_is_refused() {
        let short = format!("[scheduler]\nprovisioning_lease = \"2s\"\n{MINIMAL}");
        let err = Config::from_toml_str(&short).unwrap_err();
        assert_eq!(err.problems[0].path, "scheduler.provisioning_lease", "{err}");
        let ok = Config::from_toml_str(&format!("[scheduler]\nprovisioning_lease = \"5s\"\n{MINIMAL}")).unwrap();
        assert_eq!(ok.scheduler.provisioning_lease.as_secs(), 5);
    }

    #[test]
    fn the_follow_up_pool_and_request_log_have_defaults_and_refuse_nonsense() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!((c.server.follow_up_workers, c.server.follow_up_queue), (32, 512));
        assert_eq!(c.server.request_log, Some(tracing::Level::INFO));
        let quiet = Config::from_toml_str(&format!("[server]\nrequest_log = \"off\"\nfollow_up_queue = 0\n{MINIMAL}")).unwrap();
        assert_eq!((quiet.server.request_log, quiet.server.follow_up_queue), (None, 0));
        let err = Config::from_toml_str(&format!("[server]\nrequest_log = \"loud\"\nfollow_up_workers = 0\n{MINIMAL}")).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["server.request_log", "server.follow_up_workers"], "{err}");
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_the_field() {
        let err = Config::from_toml_str(&format!("{MINIMAL}\nportt = 5\n")).unwrap_err();
        assert!(err.problems[0].to_string().contains("portt"), "{err}");
        let err = Config::from_toml_str(&MINIMAL.replace("schemas = [\"billing\"]", "schemas = [\"billing\"]\nport = \"x\"")).unwrap_err();
        assert!(err.problems[0].path.contains("port"), "{err}");
    }

    #[test]
    fn secrets_are_references_to_exactly_one_source() {
        let text = format!("[slack]\nsigning_secret = {{ env = \"A\", ssm_parameter = \"/b\" }}\n{MINIMAL}");
        let err = Config::from_toml_str(&text).unwrap_err();
        assert_eq!(err.problems[0].path, "slack.signing_secret");
        let text = format!("[slack]\nbot_token = \"xoxb-inline\"\n{MINIMAL}");
        assert!(Config::from_toml_str(&text).is_err(), "an inline token is refused");
    }

    #[test]
    fn home_domains_are_required_and_explained() {
        let text = MINIMAL.replace("home_domains = [\"example.com\"]", "");
        let e = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("access.home_domains: missing") && e.contains("contractor"), "{e}");
        let e = Config::from_toml_str(&MINIMAL.replace("[\"example.com\"]", "[]")).unwrap_err().to_string();
        assert!(e.contains("access.home_domains: empty"), "{e}");
    }

    #[test]
    fn tls_is_on_and_verified_by_default() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        let t = c.target(&TargetName::parse("billing").unwrap()).unwrap();
        assert!(t.require_ssl);
        assert_eq!(t.admin_tls, AdminTls::Verify { ca_bundle: DEFAULT_CA_BUNDLE.into() });
        assert!(t.instance_endpoints.is_empty(), "no reader: sessions are killed where the admin connection goes");
        let e = Config::from_toml_str(&MINIMAL.replace("schemas =", "admin_tls = \"sometimes\"\nschemas =")).unwrap_err().to_string();
        assert!(e.contains("targets.billing.admin_tls"), "{e}");
    }

    #[test]
    fn a_reader_needs_the_instance_list_so_that_revocation_reaches_it() {
        let with_reader = MINIMAL.replace("schemas =", "reader_endpoint = \"ro.example.com\"\nschemas =");
        let e = Config::from_toml_str(&with_reader).unwrap_err().to_string();
        assert!(e.contains("targets.billing.instance_endpoints: missing"), "{e}");
        let listed = with_reader.replace("schemas =", "instance_endpoints = [\"i-1.example.com\", \"i-2.example.com\"]\nschemas =");
        let c = Config::from_toml_str(&listed).unwrap();
        assert_eq!(c.targets.values().next().unwrap().instance_endpoints.len(), 2);
    }

    #[test]
    fn a_wildcard_account_host_is_refused_with_its_path() {
        let e = Config::from_toml_str(&MINIMAL.replace("schemas =", "account_host = \"10.1.%\"\nschemas =")).unwrap_err().to_string();
        assert!(e.contains("targets.billing.account_host:") && e.contains("wildcards"), "{e}");
    }

    #[test]
    fn account_hosts_parse_and_refuse_any_host() {
        assert_eq!(AccountHost::parse("10.1.2.3/16").unwrap(), AccountHost::Pattern("10.1.0.0/255.255.0.0".into()));
        assert_eq!(AccountHost::parse("10.1.2.0/255.255.255.0").unwrap(), AccountHost::Pattern("10.1.2.0/255.255.255.0".into()));
        assert_eq!(AccountHost::parse("10.1.2.3").unwrap(), AccountHost::Pattern("10.1.2.3".into()));
        for (bad, why) in [
            ("10.1.%", "wildcards"),
            ("10.1.2.%", "wildcards"),
            ("%", "wildcards"),
            ("10.1.2.0/255.0.255.0", "not contiguous"),
            ("10.0.0.0/8", "wider than /16"),
            ("10.0.0.0/255.254.0.0", "wider than /16"),
        ] {
            let e = AccountHost::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        for bad in ["%", "10.1.0.0/4", "evil'host", "10.%.1", ""] {
            assert!(AccountHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn read_uses_the_reader_endpoint_when_there_is_one() {
        let c = Config::from_toml_str(&MINIMAL.replace("schemas =", "reader_endpoint = \"ro.example.com\"\ninstance_endpoints = [\"a.example.com\"]\nschemas =")).unwrap();
        let t = c.targets.values().next().unwrap();
        assert_eq!(t.endpoint_for(Role::Read), "ro.example.com");
        assert_eq!(t.endpoint_for(Role::Dml), "billing.cluster-abc.eu-west-1.rds.amazonaws.com");
    }
}
