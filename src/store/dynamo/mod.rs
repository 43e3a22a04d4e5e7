//! [`Store`] on one DynamoDB table (see [`schema`](crate::store::schema) for its shape).
//!
//! Writes are conditional and go with their audit event in one transaction ([`write`]), each
//! audit event chained onto its session's previous one ([`chain`]); reads go through the indexes
//! and never scan the table ([`read`]), except the audit trail's own reads for `audit verify` and
//! the export's re-export ([`chain::audit_items_since`]). [`create_table`] builds the table for
//! local use from the same schema the Terraform in `infra/` must match.

pub mod chain;
mod errors;
pub mod item;
mod journal;
mod names;
mod read;
pub mod shard;
mod tables;
mod write;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

pub use item::Retention;
pub use tables::{check_table, create_table, TableCreated, TableError};

use crate::config::StoreConfig;
use crate::domain::{AuditEvent, Session, SessionId, SlackUserId, State, TargetName};
use crate::store::{AuditRecord, DueBatch, JournalEntry, Journaled, Store, StoreError};

/// The request store on DynamoDB. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Retention,
}

impl DynamoStore {
    /// A store on `config.table`, keeping closed sessions and audit events as long as `config` says.
    pub fn new(client: Client, config: &StoreConfig) -> DynamoStore {
        let retention = Retention { session: config.session_retention.to_chrono(), audit: config.audit_retention.to_chrono() };
        DynamoStore { client, table: config.table.clone(), retention }
    }

    /// A store on `config.table` from the AWS settings in `aws` (region, credentials, endpoints).
    pub fn from_sdk_config(aws: &aws_config::SdkConfig, config: &StoreConfig) -> DynamoStore {
        Self::new(Client::new(aws), config)
    }

    /// A reader of `table`'s audit trail ([`DynamoStore::audit_items`],
    /// [`DynamoStore::audit_items_since`]) for the export function, which has no configuration
    /// file. Its retention is zero: never write through it.
    pub fn audit_reader(aws: &aws_config::SdkConfig, table: impl Into<String>) -> DynamoStore {
        DynamoStore { client: Client::new(aws), table: table.into(), retention: Retention { session: chrono::Duration::zero(), audit: chrono::Duration::zero() } }
    }

    /// `powerpole table create`: see [`create_table`].
    pub async fn create_table(aws: &aws_config::SdkConfig, name: &str) -> Result<TableCreated, TableError> {
        create_table(&Client::new(aws), name).await
    }

    /// `powerpole doctor`: see [`check_table`].
    pub async fn check(&self) -> Result<String, String> {
        check_table(&self.client, &self.table).await
    }

    /// The table this store reads and writes.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// One session's audit items, oldest first, as plain JSON (see [`chain`]).
    pub async fn audit_items(&self, session: &SessionId) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        chain::audit_items(self, &item::session_pk(session)).await
    }

    /// Every audit item (at or after `since`), as plain JSON: a Scan (see [`chain`]).
    pub async fn audit_items_since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        chain::audit_items_since(self, since).await
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create(&self, session: &Session, event: &AuditEvent) -> Result<(), StoreError> {
        write::create(self, session, event).await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        read::get(self, id).await
    }

    async fn update(&self, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
        write::update(self, expected_state, next, event).await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError> {
        read::due(self, now, limit).await
    }

    async fn live(&self) -> Result<Vec<Session>, StoreError> {
        read::live(self).await
    }

    async fn by_requester(&self, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError> {
        read::by_requester(self, user, limit).await
    }

    async fn by_target(&self, target: &TargetName, since: Option<DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError> {
        read::by_target(self, target, since, limit).await
    }

    async fn audit_trail(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
        read::audit_trail(self, id).await
    }

    async fn remember_once(&self, key: &str, ttl: chrono::Duration) -> Result<bool, StoreError> {
        write::remember_once(self, key, ttl, Utc::now()).await
    }

    async fn reserve_db_user(&self, name: &crate::domain::DbUsername, owner: &SlackUserId) -> Result<(), StoreError> {
        names::reserve(self, name, owner).await
    }

    async fn journal_put(&self, entry: &JournalEntry) -> Result<Journaled, StoreError> {
        journal::put(self, entry).await
    }

    async fn journal_claim(&self, key: &str, expected_owner: &str, owner: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Journaled, StoreError> {
        journal::claim(self, key, expected_owner, owner, now, lease_until).await
    }

    async fn journal_done(&self, key: &str, owner: &str, forget_at: DateTime<Utc>) -> Result<Journaled, StoreError> {
        journal::done(self, key, owner, forget_at).await
    }

    async fn journal_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        journal::due(self, now, limit).await
    }
}
