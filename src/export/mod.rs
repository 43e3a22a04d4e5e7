//! A trail nobody can rewrite: every audit event the store writes is copied, through the
//! table's DynamoDB Stream and the `export` Lambda (lambdas/export), to an S3 bucket with Object
//! Lock in compliance mode (infra/modules/powerpole/export.tf). Compliance mode means that for the
//! retention period no principal, the account's root included, can delete or overwrite an
//! exported version; the function's own role may only `PutObject`.
//!
//! - [`events`] is pure: a stream delivery (the JSON Lambda passes) to the audit events in it,
//!   each with the object key derived from its identity (session id and the event's sort key),
//!   so a redelivered record always maps to the same key;
//! - [`S3Export`] writes each one with `If-None-Match: *`: the first write creates the object, a
//!   second one is refused by S3 (412) and changes nothing; it is counted as already exported.
//!
//! Only inserted audit items are exported: sessions change and are not evidence on their own;
//! TTL removals (`REMOVE`) are the table forgetting, which the bucket must not follow.
//!
//! - [`redrive`] re-exports, from the table, every audit item of a recent window the bucket
//!   lacks (the export function invoked hourly with `{"action": "redrive"}`): events whose
//!   export failed (the stream keeps a failed batch only 24 hours) reach the bucket once the
//!   cause is fixed; what is there is left alone (`If-None-Match: *`);
//! - [`verify`] checks the trail in DynamoDB against the locked copy (`powerpole audit verify`).
//!
//! The only importer of aws-sdk-s3.

mod s3;
pub mod verify;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use s3::{ExportError, LockedCopy, S3Export, Written};

use crate::store::dynamo::DynamoStore;
use crate::store::StoreError;

/// One audit event to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEvent {
    /// `audit/<session id>/<event sort key>.json`.
    pub key: String,
    /// The audit item as plain JSON (DynamoDB's type wrappers removed), keys sorted.
    pub body: String,
}

/// Why a stream delivery could not be read. The invocation fails, so Lambda retries the batch
/// (and, with bisecting on, isolates the record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("not a DynamoDB stream event: {0}")]
    NotAStreamEvent(String),
    #[error("record {index}: {problem}")]
    Record { index: usize, problem: String },
}

/// Why a delivery was not (wholly) exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Export(#[from] ExportError),
}

/// What one delivery did, as the function returns it (and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// Audit events written now.
    pub exported: usize,
    /// Audit events whose object was already there (a redelivery): nothing changed.
    pub already_exported: usize,
}

/// The export function's handler: every inserted audit event of `payload` (a DynamoDB stream
/// delivery, as Lambda passes it) written to the bucket once.
pub async fn handle(s3: &S3Export, payload: &Value) -> Result<Exported, HandleError> {
    let events = events(payload)?;
    let (exported, already_exported) = s3.export(&events).await?;
    tracing::info!(exported, already_exported, "audit events exported");
    Ok(Exported { exported, already_exported })
}

/// The audit events inserted in one stream delivery, in delivery order.
pub fn events(payload: &Value) -> Result<Vec<ExportedEvent>, StreamError> {
    let records = payload.get("Records").and_then(Value::as_array).ok_or_else(|| StreamError::NotAStreamEvent("no `Records` list".into()))?;
    let mut out = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let problem = |p: &str| StreamError::Record { index, problem: p.to_string() };
        if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
            continue;
        }
        let image = record.pointer("/dynamodb/NewImage").and_then(Value::as_object).ok_or_else(|| problem("an INSERT without `dynamodb.NewImage` (the stream must be NEW_IMAGE or NEW_AND_OLD_IMAGES)"))?;
        if image.get("kind").and_then(|k| k.get("S")).and_then(Value::as_str) != Some("audit") {
            continue;
        }
        let plain = plain_item(image).map_err(|p| problem(&p))?;
        let key = object_key(&plain).map_err(|p| problem(&p))?;
        let body = serde_json::to_string(&plain).map_err(|e| problem(&e.to_string()))?;
        out.push(ExportedEvent { key, body });
    }
    Ok(out)
}

/// Why a re-export did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("audit item {0}")]
    Item(String),
    #[error("{0}")]
    Export(#[from] ExportError),
}

/// Re-exports every audit item stored at or after `since` that the bucket lacks; how many were
/// written now and how many were there already.
pub async fn redrive(store: &DynamoStore, s3: &S3Export, since: DateTime<Utc>) -> Result<Exported, RedriveError> {
    let items = store.audit_items_since(Some(since)).await?;
    let events = items
        .iter()
        .map(|item| {
            let key = object_key(item).map_err(RedriveError::Item)?;
            let body = serde_json::to_string(item).map_err(|e| RedriveError::Item(format!("{key}: {e}")))?;
            Ok(ExportedEvent { key, body })
        })
        .collect::<Result<Vec<_>, RedriveError>>()?;
    let (exported, already_exported) = s3.export(&events).await?;
    if exported > 0 {
        tracing::warn!(exported, already_exported, since = %since, "re-exported audit events the bucket lacked (their stream export had failed)");
    } else {
        tracing::info!(already_exported, since = %since, "re-export: the bucket has every audit event");
    }
    Ok(Exported { exported, already_exported })
}

