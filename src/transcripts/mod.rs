//! CloudWatch Logs, read-only: the Session Manager transcripts of a bastion and a database's
//! audit log (Aurora's `/aws/rds/cluster/<cluster>/audit` group), for the security team's
//! session report. This module is the only importer of aws-sdk-cloudwatchlogs.
//!
//! Session Manager, with `cloudWatchStreamingEnabled`, writes one JSON event per chunk of a
//! session to a stream named after the Session Manager session; the instance is in the event's
//! `target.id`, not in the stream name, so events are read over the session's window and kept
//! when they name the bastion. (CloudWatch's JSON filter patterns would do this server-side; they
//! are not used so the same code runs against stand-ins that ignore them.)

use aws_sdk_cloudwatchlogs::Client;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

/// Why the logs could not be read. Never carries log content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    #[error("the log group `{0}` does not exist: check `[audit]` in the configuration and that session logging is on")]
    NoSuchGroup(String),
    #[error("CloudWatch Logs refused to read `{group}`: {reason}; the reader needs logs:FilterLogEvents on it")]
    Refused { group: String, reason: String },
}

/// One chunk of a Session Manager session on the bastion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellEvent {
    pub at: DateTime<Utc>,
    /// The Session Manager session id (`alice-0abc...`).
    pub ssm_session: String,
    /// The log stream the event was read from (Session Manager names it after the session; empty
    /// where unknown).
    pub stream: String,
    /// Who opened the session (the IAM principal's ARN).
    pub principal: Option<String>,
    pub run_as: Option<String>,
    /// What was typed and shown, as Session Manager recorded it.
    pub lines: Vec<String>,
}

/// One line of a log group, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub stream: String,
    pub message: String,
}

/// The Session Manager streaming event (the fields the report reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamedEvent {
    event_time: Option<String>,
    target: Option<Target>,
    user_identity: Option<Identity>,
    run_as_user: Option<String>,
    session_id: Option<String>,
    #[serde(default)]
    session_data: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Target {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Identity {
    arn: Option<String>,
}

/// Reads a streamed Session Manager event if it is about `instance`. `fallback` is the log
/// event's own timestamp, used when the event has no `eventTime`.
pub fn parse_shell_event(message: &str, instance: &str, fallback: DateTime<Utc>) -> Option<ShellEvent> {
    let event: StreamedEvent = serde_json::from_str(message).ok()?;
    if event.target.as_ref()?.id.as_deref()? != instance {
        return None;
    }
    let at = event
        .event_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(fallback);
    Some(ShellEvent {
        at,
        ssm_session: event.session_id.unwrap_or_default(),
        stream: String::new(),
        principal: event.user_identity.and_then(|i| i.arn),
        run_as: event.run_as_user,
        lines: event.session_data,
    })
}

/// CloudWatch Logs through the AWS SDK.
#[derive(Clone)]
pub struct CloudWatchLogs {
    client: Client,
}

impl CloudWatchLogs {
    pub fn new(config: &aws_config::SdkConfig) -> CloudWatchLogs {
        CloudWatchLogs { client: Client::new(config) }
    }

    /// Every line of `group` between `from` and `to`, oldest first.
    pub async fn lines(&self, group: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<LogLine>, TranscriptError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(from.timestamp_millis())
                .end_time(to.timestamp_millis())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    let e = e.into_service_error();
                    if e.is_resource_not_found_exception() {
                        TranscriptError::NoSuchGroup(group.to_string())
                    } else {
                        TranscriptError::Refused { group: group.to_string(), reason: e.to_string() }
                    }
                })?;
            for event in page.events() {
                let at = event.timestamp().and_then(|ms| Utc.timestamp_millis_opt(ms).single()).unwrap_or(from);
                out.push(LogLine { at, stream: event.log_stream_name().unwrap_or_default().to_string(), message: event.message().unwrap_or_default().to_string() });
            }
            match page.next_token() {
                // An unchanged token means the end (CloudWatch may repeat the last one).
                Some(next) if token.as_deref() != Some(next) && !page.events().is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        out.sort_by_key(|l| l.at);
        Ok(out)
    }

    /// The Session Manager transcript of `instance` between `from` and `to`, oldest first.
    pub async fn shell_events(&self, group: &str, instance: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ShellEvent>, TranscriptError> {
        let lines = self.lines(group, from, to).await?;
        Ok(lines
            .iter()
            .filter_map(|l| parse_shell_event(&l.message, instance, l.at).map(|e| ShellEvent { stream: l.stream.clone(), ..e }))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventVersion":"1.0","eventTime":"2026-11-30T10:00:05Z","awsRegion":"eu-west-1","target":{"id":"i-0abc"},"userIdentity":{"arn":"arn:aws:sts::123456789012:assumed-role/engineer/alice@example.com"},"runAsEnabled":true,"runAsUser":"pp-alice","sessionId":"alice-0123456789","sessionData":["sh-5.2$ mysql -h billing","mysql> SELECT 1;"]}"#;

    #[test]
    fn a_streamed_event_of_the_bastion_is_read_and_others_are_not() {
        let fallback = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let e = parse_shell_event(EVENT, "i-0abc", fallback).expect("the bastion's event");
        assert_eq!(e.at, Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 5).unwrap());
        assert_eq!(e.ssm_session, "alice-0123456789");
        assert_eq!(e.run_as.as_deref(), Some("pp-alice"));
        assert_eq!(e.lines, ["sh-5.2$ mysql -h billing", "mysql> SELECT 1;"]);
        assert!(parse_shell_event(EVENT, "i-0other", fallback).is_none(), "another instance's session");
        assert!(parse_shell_event("not json", "i-0abc", fallback).is_none());
    }
}
