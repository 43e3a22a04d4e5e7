//! The SQL powerpole sends to a target, for both dialects it speaks. Pure text building, no I/O,
//! so that every statement can be unit-tested for MariaDB 10.11 (tested live) and MySQL 8 /
//! Aurora MySQL 3 (tested here only).
//!
//! # How the two dialects differ, and what that changes here
//!
//! | concern | MariaDB 10.11 | MySQL 8 / Aurora MySQL 3 | here |
//! |---|---|---|---|
//! | tag an account as powerpole's | no account comment or attribute | `ATTRIBUTE '{json}'` (8.0.21+) | a marker role on both (below), plus `ATTRIBUTE` on MySQL 8 for people reading `INFORMATION_SCHEMA.USER_ATTRIBUTES` |
//! | who holds a role | `mysql.roles_mapping` (the role's creator is a member `WITH ADMIN OPTION`) | `mysql.role_edges` | [`Sql::list_accounts`] reads the right one, skipping admin-option rows |
//! | default role | `SET DEFAULT ROLE r FOR u` | `SET DEFAULT ROLE r TO u` | not needed: the marker role carries no privilege, so it never has to be active |
//! | `REVOKE ALL PRIVILEGES, GRANT OPTION` | also revokes role grants | leaves role grants | the marker is granted again after every revoke |
//! | host as CIDR | netmask form only (`10.1.0.0/255.255.0.0`) | also `10.1.0.0/16` (8.0.23+) | always the netmask form; `%` never (see [`crate::config::AccountHost`]) |
//! | kill another session | `KILL CONNECTION id` | same; on RDS/Aurora `CALL mysql.rds_kill(id)` | [`KillStatement`] from config |
//! | dropping a DEFINER | succeeds, leaves an orphan definer | error 4006 (8.0.22+) | the caller revokes and keeps the account locked |
//!
//! Privileges are granted directly to the account (same SQL on both), not through a role, so
//! that nothing depends on the account activating a role.
//!
//! # Why the create sequence looks like this
//!
//! [`Sql::create_account`] converges whatever exists (nothing, or an account left by a crashed
//! earlier attempt) to exactly this session's account. The account is created or kept
//! `ACCOUNT LOCK`ed while its password and privileges are reset, and unlocked last, so at no
//! moment can anyone log in with privileges other than the ones approved. Every statement is
//! idempotent; re-running the whole sequence after a crash at any point converges again.

mod quote;
#[cfg(test)]
mod tests;

use std::fmt;

pub use quote::{grant_schema, identifier, string_literal, Account, ClientMatch, InvalidHost, Unquotable};

use crate::config::{Dialect, KillStatement};
use crate::domain::{DeploymentId, PrivilegeSet, SchemaName};
use crate::grants::Password;

/// The role every account of a deployment is granted, so that `list_accounts` finds exactly
/// that deployment's accounts: nothing an operator made by hand, nothing another deployment
/// sharing the server made. It has no privileges. `powerpole-dep-` and a [`DeploymentId`] of at
/// most 16 characters is at most 30, within MySQL 8's 32-character limit on role (user) names;
/// the `-` keeps it out of the `[a-z0-9_]` names a [`crate::domain::DbUsername`] can take.
pub fn marker_role(deployment: &DeploymentId) -> String {
    format!("{MARKER_PREFIX}{deployment}")
}

const MARKER_PREFIX: &str = "powerpole-dep-";

/// The single marker of versions before deployment ids. No deployment lists or removes the
/// accounts holding only it: they may belong to any deployment on the server (README: upgrading).
pub const LEGACY_MARKER_ROLE: &str = "powerpole-managed";

/// One statement to run, with a note of what it does (for error messages) and whether its text
/// carries the password (then its `Debug` hides the text).
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub what: &'static str,
    pub carries_password: bool,
}

impl Statement {
    fn new(what: &'static str, sql: String) -> Statement {
        Statement { sql, what, carries_password: false }
    }

    fn secret(what: &'static str, sql: String) -> Statement {
        Statement { sql, what, carries_password: true }
    }
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.carries_password {
            write!(f, "Statement({}: [text redacted: carries a password])", self.what)
        } else {
            write!(f, "Statement({}: {})", self.what, self.sql)
        }
    }
}

/// A parameterised query (run as a prepared statement): the text and its string parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub sql: &'static str,
    pub params: Vec<String>,
}

/// What an account gets, from the target's config and the approved role.
#[derive(Debug, Clone)]
pub struct AccountSpec<'a> {
    pub privileges: &'a PrivilegeSet,
    pub schemas: &'a [SchemaName],
    pub max_user_connections: u32,
    pub require_ssl: bool,
}

/// The statement builder for one dialect and one deployment's marker role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    pub dialect: Dialect,
    /// [`marker_role`] of the deployment.
    pub marker: String,
}

