//! The smallest honest stand-in for the SSM calls moto lacks.
//!
//! moto serves most of SSM (Parameter Store, `SendCommand`, ...) but not
//! `DescribeInstanceInformation`, which powerpole polls to learn when a new bastion's SSM agent is
//! online. Point the product's SSM endpoint here (`AWS_ENDPOINT_URL_SSM=standin.url()`, with
//! `AWS_ENDPOINT_URL` still at moto):
//!
//! - `AmazonSSM.DescribeInstanceInformation` is answered from moto's EC2 state: every `running`
//!   instance in the request's region (taken from the SigV4 credential scope) is a managed node
//!   whose agent is `Online`, unless a test holds it offline ([`SsmStandin::hold_offline`],
//!   [`SsmStandin::hold_all_offline`]) or it launched less than [`SsmStandin::online_after`] ago.
//!   A node that is not online is left out of the answer altogether, as a real agent that never
//!   registered would be.
//! - every other request is passed to moto unchanged (method, path, query, headers including
//!   `Host`, so SigV4 signatures stay valid, and body) and moto's answer is passed back unchanged.
//!
//! How it differs from SSM: there is no agent, so `PingStatus` is only ever `Online`; the agent
//! version and OS names are fixed; the instance's platform comes from EC2's `Platform` (Windows,
//! else Linux); no IAM check is made; `ConnectionLost` never happens. moto's `LaunchTime` has
//! whole seconds, so `online_after` is accurate to a second. Combining tag filters with other
//! filters, which SSM refuses, is allowed here.

mod describe;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::http_util::{any_loopback_port, Server};
use crate::StartError;

/// The `X-Amz-Target` this stand-in answers itself.
pub const DESCRIBE_INSTANCE_INFORMATION: &str = "AmazonSSM.DescribeInstanceInformation";

/// Requests bigger than this are refused rather than buffered.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A running SSM stand-in in front of a moto server. Clones share the same server and controls;
/// the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct SsmStandin {
    shared: Arc<Shared>,
    url: String,
    _server: Arc<Server>,
}

struct Shared {
    moto_url: String,
    http: reqwest::Client,
    controls: Mutex<Controls>,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    /// The access key id and secret its own EC2 reads are signed with.
    credentials: Mutex<(String, String)>,
    /// The instance ids each `DescribeInstanceInformation` call asked about (its `InstanceIds`
    /// filter's values; none for a call without one), in the order the calls came.
    asked: Mutex<Vec<Vec<String>>>,
}

/// What tests decide about agents coming online.
#[derive(Debug, Default, Clone)]
pub(crate) struct Controls {
    held: HashSet<String>,
    hold_all: bool,
    online_after: Duration,
}

impl Controls {
    /// Whether the agent on an instance launched at `launch_time` (unix seconds) is online at
    /// `now` (unix seconds).
    pub(crate) fn is_online(&self, instance_id: &str, launch_time: i64, now: f64) -> bool {
        !self.hold_all
            && !self.held.contains(instance_id)
            && now >= launch_time as f64 + self.online_after.as_secs_f64()
    }
}

impl std::fmt::Debug for SsmStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmStandin")
            .field("url", &self.url)
            .field("moto_url", &self.shared.moto_url)
            .finish_non_exhaustive()
    }
}

impl SsmStandin {
    /// Starts the stand-in on a free loopback port, in front of the moto server at `moto_url`.
    pub async fn start(moto_url: &str) -> Result<Self, StartError> {
        Self::start_on(moto_url, any_loopback_port()).await
    }

