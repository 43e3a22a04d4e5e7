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
    StoreConfig { table: table.to_string(), session_retention: "400d".parse().unwrap(), audit_retention: "500d".parse().unwrap() }
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
    Requester { slack_id: user(slack_id), email: email.into(), db_user: DbUsername::from_slack_email(email, &UsernamePolicy::default()).unwrap(), tz: None }
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

/// A client whose calls reach moto one at a time, through [`SerialGate`].
pub async fn client_through(gate: &SerialGate) -> Client {
    let shared = client().await.config().clone();
    Client::from_conf(shared.to_builder().endpoint_url(&gate.url).build())
}

/// A one-request-at-a-time door in front of moto, for tests where many clients write at once.
///
/// DynamoDB runs each transaction atomically and in some serial order. moto 5.2.5 does not: it
/// serves every request on its own thread, evaluates a transaction's conditions and writes item by
/// item without a lock, and "rolls back" a cancelled transaction by restoring a copy of the whole
/// table taken when it began, which can erase a concurrent winner's write. Measured without the
/// gate, 2 of 190 runs of the 32-way race went wrong: once two approvals both won, once a
/// cancellation reason came back that serial execution can never produce.
/// The gate lets the clients race exactly as before (every request is in flight at once; `peak`
/// shows how many were waiting) and only makes moto apply them in some serial order, which is
/// the guarantee the store relies on from DynamoDB.
pub struct SerialGate {
    pub url: String,
    peak: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SerialGate {
    pub async fn start() -> SerialGate {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (see client())").trim_end_matches('/').to_string();
        let http = reqwest::Client::new();
        let one_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
        let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let state = (upstream, http, one_at_a_time, in_flight, peak.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (upstream, http, one_at_a_time, in_flight, peak) = state.clone();
            async move {
                let waiting = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(waiting, Ordering::SeqCst);
                let response = {
                    let _turn = one_at_a_time.lock().await;
                    forward(&http, &upstream, request).await
                };
                in_flight.fetch_sub(1, Ordering::SeqCst);
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the serial gate");
        let url = format!("http://{}", listener.local_addr().expect("gate address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SerialGate { url, peak }
    }

    /// The most requests that were at the gate at the same time.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn forward(http: &reqwest::Client, upstream: &str, request: axum::extract::Request) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
    use axum::response::IntoResponse;

    let (parts, body) = request.into_parts();
    let fail = |what: String| (axum::http::StatusCode::BAD_GATEWAY, what).into_response();
    let body = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(body) => body,
        Err(e) => return fail(format!("serial gate: reading the request: {e}")),
    };
    let mut headers = parts.headers;
    for hop in [HOST, CONTENT_LENGTH, TRANSFER_ENCODING] {
        headers.remove(hop);
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let answer = match http.request(parts.method, format!("{upstream}{path}")).headers(headers).body(body).send().await {
        Ok(answer) => answer,
        Err(e) => return fail(format!("serial gate: moto: {e}")),
    };
    let (status, mut headers) = (answer.status(), answer.headers().clone());
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    match answer.bytes().await {
        Ok(bytes) => (status, headers, bytes).into_response(),
        Err(e) => fail(format!("serial gate: reading moto's answer: {e}")),
    }
}
