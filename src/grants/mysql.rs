//! [`Grants`] over `mysql_async`: one small connection pool per target, logged in with the
//! target's admin credential.
//!
//! No admin operation ever waits for a connection while it holds one from the same pool, so
//! concurrent operations cannot starve each other:
//! - each operation (a grant with its rollback, a revoke, a lookup, a listing) first takes one of
//!   [`ADMIN_OPERATIONS`] places of its target, fewer than the writer pool's [`POOL_MAX`]
//!   connections; one more waits for a place (its own deadline bounds the wait), never for a
//!   connection;
//! - an operation holds one writer connection and kills sessions through it when an instance
//!   endpoint is the writer's own `host:port` (the default, `instance_endpoints` empty); another
//!   instance's connection comes from that instance's own pool, which only these operations use,
//!   one at a time each, so it never runs out either;
//! - a statement the client gives up on is killed from a separate small pool per instance
//!   ([`KILLER_MAX`]) that nothing else uses, so the kill never waits for the pool it holds from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{AdminTls, TargetConfig};
use crate::domain::{DbUsername, DeploymentId, TargetName};

use super::sql::{Account, AccountSpec, ClientMatch, Sql, Statement};
use super::{AccountRequest, AccountState, AdminCredentials, AdminSource, GrantError, Grants, Password, RevokeOutcome, RevokeReport};

/// Admin work is a few statements at a time; four connections per target and instance are plenty.
pub const POOL_MAX: usize = 4;
/// Admin operations running at once per target: fewer than the pool holds, so each finds a
/// connection without waiting (a connection being handed back to the pool is not yet free).
pub const ADMIN_OPERATIONS: usize = POOL_MAX - 1;
/// Connections per instance for killing a statement the client gave up on.
const KILLER_MAX: usize = 2;
const POOL_SIZE: PoolConstraints = match PoolConstraints::new(0, POOL_MAX) {
    Some(c) => c,
    None => panic!("0 <= POOL_MAX"),
};
const KILLER_SIZE: PoolConstraints = match PoolConstraints::new(0, KILLER_MAX) {
    Some(c) => c,
    None => panic!("0 <= KILLER_MAX"),
};
/// The default bound on one admin connection attempt (and on each session kill).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The client waits this much longer than the server-side limit, so that the server normally
/// ends a blocked statement itself (with an error saying so) before the client gives up on it.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);
/// A dead peer (a failed-over writer) is noticed by the kernel instead of never.
const KEEPALIVE: Duration = Duration::from_secs(15);

const ER_ACCESS_DENIED: u16 = 1045;
const ER_NO_SUCH_THREAD: u16 = 1094;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_CANNOT_USER: u16 = 1396;
const ER_NOT_VALID_PASSWORD: u16 = 1819;
const ER_MYSQL_QUERY_TIMEOUT: u16 = 3024;
const ER_CANNOT_USER_REFERENCED_AS_DEFINER: u16 = 4006;
const ER_MARIADB_STATEMENT_TIMEOUT: u16 = 1969;

/// The production [`Grants`].
pub struct MysqlGrants {
    admin: Arc<dyn AdminSource>,
    deployment: DeploymentId,
    /// One pool per (target, instance `host:port`, use).
    pools: Mutex<HashMap<(TargetName, String, Use), (AdminCredentials, Pool)>>,
    /// The places of each target's admin operations ([`ADMIN_OPERATIONS`]).
    places: Mutex<HashMap<TargetName, Arc<Semaphore>>>,
    /// How long one connection attempt may take (`[calls.mysql] timeout`).
    connect_timeout: Duration,
}

/// What `powerpole doctor` reports about the admin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCheck {
    pub summary: String,
    /// The cipher of the admin connection (`Ssl_cipher`), empty without TLS.
    pub tls_cipher: String,
    /// `@@require_secure_transport`: whether the server refuses every login without TLS.
    pub require_secure_transport: bool,
}

