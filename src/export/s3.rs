//! Writing exported audit events to the Object Lock bucket, each once.

use std::collections::BTreeMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use serde_json::{Map, Value};
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
    #[error("could not read {what} in the audit bucket `{bucket}`: {error}; check s3:ListBucketVersions and s3:GetObjectVersion on the bucket and kms:Decrypt on its key")]
    Read { bucket: String, what: String, error: String },
}

/// The locked copy of the trail under a prefix: each key's oldest version (the one Object Lock
/// has held since the export wrote it) as plain JSON, and how many versions each key has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockedCopy {
    pub objects: BTreeMap<String, Map<String, Value>>,
    pub versions: BTreeMap<String, usize>,
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

    /// The locked copy of every object under `prefix` (e.g. `audit/` or `audit/<session>/`):
    /// each key's oldest version, read by its version id, so a newer version put over it (which
    /// a plain GET would return) is never mistaken for it.
    pub async fn locked_copy(&self, prefix: &str) -> Result<LockedCopy, ExportError> {
        let read_error = |what: String, err: String| ExportError::Read { bucket: self.bucket.clone(), what, error: err };
        let mut versions: BTreeMap<String, Vec<(i64, bool, String)>> = BTreeMap::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| read_error(format!("the versions under {prefix}"), format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e))))?;
            for v in page.versions() {
                let (Some(key), Some(id)) = (v.key(), v.version_id()) else { continue };
                let modified = v.last_modified().map(|t| t.as_nanos() as i64).unwrap_or_default();
                versions.entry(key.to_string()).or_default().push((modified, v.is_latest().unwrap_or(false), id.to_string()));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        let mut copy = LockedCopy::default();
        for (key, mut found) in versions {
            // Oldest first; of two written in the same instant, the one that is not the latest.
            found.sort();
            let (_, _, version) = &found[0];
            let object = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .version_id(version)
                .send()
                .await
                .map_err(|e| read_error(key.clone(), format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e))))?;
            let bytes = object.body.collect().await.map_err(|e| read_error(key.clone(), e.to_string()))?.into_bytes();
            let body: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|e| read_error(key.clone(), format!("not a JSON object: {e}")))?;
            copy.versions.insert(key.clone(), found.len());
            copy.objects.insert(key, body);
        }
        Ok(copy)
    }
}
