//! The follow-up journal on the session table: `pk = JOURNAL`, `sk = <SHA-256 of what Slack
//! signed>`, one item per acknowledged request, changed only by conditional Puts (the service
//! role may not delete items). A pending entry holds the request, its owner and lease; a done
//! entry keeps only its key until its `ttl`, so that a retried Slack event is recognised. The
//! partition is read with one Query (no index: entries carry no index attribute).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::errors::unavailable;
use super::item::{n, s, Item, KIND};
use super::DynamoStore;
use crate::store::schema::{PK, SK, TTL_ATTRIBUTE};
use crate::store::{JournalEntry, Journaled, StoreError};

const JOURNAL_PK: &str = "JOURNAL";
const STATE: &str = "journal_state";
const REQUEST: &str = "request";
const OWNER: &str = "owner";
const LEASE_UNTIL: &str = "lease_until_ms";
const PENDING: &str = "pending";
const DONE: &str = "done";
/// A pending entry is dropped by DynamoDB this long after its last write if nothing finishes it
/// (its request is refused as too old long before: see `deferred::MAX_QUEUED_AGE`).
const PENDING_TTL: chrono::Duration = chrono::Duration::days(2);

fn pending_item(entry: &JournalEntry) -> Item {
    HashMap::from([
        (PK.to_string(), s(JOURNAL_PK)),
        (SK.to_string(), s(&entry.key)),
        (KIND.to_string(), s("journal")),
        (STATE.to_string(), s(PENDING)),
        (REQUEST.to_string(), s(&entry.request)),
        (OWNER.to_string(), s(&entry.owner)),
        (LEASE_UNTIL.to_string(), n(entry.lease_until.timestamp_millis())),
        (TTL_ATTRIBUTE.to_string(), n((entry.lease_until + PENDING_TTL).timestamp())),
    ])
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn conditional_put(store: &DynamoStore, item: Item, condition: &str, names: HashMap<String, String>, values: Item, what: &str) -> Result<Journaled, StoreError> {
    let mut put = store.client.put_item().table_name(&store.table).set_item(Some(item)).condition_expression(condition).set_expression_attribute_names(Some(names));
    if !values.is_empty() {
        put = put.set_expression_attribute_values(Some(values));
    }
    match put.send().await {
        Ok(_) => Ok(Journaled::Written),
        Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => Ok(Journaled::Taken),
        Err(err) => Err(unavailable(&store.table, what, &err)),
    }
}

pub async fn put(store: &DynamoStore, entry: &JournalEntry) -> Result<Journaled, StoreError> {
    conditional_put(store, pending_item(entry), "attribute_not_exists(#pk)", names(&[("#pk", PK)]), Item::new(), "journaling a follow-up").await
}

pub async fn claim(store: &DynamoStore, key: &str, expected_owner: &str, owner: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Journaled, StoreError> {
    // The request is carried over unchanged: read it first (the Put replaces the whole item).
    let read = store
        .client
        .get_item()
        .table_name(&store.table)
        .key(PK, s(JOURNAL_PK))
        .key(SK, s(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| unavailable(&store.table, "reading a journaled follow-up", &e))?;
    let Some(item) = read.item else { return Ok(Journaled::Taken) };
    let Some(request) = text(&item, REQUEST) else { return Ok(Journaled::Taken) };
    let entry = JournalEntry { key: key.to_string(), request, owner: owner.to_string(), lease_until };
    let condition = "#state = :pending AND #owner = :expected AND (#owner = :me OR #lease < :now)";
    let values = HashMap::from([
        (":pending".to_string(), s(PENDING)),
        (":expected".to_string(), s(expected_owner)),
        (":me".to_string(), s(owner)),
        (":now".to_string(), n(now.timestamp_millis())),
    ]);
    conditional_put(store, pending_item(&entry), condition, names(&[("#state", STATE), ("#owner", OWNER), ("#lease", LEASE_UNTIL)]), values, "claiming a journaled follow-up").await
}

pub async fn done(store: &DynamoStore, key: &str, owner: &str, forget_at: DateTime<Utc>) -> Result<Journaled, StoreError> {
    let item = HashMap::from([
        (PK.to_string(), s(JOURNAL_PK)),
        (SK.to_string(), s(key)),
        (KIND.to_string(), s("journal")),
        (STATE.to_string(), s(DONE)),
        (OWNER.to_string(), s(owner)),
        (TTL_ATTRIBUTE.to_string(), n(forget_at.timestamp())),
    ]);
    let values = HashMap::from([(":pending".to_string(), s(PENDING)), (":me".to_string(), s(owner))]);
    conditional_put(store, item, "#state = :pending AND #owner = :me", names(&[("#state", STATE), ("#owner", OWNER)]), values, "finishing a journaled follow-up").await
}

pub async fn due(store: &DynamoStore, now: DateTime<Utc>, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
    let mut found = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = store
            .client
            .query()
            .table_name(&store.table)
            .key_condition_expression("#pk = :journal")
            .filter_expression("#state = :pending AND #lease < :now")
            .set_expression_attribute_names(Some(names(&[("#pk", PK), ("#state", STATE), ("#lease", LEASE_UNTIL)])))
            .expression_attribute_values(":journal", s(JOURNAL_PK))
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| unavailable(&store.table, "reading the follow-up journal", &e))?;
        for item in page.items() {
            let (Some(key), Some(request), Some(owner), Some(lease)) = (text(item, SK), text(item, REQUEST), text(item, OWNER), number(item, LEASE_UNTIL)) else {
                continue;
            };
            let lease_until = DateTime::from_timestamp_millis(lease).unwrap_or(now);
            found.push(JournalEntry { key, request, owner, lease_until });
            if found.len() >= limit {
                return Ok(found);
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(found),
        }
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}
