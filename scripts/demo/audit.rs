//! The session and its audit trail as powerpole stored them in DynamoDB, read back through the
//! powerpole library's own store (the same code `powerpole serve` writes with).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use powerpole::config::Config;
use powerpole::domain::{Actor, Session, SessionId};
use powerpole::store::dynamo::DynamoStore;
use powerpole::store::Store;

/// One audit event, as the demo prints it.
pub struct AuditLine {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub text: String,
}

/// The demo's session in powerpole's table.
pub struct StoredSession {
    store: DynamoStore,
    id: SessionId,
}

impl StoredSession {
    /// The session `id` in the table the demo's config names.
    pub fn open(aws: &aws_config::SdkConfig, config: &Path, id: &str) -> Result<Self> {
        let config = Config::load(config).map_err(|e| anyhow!("{e}"))?;
        let id = SessionId::parse(id).map_err(|e| anyhow!("the session id on the Approve button: {e}"))?;
        Ok(Self { store: DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), &config.store), id })
    }

    pub async fn session(&self) -> Result<Session> {
        self.store.get(&self.id).await?.with_context(|| format!("powerpole's table has no session {}", self.id))
    }

    /// When the session expires, once the store has it (it is written just after the hand-over DM).
    pub async fn expires_at(&self) -> Result<DateTime<Utc>> {
        let what = format!("the expiry of {} in powerpole's table", self.id);
        crate::inspect::poll_until(&what, Duration::from_secs(10), Duration::from_millis(100), || async {
            Ok(self.session().await?.expires_at)
        })
        .await
    }

    /// The session's audit trail, in order.
    pub async fn trail(&self) -> Result<Vec<AuditLine>> {
        let records = self.store.audit_trail(&self.id).await?;
        Ok(records
            .into_iter()
            .map(|r| {
                let actor = match &r.event.actor {
                    Actor::User(user) => user.to_string(),
                    Actor::System => "powerpole".to_owned(),
                };
                let outcome = match &r.event.outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(cause) => format!("FAILED: {cause}"),
                };
                let detail = if r.event.detail.is_empty() { String::new() } else { format!(" · {}", r.event.detail) };
                AuditLine {
                    at: r.event.at,
                    kind: r.event.kind.as_str().to_owned(),
                    text: format!("#{:<2} by {actor:<9} {outcome}{detail}", r.seq),
                }
            })
            .collect())
    }
}
