//! `DescribeInstanceInformation` over AWS JSON 1.1, answered from moto's EC2 instances.
//!
//! Request and answer shapes follow the SSM API reference: `Filters` (`Key`/`Values`) or the
//! legacy `InstanceInformationFilterList` (`key`/`valueSet`), `MaxResults` (5 to 50, default 10)
//! and `NextToken`; the answer is `InstanceInformationList` plus `NextToken` when there is more.
//! Timestamps are epoch seconds as JSON numbers, as AWS JSON 1.1 sends them.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Controls;

const JSON_1_1: &str = "application/x-amz-json-1.1";
const AGENT_VERSION: &str = "3.3.1142.0";
const DEFAULT_MAX_RESULTS: usize = 10;
const TOKEN_PREFIX: &str = "standin-offset-";

/// What the answer needs to know about one EC2 instance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instance {
    pub(crate) id: String,
    /// Unix seconds.
    pub(crate) launch_time: i64,
    pub(crate) private_ip: Option<String>,
    pub(crate) private_dns: Option<String>,
    pub(crate) windows: bool,
    pub(crate) tags: Vec<(String, String)>,
}

/// A request SSM would refuse: the HTTP status, the error code and a message.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal(StatusCode, &'static str, String);

impl Refusal {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, code, message.into())
    }
}

/// One filter of the request.
#[derive(Debug, PartialEq)]
enum Filter {
    /// A field of the answer (`PingStatus`) must equal one of the values.
    Field(&'static str, Vec<String>),
    /// The instance must have one of these tag keys.
    TagKey(Vec<String>),
    /// The instance's tag `key` must have one of the values.
    Tag(String, Vec<String>),
}

/// The parsed request.
#[derive(Debug, PartialEq)]
pub(crate) struct Query {
    filters: Vec<Filter>,
    max_results: usize,
    offset: usize,
}

pub(crate) async fn answer(
    ec2: &aws_sdk_ec2::Client,
    controls: &Controls,
    query: Result<Query, Refusal>,
) -> Response {
    let query = match query {
        Ok(query) => query,
        Err(refusal) => return refusal.into_response(),
    };
    let instances = match running_instances(ec2).await {
        Ok(instances) => instances,
        Err(message) => {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                &message,
            )
        }
    };
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    match select(&instances, controls, now, &query) {
        Ok(page) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, JSON_1_1)],
            page.to_string(),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The region of a SigV4-signed request: the third part of the `Credential=` scope
/// (`AKID/20240101/eu-west-1/ssm/aws4_request`).
pub(crate) fn region_of(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    scope.split('/').nth(2).filter(|r| !r.is_empty())
}

pub(crate) fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"__type": code, "message": message});
    (status, [(header::CONTENT_TYPE, JSON_1_1)], body.to_string()).into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        aws_error(self.0, self.1, &self.2)
    }
}

impl Query {
    /// The instance ids its `InstanceIds` filter asks about (none without one).
    pub(crate) fn instance_ids(&self) -> Vec<String> {
        self.filters
            .iter()
            .find_map(|filter| match filter {
                Filter::Field("InstanceId", values) => Some(values.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

pub(crate) fn parse_query(body: &[u8]) -> Result<Query, Refusal> {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|err| Refusal::bad("SerializationException", format!("invalid JSON: {err}")))?
    };
    let legacy = request.get("InstanceInformationFilterList");
    let modern = request.get("Filters");
    if legacy.is_some() && modern.is_some() {
        return Err(Refusal::bad(
            "ValidationException",
            "InstanceInformationFilterList and Filters cannot be used together",
        ));
    }
    let filters = match (legacy, modern) {
        (Some(list), _) => parse_filters(list, "key", "valueSet", false)?,
        (_, Some(list)) => parse_filters(list, "Key", "Values", true)?,
        _ => Vec::new(),
    };
    let max_results = match request.get("MaxResults") {
        None | Some(Value::Null) => DEFAULT_MAX_RESULTS,
        Some(n) => n
            .as_u64()
            .filter(|n| (5..=50).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                Refusal::bad(
                    "ValidationException",
                    format!("MaxResults must be 5 to 50, not {n}"),
                )
            })?,
    };
    let offset = match request.get("NextToken").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Refusal::bad("InvalidNextToken", "The specified token isn't valid."))?,
    };
    Ok(Query {
        filters,
        max_results,
        offset,
    })
}

fn parse_filters(
    list: &Value,
    key_name: &str,
    values_name: &str,
    tags: bool,
) -> Result<Vec<Filter>, Refusal> {
    let list = list
        .as_array()
        .ok_or_else(|| Refusal::bad("SerializationException", "filters must be a list"))?;
    list.iter()
        .map(|filter| {
            let key = filter
                .get(key_name)
                .and_then(Value::as_str)
                .unwrap_or_default();
            let values: Vec<String> = filter
                .get(values_name)
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if values.is_empty() {
                return Err(Refusal::bad(
                    "InvalidInstanceInformationFilterValue",
                    format!("filter {key} needs at least one value"),
                ));
            }
            parse_filter(key, values, tags)
        })
        .collect()
}

