//! The `export` function, on the session table's DynamoDB stream (infra/modules/powerpole/export.tf):
//! each delivery's inserted audit events are written to the Object Lock bucket named by
//! `POWERPOLE_EXPORT_BUCKET`, each once ([`powerpole::export`]). A failure fails the invocation,
//! so the stream retries the batch (bisecting it) and finally hands it to the failure queue.
//!
//! Invoked with `{"action": "redrive"}` (hourly, by EventBridge), it re-exports from the table
//! (`POWERPOLE_EXPORT_TABLE`) every audit item of the last `POWERPOLE_EXPORT_REDRIVE_FROM` (e.g.
//! `72h`) that the bucket lacks ([`powerpole::export::redrive`]).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use powerpole::export::S3Export;
use powerpole::store::dynamo::DynamoStore;
use serde_json::Value;

/// The bucket the function writes to (set by export.tf).
const BUCKET_VAR: &str = "POWERPOLE_EXPORT_BUCKET";
/// The table the re-export reads (set by export.tf).
const TABLE_VAR: &str = "POWERPOLE_EXPORT_TABLE";
/// How far back the re-export looks (set by export.tf).
const REDRIVE_FROM_VAR: &str = "POWERPOLE_EXPORT_REDRIVE_FROM";

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let bucket = std::env::var(BUCKET_VAR).map_err(|_| Error::from(format!("{BUCKET_VAR} is not set: name the audit export bucket")))?;
    let aws = powerpole_lambda::aws().await;
    let s3 = S3Export::new(&aws, bucket);
    let table = std::env::var(TABLE_VAR).ok().map(|table| DynamoStore::audit_reader(&aws, table));
    let window = std::env::var(REDRIVE_FROM_VAR).unwrap_or_else(|_| "72h".to_string());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (s3, table, window) = (s3.clone(), table.clone(), window.clone());
        async move {
            let done = if event.payload.get("action").and_then(Value::as_str) == Some("redrive") {
                let table = table.ok_or_else(|| Error::from(format!("{TABLE_VAR} is not set: name the session table to re-export from")))?;
                let since = powerpole::export::redrive_since_now(&window).map_err(Error::from)?;
                powerpole::export::redrive(&table, &s3, since).await.map_err(Error::from)?
            } else {
                powerpole::export::handle(&s3, &event.payload).await.map_err(Error::from)?
            };
            Ok::<Value, Error>(serde_json::to_value(done).unwrap_or_default())
        }
    }))
    .await
}
