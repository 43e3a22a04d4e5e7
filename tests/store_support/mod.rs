//! What the store's integration tests share: an SDK client for the moto stand-in, a table of
//! their own per test, and sessions to put in it.
//!
//! moto is shared with other engineers' tests: never reset it, and delete only the tables made here.
#![allow(dead_code)] // each test binary uses a different part of this

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};

use powerpole::config::StoreConfig;
use powerpole::domain::{Actor, AuditEvent, AuditKind, DbUsername, Requester, Role, Session, SessionId, SlackUserId, TargetName, UsernamePolicy};
use powerpole::store::dynamo::{self, item, DynamoStore, Retention, TableCreated};

/// A fixed "now" for every test: time is passed in, never read from the wall clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

/// An SDK client for the moto stand-in, with few retries: moto answers an unimplemented call with
/// an HTML 500, which the SDK would otherwise retry for a long time.
pub async fn client() -> Client {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!(
            "AWS_ENDPOINT_URL is not set, so these tests would talk to real AWS. Run them with `make test`, \
             or start the stand-ins with `scripts/standins.sh start` and `source .local/standins.env` first."
        );
    }
    // ring and aws-lc-rs are both linked; the first TLS client panics unless one is chosen.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(TimeoutConfig::builder().operation_timeout(StdDuration::from_secs(60)).build())
        .load()
        .await;
    Client::new(&config)
}

pub fn store_config(table: &str) -> StoreConfig {
    StoreConfig { table: table.to_string(), session_retention: "400d".parse().unwrap(), audit_retention: "500d".parse().unwrap(), unavailable_retry_for: "2m".parse().unwrap() }
}

pub fn retention() -> Retention {
    Retention { session: Duration::days(400), audit: Duration::days(500) }
}

/// A table of this test's own, with a unique name, made by the code under test.
pub struct TestTable {
    pub client: Client,
    pub name: String,
    pub store: DynamoStore,
}

impl TestTable {
    pub async fn new() -> TestTable {
        let client = client().await;
        let name = format!("powerpole-store-test-{}", SessionId::random());
        let created = dynamo::create_table(&client, &name).await.unwrap_or_else(|e| panic!("creating {name}: {e}\n(is moto up? `scripts/standins.sh start`)"));
        assert_eq!(created, TableCreated::Created);
        let store = DynamoStore::new(client.clone(), &store_config(&name));
        TestTable { client, name, store }
    }

    /// Removes the table (only this test's own). A failed test leaves its table for inspection.
    pub async fn delete(self) {
        self.client.delete_table().table_name(&self.name).send().await.unwrap_or_else(|e| panic!("deleting {}: {e:?}", self.name));
    }

    /// Writes sessions straight into the table (no audit events), 25 per BatchWriteItem and 8
    /// batches at a time: thousands in seconds, where one transaction each would take minutes on moto.
    pub async fn bulk_put(&self, sessions: &[Session]) {
        let items: Vec<HashMap<String, AttributeValue>> = sessions.iter().map(|s| item::session_item(s, &retention()).unwrap()).collect();
        futures::stream::iter(items.chunks(25).map(|chunk| self.batch_put(chunk.to_vec())))
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await
            .unwrap_or_else(|e| panic!("bulk put into {}: {e}", self.name));
    }

    async fn batch_put(&self, items: Vec<HashMap<String, AttributeValue>>) -> Result<(), String> {
        let mut requests: Vec<WriteRequest> =
            items.into_iter().map(|item| WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().unwrap()).build()).collect();
        // DynamoDB may hand part of a batch back; send it again until nothing is left.
        for _ in 0..10 {
            if requests.is_empty() {
                return Ok(());
            }
            let out = self.client.batch_write_item().request_items(&self.name, requests).send().await.map_err(|e| format!("{e:?}"))?;
            requests = out.unprocessed_items.and_then(|mut m| m.remove(&self.name)).unwrap_or_default();
        }
        Err(format!("{} writes still unprocessed after 10 rounds", requests.len()))
    }

    /// Every item in the table, read with a paginated Scan (tests only: the store never scans).
    pub async fn scan_all(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self.client.scan().table_name(&self.name).set_exclusive_start_key(start).send().await.expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }
}

pub fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap()
}

pub fn requester(slack_id: &str, email: &str) -> Requester {
    Requester { slack_id: user(slack_id), email: email.into(), db_user: DbUsername::from_slack_email(email, &UsernamePolicy { home_domains: vec!["example.com".into()] }).unwrap(), tz: None }
}

/// A new pending request by Alice for `target`, created at `created_at`, pending for one hour.
pub fn pending(target: &str, created_at: DateTime<Utc>) -> Session {
    pending_by(requester("U0ALICE", "alice@example.com"), target, created_at)
}

pub fn pending_by(requester: Requester, target: &str, created_at: DateTime<Utc>) -> Session {
    Session::new(SessionId::random(), requester, TargetName::parse(target).unwrap(), Role::Read, "2h".parse().unwrap(), "INC-7: check the ledger".into(), created_at, "1h".parse().unwrap())
}

/// The audit event that goes with creating `session`.
pub fn requested(session: &Session) -> AuditEvent {
    AuditEvent::ok(AuditKind::Requested, Actor::User(session.requester.slack_id.clone()), session.created_at, session.reason.clone())
}