fn parse_filter(key: &str, values: Vec<String>, tags: bool) -> Result<Filter, Refusal> {
    let field = match key {
        "InstanceIds" => {
            if let Some(bad) = values.iter().find(|id| !is_instance_id(id)) {
                return Err(Refusal::bad(
                    "InvalidInstanceId",
                    format!("{bad} is not a valid instance id"),
                ));
            }
            "InstanceId"
        }
        "AgentVersion" => "AgentVersion",
        "PingStatus" => "PingStatus",
        "PlatformTypes" => "PlatformType",
        "ResourceType" => "ResourceType",
        "ActivationIds" => "ActivationId",
        "IamRole" => "IamRole",
        "AssociationStatus" => "AssociationStatus",
        "tag-key" if tags => return Ok(Filter::TagKey(values)),
        _ => match key.strip_prefix("tag:") {
            Some(tag) if tags && !tag.is_empty() => return Ok(Filter::Tag(tag.to_owned(), values)),
            _ => {
                return Err(Refusal::bad(
                    "InvalidFilterKey",
                    format!("{key} is not a valid filter key"),
                ))
            }
        },
    };
    Ok(Filter::Field(field, values))
}

/// `i-` and 8 or 17 hex digits (EC2), or `mi-` and 17 (hybrid nodes).
fn is_instance_id(id: &str) -> bool {
    let hex = |s: &str, lens: &[usize]| {
        lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    match (id.strip_prefix("i-"), id.strip_prefix("mi-")) {
        (Some(rest), _) => hex(rest, &[8, 17]),
        (_, Some(rest)) => hex(rest, &[17]),
        _ => false,
    }
}

/// The page of the answer: online instances that pass every filter, ordered by launch.
pub(crate) fn select(
    instances: &[Instance],
    controls: &Controls,
    now: f64,
    query: &Query,
) -> Result<Value, Refusal> {
    let mut online: Vec<&Instance> = instances
        .iter()
        .filter(|i| controls.is_online(&i.id, i.launch_time, now))
        .collect();
    online.sort_by(|a, b| (a.launch_time, &a.id).cmp(&(b.launch_time, &b.id)));
    let matching: Vec<Value> = online
        .into_iter()
        .map(|instance| (instance, information(instance, now)))
        .filter(|(instance, info)| query.filters.iter().all(|f| f.accepts(instance, info)))
        .map(|(_, info)| info)
        .collect();
    if query.offset > matching.len() {
        return Err(Refusal::bad(
            "InvalidNextToken",
            "The specified token isn't valid.",
        ));
    }
    let end = (query.offset + query.max_results).min(matching.len());
    let mut page = json!({"InstanceInformationList": matching[query.offset..end]});
    if end < matching.len() {
        page["NextToken"] = json!(format!("{TOKEN_PREFIX}{end}"));
    }
    Ok(page)
}

impl Filter {
    fn accepts(&self, instance: &Instance, info: &Value) -> bool {
        match self {
            Filter::Field(field, values) => info
                .get(*field)
                .and_then(Value::as_str)
                .is_some_and(|v| values.iter().any(|want| want == v)),
            Filter::TagKey(keys) => instance.tags.iter().any(|(k, _)| keys.contains(k)),
            Filter::Tag(key, values) => instance
                .tags
                .iter()
                .any(|(k, v)| k == key && values.contains(v)),
        }
    }
}

/// One `InstanceInformation`, as SSM describes an online EC2 instance.
fn information(instance: &Instance, now: f64) -> Value {
    let (platform_type, platform_name, platform_version) = if instance.windows {
        (
            "Windows",
            "Microsoft Windows Server 2022 Datacenter",
            "10.0.20348",
        )
    } else {
        ("Linux", "Amazon Linux", "2023")
    };
    let mut info = json!({
        "InstanceId": instance.id,
        "PingStatus": "Online",
        "LastPingDateTime": now,
        "AgentVersion": AGENT_VERSION,
        "IsLatestVersion": true,
        "PlatformType": platform_type,
        "PlatformName": platform_name,
        "PlatformVersion": platform_version,
        "ResourceType": "EC2Instance",
        "SourceId": instance.id,
        "SourceType": "AWS::EC2::Instance",
    });
    if let Some(ip) = &instance.private_ip {
        info["IPAddress"] = json!(ip);
    }
    if let Some(dns) = &instance.private_dns {
        info["ComputerName"] = json!(dns);
    }
    info
}

/// Every running instance moto knows in the client's region.
async fn running_instances(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Instance>, String> {
    use aws_sdk_ec2::types::{Filter as Ec2Filter, PlatformValues};
    let running = Ec2Filter::builder()
        .name("instance-state-name")
        .values("running")
        .build();
    let mut instances = Vec::new();
    let mut next_token = None;
    loop {
        let page = ec2
            .describe_instances()
            .filters(running.clone())
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "the SSM stand-in could not list EC2 instances in moto: {}",
                    aws_sdk_ec2::error::DisplayErrorContext(err)
                )
            })?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            instances.push(Instance {
                id: id.to_owned(),
                launch_time: instance.launch_time().map(|t| t.secs()).unwrap_or_default(),
                private_ip: instance.private_ip_address().map(str::to_owned),
                private_dns: instance
                    .private_dns_name()
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned),
                windows: instance.platform() == Some(&PlatformValues::Windows),
                tags: instance
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            });
        }
        next_token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if next_token.is_none() {
            return Ok(instances);
        }
    }
}

#[cfg(test)]
mod tests;
