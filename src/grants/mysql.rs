//! [`Grants`] over `mysql_async`: one small connection pool per target, logged in with the
//! target's admin credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::TargetConfig;
use crate::domain::{DbUsername, DeploymentId, TargetName};

use super::sql::{Account, AccountSpec, Query, Sql, Statement};
use super::{AccountRequest, AdminCredentials, AdminSource, GrantError, Grants, Password, RevokeOutcome, RevokeReport};

/// Admin work is a few statements at a time; four connections per target are plenty.
const POOL_SIZE: PoolConstraints = match PoolConstraints::new(0, 4) {
    Some(c) => c,
    None => panic!("0 <= 4"),
};
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const ER_ACCESS_DENIED: u16 = 1045;
const ER_NO_SUCH_THREAD: u16 = 1094;
const ER_CANNOT_USER: u16 = 1396;
const ER_NOT_VALID_PASSWORD: u16 = 1819;
const ER_CANNOT_USER_REFERENCED_AS_DEFINER: u16 = 4006;

/// The production [`Grants`].
pub struct MysqlGrants {
    admin: Arc<dyn AdminSource>,
    deployment: DeploymentId,
    pools: Mutex<HashMap<TargetName, (AdminCredentials, Pool)>>,
}

impl MysqlGrants {
    pub fn new(admin: Arc<dyn AdminSource>) -> MysqlGrants {
        MysqlGrants { admin, deployment: DeploymentId::default(), pools: Mutex::new(HashMap::new()) }
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

    /// `powerpole doctor`: the admin credential logs in, can create accounts, and the target's
    /// schemas exist. Returns who it logged in as, or what to fix.
    pub async fn check_admin(&self, target: &TargetConfig) -> Result<String, GrantError> {
        use mysql_async::prelude::Queryable;
        let mut conn = self.conn(target).await?;
        let statement_error = |what: &'static str| {
            let target = target.name.clone();
            move |e: mysql_async::Error| GrantError::Connection { target: target.clone(), what, message: e.to_string() }
        };
        let (user, version): (String, String) = conn
            .query_first("SELECT CURRENT_USER(), VERSION()")
            .await
            .map_err(statement_error("read the admin user"))?
            .unwrap_or_default();
        let grants: Vec<String> = conn.query("SHOW GRANTS").await.map_err(statement_error("read the admin's grants"))?;
        let all = grants.iter().any(|g| g.contains("ALL PRIVILEGES ON *.*"));
        let create_user = all || grants.iter().any(|g| g.contains("CREATE USER"));
        let mut missing = Vec::new();
        for schema in &target.schemas {
            let found: Option<String> = conn
                .exec_first("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (schema.as_str(),))
                .await
                .map_err(statement_error("list the schemas"))?;
            if found.is_none() {
                missing.push(schema.as_str().to_string());
            }
        }
        if !create_user {
            return Err(GrantError::Connection { target: target.name.clone(), what: "confirm the admin may CREATE USER", message: super::error::ADMIN_NEEDS.to_string() });
        }
        if !missing.is_empty() {
            return Err(GrantError::Connection {
                target: target.name.clone(),
                what: "find every configured schema",
                message: format!("missing: {} (fix `schemas` in the config)", missing.join(", ")),
            });
        }
        Ok(format!("admin {user} on {version}; may create accounts; schemas present: {}", target.schemas.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
    }

    /// An admin connection. A refused login (the secret was rotated) re-reads the secret once.
    async fn conn(&self, target: &TargetConfig) -> Result<Conn, GrantError> {
        let mut retried = false;
        loop {
            let credentials = self.admin.credentials(target).await?;
            let pool = self.pool(target, &credentials);
            let connect_error = |message: String| GrantError::AdminConnect {
                target: target.name.clone(),
                host: credentials.host.clone(),
                port: credentials.port,
                user: credentials.username.clone(),
                message: scrub(message, Some(&credentials.password)),
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, pool.get_conn()).await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(mysql_async::Error::Server(e))) if e.code == ER_ACCESS_DENIED && !retried => {
                    tracing::warn!(target = %target.name, "admin login refused; reading the admin secret again");
                    self.admin.forget(&target.name);
                    retried = true;
                }
                Ok(Err(e)) => return Err(connect_error(e.to_string())),
                Err(_) => return Err(connect_error(format!("no answer within {CONNECT_TIMEOUT:?}"))),
            }
        }
    }

    /// The target's pool, rebuilt when its credential changed.
    fn pool(&self, target: &TargetConfig, credentials: &AdminCredentials) -> Pool {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, pool)) = pools.get(&target.name) {
            if known == credentials {
                return pool.clone();
            }
        }
        let opts = OptsBuilder::default()
            .ip_or_hostname(credentials.host.clone())
            .tcp_port(credentials.port)
            .user(Some(credentials.username.clone()))
            .pass(Some(credentials.password.expose().to_string()))
            // mysql_async would otherwise switch to a Unix socket for 127.0.0.1.
            .prefer_socket(false)
            .pool_opts(PoolOpts::default().with_constraints(POOL_SIZE).with_inactive_connection_ttl(Duration::from_secs(60)));
        let pool = Pool::new(opts);
        if let Some((_, old)) = pools.insert(target.name.clone(), (credentials.clone(), pool.clone())) {
            tokio::spawn(async move {
                let _ = old.disconnect().await;
            });
        }
        pool
    }
}

