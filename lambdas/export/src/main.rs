//! The `export` function, on the session table's DynamoDB stream (infra/modules/powerpole/export.tf):
//! each delivery's inserted audit events are written to the Object Lock bucket named by
//! `POWERPOLE_EXPORT_BUCKET`, each once ([`powerpole::export`]). A failure fails the invocation,
//! so the stream retries the batch (bisecting it) and finally hands it to the failure queue.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use powerpole::export::S3Export;
use serde_json::Value;

/// The bucket the function writes to (set by export.tf).
const BUCKET_VAR: &str = "POWERPOLE_EXPORT_BUCKET";

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let bucket = std::env::var(BUCKET_VAR).map_err(|_| Error::from(format!("{BUCKET_VAR} is not set: name the audit export bucket")))?;
    let s3 = S3Export::new(&powerpole_lambda::aws().await, bucket);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let s3 = s3.clone();
        async move { powerpole::export::handle(&s3, &event.payload).await.map(|done| serde_json::to_value(done).unwrap_or_default()).map_err(Error::from) }
    }))
    .await
}
