//! Reading EC2's answers into powerpole's types, and the lookups by tag.

use std::net::Ipv4Addr;

use aws_sdk_ec2::error::DisplayErrorContext;
use aws_sdk_ec2::types::{Filter, InstanceStateName};
use chrono::{DateTime, Utc};

use super::{tags, BastionError, Instance, InstanceState, ManagedInstance};

/// Every state but `terminated`: shutting-down instances are still listed, so that nobody
/// launches a replacement while the old one is on its way out.
const NOT_TERMINATED: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

pub fn not_terminated() -> Filter {
    Filter::builder().name("instance-state-name").set_values(Some(NOT_TERMINATED.iter().map(|s| s.to_string()).collect())).build()
}

pub fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

/// Every instance matching `filters`, across pages.
pub async fn describe(ec2: &aws_sdk_ec2::Client, filters: Vec<Filter>) -> Result<Vec<aws_sdk_ec2::types::Instance>, BastionError> {
    let pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| BastionError::Ec2 { action: "DescribeInstances", message: DisplayErrorContext(&e).to_string() })?;
    Ok(pages.iter().flat_map(|p| p.reservations()).flat_map(|r| r.instances()).cloned().collect())
}

pub fn state(instance: &aws_sdk_ec2::types::Instance) -> InstanceState {
    match instance.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(InstanceStateName::Terminated) => InstanceState::Terminated,
        Some(other) => InstanceState::Other(other.as_str().to_string()),
        None => InstanceState::Other("unknown".into()),
    }
}

pub fn tag<'a>(instance: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    instance.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

fn launched_at(instance: &aws_sdk_ec2::types::Instance) -> Option<DateTime<Utc>> {
    instance.launch_time().and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

pub fn to_instance(instance: &aws_sdk_ec2::types::Instance) -> Result<Instance, BastionError> {
    let id = instance.instance_id().unwrap_or_default().to_string();
    let private_ip: Ipv4Addr = instance
        .private_ip_address()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| BastionError::NoPrivateIp { instance_id: id.clone() })?;
    Ok(Instance { id, private_ip, state: state(instance), launched_at: launched_at(instance) })
}

pub fn to_managed(instance: &aws_sdk_ec2::types::Instance) -> ManagedInstance {
    ManagedInstance {
        id: instance.instance_id().unwrap_or_default().to_string(),
        session: tag(instance, tags::SESSION).map(str::to_string),
        target: tag(instance, tags::TARGET).map(str::to_string),
        state: state(instance),
        launched_at: launched_at(instance),
    }
}

/// `i-` and 8 or 17 hex digits.
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
