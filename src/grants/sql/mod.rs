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
//! | host as CIDR | netmask form only (`10.1.0.0/255.255.0.0`) | also `10.1.0.0/16` (8.0.23+) | always the netmask form |
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

pub use quote::{grant_schema, identifier, string_literal, Account, InvalidHost, Unquotable};

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
    /// host ([`Account::matches_client`]). `information_schema.PROCESSLIST` exists on both
    /// (deprecated in MySQL 8 in favour of `performance_schema.processlist`, still served on
    /// Aurora 3); the admin needs `PROCESS` to see other users' sessions.
    pub fn sessions_of(&self, account: &Account) -> Query {
        Query {
            sql: "SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE USER = ?",
            params: vec![account.user().as_str().to_string()],
        }
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
