//! How sessions, audit events and once-markers look as DynamoDB items, both ways.
//!
//! A session item holds the whole [`Session`] as JSON in `data` (so adding a field to the domain
//! type needs no migration) plus, as top-level attributes, only what conditions, indexes and TTL
//! read: `state`, `outcome`, `version`, the index keys and `ttl`. Reading trusts `data` but checks
//! that the top-level copies agree, so a hand-edited item is reported instead of half-believed.
//!
//! Audit items carry the facts that make them readable on their own in a table export (target,
//! role, requester, DB user, event, actor, time, result) but none of the index attributes, so they
//! never show up in the due, requester or target indexes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::shard::{shard_key, shard_of};
use crate::domain::{Actor, AuditEvent, Session, SessionId, SlackUserId, State, TargetName};
use crate::store::schema::{CREATED_AT, DUE_SHARD, NEXT_ACTION_AT, PK, REQUESTER_KEY, SK, TARGET_KEY, TTL_ATTRIBUTE};
use crate::store::{AuditRecord, StoreError};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The session, serialised (JSON). Audit items hold the event here.
pub const DATA: &str = "data";
/// Which kind of item this is (`session`, `audit`, `once`), for people reading a table export.
pub const KIND: &str = "kind";
pub const STATE: &str = "state";
/// The outcome of a tearing-down or closed session; absent otherwise.
pub const OUTCOME: &str = "outcome";
pub const VERSION: &str = "version";
/// An audit item's position in its session's trail.
pub const SEQ: &str = "seq";

/// The sort key of a session item.
pub const SESSION_SK: &str = "SESSION";
/// The sort-key prefix of audit items.
pub const AUDIT_SK_PREFIX: &str = "AUDIT#";
const ONCE_SK: &str = "ONCE";
/// Keys longer than this are hashed, so a caller's key can never exceed DynamoDB's key size.
const ONCE_KEY_MAX: usize = 256;

/// How long closed sessions and audit events are kept before DynamoDB's TTL removes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub session: Duration,
    pub audit: Duration,
}

/// The partition key of a session and of its audit trail.
pub fn session_pk(id: &SessionId) -> String {
    format!("SESSION#{id}")
}

/// The sort key of audit event `seq`; zero-padded so that keys sort in trail order.
pub fn audit_sk(seq: u64) -> String {
    format!("{AUDIT_SK_PREFIX}{seq:010}")
}

/// The primary key of a session item.
pub fn session_key(id: &SessionId) -> Item {
    HashMap::from([(PK.to_string(), s(session_pk(id))), (SK.to_string(), s(SESSION_SK))])
}

/// A time as stored in sort keys: RFC 3339, UTC, always microseconds, so the strings have one
/// width and sort as the times do.
pub fn sortable_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The session as an item: `data` plus the attributes conditions, indexes and TTL need.
///
/// `due_shard` and `next_action_at` exist only while [`Session::next_action_at`] is `Some`, which
/// keeps closed sessions out of the due index once their notice outbox is delivered. `next_action_at` is whole epoch seconds rounded
/// down; the due query re-checks the exact time, so rounding never makes work early.
pub fn session_item(session: &Session, retention: &Retention) -> Result<Item, StoreError> {
    let data = serde_json::to_string(session).map_err(|e| StoreError::Corrupt(format!("session {} cannot be serialised: {e}", session.id)))?;
    let mut item = session_key(&session.id);
    item.insert(KIND.into(), s("session"));
    item.insert(DATA.into(), s(data));
    item.insert(STATE.into(), s(session.state.name()));
    if let Some(outcome) = session.state.outcome() {
        item.insert(OUTCOME.into(), s(outcome.as_str()));
    }
    item.insert(VERSION.into(), n(session.version));
    item.insert(REQUESTER_KEY.into(), s(session.requester.slack_id.as_str()));
    item.insert(TARGET_KEY.into(), s(session.target.as_str()));
    item.insert(CREATED_AT.into(), s(sortable_time(session.created_at)));
    if let Some(at) = session.next_action_at() {
        item.insert(DUE_SHARD.into(), s(shard_key(shard_of(&session.id))));
        item.insert(NEXT_ACTION_AT.into(), n(at.timestamp()));
    }
    if session.state.is_closed() {
        // A closed session without `closed_at` is a workflow slip; creation time only shortens
        // retention by the length of one session, and the item still expires.
        let closed = session.closed_at.unwrap_or(session.created_at);
        item.insert(TTL_ATTRIBUTE.into(), n((closed + retention.session).timestamp()));
    }
    Ok(item)
}

