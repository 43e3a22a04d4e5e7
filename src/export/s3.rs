//! Writing exported audit events to the Object Lock bucket, each once.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use super::ExportedEvent;

/// What one write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The object was created.
    New,
    /// An object with this key already existed (a redelivered record): nothing was changed.
    AlreadyThere,
}

/// Why an event could not be exported. The invocation fails and the stream redelivers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("the audit bucket `{bucket}` refused {key}: {error}; check the export role's s3:PutObject on the bucket and the bucket's Object Lock")]
    Put { bucket: String, key: String, error: String },
}

/// The audit bucket, through the export function's own credentials.
#[derive(Debug, Clone)]
pub struct S3Export {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Export {
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> S3Export {
        S3Export { client: aws_sdk_s3::Client::new(config), bucket: bucket.into() }
    }

    /// As [`S3Export::new`] with path-style addressing (for S3 stand-ins such as moto).
    pub fn path_style(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> S3Export {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
        S3Export { client: aws_sdk_s3::Client::from_conf(s3), bucket: bucket.into() }
    }

    /// Creates the event's object unless one with its key exists (`If-None-Match: *`, so S3
    /// itself decides, atomically: no read-then-write window). The bucket's default retention
    /// (compliance mode) applies to the new version; the caller needs no retention permission.
    pub async fn put_once(&self, event: &ExportedEvent) -> Result<Written, ExportError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&event.key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(event.body.clone().into_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::New),
            Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(412) || err.code() == Some("PreconditionFailed") => Ok(Written::AlreadyThere),
            Err(err) => Err(ExportError::Put { bucket: self.bucket.clone(), key: event.key.clone(), error: format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)) }),
        }
    }

    /// Exports every audit event of one stream delivery; how many were new and how many were
    /// already there. Stops at the first failure (the batch is redelivered; what was written is
    /// then found already there).
    pub async fn export(&self, events: &[ExportedEvent]) -> Result<(usize, usize), ExportError> {
        let (mut new, mut already) = (0, 0);
        for event in events {
            match self.put_once(event).await? {
                Written::New => new += 1,
                Written::AlreadyThere => already += 1,
            }
        }
        Ok((new, already))
    }
}