impl MysqlGrants {
    pub fn new(admin: Arc<dyn AdminSource>) -> MysqlGrants {
        MysqlGrants {
            admin,
            deployment: DeploymentId::default(),
            pools: Mutex::new(HashMap::new()),
            places: Mutex::new(HashMap::new()),
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// Bounds each admin connection attempt by `timeout` (`[calls.mysql] timeout`; 10 s unless set).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> MysqlGrants {
        self.connect_timeout = timeout;
        self
    }

    /// Marks the accounts it creates with `deployment`'s marker role, and lists only those
    /// (`[deployment] id`; `default` unless set).
    pub fn in_deployment(mut self, deployment: DeploymentId) -> MysqlGrants {
        self.deployment = deployment;
        self
    }

    fn sql(&self, target: &TargetConfig) -> Sql {
        Sql::new(target.dialect, &self.deployment)
    }

    /// `powerpole doctor`: the admin credential logs in (over verified TLS unless the target
    /// disables it), can create accounts, and the target's schemas exist.
    pub async fn check_admin(&self, target: &TargetConfig) -> Result<AdminCheck, GrantError> {
        let _place = self.place(target, Instant::now() + target.grant_deadline).await?;
        let mut a = self.writer(target, None).await?;
        let (user, version): (String, String) = a.first("SELECT CURRENT_USER(), VERSION()", vec![], "read the admin user").await?.unwrap_or_default();
        let cipher: Option<(String, String)> = a.first("SHOW SESSION STATUS LIKE 'Ssl_cipher'", vec![], "read the connection's TLS cipher").await?;
        let secure: Option<String> = a.first("SELECT CAST(@@GLOBAL.require_secure_transport AS CHAR)", vec![], "read require_secure_transport").await?;
        let grants: Vec<String> = a.rows("SHOW GRANTS", vec![], "read the admin's grants").await?;
        let all = grants.iter().any(|g| g.contains("ALL PRIVILEGES ON *.*"));
        let create_user = all || grants.iter().any(|g| g.contains("CREATE USER"));
        let mut missing = Vec::new();
        for schema in &target.schemas {
            let found: Option<String> = a
                .first("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", vec![schema.as_str().to_string()], "list the schemas")
                .await?;
            if found.is_none() {
                missing.push(schema.as_str().to_string());
            }
        }
        if !create_user {
            return Err(GrantError::Connection { target: target.name.clone(), what: "confirm the admin may CREATE USER", message: super::error::ADMIN_NEEDS.to_string() });
        }
        // A revocation lists the account's sessions (PROCESS) and kills them (CONNECTION ADMIN,
        // or rds_kill on RDS/Aurora): without them it would fail at the worst moment, at expiry.
        let global = |privilege: &str| all || grants.iter().any(|g| g.contains(" ON *.* ") && g.contains(privilege));
        let mut lacking = Vec::new();
        if !global("PROCESS") {
            lacking.push("PROCESS");
        }
        if target.kill_statement == crate::config::KillStatement::KillConnection && !(global("CONNECTION ADMIN") || global("CONNECTION_ADMIN") || global("SUPER")) {
            lacking.push("CONNECTION ADMIN (MariaDB) / CONNECTION_ADMIN (MySQL 8)");
        }
        if target.kill_statement == crate::config::KillStatement::RdsKill && !all && !grants.iter().any(|g| g.contains("rds_kill")) {
            lacking.push("EXECUTE on PROCEDURE mysql.rds_kill");
        }
        if !lacking.is_empty() {
            return Err(GrantError::Connection {
                target: target.name.clone(),
                what: "confirm the admin may see and kill the per-person accounts' sessions",
                message: format!("it lacks {} (`powerpole db admin-sql` prints what it needs)", lacking.join(", ")),
            });
        }
        if !missing.is_empty() {
            return Err(GrantError::Connection {
                target: target.name.clone(),
                what: "find every configured schema",
                message: format!("missing: {} (fix `schemas` in the config)", missing.join(", ")),
            });
        }
        let summary = format!("admin {user} on {version}; may create accounts; schemas present: {}", target.schemas.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
        let tls_cipher = cipher.map(|(_, c)| c).unwrap_or_default();
        let require_secure_transport = matches!(secure.as_deref(), Some("1" | "ON" | "on"));
        Ok(AdminCheck { summary, tls_cipher, require_secure_transport })
    }

    /// One of the target's [`ADMIN_OPERATIONS`] places, waiting for one until `deadline`: an
    /// operation that queues behind others is late, never failed by them, unless its own
    /// deadline passes first. Held for the whole operation (a grant's rollback included).
    async fn place(&self, target: &TargetConfig, deadline: Instant) -> Result<OwnedSemaphorePermit, GrantError> {
        let places = {
            let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
            places.entry(target.name.clone()).or_insert_with(|| Arc::new(Semaphore::new(ADMIN_OPERATIONS))).clone()
        };
        let started = Instant::now();
        match tokio::time::timeout_at(deadline.into(), places.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(GrantError::Busy { target: target.name.clone(), waited: started.elapsed(), places: ADMIN_OPERATIONS }),
        }
    }

    /// An admin connection to the target's writer (the host of the admin secret).
    async fn writer<'a>(&'a self, target: &'a TargetConfig, deadline: Option<Instant>) -> Result<Admin<'a>, GrantError> {
        let credentials = self.admin.credentials(target).await?;
        let (host, port) = (credentials.host.clone(), credentials.port);
        self.connect(target, &host, port, Use::Work, deadline).await
    }

    /// An admin connection to `host:port`. A refused login (the secret was rotated) re-reads
    /// the secret once.
    async fn connect<'a>(&'a self, target: &'a TargetConfig, host: &str, port: u16, purpose: Use, deadline: Option<Instant>) -> Result<Admin<'a>, GrantError> {
        let mut retried = false;
        loop {
            let credentials = self.admin.credentials(target).await?;
            let pool = self.pool(target, &credentials, host, port, purpose)?;
            let connect_error = |message: String| GrantError::AdminConnect {
                target: target.name.clone(),
                host: host.to_string(),
                port,
                user: credentials.username.clone(),
                message: scrub(message, Some(&credentials.password)),
            };
            match tokio::time::timeout(self.connect_timeout, pool.get_conn()).await {
                Ok(Ok(conn)) => return Ok(Admin { grants: self, target, conn: Some(conn), host: host.to_string(), port, deadline }),
                Ok(Err(mysql_async::Error::Server(e))) if e.code == ER_ACCESS_DENIED && !retried => {
                    tracing::warn!(target = %target.name, "admin login refused; reading the admin secret again");
                    self.admin.forget(&target.name);
                    retried = true;
                }
                Ok(Err(e)) => return Err(connect_error(e.to_string())),
                Err(_) => return Err(connect_error(format!("no answer within {:?}", self.connect_timeout))),
            }
        }
    }

    /// The pool of one instance of the target, rebuilt when its credential changed.
    fn pool(&self, target: &TargetConfig, credentials: &AdminCredentials, host: &str, port: u16, purpose: Use) -> Result<Pool, GrantError> {
        let key = (target.name.clone(), format!("{host}:{port}"), purpose);
        let size = match purpose {
            Use::Work => POOL_SIZE,
            Use::Killer => KILLER_SIZE,
        };
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, pool)) = pools.get(&key) {
            if known == credentials {
                return Ok(pool.clone());
            }
        }
        let opts = OptsBuilder::default()
            .ip_or_hostname(host.to_string())
            .tcp_port(port)
            .user(Some(credentials.username.clone()))
            .pass(Some(credentials.password.expose().to_string()))
            // mysql_async would otherwise switch to a Unix socket for 127.0.0.1.
            .prefer_socket(false)
            .ssl_opts(ssl_opts(target)?)
            .tcp_keepalive(Some(KEEPALIVE))
            // `setup` runs on every new connection and again after each pool reset.
            .setup(self.sql(target).session_limits(target.statement_timeout))
            .pool_opts(PoolOpts::default().with_constraints(size).with_inactive_connection_ttl(Duration::from_secs(60)));
        let pool = Pool::new(opts);
        if let Some((_, old)) = pools.insert(key, (credentials.clone(), pool.clone())) {
            tokio::spawn(async move {
                let _ = old.disconnect().await;
            });
        }
        Ok(pool)
    }