impl Sql {
    pub fn new(dialect: Dialect, deployment: &DeploymentId) -> Sql {
        Sql { dialect, marker: marker_role(deployment) }
    }

    /// Creates or converges an account; see the module docs for why in this order.
    pub fn create_account(&self, account: &Account, password: &Password, spec: &AccountSpec<'_>) -> Result<Vec<Statement>, Unquotable> {
        let who = account.sql();
        let pw = string_literal(password.expose())?;
        let options = self.account_options(spec);
        let mut out = vec![
            Statement::new("create the marker role", format!("CREATE ROLE IF NOT EXISTS {}", string_literal(&self.marker)?)),
            Statement::secret(
                "create the account",
                format!("CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {pw} {options} ACCOUNT LOCK{}", self.attribute()),
            ),
            Statement::secret("reset the account's password and limits", format!("ALTER USER {who} IDENTIFIED BY {pw} {options} ACCOUNT LOCK")),
            self.revoke_everything(account),
            self.mark(account)?,
        ];
        let privileges = spec.privileges.to_sql_list();
        for schema in spec.schemas {
            out.push(Statement::new("grant the role's privileges", format!("GRANT {privileges} ON {} TO {who}", grant_schema(schema))));
        }
        out.push(Statement::new("unlock the account", format!("ALTER USER {who} ACCOUNT UNLOCK")));
        Ok(out)
    }

    /// `REQUIRE ... WITH MAX_USER_CONNECTIONS n`: the same words and order on both dialects.
    fn account_options(&self, spec: &AccountSpec<'_>) -> String {
        let tls = if spec.require_ssl { "SSL" } else { "NONE" };
        format!("REQUIRE {tls} WITH MAX_USER_CONNECTIONS {}", spec.max_user_connections)
    }

