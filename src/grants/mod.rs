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
//! account of powerpole's to this session's password and privileges (and finishes the unfinished
//! account an earlier attempt of the same session left); revoking an account that is already
//! gone is done. An account powerpole did not make is never converged, locked or dropped.

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
pub use mysql::{AdminCheck, MysqlGrants, ADMIN_OPERATIONS, POOL_MAX};
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
    /// An earlier attempt of the same session recorded this account after finding it absent
    /// (or powerpole's): an [`AccountState::Unfinished`] account there is what that attempt left
    /// when it stopped between `CREATE USER` and marking the account, and is finished now.
    /// Without it such an account is refused like any account powerpole did not make.
    pub earlier_attempt: bool,
}

/// Whose an account is, as the server shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Absent,
    /// It holds this deployment's marker role.
    Powerpole,
    /// Locked, without any privilege and without the marker: what a worker leaves when it stops
    /// in the middle of creating the account. A person could have made such an account too, so
    /// only a session that recorded the account after finding it absent takes it as its own
    /// ([`AccountRequest::earlier_attempt`]).
    Unfinished,
    /// Someone else's: never converged, never locked, never dropped.
    Foreign,
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
    /// The account is not powerpole's (no marker role, and not an unfinished account): it was
    /// left exactly as it was, its sessions untouched.
    NotOurs,
    /// The account could not be dropped (it is the DEFINER of objects the application uses); it
    /// cannot log in, its sessions are killed, it keeps the privileges those objects run with, and
    /// the reason says what an operator must do before `powerpole reconcile` can drop it.
    KeptLocked { reason: String },
}

impl RevokeReport {
    /// Whether nothing of the account is left.
    pub fn is_complete(&self) -> bool {
        matches!(self.outcome, RevokeOutcome::Dropped | RevokeOutcome::AlreadyGone | RevokeOutcome::NotOurs)
    }
}

impl fmt::Display for RevokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            RevokeOutcome::Dropped => write!(f, "{} dropped, {} session(s) killed", self.account, self.killed),
            RevokeOutcome::AlreadyGone => write!(f, "{} was already gone, {} session(s) killed", self.account, self.killed),
            RevokeOutcome::NotOurs => write!(f, "{} is not powerpole's (someone else made it): left as it was", self.account),
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

    /// Locks the account, kills its sessions, drops it. Already gone counts as done. An account
    /// powerpole did not make ([`AccountState::Foreign`]) is left as it was
    /// ([`RevokeOutcome::NotOurs`]); an unfinished one is the caller's, who recorded it.
    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError>;

    /// Whose `user`@`host` is; asked before a session records the account it will create.
    async fn account_state(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<AccountState, GrantError>;

    /// `(user, host)` of every account this deployment made on the target's server (those
    /// holding its [`sql::marker_role`]), for reconcile to compare with the live sessions.
    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError>;
}
