//! How long each adapter's calls may take and how often they are tried (`[calls]` in the
//! configuration): a timeout per attempt and a bounded number of attempts, per outside system.
//!
//! The AWS adapters (DynamoDB, EC2 and SSM, Secrets Manager, CloudWatch Logs) get the SDK's own
//! standard retry strategy (exponential backoff with full jitter, for throttling, 5xx and
//! transient network errors) and timeout configuration, through [`CallPolicy::aws`]. The Slack
//! Web API client retries what Slack rate-limits (waiting its Retry-After) and bounds each call;
//! MySQL bounds each connection attempt (its statements are bounded by the target's
//! `statement_timeout`). A step that still fails is retried by the lifecycle with its own backoff
//! (teardown, the notice outbox), so these bounds keep one call from holding a worker, not the
//! work from being done.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::AccessDuration;

/// One system's bound on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    /// How long one attempt may take.
    pub timeout: AccessDuration,
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
}

impl CallPolicy {
    /// The whole call, every attempt included (the SDK's operation timeout).
    pub fn whole_call(&self) -> Duration {
        self.timeout.to_std().saturating_mul(self.max_attempts.max(1)) + Duration::from_secs(u64::from(self.max_attempts.max(1)) * 2)
    }

    /// `aws` with this policy's retry and timeout configuration (the SDK's standard mode).
    pub fn aws(&self, aws: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(self.max_attempts.max(1));
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(self.timeout.to_std())
            .operation_timeout(self.whole_call())
            .build();
        aws.to_builder().retry_config(retry).timeout_config(timeouts).build()
    }
}

/// Every adapter's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallsConfig {
    pub dynamodb: CallPolicy,
    /// EC2 and Systems Manager (the bastions).
    pub ec2: CallPolicy,
    pub secrets_manager: CallPolicy,
    pub cloudwatch_logs: CallPolicy,
    /// The admin connection to a target's MySQL server (`max_attempts` is not used: a failed
    /// revoke or grant is retried by the lifecycle).
    pub mysql: CallPolicy,
    pub slack: CallPolicy,
}

/// `[calls]` as written: `timeout` and `max_attempts` for every system, and a table per system
/// that overrides them (`[calls.dynamodb]`, `[calls.ec2]`, `[calls.secrets_manager]`,
/// `[calls.cloudwatch_logs]`, `[calls.mysql]`, `[calls.slack]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCalls {
    timeout: Option<String>,
    max_attempts: Option<u32>,
    #[serde(default)]
    dynamodb: RawPolicy,
    #[serde(default)]
    ec2: RawPolicy,
    #[serde(default)]
    secrets_manager: RawPolicy,
    #[serde(default)]
    cloudwatch_logs: RawPolicy,
    #[serde(default)]
    mysql: RawPolicy,
    #[serde(default)]
    slack: RawPolicy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    timeout: Option<String>,
    max_attempts: Option<u32>,
}

/// The defaults: short for the store (a person waits on it), longer for EC2 (RunInstances).
const DEFAULTS: [(&str, &str, u32); 6] =
    [("dynamodb", "5s", 3), ("ec2", "20s", 4), ("secrets_manager", "10s", 3), ("cloudwatch_logs", "10s", 3), ("mysql", "10s", 1), ("slack", "10s", 4)];

impl RawCalls {
    /// Validates, adding each problem as (path, message).
    pub(crate) fn validate(self, problems: &mut Vec<(String, String)>) -> CallsConfig {
        let mut policy = |name: &str, raw: &RawPolicy| -> CallPolicy {
            let (_, timeout, attempts) = DEFAULTS.iter().find(|(n, _, _)| *n == name).copied().unwrap_or((name, "10s", 3));
            let path = format!("calls.{name}");
            let text = raw.timeout.as_deref().or(self.timeout.as_deref()).unwrap_or(timeout);
            let timeout = match text.parse::<AccessDuration>() {
                Ok(d) if d.to_std() <= Duration::from_secs(300) => d,
                Ok(_) => {
                    problems.push((format!("{path}.timeout"), "must be at most 5m: a call that takes longer holds a worker past a deadline".into()));
                    AccessDuration::from_secs(10).unwrap_or_else(|_| unreachable_default())
                }
                Err(e) => {
                    problems.push((format!("{path}.timeout"), e.to_string()));
                    AccessDuration::from_secs(10).unwrap_or_else(|_| unreachable_default())
                }
            };
            let max_attempts = raw.max_attempts.or(self.max_attempts).unwrap_or(attempts);
            if !(1..=10).contains(&max_attempts) {
                problems.push((format!("{path}.max_attempts"), "must be between 1 and 10 (attempts in all, the first included)".into()));
            }
            CallPolicy { timeout, max_attempts: max_attempts.clamp(1, 10) }
        };
        CallsConfig {
            dynamodb: policy("dynamodb", &self.dynamodb),
            ec2: policy("ec2", &self.ec2),
            secrets_manager: policy("secrets_manager", &self.secrets_manager),
            cloudwatch_logs: policy("cloudwatch_logs", &self.cloudwatch_logs),
            mysql: policy("mysql", &self.mysql),
            slack: policy("slack", &self.slack),
        }
    }
}

fn unreachable_default() -> AccessDuration {
    "10s".parse().expect("10s is a valid duration")
}

impl Default for CallsConfig {
    fn default() -> Self {
        RawCalls::default().validate(&mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (CallsConfig, Vec<(String, String)>) {
        use figment::providers::Format;
        let raw: RawCalls = figment::Figment::from(figment::providers::Toml::string(toml_text)).extract().expect("valid TOML");
        let mut problems = Vec::new();
        (raw.validate(&mut problems), problems)
    }

    #[test]
    fn defaults_bound_every_system() {
        let c = CallsConfig::default();
        assert_eq!(c.dynamodb.timeout.to_std(), Duration::from_secs(5));
        assert_eq!(c.ec2.max_attempts, 4);
        assert_eq!(c.mysql.max_attempts, 1);
    }

    #[test]
    fn a_system_table_overrides_the_section_which_overrides_the_defaults() {
        let (c, problems) = parse("timeout = \"3s\"\nmax_attempts = 2\n[slack]\nmax_attempts = 6\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.dynamodb.timeout.to_std(), Duration::from_secs(3));
        assert_eq!(c.dynamodb.max_attempts, 2);
        assert_eq!((c.slack.timeout.to_std(), c.slack.max_attempts), (Duration::from_secs(3), 6));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let (_, problems) = parse("[ec2]\ntimeout = \"1h\"\nmax_attempts = 0\n");
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["calls.ec2.timeout", "calls.ec2.max_attempts"]);
    }
}