    /// Starts the stand-in on `addr` (port 0 picks a free port).
    pub async fn start_on(moto_url: &str, addr: SocketAddr) -> Result<Self, StartError> {
        let moto_url = moto_url.trim_end_matches('/').to_owned();
        let is_http_url = reqwest::Url::parse(&moto_url)
            .map(|url| url.scheme() == "http" && url.host().is_some())
            .unwrap_or(false);
        if !is_http_url {
            return Err(StartError::InvalidUrl(moto_url));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| StartError::InvalidUrl(moto_url.clone()))?;
        let shared = Arc::new(Shared {
            moto_url,
            http,
            controls: Mutex::new(Controls::default()),
            ec2: Mutex::new(HashMap::new()),
            credentials: Mutex::new(("testing".to_owned(), "testing".to_owned())),
            asked: Mutex::default(),
        });
        let server = Server::start(addr, |_| {
            Router::new().fallback(handle).with_state(shared.clone())
        })
        .await?;
        Ok(Self {
            url: format!("http://{}", server.addr),
            shared,
            _server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the value for `AWS_ENDPOINT_URL_SSM`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Signs the stand-in's own EC2 reads (what `DescribeInstanceInformation` is answered from)
    /// with these credentials: needed when moto enforces IAM, where `testing` is nobody.
    pub fn use_credentials(&self, access_key_id: &str, secret_access_key: &str) {
        *self.shared.credentials.lock().unwrap_or_else(|p| p.into_inner()) = (access_key_id.to_owned(), secret_access_key.to_owned());
        self.shared.ec2.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The moto server everything else is passed to.
    pub fn moto_url(&self) -> String {
        self.shared.moto_url.clone()
    }

    /// Keeps the agent on `instance_id` from ever coming online, until [`SsmStandin::release`].
    pub fn hold_offline(&self, instance_id: &str) {
        self.shared.controls().held.insert(instance_id.to_owned());
    }

    /// Undoes [`SsmStandin::hold_offline`] for `instance_id`: it is online from the next call.
    pub fn release(&self, instance_id: &str) {
        self.shared.controls().held.remove(instance_id);
    }

    /// While `true`, no agent is online, whatever else is set.
    pub fn hold_all_offline(&self, hold: bool) {
        self.shared.controls().hold_all = hold;
    }

    /// How many `DescribeInstanceInformation` calls the stand-in has answered.
    pub fn describe_calls(&self) -> usize {
        self.shared.asked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The instance ids each `DescribeInstanceInformation` call asked about, in order.
    pub fn asked(&self) -> Vec<Vec<String>> {
        self.shared.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Agents come online only `delay` after their instance's `LaunchTime` (default: at once).
    pub fn online_after(&self, delay: Duration) {
        self.shared.controls().online_after = delay;
    }
}

impl Shared {
    fn controls(&self) -> MutexGuard<'_, Controls> {
        self.controls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An EC2 client for moto in `region`, made once per region.
    fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
        let (key, secret) = self.credentials.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut clients = self.ec2.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                // moto accepts any credentials unless IAM enforcement is switched on.
                let config = aws_sdk_ec2::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(region.to_owned()))
                    .endpoint_url(&self.moto_url)
                    .credentials_provider(Credentials::new(
                        key,
                        secret,
                        None,
                        None,
                        "powerpole-standins",
                    ))
                    .build();
                aws_sdk_ec2::Client::from_conf(config)
            })
            .clone()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => {
            return describe::aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SerializationException",
                &format!("could not read the request body: {err}"),
            )
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if parts.method == axum::http::Method::POST && target == Some(DESCRIBE_INSTANCE_INFORMATION) {
        let region = describe::region_of(&parts.headers).unwrap_or("us-east-1");
        let ec2 = shared.ec2(region);
        let controls = shared.controls().clone();
        let query = describe::parse_query(&body);
        let ids = query.as_ref().map(describe::Query::instance_ids).unwrap_or_default();
        shared.asked.lock().unwrap_or_else(|p| p.into_inner()).push(ids);
        return describe::answer(&ec2, &controls, query).await;
    }
    forward(&shared, parts, body.into()).await
}

/// Passes a request to moto unchanged and moto's answer back unchanged.
async fn forward(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: reqwest::Body,
) -> Response {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut request = shared
        .http
        .request(parts.method, format!("{}{path_and_query}", shared.moto_url))
        .body(body);
    for (name, value) in &parts.headers {
        // Host is kept as the client sent it: it is part of the SigV4 signature.
        if !is_hop_by_hop(name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => {
            return describe::aws_error(
                StatusCode::BAD_GATEWAY,
                "InternalServerError",
                &format!(
                    "the SSM stand-in could not reach moto at {}: {err}",
                    shared.moto_url
                ),
            )
        }
    };
    let status = answer.status();
    let headers = copy_headers(answer.headers());
    match answer.bytes().await {
        Ok(bytes) => (status, headers, Body::from(bytes)).into_response(),
        Err(err) => describe::aws_error(
            StatusCode::BAD_GATEWAY,
            "InternalServerError",
            &format!("moto's answer broke off: {err}"),
        ),
    }
}

fn copy_headers(from: &HeaderMap) -> HeaderMap {
    from.iter()
        .filter(|(name, _)| !is_hop_by_hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Headers that describe one connection rather than the message; the length is recomputed.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
}

#[cfg(test)]
mod tests;
