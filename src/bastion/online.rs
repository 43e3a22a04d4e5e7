//! Waiting for a bastion's SSM agent to come online. SSM offers no notification for this, so
//! `DescribeInstanceInformation` is polled at an interval until it says `Online` or time is up.

use std::time::Duration;

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ssm::types::{InstanceInformationStringFilter, PingStatus};

use super::BastionError;

/// Polls every `interval` until the agent on `instance_id` is online; [`BastionError::NotOnline`]
/// after `timeout`.
pub async fn wait(ssm: &aws_sdk_ssm::Client, instance_id: &str, timeout: Duration, interval: Duration) -> Result<(), BastionError> {
    let poll = async {
        loop {
            if is_online(ssm, instance_id).await? {
                return Ok(());
            }
            tokio::time::sleep(interval).await;
        }
    };
    match tokio::time::timeout(timeout, poll).await {
        Ok(result) => result,
        Err(_) => Err(BastionError::NotOnline { instance_id: instance_id.to_string(), waited: timeout }),
    }
}

async fn is_online(ssm: &aws_sdk_ssm::Client, instance_id: &str) -> Result<bool, BastionError> {
    let filter = InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance_id)
        .build()
        .map_err(|e| BastionError::Ssm { instance_id: instance_id.to_string(), message: e.to_string() })?;
    match ssm.describe_instance_information().filters(filter).send().await {
        Ok(answer) => Ok(answer
            .instance_information_list()
            .iter()
            .any(|i| i.instance_id() == Some(instance_id) && i.ping_status() == Some(&PingStatus::Online))),
        // An instance whose agent has not registered yet can be refused as unknown: not yet.
        Err(e) if e.code() == Some("InvalidInstanceId") => Ok(false),
        Err(e) => Err(BastionError::Ssm { instance_id: instance_id.to_string(), message: DisplayErrorContext(&e).to_string() }),
    }
}
