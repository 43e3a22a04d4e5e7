//! The adapters, timed: each wraps one adapter and reports every call's duration to
//! [`super::call`], labelled by the system (`dynamodb`, `ec2`, `mysql`) and the operation. The
//! workflow sees the same traits, so nothing else changes; [`crate::app::App`] wraps the real
//! adapters once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::bastion::{BastionError, Bastions, Instance, LaunchSpec, ManagedInstance};
use crate::config::TargetConfig;
use crate::domain::{AuditEvent, DbUsername, Session, SessionId, SlackUserId, State, TargetName};
use crate::grants::{AccountRequest, AccountState, GrantError, Grants, Password, RevokeReport};
use crate::store::{AuditRecord, DueBatch, JournalEntry, Journaled, Store, StoreError};

async fn timed<T>(adapter: &'static str, operation: &'static str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = call.await;
    super::call(adapter, operation, started.elapsed().as_secs_f64());
    answer
}

/// The store, timed (`adapter="dynamodb"`).
pub struct TimedStore(pub Arc<dyn Store>);

#[async_trait]
impl Store for TimedStore {
    async fn create(&self, session: &Session, event: &AuditEvent) -> Result<(), StoreError> {
        timed("dynamodb", "create", self.0.create(session, event)).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        timed("dynamodb", "get", self.0.get(id)).await
    }
    async fn update(&self, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
        timed("dynamodb", "update", self.0.update(expected_state, next, event)).await
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError> {
        timed("dynamodb", "due", self.0.due(now, limit)).await
    }
    async fn live(&self) -> Result<Vec<Session>, StoreError> {
        timed("dynamodb", "live", self.0.live()).await
    }
    async fn by_requester(&self, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError> {
        timed("dynamodb", "by_requester", self.0.by_requester(user, limit)).await
    }
    async fn by_target(&self, target: &TargetName, since: Option<DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError> {
        timed("dynamodb", "by_target", self.0.by_target(target, since, limit)).await
    }
    async fn audit_trail(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
        timed("dynamodb", "audit_trail", self.0.audit_trail(id)).await
    }
    async fn remember_once(&self, key: &str, ttl: chrono::Duration) -> Result<bool, StoreError> {
        timed("dynamodb", "remember_once", self.0.remember_once(key, ttl)).await
    }
    async fn reserve_db_user(&self, name: &DbUsername, owner: &SlackUserId) -> Result<(), StoreError> {
        timed("dynamodb", "reserve_db_user", self.0.reserve_db_user(name, owner)).await
    }
    async fn journal_put(&self, entry: &JournalEntry) -> Result<Journaled, StoreError> {
        timed("dynamodb", "journal_put", self.0.journal_put(entry)).await
    }
    async fn journal_claim(&self, key: &str, expected_owner: &str, owner: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Journaled, StoreError> {
        timed("dynamodb", "journal_claim", self.0.journal_claim(key, expected_owner, owner, now, lease_until)).await
    }
    async fn journal_done(&self, key: &str, owner: &str, forget_at: DateTime<Utc>) -> Result<Journaled, StoreError> {
        timed("dynamodb", "journal_done", self.0.journal_done(key, owner, forget_at)).await
    }
    async fn journal_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        timed("dynamodb", "journal_due", self.0.journal_due(now, limit)).await
    }
}

/// The bastions, timed (`adapter="ec2"`, and `"ssm"` for the wait until online).
pub struct TimedBastions(pub Arc<dyn Bastions>);

#[async_trait]
impl Bastions for TimedBastions {
    async fn launch(&self, spec: &LaunchSpec) -> Result<Instance, BastionError> {
        timed("ec2", "launch", self.0.launch(spec)).await
    }
    async fn find(&self, session: &SessionId) -> Result<Option<Instance>, BastionError> {
        timed("ec2", "find", self.0.find(session)).await
    }
    async fn set_identity(&self, instance_id: &str, spec: &LaunchSpec) -> Result<(), BastionError> {
        timed("ec2", "set_identity", self.0.set_identity(instance_id, spec)).await
    }
    async fn wait_online(&self, instance_id: &str, timeout: Duration) -> Result<(), BastionError> {
        timed("ssm", "wait_online", self.0.wait_online(instance_id, timeout)).await
    }
    async fn terminate(&self, instance_id: &str) -> Result<(), BastionError> {
        timed("ec2", "terminate", self.0.terminate(instance_id)).await
    }
    async fn list_managed(&self) -> Result<Vec<ManagedInstance>, BastionError> {
        timed("ec2", "list_managed", self.0.list_managed()).await
    }
}

/// The database accounts, timed (`adapter="mysql"`).
pub struct TimedGrants(pub Arc<dyn Grants>);

#[async_trait]
impl Grants for TimedGrants {
    async fn create_account(&self, target: &TargetConfig, request: &AccountRequest) -> Result<Password, GrantError> {
        timed("mysql", "create_account", self.0.create_account(target, request)).await
    }
    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError> {
        timed("mysql", "revoke", self.0.revoke(target, user, host)).await
    }
    async fn account_state(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<AccountState, GrantError> {
        timed("mysql", "account_state", self.0.account_state(target, user, host)).await
    }
    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError> {
        timed("mysql", "list_accounts", self.0.list_accounts(target)).await
    }
}
