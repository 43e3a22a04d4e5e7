//! Every write the store makes: conditional, and paired with its audit event in one transaction.
//! Each audit event is chained onto the one before it in its session ([`super::chain`]).
//!
//! The session item is replaced whole (a conditioned Put rather than an UpdateItem with a long
//! SET/REMOVE list): the item is a function of the session, so writing all of it is the simplest
//! way to be sure the index and TTL attributes always match the state, e.g. that `due_shard` and
//! `next_action_at` disappear on close. The condition carries the concurrency control.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::errors::{invalid_request, reason_code, unavailable, CONDITION_FAILED, TRANSACTION_CONFLICT};
use super::item::{audit_item, n, once_item, s, session_item, Item, OUTCOME, STATE, VERSION};
use super::DynamoStore;
use crate::domain::{AuditEvent, Session, State};
use crate::store::schema::{PK, TTL_ATTRIBUTE};
use crate::store::StoreError;

/// A condition expression with its attribute names and values.
type Condition = (String, HashMap<String, String>, Item);

/// An item that must not exist yet: sessions on create, audit events always.
const NEW_ITEM: &str = "attribute_not_exists(#pk)";

pub async fn create(store: &DynamoStore, session: &Session, event: &AuditEvent) -> Result<(), StoreError> {
    let session_put = put(store, session_item(session, &store.retention)?, NEW_ITEM, names(&[("#pk", PK)]), HashMap::new())?;
    let audit_put = new_audit_put(store, session, session.version, event, true).await?;
    let result = store.client.transact_write_items().transact_items(session_put).transact_items(audit_put).send().await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => {
            let reasons = cancellation_reasons(&err);
            match (reason_code(reasons, 0), reason_code(reasons, 1)) {
                (Some(CONDITION_FAILED), _) => Err(StoreError::AlreadyExists(session.id.clone())),
                (Some(TRANSACTION_CONFLICT), _) | (_, Some(TRANSACTION_CONFLICT)) => Err(StoreError::Conflict(session.id.clone())),
                (None, Some(CONDITION_FAILED)) => Err(orphan_audit_event(session, session.version)),
                _ => Err(unavailable(&store.table, "creating a session", &err)),
            }
        }
    }
}

pub async fn update(store: &DynamoStore, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
    let mut stored = next.clone();
    stored.version = next.version.checked_add(1).ok_or_else(|| StoreError::Corrupt(format!("session {} has reached the largest version", next.id)))?;
    let condition = unchanged_since_read(expected_state, next.version);
    let item = session_item(&stored, &store.retention)?;
    match event {
        Some(event) => update_with_event(store, item, condition, &stored, event).await?,
        None => update_alone(store, item, condition, &stored).await?,
    }
    Ok(stored)
}

/// The session Put and its audit event, all or nothing.
async fn update_with_event(store: &DynamoStore, item: Item, (condition, names, values): Condition, stored: &Session, event: &AuditEvent) -> Result<(), StoreError> {
    let session_put = put(store, item, &condition, names, values)?;
    let audit_put = new_audit_put(store, stored, stored.version, event, false).await?;
    let Err(err) = store.client.transact_write_items().transact_items(session_put).transact_items(audit_put).send().await else {
        return Ok(());
    };
    let reasons = cancellation_reasons(&err);
    let id = stored.id.clone();
    match (reason_code(reasons, 0), reason_code(reasons, 1)) {
        // ALL_OLD returns the stored item with a failed condition; none means there is no session.
        (Some(CONDITION_FAILED), _) if reasons.first().and_then(|r| r.item()).is_none() => Err(StoreError::NotFound(id)),
        (Some(CONDITION_FAILED | TRANSACTION_CONFLICT), _) | (_, Some(TRANSACTION_CONFLICT)) => Err(StoreError::Conflict(id)),
        (None, Some(CONDITION_FAILED)) => Err(orphan_audit_event(stored, stored.version)),
        _ => Err(unavailable(&store.table, "updating a session", &err)),
    }
}

/// A change with nothing to audit (a lease): one conditional Put.
async fn update_alone(store: &DynamoStore, item: Item, (condition, names, values): Condition, stored: &Session) -> Result<(), StoreError> {
    let result = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) if failed.item().is_none() => Err(StoreError::NotFound(stored.id.clone())),
            Some(PutItemError::ConditionalCheckFailedException(_)) => Err(StoreError::Conflict(stored.id.clone())),
            _ => Err(unavailable(&store.table, "updating a session", &err)),
        },
    }
}

/// Records `key` unless a live marker exists. An expired marker counts as absent: DynamoDB's TTL
/// deletes expired items only eventually (up to days later), and a stand-in never does.
pub async fn remember_once(store: &DynamoStore, key: &str, ttl: chrono::Duration, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let result = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(once_item(key, now + ttl)))
        .condition_expression("attribute_not_exists(#pk) OR #ttl < :now")
        .set_expression_attribute_names(Some(names(&[("#pk", PK), ("#ttl", TTL_ATTRIBUTE)])))
        .expression_attribute_values(":now", n(now.timestamp()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => Ok(false),
        Err(err) => Err(unavailable(&store.table, "recording a once-key", &err)),
    }
}

/// The condition that the stored session is still the one that was read: same version, same
/// state and same outcome (two tearing-down sessions with different outcomes are different states).
fn unchanged_since_read(expected: State, read_version: u64) -> Condition {
    let names = names(&[("#version", VERSION), ("#state", STATE), ("#outcome", OUTCOME)]);
    let mut values = HashMap::from([(":read".to_string(), n(read_version)), (":state".to_string(), s(expected.name()))]);
    let outcome_condition = match expected.outcome() {
        Some(outcome) => {
            values.insert(":outcome".to_string(), s(outcome.as_str()));
            "#outcome = :outcome"
        }
        None => "attribute_not_exists(#outcome)",
    };
    (format!("#version = :read AND #state = :state AND {outcome_condition}"), names, values)
}

/// A Put of audit event `seq`, chained onto the session's last one (`first`: it is the session's
/// first), that fails rather than overwrite an existing one.
async fn new_audit_put(store: &DynamoStore, session: &Session, seq: u64, event: &AuditEvent, first: bool) -> Result<TransactWriteItem, StoreError> {
    let mut item = audit_item(session, seq, event, &store.retention)?;
    super::chain::chain(store, &mut item, first).await?;
    put(store, item, NEW_ITEM, names(&[("#pk", PK)]), HashMap::new())
}

fn put(store: &DynamoStore, item: Item, condition: &str, names: HashMap<String, String>, values: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(&store.table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values((!values.is_empty()).then_some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| invalid_request("transaction Put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn cancellation_reasons<R>(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> &[CancellationReason] {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled.cancellation_reasons(),
        _ => &[],
    }
}

/// The session condition held but its audit slot was taken: someone wrote to the trail outside
/// powerpole. Nothing was written; the operator has to look.
fn orphan_audit_event(session: &Session, seq: u64) -> StoreError {
    StoreError::Corrupt(format!(
        "audit event {seq} of session {} already exists although the session is at an earlier version; \
         the trail was written outside powerpole: inspect the items under SESSION#{} before retrying",
        session.id, session.id
    ))
}