#[async_trait]
impl Grants for MysqlGrants {
    async fn create_account(&self, target: &TargetConfig, request: &AccountRequest) -> Result<Password, GrantError> {
        let account = Account::new(request.user.clone(), &request.host)?;
        let password = Password::generate();
        let privileges = target.privileges_for(request.role);
        let spec = AccountSpec {
            privileges: &privileges,
            schemas: &target.schemas,
            max_user_connections: target.max_user_connections,
            require_ssl: target.require_ssl,
        };
        let statements = self.sql(target).create_account(&account, &password, &spec)?;
        let mut conn = self.conn(target).await?;
        for statement in &statements {
            run(&mut conn, target, statement, Some(&password)).await?;
        }
        tracing::info!(target = %target.name, account = %account, role = %request.role, "account ready");
        Ok(password)
    }

    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError> {
        let account = Account::new(user.clone(), host)?;
        let sql = self.sql(target);
        let mut conn = self.conn(target).await?;
        let mut exists = exists(&mut conn, target, &sql.account_exists(&account)).await?;
        if exists {
            match run(&mut conn, target, &sql.lock(&account), None).await {
                Err(GrantError::Statement { code: ER_CANNOT_USER, .. }) => exists = false,
                other => other?,
            }
        }
        let mut killed = kill_sessions(&mut conn, target, &sql, &account).await?;
        let outcome = if exists { drop_or_keep_locked(&mut conn, target, &sql, &account).await? } else { RevokeOutcome::AlreadyGone };
        // A session that slipped in before the lock took effect is caught here.
        killed += kill_sessions(&mut conn, target, &sql, &account).await?;
        let report = RevokeReport { account: account.to_string(), killed, outcome };
        tracing::info!(target = %target.name, "{report}");
        Ok(report)
    }

    async fn account_exists(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<bool, GrantError> {
        let account = Account::new(user.clone(), host)?;
        let mut conn = self.conn(target).await?;
        exists(&mut conn, target, &self.sql(target).account_exists(&account)).await
    }

    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError> {
        let query = self.sql(target).list_accounts();
        let mut conn = self.conn(target).await?;
        conn.exec(query.sql, query.params).await.map_err(|e| failure(target, "list powerpole's accounts", e, None))
    }
}

async fn drop_or_keep_locked(conn: &mut Conn, target: &TargetConfig, sql: &Sql, account: &Account) -> Result<RevokeOutcome, GrantError> {
    match run(conn, target, &sql.drop_user(account), None).await {
        Ok(()) => Ok(RevokeOutcome::Dropped),
        Err(GrantError::Statement { code: ER_CANNOT_USER, .. }) => Ok(RevokeOutcome::AlreadyGone),
        Err(GrantError::Statement { code: ER_CANNOT_USER_REFERENCED_AS_DEFINER, .. }) => {
            run(conn, target, &sql.revoke_everything(account), None).await?;
            // MariaDB's REVOKE ALL also takes the marker; reconcile must still find the account.
            run(conn, target, &sql.mark(account)?, None).await?;
            tracing::warn!(target = %target.name, account = %account, "account is a DEFINER: kept locked with no privileges");
            Ok(RevokeOutcome::KeptLocked {
                reason: format!(
                    "{account} is the DEFINER of a view, routine, trigger or event (MySQL error 4006); \
                     change those objects' DEFINER (or drop them), then run `powerpole reconcile` to drop the account"
                ),
            })
        }
        Err(e) => Err(e),
    }
}

/// Kills every session of the account; a session that ended meanwhile is not an error.
async fn kill_sessions(conn: &mut Conn, target: &TargetConfig, sql: &Sql, account: &Account) -> Result<usize, GrantError> {
    let query = sql.sessions_of(account);
    let rows: Vec<(u64, Option<String>)> = conn.exec(query.sql, query.params).await.map_err(|e| failure(target, "list the account's sessions", e, None))?;
    let mut killed = 0;
    for (id, client) in rows {
        if !account.matches_client(client.as_deref().unwrap_or("")) {
            continue;
        }
        match run(conn, target, &sql.kill(target.kill_statement, id), None).await {
            Ok(()) => killed += 1,
            Err(GrantError::Statement { code: ER_NO_SUCH_THREAD, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(killed)
}

async fn exists(conn: &mut Conn, target: &TargetConfig, query: &Query) -> Result<bool, GrantError> {
    let count: Option<u64> = conn.exec_first(query.sql, query.params.clone()).await.map_err(|e| failure(target, "look the account up", e, None))?;
    Ok(count.unwrap_or(0) > 0)
}

async fn run(conn: &mut Conn, target: &TargetConfig, statement: &Statement, secret: Option<&Password>) -> Result<(), GrantError> {
    conn.query_drop(&statement.sql).await.map_err(|e| failure(target, statement.what, e, secret))
}

fn failure(target: &TargetConfig, what: &'static str, error: mysql_async::Error, secret: Option<&Password>) -> GrantError {
    let target_name = target.name.clone();
    match error {
        mysql_async::Error::Server(e) if e.code == ER_NOT_VALID_PASSWORD => GrantError::PasswordPolicy { target: target_name },
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
