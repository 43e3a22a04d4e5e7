//! The durable request store and append-only audit trail on DynamoDB.
//!
//! Everything powerpole knows lives here, so any replica, a restarted service or a Lambda picks up
//! exactly where another left off. The [`Store`] trait is what the workflow sees; [`schema`] is the
//! one definition of the table.
//!
//! Rules every implementation keeps:
//! - every change of a session is conditioned on the version (and state) that was read; losing a
//!   race is [`StoreError::Conflict`], never a silent overwrite;
//! - a change and its audit event are written in one transaction, so the trail cannot miss a step;
//! - audit events are written once (condition: the item does not exist) and never changed;
//! - no password, token or secret is ever written.

pub mod dynamo;
pub mod schema;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{AuditEvent, Role, Session, SessionId, SlackUserId, State, TargetName};

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the session since it was read: read it again and decide again.
    #[error("session {0} was changed by someone else since it was read")]
    Conflict(SessionId),
    /// A create with an id already in use (ids are random: make a new one and create again).
    #[error("session {0} already exists: create it again under a new id")]
    AlreadyExists(SessionId),
    #[error("no session {0}: check the id; closed sessions are removed after their retention")]
    NotFound(SessionId),
    #[error("the request store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
    /// The database user name derived from this person's e-mail is reserved for someone else.
    #[error("the database user name `{0}` belongs to another person (two e-mail addresses map to it); ask an operator to give one of them another address in Slack")]
    NameTaken(String),
}

/// Sessions with work due, and what reading them cost (for tests and metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueBatch {
    pub sessions: Vec<Session>,
    /// Query pages read, over all shards.
    pub pages: u32,
    /// Items DynamoDB examined (`ScannedCount`), over all shards.
    pub items_read: u32,
}

/// One stored audit event with the facts that make it readable on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub session_id: SessionId,
    /// Position in the session's trail (the session version the event was written with).
    pub seq: u64,
    pub target: TargetName,
    pub role: Role,
    pub requester: SlackUserId,
    pub db_user: String,
    pub event: AuditEvent,
}

/// A Slack request whose follow-up `serve` acknowledged: kept until the follow-up has run, so
/// that a process killed after the acknowledgement leaves it for a restarted (or any other)
/// replica to run ([`crate::slack::journal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// SHA-256 of what Slack signed: one entry per signed request.
    pub key: String,
    /// The verified request, as [`crate::slack::deferred::Deferred`] JSON.
    pub request: String,
    /// The process running it, and until when it may before another replica takes it over.
    pub owner: String,
    pub lease_until: DateTime<Utc>,
}

/// What the journal's conditional writes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    /// The write happened.
    Written,
    /// The entry exists already (a retried Slack event), or another owner holds it now.
    Taken,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a new session (its `version` as given) and its first audit event; refuses a
    /// duplicate id with [`StoreError::AlreadyExists`].
    async fn create(&self, session: &Session, event: &AuditEvent) -> Result<(), StoreError>;

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Writes `next` if the stored session still has `expected_state` and version
    /// `next.version` (the version that was read), storing it with version + 1 and
    /// `next_action_at` recomputed; appends `event` (if any) in the same transaction, as audit
    /// event number version + 1. Returns the session as stored. Losing a race (or a wrong
    /// `expected_state`) is [`StoreError::Conflict`]; a session that does not exist is
    /// [`StoreError::NotFound`].
    async fn update(&self, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError>;

    /// Sessions whose `next_action_at` is at or before `now`, soonest first, at most `limit`,
    /// read from the sharded due index without scanning the table.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError>;

    /// Every session that is not closed (for reconcile and `list`).
    async fn live(&self) -> Result<Vec<Session>, StoreError>;

    /// A requester's sessions, newest first.
    async fn by_requester(&self, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError>;

    /// A target's sessions created at or after `since`, newest first.
    async fn by_target(&self, target: &TargetName, since: Option<DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError>;

    /// A session's audit trail, in order.
    async fn audit_trail(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError>;

    /// Records `key` (a Slack event id, a click's action id) the first time it is seen; returns
    /// false if it was already recorded, so retries and repeated clicks are done once. A marker
    /// older than its `ttl` counts as absent, whether or not the table has deleted it yet.
    async fn remember_once(&self, key: &str, ttl: chrono::Duration) -> Result<bool, StoreError>;

    /// Reserves a database user name for one Slack user, for good, with a conditional write:
    /// `Ok` when it was free or is already theirs, [`StoreError::NameTaken`] when it is
    /// another person's.
    async fn reserve_db_user(&self, name: &crate::domain::DbUsername, owner: &SlackUserId) -> Result<(), StoreError>;

    /// Journals `entry` as pending, held by its owner until its lease ends; [`Journaled::Taken`]
    /// if an entry of this key exists (pending or done). A store without a journal refuses,
    /// and the follow-up then runs unjournaled.
    async fn journal_put(&self, _entry: &JournalEntry) -> Result<Journaled, StoreError> {
        Err(StoreError::Unavailable("this store keeps no follow-up journal".into()))
    }

    /// Takes pending entry `key` for `owner` until `lease_until`: when its lease has ended (a
    /// take-over, `expected_owner` being the one read), or renewing it when `owner` already
    /// holds it.
    async fn journal_claim(&self, _key: &str, _expected_owner: &str, _owner: &str, _now: DateTime<Utc>, _lease_until: DateTime<Utc>) -> Result<Journaled, StoreError> {
        Err(StoreError::Unavailable("this store keeps no follow-up journal".into()))
    }

    /// Marks entry `key` done (kept, without its request, until `forget_at` so that a retried
    /// Slack request is still recognised), if `owner` still holds it.
    async fn journal_done(&self, _key: &str, _owner: &str, _forget_at: DateTime<Utc>) -> Result<Journaled, StoreError> {
        Err(StoreError::Unavailable("this store keeps no follow-up journal".into()))
    }

    /// Pending entries whose lease ended before `now`, at most `limit`.
    async fn journal_due(&self, _now: DateTime<Utc>, _limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(Vec::new())
    }
}