/// The start of the re-export's window: `now` less `window`, a whole number of hours such as
/// `72h` (`POWERPOLE_EXPORT_REDRIVE_FROM`, set by export.tf).
pub fn redrive_since(window: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let hours: i64 = window
        .strip_suffix('h')
        .and_then(|h| h.parse().ok())
        .filter(|h| (1..=8760).contains(h))
        .ok_or_else(|| format!("the re-export window `{window}` is not a whole number of hours from 1h to 8760h, e.g. 72h"))?;
    Ok(now - chrono::Duration::hours(hours))
}

/// [`redrive_since`] from the wall clock (the export function's window ends now).
pub fn redrive_since_now(window: &str) -> Result<DateTime<Utc>, String> {
    redrive_since(window, Utc::now())
}

/// `audit/<session id>/<sequence>.json`, from the item's own key attributes.
pub(crate) fn object_key(item: &Map<String, Value>) -> Result<String, String> {
    let pk = item.get("pk").and_then(Value::as_str).ok_or("no `pk`")?;
    let sk = item.get("sk").and_then(Value::as_str).ok_or("no `sk`")?;
    let session = pk.strip_prefix("SESSION#").ok_or_else(|| format!("`pk` {pk} is not a session's"))?;
    let seq = sk.strip_prefix("AUDIT#").ok_or_else(|| format!("`sk` {sk} is not an audit event's"))?;
    let safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !safe(session) || !safe(seq) {
        return Err(format!("unexpected characters in the key {pk} / {sk}"));
    }
    Ok(format!("audit/{session}/{seq}.json"))
}

/// DynamoDB's attribute-value JSON (`{"S": ..}`, `{"N": ..}`, ...) as plain JSON.
fn plain_item(image: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    image.iter().map(|(k, v)| plain(v).map(|v| (k.clone(), v)).map_err(|e| format!("attribute `{k}`: {e}"))).collect()
}

fn plain(value: &Value) -> Result<Value, String> {
    let obj = value.as_object().filter(|o| o.len() == 1).ok_or("not a typed attribute value")?;
    let (tag, inner) = obj.iter().next().ok_or("empty attribute value")?;
    Ok(match tag.as_str() {
        "S" | "B" => inner.clone(),
        // Numbers stay strings: DynamoDB's have 38 digits, more than JSON readers keep.
        "N" => inner.clone(),
        "BOOL" => inner.clone(),
        "NULL" => Value::Null,
        "SS" | "NS" | "BS" => inner.clone(),
        "L" => Value::Array(inner.as_array().ok_or("`L` is not a list")?.iter().map(plain).collect::<Result<_, _>>()?),
        "M" => Value::Object(plain_item(inner.as_object().ok_or("`M` is not a map")?)?),
        other => return Err(format!("unknown type `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audit(seq: &str) -> Value {
        json!({
            "pk": {"S": "SESSION#pp-7k2m9xq4ab"}, "sk": {"S": format!("AUDIT#{seq}")}, "kind": {"S": "audit"},
            "seq": {"N": "1"}, "event": {"S": "break_glass"}, "data": {"S": "{\"kind\":\"break_glass\"}"},
            "nested": {"M": {"l": {"L": [{"BOOL": true}, {"NULL": true}]}}}
        })
    }

    #[test]
    fn only_inserted_audit_items_are_exported_under_their_identity() {
        let session = json!({"pk": {"S": "SESSION#pp-7k2m9xq4ab"}, "sk": {"S": "SESSION"}, "kind": {"S": "session"}});
        let payload = json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {"NewImage": audit("0000000001")}},
            {"eventName": "MODIFY", "dynamodb": {"NewImage": session}},
            {"eventName": "INSERT", "dynamodb": {"NewImage": session}},
            {"eventName": "REMOVE", "dynamodb": {"OldImage": audit("0000000000")}},
        ]});
        let out = events(&payload).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key, "audit/pp-7k2m9xq4ab/0000000001.json");
        let body: Value = serde_json::from_str(&out[0].body).unwrap();
        assert_eq!(body["event"], "break_glass");
        assert_eq!(body["nested"], json!({"l": [true, null]}));
        assert_eq!(events(&payload).unwrap(), out, "the same record always gives the same object");
    }

    #[test]
    fn the_redrive_window_is_whole_hours() {
        let now = chrono::Utc::now();
        assert_eq!(redrive_since("72h", now).unwrap(), now - chrono::Duration::hours(72));
        for bad in ["", "72", "3d", "0h", "-1h", "9000h"] {
            assert!(redrive_since(bad, now).unwrap_err().contains("whole number of hours"), "{bad}");
        }
    }

    #[test]
    fn a_malformed_delivery_is_refused_not_skipped() {
        assert!(matches!(events(&json!({"detail": {}})), Err(StreamError::NotAStreamEvent(_))));
        let keys_only = json!({"Records": [{"eventName": "INSERT", "dynamodb": {"Keys": {}}}]});
        assert!(events(&keys_only).unwrap_err().to_string().contains("NEW_IMAGE"));
        let mut odd = audit("../../x");
        odd["sk"] = json!({"S": "AUDIT#../../x"});
        let payload = json!({"Records": [{"eventName": "INSERT", "dynamodb": {"NewImage": odd}}]});
        assert!(events(&payload).unwrap_err().to_string().contains("unexpected characters"));
    }
}