    /// The account creation itself; the caller bounds it with the grant deadline.
    async fn create_within(&self, target: &TargetConfig, account: &Account, password: &Password, deadline: Instant, request: &AccountRequest) -> Result<(), GrantError> {
        let role = request.role;
        let sql = self.sql(target);
        let privileges = target.privileges_for(role);
        let spec = AccountSpec {
            privileges: &privileges,
            schemas: &target.schemas,
            max_user_connections: target.max_user_connections,
            require_ssl: target.require_ssl,
        };
        let statements = sql.create_account(account, password, &spec)?;
        let mut a = self.writer(target, Some(deadline)).await?;
        // Never converge an account someone made by hand: it may be a service's. The unfinished
        // account an earlier attempt of this session left is finished.
        match a.account_state(&sql, account).await? {
            AccountState::Absent => {}
            // An account an earlier session left locked for the objects it defines: converging
            // it would revoke the privileges those objects run with and hand it out again.
            AccountState::Powerpole => {
                let objects = a.defined_objects(&sql, account).await?;
                if !objects.is_empty() {
                    return Err(GrantError::KeptForDefiner { target: target.name.clone(), account: account.to_string(), objects: objects.join(", ") });
                }
            }
            AccountState::Unfinished if request.earlier_attempt => {
                tracing::warn!(target = %target.name, account = %account, "finishing the account an earlier attempt of this session left unfinished");
            }
            AccountState::Unfinished | AccountState::Foreign => {
                return Err(GrantError::ForeignAccount { target: target.name.clone(), account: account.to_string() });
            }
        }
        for statement in &statements {
            a.run(statement, Some(password)).await?;
            // MySQL 8 keeps granted roles through REVOKE ALL: take them away right after it.
            if statement.what == "revoke every privilege" {
                if let Some(q) = sql.granted_roles(account) {
                    let roles: Vec<(String, String)> = a.rows(q.sql, q.params, "list the account's roles").await?;
                    for (role_user, role_host) in roles.iter().filter(|(u, _)| *u != sql.marker) {
                        for s in sql.revoke_role(account, role_user, role_host)? {
                            a.run(&s, None).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Kills the account's sessions on every instance of the cluster: through `writer` (the
    /// connection the revocation holds) on the writer's own `host:port`, through one connection
    /// of that instance's pool on any other. A session whose client address cannot be read is
    /// killed only when no other account has this user name (then it can only be this
    /// account's); otherwise it is left and counted in the log.
    async fn kill_everywhere(&self, writer: &mut Admin<'_>, sql: &Sql, account: &Account, sole_name: bool) -> Result<usize, GrantError> {
        let target = writer.target;
        let credentials = self.admin.credentials(target).await?;
        let mut killed = 0;
        for (host, port) in instances(target, &credentials) {
            if host == writer.host && port == writer.port {
                killed += writer.kill_sessions(sql, account, sole_name).await?;
            } else {
                let mut a = self.connect(target, &host, port, Use::Work, None).await?;
                killed += a.kill_sessions(sql, account, sole_name).await?;
            }
        }
        Ok(killed)
    }

    /// The revocation itself; the caller holds one of the target's places.
    async fn revoke_now(&self, target: &TargetConfig, account: &Account) -> Result<RevokeReport, GrantError> {
        let sql = self.sql(target);
        let mut a = self.writer(target, None).await?;
        let mut exists = match a.account_state(&sql, account).await? {
            AccountState::Foreign => {
                let report = RevokeReport { account: account.to_string(), killed: 0, outcome: RevokeOutcome::NotOurs };
                tracing::warn!(target = %target.name, "{report}");
                return Ok(report);
            }
            AccountState::Absent => false,
            AccountState::Powerpole | AccountState::Unfinished => true,
        };
        let q = sql.accounts_named(account);
        let sole_name = a.first::<u64>(q.sql, q.params, "count the accounts of the user name").await?.unwrap_or(0) <= 1;
        if exists {
            match a.run(&sql.lock(account), None).await {
                Err(GrantError::Statement { code: ER_CANNOT_USER, .. }) => exists = false,
                other => other?,
            }
        }
        let mut killed = self.kill_everywhere(&mut a, &sql, account, sole_name).await?;
        let outcome = if exists { a.drop_or_keep_locked(&sql, account).await? } else { RevokeOutcome::AlreadyGone };
        // A session that slipped in before the lock took effect is caught here.
        killed += self.kill_everywhere(&mut a, &sql, account, sole_name).await?;
        let report = RevokeReport { account: account.to_string(), killed, outcome };
        tracing::info!(target = %target.name, "{report}");
        Ok(report)
    }
}

/// What a pool's connections are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Use {
    /// Admin operations ([`ADMIN_OPERATIONS`] at once per target, one connection each per instance).
    Work,
    /// Killing a statement the client gave up on ([`Admin::abandon`]).
    Killer,
}

/// TLS of the admin connection: verified against the target's CA bundle only (the RDS CA is in
/// no public root store) and the endpoint's host name.
fn ssl_opts(target: &TargetConfig) -> Result<Option<SslOpts>, GrantError> {
    match &target.admin_tls {
        AdminTls::Disabled => Ok(None),
        AdminTls::Verify { ca_bundle } => {
            let pem = std::fs::read(ca_bundle).map_err(|e| GrantError::CaBundle {
                target: target.name.clone(),
                path: ca_bundle.display().to_string(),
                message: e.to_string(),
            })?;
            Ok(Some(SslOpts::default().with_root_certs(vec![pem.into()]).with_disable_built_in_roots(true)))
        }
    }
}

/// `(host, port)` of every instance: the configured list (`host` or `host:port`), the port of
/// the admin secret when an entry has none.
fn instances(target: &TargetConfig, credentials: &AdminCredentials) -> Vec<(String, u16)> {
    let list: Vec<&str> = if target.instance_endpoints.is_empty() { vec![credentials.host.as_str()] } else { target.instance_endpoints.iter().map(String::as_str).collect() };
    list.into_iter()
        .map(|e| match e.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(credentials.port)),
            _ => (e.to_string(), credentials.port),
        })
        .collect()
}

#[async_trait]
impl Grants for MysqlGrants {
    async fn create_account(&self, target: &TargetConfig, request: &AccountRequest) -> Result<Password, GrantError> {
        let account = Account::new(request.user.clone(), &request.host)?;
        let password = Password::generate();
        let deadline = Instant::now() + target.grant_deadline;
        // One place for the creation and its rollback: the rollback never queues behind others.
        let _place = self.place(target, deadline).await?;
        match self.create_within(target, &account, &password, deadline, request).await {
            Ok(()) => {
                tracing::info!(target = %target.name, account = %account, role = %request.role, "account ready");
                Ok(password)
            }
            // A statement stopped by its limit or by the deadline: never leave half an account.
            Err(e @ GrantError::TimedOut { .. }) => {
                // Rolled back at once: the account is locked (no login) and dropped; whatever
                // cannot be done now is left to the session's teardown, which retries.
                let rollback = match self.revoke_now(target, &account).await {
                    Ok(report) => format!("rolled back: {report}"),
                    Err(r) => format!("the rollback is not finished ({r}); the session's teardown retries it"),
                };
                tracing::error!(target = %target.name, account = %account, "account creation gave up; {rollback}");
                Err(GrantError::GaveUp { target: target.name.clone(), deadline: target.grant_deadline, cause: e.to_string(), rollback })
            }
            Err(e) => Err(e),
        }
    }

    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError> {
        let account = Account::new(user.clone(), host)?;
        let _place = self.place(target, Instant::now() + target.grant_deadline).await?;
        self.revoke_now(target, &account).await
    }

    async fn account_state(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<AccountState, GrantError> {
        let account = Account::new(user.clone(), host)?;
        let _place = self.place(target, Instant::now() + target.grant_deadline).await?;
        let mut a = self.writer(target, None).await?;
        a.account_state(&self.sql(target), &account).await
    }

    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError> {
        let q = self.sql(target).list_accounts();
        let _place = self.place(target, Instant::now() + target.grant_deadline).await?;
        let mut a = self.writer(target, None).await?;
        a.rows(q.sql, q.params, "list powerpole's accounts").await
    }
}

/// One admin connection with the limits of the work it does: each statement within the
/// target's statement timeout (and the grant deadline, if any). A statement the client gives
/// up on is killed on the server from another connection, so that retries never pile up
/// blocked sessions there.
struct Admin<'a> {
    grants: &'a MysqlGrants,
    target: &'a TargetConfig,
    conn: Option<Conn>,
    host: String,
    port: u16,
    deadline: Option<Instant>,
}

impl Admin<'_> {
    /// How long the next statement may take on the client side.
    fn limit(&self, what: &'static str) -> Result<Duration, GrantError> {
        let mut limit = self.target.statement_timeout + CLIENT_MARGIN;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(GrantError::TimedOut { target: self.target.name.clone(), what, limit: self.target.grant_deadline });
            }
            limit = limit.min(left);
        }
        Ok(limit)
    }

