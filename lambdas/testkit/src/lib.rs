//! Stand-ins for what AWS puts around a Lambda function, so that tests run the real `bootstrap`
//! binaries (the same executables that go into the zips) on the host:
//!
//! - [`RuntimeApi`]: the Lambda Runtime API (`/2018-06-01/runtime/invocation/next`, `/response`,
//!   `/error`, `/init/error`) that `lambda_runtime` polls; [`RuntimeApi::invoke`] hands one event
//!   to the function and returns what it answered.
//! - [`Function`]: a binary started as Lambda starts it (the `AWS_LAMBDA_*` environment), with its
//!   log kept for assertion messages; killed when dropped.
//! - [`FunctionUrl`]: an HTTP endpoint that turns each request into a function URL event
//!   (payload format 2.0) and the function's answer back into HTTP, as a Lambda function URL does.
//! - [`EventSourceMapping`]: what an SQS event source mapping does: receive from the queue, invoke
//!   with an SQS event, delete the messages the function did not report as failed.
//! - [`scheduled_event`]: the event an EventBridge schedule delivers.
//!
//! The event documents follow the shapes AWS documents (and aws_lambda_events' fixtures); the
//! functions parse them with lambda_http and aws_lambda_events, not with anything written here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

pub const ACCOUNT: &str = "123456789012";
/// How long a test waits for a function to answer one invocation.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn next_id(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u64 = rand::random();
    format!("{prefix}{n:04x}-{:04x}-{:04x}-{:012x}", (r >> 48) & 0xffff, (r >> 32) & 0xffff, r & 0xffff_ffff)
}

fn region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

// ---------------------------------------------------------------------------------------------
// The Runtime API
// ---------------------------------------------------------------------------------------------

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invoked {
    /// The body posted to `/response` (parsed as JSON when it is JSON).
    Response(Value),
    /// The body posted to `/error` (`errorType`, `errorMessage`).
    Error(Value),
}

impl Invoked {
    /// The response, or a panic naming the error.
    pub fn expect_response(self, what: &str) -> Value {
        match self {
            Invoked::Response(v) => v,
            Invoked::Error(e) => panic!("{what}: the function answered with an error: {e}"),
        }
    }
}

struct Invocation {
    id: String,
    event: Value,
    done: oneshot::Sender<Invoked>,
}

struct RuntimeState {
    function_name: String,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invoked>>>,
    init_error: Mutex<Option<Value>>,
}