    /// MySQL 8 can tag an account with JSON; MariaDB has no such place.
    fn attribute(&self) -> &'static str {
        match self.dialect {
            Dialect::Mysql8 => r#" ATTRIBUTE '{"managed_by": "powerpole"}'"#,
            Dialect::Mariadb => "",
        }
    }

    /// Grants the marker role (idempotent on both dialects).
    pub fn mark(&self, account: &Account) -> Result<Statement, Unquotable> {
        Ok(Statement::new("mark the account as powerpole's", format!("GRANT {} TO {}", string_literal(&self.marker)?, account.sql())))
    }

    /// Every privilege at every level, and (on MariaDB) every role.
    pub fn revoke_everything(&self, account: &Account) -> Statement {
        Statement::new("revoke every privilege", format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {}", account.sql()))
    }

    /// Blocks new logins; open sessions stay until killed.
    pub fn lock(&self, account: &Account) -> Statement {
        Statement::new("lock the account", format!("ALTER USER {} ACCOUNT LOCK", account.sql()))
    }

    pub fn drop_user(&self, account: &Account) -> Statement {
        Statement::new("drop the account", format!("DROP USER {}", account.sql()))
    }

    /// Ends one connection by its process list id.
    pub fn kill(&self, how: KillStatement, id: u64) -> Statement {
        match how {
            KillStatement::KillConnection => Statement::new("kill a session", format!("KILL CONNECTION {id}")),
            KillStatement::RdsKill => Statement::new("kill a session", format!("CALL mysql.rds_kill({id})")),
        }
    }

    /// Whether `user`@`host` exists (roles have an empty host on MariaDB and are never asked).
    pub fn account_exists(&self, account: &Account) -> Query {
        Query {
            sql: "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
            params: vec![account.user().as_str().to_string(), account.host().to_string()],
        }
    }

    /// The sessions of a user name: `(ID, HOST)` rows; the caller keeps those of the account's
    /// host ([`Account::client_match`]). `information_schema.PROCESSLIST` exists on both
    /// (deprecated in MySQL 8 in favour of `performance_schema.processlist`, still served on
    /// Aurora 3); the admin needs `PROCESS` to see other users' sessions.
    pub fn sessions_of(&self, account: &Account) -> Query {
        Query {
            sql: "SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE USER = ?",
            params: vec![account.user().as_str().to_string()],
        }
    }

    /// The session limits every admin connection sets (again after each pool reset), so that a
    /// statement blocked behind a lock ends on the server instead of holding a session forever.
    /// `lock_wait_timeout` bounds metadata and table locks (GRANT, CREATE USER, DROP USER wait
    /// on those) on both dialects; MariaDB also bounds any statement with `max_statement_time`
    /// (seconds); MySQL 8's `max_execution_time` covers only SELECT, which is what it bounds here.
    pub fn session_limits(&self, timeout: std::time::Duration) -> Vec<String> {
        let secs = timeout.as_secs().max(1);
        let mut out = vec![format!("SET SESSION lock_wait_timeout = {secs}"), format!("SET SESSION innodb_lock_wait_timeout = {secs}")];
        match self.dialect {
            Dialect::Mariadb => out.push(format!("SET SESSION max_statement_time = {secs}")),
            Dialect::Mysql8 => out.push(format!("SET SESSION max_execution_time = {}", secs.saturating_mul(1000))),
        }
        out
    }

    /// Whether `user`@`host` holds the marker role: a count, 0 or 1.
    pub fn account_marked(&self, account: &Account) -> Query {
        let sql = match self.dialect {
            Dialect::Mariadb => "SELECT COUNT(*) FROM mysql.roles_mapping WHERE User = ? AND Host = ? AND Role = ?",
            Dialect::Mysql8 => "SELECT COUNT(*) FROM mysql.role_edges WHERE TO_USER = ? AND TO_HOST = ? AND FROM_USER = ? AND FROM_HOST = '%'",
        };
        Query { sql, params: vec![account.user().as_str().to_string(), account.host().to_string(), self.marker.clone()] }
    }

    /// `SHOW CREATE USER` the account: both dialects end a locked account's with `ACCOUNT LOCK`
    /// (MariaDB's `mysql.user` has no `account_locked` column). It takes no placeholders; the
    /// account is quoted.
    pub fn show_create_user(&self, account: &Account) -> String {
        format!("SHOW CREATE USER {}", account.sql())
    }

    /// `SHOW GRANTS FOR` the account (it takes no placeholders; the account is quoted).
    pub fn show_grants(&self, account: &Account) -> String {
        format!("SHOW GRANTS FOR {}", account.sql())
    }

    /// How many accounts share this user name (any host): when it is one, a session of that
    /// user name whose client address cannot be read still belongs to this account.
    pub fn accounts_named(&self, account: &Account) -> Query {
        Query { sql: "SELECT COUNT(*) FROM mysql.user WHERE User = ?", params: vec![account.user().as_str().to_string()] }
    }

    /// `(kind, schema.name)` of every trigger, view, routine and event whose DEFINER is the
    /// account. The admin sees them through `information_schema` with its privileges on the
    /// target's schemas (TRIGGER, SHOW VIEW, SELECT on mysql.* for routines and events).
    pub fn defined_objects(&self, account: &Account) -> Query {
        let definer = format!("{}@{}", account.user().as_str(), account.host());
        Query {
            sql: "SELECT 'trigger', CONCAT(TRIGGER_SCHEMA, '.', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE DEFINER = ? \
                  UNION ALL SELECT 'view', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.VIEWS WHERE DEFINER = ? \
                  UNION ALL SELECT LOWER(ROUTINE_TYPE), CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE DEFINER = ? \
                  UNION ALL SELECT 'event', CONCAT(EVENT_SCHEMA, '.', EVENT_NAME) FROM information_schema.EVENTS WHERE DEFINER = ?",
            params: vec![definer.clone(), definer.clone(), definer.clone(), definer],
        }
    }

    /// MySQL 8 only: the roles granted to the account (MariaDB's REVOKE ALL takes roles too).
    pub fn granted_roles(&self, account: &Account) -> Option<Query> {
        match self.dialect {
            Dialect::Mysql8 => Some(Query {
                sql: "SELECT FROM_USER, FROM_HOST FROM mysql.role_edges WHERE TO_USER = ? AND TO_HOST = ?",
                params: vec![account.user().as_str().to_string(), account.host().to_string()],
            }),
            Dialect::Mariadb => None,
        }
    }

    /// MySQL 8: takes one granted role away, and every default role.
    pub fn revoke_role(&self, account: &Account, role_user: &str, role_host: &str) -> Result<Vec<Statement>, Unquotable> {
        let role = format!("{}@{}", string_literal(role_user)?, string_literal(role_host)?);
        Ok(vec![
            Statement::new("remove the account's default roles", format!("SET DEFAULT ROLE NONE TO {}", account.sql())),
            Statement::new("revoke a role the account was granted", format!("REVOKE {role} FROM {}", account.sql())),
        ])
    }

    /// `(user, host)` of every account holding this deployment's marker role.
    pub fn list_accounts(&self) -> Query {
        let sql = match self.dialect {
            // The role's creator holds it WITH ADMIN OPTION: that is the admin user, not ours.
            Dialect::Mariadb => "SELECT User, Host FROM mysql.roles_mapping WHERE Role = ? AND Admin_option = 'N' ORDER BY User, Host",
            Dialect::Mysql8 => "SELECT TO_USER, TO_HOST FROM mysql.role_edges WHERE FROM_USER = ? AND FROM_HOST = '%' ORDER BY TO_USER, TO_HOST",
        };
        Query { sql, params: vec![self.marker.clone()] }
    }
}