    fn conn(&mut self, what: &'static str) -> Result<&mut Conn, GrantError> {
        let target = self.target.name.clone();
        self.conn.as_mut().ok_or(GrantError::Connection { target, what, message: "the connection was given up after a timeout".into() })
    }

    async fn run(&mut self, statement: &Statement, secret: Option<&Password>) -> Result<(), GrantError> {
        let limit = self.limit(statement.what)?;
        let target = self.target;
        let conn = self.conn(statement.what)?;
        match tokio::time::timeout(limit, conn.query_drop(&statement.sql)).await {
            Ok(r) => r.map_err(|e| failure(target, statement.what, e, secret)),
            Err(_) => Err(self.abandon(statement.what, limit).await),
        }
    }

    async fn rows<T: FromRow + Send + 'static>(&mut self, sql: &str, params: Vec<String>, what: &'static str) -> Result<Vec<T>, GrantError> {
        let limit = self.limit(what)?;
        let target = self.target;
        let conn = self.conn(what)?;
        let answer = if params.is_empty() { tokio::time::timeout(limit, conn.query(sql)).await } else { tokio::time::timeout(limit, conn.exec(sql, params)).await };
        match answer {
            Ok(r) => r.map_err(|e| failure(target, what, e, None)),
            Err(_) => Err(self.abandon(what, limit).await),
        }
    }

    async fn first<T: FromRow + Send + 'static>(&mut self, sql: &str, params: Vec<String>, what: &'static str) -> Result<Option<T>, GrantError> {
        Ok(self.rows(sql, params, what).await?.into_iter().next())
    }

    /// The client stopped waiting: end the statement on the server too (from a connection of
    /// the instance's killer pool, never the pool this one came from), and never hand this
    /// connection back to the pool.
    async fn abandon(&mut self, what: &'static str, limit: Duration) -> GrantError {
        if let Some(conn) = self.conn.take() {
            let id = conn.id();
            let kill = self.grants.sql(self.target).kill(self.target.kill_statement, u64::from(id));
            // Directly on the connection, not through `run`: a kill that hangs too is given up
            // on after the connect timeout, without recursing into another kill.
            let target = self.target;
            let ended = async {
                let mut other = self.grants.connect(target, &self.host, self.port, Use::Killer, None).await?;
                let conn = other.conn(kill.what)?;
                match tokio::time::timeout(CONNECT_TIMEOUT, conn.query_drop(&kill.sql)).await {
                    Ok(r) => r.map_err(|e| failure(target, kill.what, e, None)),
                    Err(_) => Err(GrantError::TimedOut { target: target.name.clone(), what: kill.what, limit: CONNECT_TIMEOUT }),
                }
            };
            if let Err(e) = ended.await {
                tracing::warn!(target = %self.target.name, connection = id, error = %e, "could not end a timed-out admin statement on the server");
            }
            // Back to the pool only now, killed: the pool discards it instead of waiting on it.
            drop(conn);
        }
        GrantError::TimedOut { target: self.target.name.clone(), what, limit }
    }

    /// Whose the account is: powerpole's (marked), unfinished (locked, nothing granted, not
    /// marked), someone else's, or absent.
    async fn account_state(&mut self, sql: &Sql, account: &Account) -> Result<AccountState, GrantError> {
        let q = sql.account_exists(account);
        if self.first::<u64>(q.sql, q.params, "look the account up").await?.unwrap_or(0) == 0 {
            return Ok(AccountState::Absent);
        }
        let q = sql.account_marked(account);
        if self.first::<u64>(q.sql, q.params, "check the account is powerpole's").await?.unwrap_or(0) > 0 {
            return Ok(AccountState::Powerpole);
        }
        let created: Option<String> = self.first(&sql.show_create_user(account), vec![], "check the account is locked").await?;
        let locked = created.is_some_and(|c| c.contains(" ACCOUNT LOCK"));
        let granted: Vec<String> = self.rows(&sql.show_grants(account), vec![], "read the account's grants").await?;
        let bare = granted.iter().all(|g| g.starts_with("GRANT USAGE ON *.* TO "));
        Ok(if locked && bare { AccountState::Unfinished } else { AccountState::Foreign })
    }

    /// `kind schema.name` of every trigger, view, routine and event the account is the DEFINER of.
    async fn defined_objects(&mut self, sql: &Sql, account: &Account) -> Result<Vec<String>, GrantError> {
        let q = sql.defined_objects(account);
        let objects: Vec<(String, String)> = self.rows(q.sql, q.params, "look for objects the account is the DEFINER of").await?;
        Ok(objects.into_iter().map(|(kind, name)| format!("{kind} {name}")).collect())
    }

    async fn drop_or_keep_locked(&mut self, sql: &Sql, account: &Account) -> Result<RevokeOutcome, GrantError> {
        // Objects it defines would break (MariaDB: error 1449 on every use) or block the drop
        // (MySQL 8: error 4006): keep the account locked and say which objects they are.
        let objects = self.defined_objects(sql, account).await?;
        if !objects.is_empty() {
            return self.keep_locked(account, &format!("{account} is the DEFINER of {}", objects.join(", "))).await;
        }
        match self.run(&sql.drop_user(account), None).await {
            Ok(()) => Ok(RevokeOutcome::Dropped),
            Err(GrantError::Statement { code: ER_CANNOT_USER, .. }) => Ok(RevokeOutcome::AlreadyGone),
            Err(GrantError::Statement { code: ER_CANNOT_USER_REFERENCED_AS_DEFINER, .. }) => {
                self.keep_locked(account, &format!("{account} is the DEFINER of a view, routine, trigger or event (MySQL error 4006)")).await
            }
            Err(e) => Err(e),
        }
    }

    /// The account stays, locked (no login; its sessions are killed by the caller) with its
    /// privileges: objects it is the DEFINER of run with them, and taking them away would break
    /// the application (a trigger fails on every write). An operator reassigns the objects.
    async fn keep_locked(&mut self, account: &Account, what: &str) -> Result<RevokeOutcome, GrantError> {
        tracing::warn!(target = %self.target.name, account = %account, "{what}: kept locked");
        Ok(RevokeOutcome::KeptLocked {
            reason: format!(
                "{what}; the account is locked (no login, its sessions killed) and keeps its privileges so that those objects keep working. Change their DEFINER (or drop them), then run `powerpole reconcile` to drop the account"
            ),
        })
    }

    /// Kills every session of the account on this instance; a session that ended meanwhile is
    /// not an error.
    async fn kill_sessions(&mut self, sql: &Sql, account: &Account, sole_name: bool) -> Result<usize, GrantError> {
        let q = sql.sessions_of(account);
        let rows: Vec<(u64, Option<String>)> = self.rows(q.sql, q.params, "list the account's sessions").await?;
        let mut killed = 0;
        for (id, client) in rows {
            match account.client_match(client.as_deref().unwrap_or("")) {
                ClientMatch::Yes => {}
                ClientMatch::No => continue,
                ClientMatch::Unreadable if sole_name => {}
                ClientMatch::Unreadable => {
                    tracing::warn!(target = %self.target.name, account = %account, connection = id, client = ?client, "a session of this user name has an unreadable client address and another account shares the name: not killed");
                    continue;
                }
            }
            match self.run(&sql.kill(self.target.kill_statement, id), None).await {
                Ok(()) => killed += 1,
                Err(GrantError::Statement { code: ER_NO_SUCH_THREAD, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(killed)
    }
}

fn failure(target: &TargetConfig, what: &'static str, error: mysql_async::Error, secret: Option<&Password>) -> GrantError {
    let target_name = target.name.clone();
    match error {
        mysql_async::Error::Server(e) if e.code == ER_NOT_VALID_PASSWORD => GrantError::PasswordPolicy { target: target_name },
        mysql_async::Error::Server(e) if [ER_LOCK_WAIT_TIMEOUT, ER_MARIADB_STATEMENT_TIMEOUT, ER_MYSQL_QUERY_TIMEOUT].contains(&e.code) => {
            GrantError::TimedOut { target: target_name, what, limit: target.statement_timeout }
        }
        mysql_async::Error::Server(e) => GrantError::Statement { target: target_name, what, code: e.code, message: scrub(e.message, secret) },
        other => GrantError::Connection { target: target_name, what, message: scrub(other.to_string(), secret) },
    }
}

/// A server may quote part of a statement in its message (a syntax error does); the password
/// must not travel on into an error and a log line.
fn scrub(message: String, secret: Option<&Password>) -> String {
    match secret {
        Some(p) if !p.expose().is_empty() && message.contains(p.expose()) => message.replace(p.expose(), "[redacted]"),
        _ => message,
    }
}
