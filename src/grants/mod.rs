//! Per-person MySQL accounts on a target: created with exactly the approved role's privileges on
//! the target's schemas, revoked completely (no new logins, no open sessions, no account).
//!
//! The workflow talks to this module through [`Grants`]; [`MysqlGrants`] implements it with
//! `mysql_async`, logging in with the target's admin credential from Secrets Manager
//! ([`SecretsManagerAdmin`]). Nothing that comes from a person reaches SQL unless it is a
//! validated domain value ([`DbUsername`], [`crate::domain::SchemaName`]) or a host that
//! [`sql::Account::new`] accepted, and even then it is quoted (see [`sql`]).
//!
//! Both operations are safe to retry and safe after a crash: creating converges an existing
//! account to this session's password and privileges; revoking an account that is already gone
//! is done.

mod admin;
mod error;
mod mysql;
mod password;
pub mod admin_sql;
pub mod sql;

use std::fmt;

use async_trait::async_trait;

pub use admin::{AdminCredentials, AdminSource, SecretsManagerAdmin};
pub use error::GrantError;
pub use mysql::{AdminCheck, MysqlGrants};
pub use password::{Password, PASSWORD_LEN};

use crate::config::TargetConfig;
use crate::domain::{DbUsername, Role};

/// The account a session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRequest {
    pub user: DbUsername,
    /// The bastion's private IP, or the target's proxy CIDR (`10.1.0.0/255.255.255.0`).
    pub host: String,
    pub role: Role,
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeReport {
    /// `'user'@'host'`.
    pub account: String,
    /// Sessions of the account that were killed.
    pub killed: usize,
    pub outcome: RevokeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The account was dropped.
    Dropped,
    /// There was no such account (dropped earlier, or never created).
    AlreadyGone,
    /// The account could not be dropped (it is the DEFINER of objects the application uses); it
    /// cannot log in, its sessions are killed, it keeps the privileges those objects run with, and
    /// the reason says what an operator must do before `powerpole reconcile` can drop it.
    KeptLocked { reason: String },
}

impl RevokeReport {
    /// Whether nothing of the account is left.
    pub fn is_complete(&self) -> bool {
        matches!(self.outcome, RevokeOutcome::Dropped | RevokeOutcome::AlreadyGone)
    }
}

impl fmt::Display for RevokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            RevokeOutcome::Dropped => write!(f, "{} dropped, {} session(s) killed", self.account, self.killed),
            RevokeOutcome::AlreadyGone => write!(f, "{} was already gone, {} session(s) killed", self.account, self.killed),
            RevokeOutcome::KeptLocked { reason } => {
                write!(f, "{} kept locked, {} session(s) killed: {reason}", self.account, self.killed)
            }
        }
    }
}

/// Per-person accounts on a target, as the workflow and `powerpole reconcile` need them.
#[async_trait]
pub trait Grants: Send + Sync {
    /// Creates `request.user`@`request.host` with a fresh password and exactly
    /// `target.privileges_for(request.role)` on each of `target.schemas`, or converges an
    /// existing account to that. Returns the password, for the hand-over DM only.
    async fn create_account(&self, target: &TargetConfig, request: &AccountRequest) -> Result<Password, GrantError>;

    /// Locks the account, kills its sessions, drops it. Already gone counts as done.
    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError>;

    async fn account_exists(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<bool, GrantError>;

    /// `(user, host)` of every account this deployment made on the target's server (those
    /// holding its [`sql::marker_role`]), for reconcile to compare with the live sessions.
    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError>;
}