/// The Lambda Runtime API of one function (one execution environment: one invocation at a time).
#[derive(Clone)]
pub struct RuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Invocation>,
    state: Arc<RuntimeState>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> RuntimeApi {
        let (queue, next) = mpsc::unbounded_channel();
        let state = Arc::new(RuntimeState {
            function_name: function_name.to_string(),
            next: tokio::sync::Mutex::new(next),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("the Runtime API stand-in listens");
        let addr = listener.local_addr().expect("a local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { addr, queue, state }
    }

    pub fn function_name(&self) -> &str {
        &self.state.function_name
    }

    pub fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{}:{ACCOUNT}:function:{}", region(), self.state.function_name)
    }

    /// The environment Lambda gives a `provided.al2023` function.
    pub fn env(&self) -> Vec<(String, String)> {
        let name = &self.state.function_name;
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Gives `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Value) -> Invoked {
        let (done, answered) = oneshot::channel();
        let id = next_id("");
        self.queue.send(Invocation { id: id.clone(), event, done }).expect("the Runtime API stand-in is running");
        match tokio::time::timeout(INVOKE_TIMEOUT, answered).await {
            Ok(Ok(invoked)) => invoked,
            Ok(Err(_)) => panic!("invocation {id} of {} was dropped", self.state.function_name),
            Err(_) => {
                let init = self.state.init_error.lock().unwrap().clone();
                panic!("{} did not answer invocation {id} within {INVOKE_TIMEOUT:?} (init error: {init:?})", self.state.function_name)
            }
        }
    }

    /// What the function reported to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.state.init_error.lock().unwrap().clone()
    }
}

async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> Response {
    let Some(invocation) = state.next.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    state.waiting.lock().unwrap().insert(invocation.id.clone(), invocation.done);
    let deadline = chrono::Utc::now().timestamp_millis() + INVOKE_TIMEOUT.as_millis() as i64;
    let arn = format!("arn:aws:lambda:{}:{ACCOUNT}:function:{}", region(), state.function_name);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", arn);
    set("lambda-runtime-trace-id", format!("Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0", chrono::Utc::now().timestamp(), rand::random::<u64>(), rand::random::<u64>()));
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, invocation.event.to_string()).into_response()
}

fn parsed(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn invocation_response(State(state): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    finish(&state, &id, Invoked::Response(parsed(&body)))
}

async fn invocation_error(State(state): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    finish(&state, &id, Invoked::Error(parsed(&body)))
}

fn finish(state: &RuntimeState, id: &str, invoked: Invoked) -> StatusCode {
    match state.waiting.lock().unwrap().remove(id) {
        Some(done) => {
            let _ = done.send(invoked);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    *state.init_error.lock().unwrap() = Some(parsed(&body));
    StatusCode::ACCEPTED
}

// ---------------------------------------------------------------------------------------------
// A function process
// ---------------------------------------------------------------------------------------------

/// A Lambda binary running against a [`RuntimeApi`]; killed when dropped.
pub struct Function {
    child: tokio::process::Child,
    log: PathBuf,
    pub runtime: RuntimeApi,
}

impl Function {
    /// Starts `binary` with the Runtime API's environment plus `env` (and nothing else of the
    /// test's environment but `PATH`: what the function sees is what the test gives it).
    pub async fn start(binary: &Path, runtime: RuntimeApi, env: &[(String, String)]) -> Function {
        let log = std::env::temp_dir().join(format!("{}-{}.log", runtime.function_name(), next_id("")));
        let file = std::fs::File::create(&log).expect("a log file for the function");
        let mut command = tokio::process::Command::new(binary);
        command.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        command.envs(runtime.env()).envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command.stdin(Stdio::null()).stdout(file.try_clone().expect("a second handle")).stderr(file).kill_on_drop(true);
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Function { child, log, runtime }
    }

    /// Everything the function logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn invoke(&self, event: Value) -> Invoked {
        self.runtime.invoke(event).await
    }

    /// Whether the process is still running (an init failure makes it exit).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

// ---------------------------------------------------------------------------------------------
// Function URL
// ---------------------------------------------------------------------------------------------

/// A Lambda function URL in front of a [`RuntimeApi`]: `http://127.0.0.1:PORT` stands for
/// `https://<url-id>.lambda-url.<region>.on.aws`.
pub struct FunctionUrl {
    pub addr: SocketAddr,
    /// Every event it sent, in order (to assert on their shape).
    pub events: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
struct UrlState {
    runtime: RuntimeApi,
    url_id: String,
    events: Arc<Mutex<Vec<Value>>>,
}

impl FunctionUrl {
    pub async fn start(runtime: RuntimeApi) -> FunctionUrl {
        let events = Arc::new(Mutex::new(Vec::new()));
        let state = UrlState { runtime, url_id: next_id("url").replace('-', "").chars().take(32).collect(), events: events.clone() };
        let app = Router::new().route("/{*path}", any(through_url)).route("/", any(through_url)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("the function URL stand-in listens");
        let addr = listener.local_addr().expect("a local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FunctionUrl { addr, events }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Content types a function URL passes as text; any other body arrives base64-encoded.
fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/") || ct.starts_with("application/json") || ct.contains("+json") || ct.starts_with("application/xml")
}

/// The function URL event (payload format version 2.0) for one HTTP request.
pub fn function_url_event(url_id: &str, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut names: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    names.dedup();
    let mut header_map = serde_json::Map::new();
    for name in names {
        let values: Vec<&str> = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
        header_map.insert(name, Value::String(values.join(",")));
    }
    let domain = format!("{url_id}.lambda-url.{}.on.aws", region());
    header_map.insert("host".into(), Value::String(domain.clone()));
    header_map.insert("x-forwarded-proto".into(), json!("https"));
    header_map.insert("x-forwarded-port".into(), json!("443"));
    header_map.insert("x-forwarded-for".into(), json!("203.0.113.7"));
    header_map.insert("x-amzn-tls-version".into(), json!("TLSv1.3"));
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (body, encoded) = if body.is_empty() {
        (Value::Null, false)
    } else if is_text(content_type) {
        (Value::String(String::from_utf8_lossy(body).into_owned()), false)
    } else {
        (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true)
    };
    let now = chrono::Utc::now();
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("Slackbot 1.0 (+https://api.slack.com/robots)");
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or_default(),
        "headers": header_map,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": user_agent
            },
            "requestId": next_id(""),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "isBase64Encoded": encoded
    });
    if !body.is_null() {
        event["body"] = body;
    }
    if let Some(query) = uri.query() {
        let pairs: serde_json::Map<String, Value> =
            query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        event["queryStringParameters"] = Value::Object(pairs);
    }
    event
}

async fn through_url(State(state): State<UrlState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let event = function_url_event(&state.url_id, &method, &uri, &headers, &body);
    state.events.lock().unwrap().push(event.clone());
    match state.runtime.invoke(event).await {
        Invoked::Response(answer) => url_response(&answer),
        // A function error is a 502 from a function URL.
        Invoked::Error(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// A function URL's HTTP answer for the function's response document.
fn url_response(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok()).unwrap_or(StatusCode::OK);
    let body = match (answer["body"].as_str(), answer["isBase64Encoded"].as_bool().unwrap_or(false)) {
        (Some(b), true) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
        (Some(b), false) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let mut response = (status, body).into_response();
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (axum::http::HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str)) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

// ---------------------------------------------------------------------------------------------
// SQS event source mapping
// ---------------------------------------------------------------------------------------------

/// What one poll of the queue did.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Message ids given to the function.
    pub delivered: Vec<String>,
    /// Message ids the function reported as failed (left on the queue).
    pub failed: Vec<String>,
    /// The function's whole answer.
    pub answer: Option<Invoked>,
}

/// An SQS event source mapping with `ReportBatchItemFailures`, polled by the test.
pub struct EventSourceMapping {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub runtime: RuntimeApi,
    pub batch_size: i32,
}

impl EventSourceMapping {
    /// Receives up to `batch_size` messages (waiting up to `wait` for the first) and, if there
    /// are any, invokes the function with them; deletes those not reported as failed.
    pub async fn poll_once(&self, wait: Duration) -> Delivery {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage on moto");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Delivery { delivered: Vec::new(), failed: Vec::new(), answer: None };
        }
        let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &self.queue_arn)).collect();
        let delivered: Vec<String> = messages.iter().filter_map(|m| m.message_id.clone()).collect();
        let answer = self.runtime.invoke(json!({ "Records": records })).await;
        let failed: Vec<String> = match &answer {
            Invoked::Response(v) => v["batchItemFailures"].as_array().into_iter().flatten().filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string)).collect(),
            // The whole batch failed: every message stays.
            Invoked::Error(_) => delivered.clone(),
        };
        for m in &messages {
            if !failed.iter().any(|f| Some(f) == m.message_id.as_ref()) {
                if let Some(handle) = &m.receipt_handle {
                    self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await.expect("DeleteMessage on moto");
                }
            }
        }
        Delivery { delivered, failed, answer: Some(answer) }
    }

    /// Polls until a poll delivers nothing (at most `max_polls`); returns every delivery.
    pub async fn drain(&self, max_polls: usize) -> Vec<Delivery> {
        let mut all = Vec::new();
        for _ in 0..max_polls {
            let d = self.poll_once(Duration::from_secs(1)).await;
            if d.delivered.is_empty() {
                break;
            }
            all.push(d);
        }
        all
    }
}

/// One record of the SQS event Lambda builds from a received message.
fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            use aws_sdk_sqs::types::MessageSystemAttributeName as A;
            matches!(k, A::ApproximateReceiveCount | A::SentTimestamp | A::SenderId | A::ApproximateFirstReceiveTimestamp | A::AwsTraceHeader)
        })
        .map(|(k, v)| (k.as_str().to_string(), Value::String(v)))
        .collect();
    json!({
        "messageId": m.message_id,
        "receiptHandle": m.receipt_handle,
        "body": m.body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": m.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region()
    })
}

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

/// The event an EventBridge schedule rule named `rule` delivers at `time`.
pub fn scheduled_event(rule: &str, time: chrono::DateTime<chrono::Utc>) -> Value {
    let region = region();
    json!({
        "version": "0",
        "id": next_id(""),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{ACCOUNT}:rule/{rule}")],
        "detail": {}
    })
}
