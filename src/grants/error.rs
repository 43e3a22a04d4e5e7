//! What can go wrong with a target's accounts, each said so that an operator knows what to do.
//! No variant ever holds a password: server messages are scrubbed of it before they get here.

use crate::domain::TargetName;

use super::sql::{InvalidHost, Unquotable};

/// The privileges the admin user needs, named in errors that are probably about them.
pub const ADMIN_NEEDS: &str = "the admin user needs CREATE USER, CREATE ROLE, ROLE_ADMIN on MySQL 8, \
the granted privileges WITH GRANT OPTION on the target's schemas, SELECT on mysql.*, PROCESS, and \
CONNECTION_ADMIN (or rds_kill on RDS/Aurora)";

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    InvalidHost(#[from] InvalidHost),

    #[error("refusing to build SQL: {0}; this is a bug in powerpole's validation, please report it")]
    Unquotable(#[from] Unquotable),

    #[error("target `{target}`: could not read the admin secret `{secret_id}` from Secrets Manager: {message}; check that the secret exists in this region and that powerpole may secretsmanager:GetSecretValue on it")]
    AdminSecretUnreadable { target: TargetName, secret_id: String, message: String },

    #[error("target `{target}`: the admin secret `{secret_id}` is not usable: {problem}; it must be JSON with `username` and `password` (and optionally `host`, `port`)")]
    AdminSecretMalformed { target: TargetName, secret_id: String, problem: String },

    #[error("target `{target}`: cannot connect to {host}:{port} as admin user `{user}`: {message}; check the endpoint, the security group between powerpole and the database, and the admin secret (`powerpole doctor` checks all three)")]
    AdminConnect { target: TargetName, host: String, port: u16, user: String, message: String },

    #[error("target `{target}` refused the generated password under its password policy (error 1819: validate_password or simple_password_check); relax the policy for powerpole's accounts or report it so the generator can follow it")]
    PasswordPolicy { target: TargetName },

    #[error("target `{target}`: could not {what} (MySQL error {code}): {message}; {}", ADMIN_NEEDS)]
    Statement { target: TargetName, what: &'static str, code: u16, message: String },

    #[error("target `{target}`: could not {what} within {limit:?} (the statement was stopped on the server); something holds a lock on the server: look for long transactions or LOCK TABLES in the process list; the step is safe to retry")]
    TimedOut { target: TargetName, what: &'static str, limit: std::time::Duration },

    #[error("target `{target}`: the account could not be made within its limits (grant deadline {deadline:?}): {cause}; {rollback}")]
    GaveUp { target: TargetName, deadline: std::time::Duration, cause: String, rollback: String },

    #[error("target `{target}`: the account {account} already exists and was not made by powerpole (it lacks the marker role); powerpole never takes over an account: rename or drop it, or ask for access under another name")]
    ForeignAccount { target: TargetName, account: String },

    #[error("target `{target}`: the account {account} was kept locked at the end of an earlier session because it is the DEFINER of {objects}; powerpole does not hand it out again (that would first revoke the privileges those objects run with): change their DEFINER (or drop them) and run `powerpole reconcile` to drop the account, then ask again")]
    KeptForDefiner { target: TargetName, account: String, objects: String },

    #[error("target `{target}`: cannot read the CA bundle `{path}` for the admin connection's TLS: {message}; download your region's RDS bundle (https://truststore.pki.rds.amazonaws.com/REGION/REGION-bundle.pem) to that path or set `tls_ca_bundle`")]
    CaBundle { target: TargetName, path: String, message: String },

    #[error("target `{target}`: the connection broke while trying to {what}: {message}; the step is safe to retry")]
    Connection { target: TargetName, what: &'static str, message: String },

    #[error("target `{target}`: waited {waited:?} for the target's other admin operations ({places} run at once) and gave up at this operation's deadline; nothing was done, the step is safe to retry (many sessions ending at once, or statements that are slow on the server: look at the process list)")]
    Busy { target: TargetName, waited: std::time::Duration, places: usize },
}
