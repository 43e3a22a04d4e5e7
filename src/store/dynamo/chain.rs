//! The audit trail's hash chain: each audit item carries `prev_hash`, the `hash` of the audit item
//! before it in its session (the [`GENESIS`] hash for a session's first), and `hash`, the SHA-256
//! of its own canonical JSON without `hash` ([`hash_of`]). The store computes both when it appends
//! an event ([`chain`], inside the same conditional transaction as the session write, so two
//! appends can never chain onto the same predecessor). Nothing is secret: anyone who can write the
//! table can forge a consistent chain, which is why `powerpole audit verify`
//! ([`crate::export::verify`]) compares it with the locked copy in S3, written when the event was.
//!
//! The canonical form is the item as plain JSON (DynamoDB's type wrappers removed, numbers kept as
//! their decimal strings, as the export writes them), object keys sorted, no whitespace: the same
//! for an item read from DynamoDB ([`plain`]) and for the exported object's body.
//!
//! Also the two reads that are not through an index, both for the audit trail only:
//! [`audit_items`] (one session, a Query) and [`audit_items_since`] (a Scan, for `audit verify`
//! over every session and the export's hourly re-export).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::errors::unavailable;
use super::item::{s, sortable_time, Item, KIND};
use super::DynamoStore;
use crate::store::schema::PK;
use crate::store::StoreError;

/// The attribute holding an audit item's own hash.
pub const HASH: &str = "hash";
/// The attribute holding the hash of the audit item before it in its session.
pub const PREV_HASH: &str = "prev_hash";
/// `prev_hash` of a session's first audit event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An item as plain JSON: `S` and `N` as strings, `BOOL`, `NULL`, lists and maps as such, sets as
/// lists, binary as base64.
pub fn plain(item: &Item) -> Map<String, Value> {
    item.iter().map(|(k, v)| (k.clone(), plain_value(v))).collect()
}

fn plain_value(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => Value::String(s.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(plain_value).collect()),
        AttributeValue::M(m) => Value::Object(plain(m)),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
        AttributeValue::B(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref())),
        AttributeValue::Bs(v) => Value::Array(v.iter().map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))).collect()),
        _ => Value::Null,
    }
}

/// The canonical JSON of `value`: object keys sorted at every level, no whitespace.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let fields: Vec<String> = sorted.into_iter().map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        leaf => leaf.to_string(),
    }
}

/// The hash of an audit item (plain JSON): SHA-256 of its canonical JSON without `hash`, in hex.
pub fn hash_of(item: &Map<String, Value>) -> String {
    let mut without = item.clone();
    without.remove(HASH);
    hex::encode(Sha256::digest(canonical(&Value::Object(without)).as_bytes()))
}

/// The hash an audit item stands for as a predecessor: its `hash`, or for an item written before
/// the chain existed, the hash of its content.
pub fn link_of(item: &Map<String, Value>) -> String {
    item.get(HASH).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| hash_of(item))
}

/// Chains `item` (an audit item about to be appended) onto its session's last audit item:
/// sets `prev_hash` and `hash`. A consistent read: the transaction that writes `item` is
/// conditioned on the session's version, so the predecessor read here is still the last one when
/// the write succeeds.
pub async fn chain(store: &DynamoStore, item: &mut Item, first: bool) -> Result<(), StoreError> {
    let prev = if first {
        GENESIS.to_string()
    } else {
        let pk = item.get(PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let last = super::read::audit_query(store, &pk)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| unavailable(&store.table, "reading the last audit event", &e))?;
        last.items().first().map(|i| link_of(&plain(i))).unwrap_or_else(|| GENESIS.to_string())
    };
    item.insert(PREV_HASH.to_string(), s(prev));
    let hash = hash_of(&plain(item));
    item.insert(HASH.to_string(), s(hash));
    Ok(())
}

/// Every audit item of one session, oldest first, as plain JSON (a consistent Query).
pub async fn audit_items(store: &DynamoStore, session_pk: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = super::read::audit_query(store, session_pk)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable(&store.table, "reading a session's audit trail", &e))?;
        out.extend(page.items().iter().map(plain));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(out);
        }
    }
}

/// Every audit item in the table (at or after `since`, when given), as plain JSON. A Scan: for
/// `audit verify` over the whole trail and the export's hourly re-export, never on a request path.
pub async fn audit_items_since(store: &DynamoStore, since: Option<DateTime<Utc>>) -> Result<Vec<Map<String, Value>>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let mut scan = store.client.scan().table_name(&store.table).expression_attribute_names("#kind", KIND).expression_attribute_values(":audit", s("audit"));
        scan = match since {
            Some(t) => scan.filter_expression("#kind = :audit AND #at >= :since").expression_attribute_names("#at", "at").expression_attribute_values(":since", s(sortable_time(t))),
            None => scan.filter_expression("#kind = :audit"),
        };
        let page = scan.consistent_read(true).set_exclusive_start_key(start).send().await.map_err(|e| unavailable(&store.table, "scanning the audit trail", &e))?;
        out.extend(page.items().iter().map(plain));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_canonical_form_sorts_keys_and_the_hash_leaves_itself_out() {
        let a = json!({"b": "2", "a": {"d": [1, {"z": 0, "y": 1}], "c": null}});
        assert_eq!(canonical(&a), r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":"2"}"#);
        let mut item = a.as_object().unwrap().clone();
        let h = hash_of(&item);
        item.insert(HASH.into(), json!(h.clone()));
        assert_eq!(hash_of(&item), h, "the hash does not cover itself");
        item.insert("b".into(), json!("3"));
        assert_ne!(hash_of(&item), h, "any other change changes it");
        assert_eq!(link_of(&item), h, "a predecessor is linked by its stored hash");
    }

    #[test]
    fn an_item_from_dynamodb_and_its_exported_body_hash_alike() {
        let item: Item = Item::from([("pk".into(), s("SESSION#pp-1")), ("seq".into(), AttributeValue::N("3".into())), ("event".into(), s("approved"))]);
        let exported: Map<String, Value> = serde_json::from_str(r#"{"seq":"3","event":"approved","pk":"SESSION#pp-1"}"#).unwrap();
        assert_eq!(hash_of(&plain(&item)), hash_of(&exported));
    }
}
