//! An HTTP stand-in in front of a stand-in, for faults a byte proxy cannot make: while
//! [`FaultyHttp::fail_with`] is on, every request is answered with that status and body (a
//! DynamoDB `ThrottlingException`, an EC2 `503`) and never reaches the upstream; otherwise
//! requests are forwarded unchanged (moto does not check SigV4 signatures, so forwarding
//! with a different `Host` is harmless).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use axum::Router;

#[derive(Clone, Default)]
struct Fault {
    status: u16,
    content_type: String,
    body: String,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    fault: Mutex<Option<Fault>>,
    refused: AtomicUsize,
    forwarded: AtomicUsize,
}

/// A running fault injector; it stops when dropped.
pub struct FaultyHttp {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyHttp {
    /// Starts on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultyHttp {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            fault: Mutex::new(None),
            refused: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultyHttp { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on every request is answered `status` with `body` (`content_type`).
    pub fn fail_with(&self, status: u16, content_type: &str, body: &str) {
        *self.shared.fault.lock().unwrap() = Some(Fault { status, content_type: content_type.into(), body: body.into() });
    }

    /// DynamoDB throttling, as DynamoDB answers it.
    pub fn throttle_dynamodb(&self) {
        self.fail_with(
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
        );
    }

    /// Requests go through again.
    pub fn heal(&self) {
        *self.shared.fault.lock().unwrap() = None;
    }

    /// How many requests were answered with the fault so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// How many requests were forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fault = shared.fault.lock().unwrap().clone();
    if let Some(fault) = fault {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(fault.status)
            .header("content-type", fault.content_type)
            .body(Body::from(fault.body))
            .expect("a canned response");
    }
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, 64 * 1024 * 1024).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = shared.client.request(parts.method.clone(), format!("{}{path}", shared.upstream)).body(body);
    for (name, value) in parts.headers.iter() {
        if !skip(name) {
            forward = forward.header(name, value);
        }
    }
    let Ok(upstream) = forward.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut answer = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers().iter() {
        if !skip(name) {
            answer = answer.header(name, value);
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    answer.body(Body::from(bytes)).expect("a forwarded response")
}

fn skip(name: &HeaderName) -> bool {
    matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection")
}

fn status(code: StatusCode) -> Response {
    Response::builder().status(code).body(Body::empty()).expect("a status response")
}