/// Reads a session item back, refusing one whose top-level attributes disagree with `data`.
pub fn parse_session(item: &Item) -> Result<Session, StoreError> {
    let data = string(item, DATA)?;
    let session: Session = serde_json::from_str(data).map_err(|e| corrupt(item, format!("`{DATA}` is not a session: {e}")))?;
    let stored_state = State::from_parts(string(item, STATE)?, optional_string(item, OUTCOME)?);
    if stored_state != Some(session.state) {
        return Err(corrupt(item, format!("`{STATE}`/`{OUTCOME}` disagree with `{DATA}` ({})", session.state)));
    }
    if number(item, VERSION)? != session.version {
        return Err(corrupt(item, format!("`{VERSION}` disagrees with `{DATA}` ({})", session.version)));
    }
    Ok(session)
}

/// An audit event of `session` at position `seq`, kept for the audit retention after the event.
pub fn audit_item(session: &Session, seq: u64, event: &AuditEvent, retention: &Retention) -> Result<Item, StoreError> {
    let data = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(format!("audit event of session {} cannot be serialised: {e}", session.id)))?;
    let actor = match &event.actor {
        Actor::User(id) => id.as_str().to_string(),
        Actor::System => "system".to_string(),
    };
    let result = match &event.outcome {
        Ok(()) => "ok".to_string(),
        Err(error) => format!("failed: {error}"),
    };
    Ok(HashMap::from([
        (PK.to_string(), s(session_pk(&session.id))),
        (SK.to_string(), s(audit_sk(seq))),
        (KIND.into(), s("audit")),
        (SEQ.into(), n(seq)),
        (DATA.into(), s(data)),
        ("event".into(), s(event.kind.as_str())),
        ("actor".into(), s(actor)),
        ("at".into(), s(sortable_time(event.at))),
        ("result".into(), s(result)),
        ("session_id".into(), s(session.id.as_str())),
        ("target".into(), s(session.target.as_str())),
        ("role".into(), s(session.role.as_str())),
        ("requester".into(), s(session.requester.slack_id.as_str())),
        ("db_user".into(), s(session.requester.db_user.as_str())),
        (TTL_ATTRIBUTE.into(), n((event.at + retention.audit).timestamp())),
    ]))
}

/// Reads an audit item back.
pub fn parse_audit(item: &Item) -> Result<AuditRecord, StoreError> {
    let event: AuditEvent = serde_json::from_str(string(item, DATA)?).map_err(|e| corrupt(item, format!("`{DATA}` is not an audit event: {e}")))?;
    let session_id = SessionId::parse(string(item, "session_id")?).map_err(|e| corrupt(item, e.to_string()))?;
    let target = TargetName::parse(string(item, "target")?).map_err(|e| corrupt(item, e.to_string()))?;
    let role = string(item, "role")?.parse().map_err(|e: crate::domain::role::UnknownRole| corrupt(item, e.to_string()))?;
    let requester = SlackUserId::parse(string(item, "requester")?).map_err(|e| corrupt(item, e.to_string()))?;
    Ok(AuditRecord { session_id, seq: number(item, SEQ)?, target, role, requester, db_user: string(item, "db_user")?.to_string(), event })
}

/// A once-marker for `key`, expiring at `expires`.
pub fn once_item(key: &str, expires: DateTime<Utc>) -> Item {
    HashMap::from([
        (PK.to_string(), s(once_pk(key))),
        (SK.to_string(), s(ONCE_SK)),
        (KIND.into(), s("once")),
        (TTL_ATTRIBUTE.into(), n(expires.timestamp())),
    ])
}

/// `ONCE#<key>`, or `ONCE#sha256:<hex>` for a key too long to be a DynamoDB key as it is.
fn once_pk(key: &str) -> String {
    if key.len() <= ONCE_KEY_MAX {
        format!("ONCE#{key}")
    } else {
        use sha2::Digest;
        format!("ONCE#sha256:{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }
}

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    optional_string(item, name)?.ok_or_else(|| corrupt(item, format!("attribute `{name}` is missing")))
}

fn optional_string<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value)),
        Some(_) => Err(corrupt(item, format!("attribute `{name}` is not a string"))),
    }
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(item, format!("attribute `{name}` is not a whole number: {value}"))),
        Some(_) => Err(corrupt(item, format!("attribute `{name}` is not a number"))),
        None => Err(corrupt(item, format!("attribute `{name}` is missing"))),
    }
}

/// Names the item by its key, so the operator can find it.
fn corrupt(item: &Item, problem: String) -> StoreError {
    let key = |name| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
    StoreError::Corrupt(format!("item {}/{}: {problem}; fix or delete it by hand", key(PK), key(SK)))
}

#[cfg(test)]
mod tests;
