//! Turning SDK errors into [`StoreError`]s an operator can act on.
//!
//! A lost condition is decided where it happens (the caller knows whether it means a conflict,
//! a duplicate or an existing marker); everything else lands here and says what to check.

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;

use crate::store::StoreError;

/// The code DynamoDB gives a condition that did not hold (alone, or as a cancellation reason).
pub const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// A cancellation reason for a transaction that collided with another one on the same item.
pub const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// Any failed call: names the table and the operation, and says what to do about the usual causes.
pub fn unavailable<E, R>(table: &str, operation: &str, err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.as_service_error().and_then(|e| e.code());
    let hint = match code {
        Some("ResourceNotFoundException") => format!("the table `{table}` does not exist: create it with `powerpole table create --config FILE` (or apply infra/)"),
        Some("AccessDeniedException" | "UnrecognizedClientException") => "the AWS credentials may not use this table: check the role's policy (infra/modules/powerpole/policies/)".to_string(),
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => "DynamoDB is throttling: retry shortly".to_string(),
        _ => "check the network path and credentials to DynamoDB, then retry".to_string(),
    };
    StoreError::Unavailable(format!("{operation} on table `{table}` failed ({}); {hint}", DisplayErrorContext(err)))
}

/// A request powerpole failed to build: a bug, never the caller's fault.
pub fn invalid_request(what: &str, err: BuildError) -> StoreError {
    StoreError::Unavailable(format!("powerpole built an invalid DynamoDB {what} request ({err}); this is a bug, please report it"))
}

/// The code of the `index`-th cancellation reason, if it has one other than `None`.
pub fn reason_code(reasons: &[CancellationReason], index: usize) -> Option<&str> {
    reasons.get(index).and_then(|r| r.code()).filter(|code| *code != "None")
}
