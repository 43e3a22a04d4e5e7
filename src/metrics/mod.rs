//! powerpole's operational metrics: one named function per thing an operator watches, called
//! from the few places where it happens (the lifecycle, the sweeper, the Slack client, and the
//! timed adapter wrappers of [`timed`]).
//!
//! Every observation goes to a process-wide Prometheus registry, which `serve` exposes on
//! `GET /metrics` ([`render`]). A Lambda function has nobody to scrape it, so it switches on the
//! embedded-metric-format buffer ([`emit_emf`]) and writes what the invocation observed as
//! CloudWatch EMF lines on stdout ([`emf_lines`]); CloudWatch turns them into metrics that the
//! alarms of `infra/modules/powerpole/alarms.tf` watch. Both carry the same names.
//!
//! | Prometheus (`serve`)                           | EMF (Lambda, namespace `Powerpole`)  |
//! |------------------------------------------------|--------------------------------------|
//! | `powerpole_sessions{state}` (gauge)            | `Sessions` (dimension `State`)       |
//! | `powerpole_sessions_closed_total{outcome}`     | `SessionsClosed` (`Outcome`)         |
//! | `powerpole_handover_seconds` (approve->DM)     | `HandoverSeconds`                    |
//! | `powerpole_teardown_lag_seconds{reason}`       | `TeardownLagSeconds` (`Reason`)      |
//! | `powerpole_teardown_failures_total{step}`      | `TeardownFailures` (`Step`)          |
//! | `powerpole_teardown_retries_total`             | `TeardownRetries`                    |
//! | `powerpole_teardowns_stuck_total`              | `TeardownsStuck`                     |
//! | `powerpole_provisioning_failures_total`        | `ProvisioningFailures`               |
//! | `powerpole_sweeper_errors_total{stage}`        | `SweeperErrors` (no extra dimension) |
//! | `powerpole_slack_api_errors_total{method}`     | `SlackApiErrors` (`Method`)          |
//! | `powerpole_slack_rate_limited_total{method}`   | `SlackRateLimited` (`Method`)        |
//! | `powerpole_call_seconds{adapter,operation}`    | `CallSeconds` (`Adapter`, `Operation`) |
//!
//! Every EMF metric also has the dimension `Deployment` (`[deployment] id`).

pub mod timed;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::{Outcome, Session, State};

type One = [(&'static str, String); 1];
type Two = [(&'static str, String); 2];
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from approval to the hand-over DM: a launch plus the SSM agent coming online.
const HANDOVER_BUCKETS: [f64; 10] = [10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];
/// Seconds from a deadline to the account and instance being gone: the security bound.
const LAG_BUCKETS: [f64; 10] = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 210.0, 300.0, 600.0, 1800.0];
/// Seconds one adapter call takes (DynamoDB in milliseconds, an SSM wait in minutes).
const CALL_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0];

/// The states a live session can be in, so each is reported (as 0 when empty).
const LIVE_STATES: [&str; 5] = ["pending", "approved", "provisioning", "active", "tearing_down"];

struct Metrics {
    registry: Registry,
    sessions: Family<One, Gauge>,
    sessions_closed: Family<One, Counter>,
    handover_seconds: Histogram,
    teardown_lag_seconds: Histograms<One>,
    teardown_failures: Family<One, Counter>,
    teardown_retries: Counter,
    teardowns_stuck: Counter,
    provisioning_failures: Counter,
    sweeper_errors: Family<One, Counter>,
    slack_errors: Family<One, Counter>,
    slack_rate_limited: Family<One, Counter>,
    call_seconds: Histograms<Two>,
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS)
}

fn call_histogram() -> Histogram {
    Histogram::new(CALL_BUCKETS)
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("powerpole"),
            sessions: Family::default(),
            sessions_closed: Family::default(),
            handover_seconds: Histogram::new(HANDOVER_BUCKETS),
            teardown_lag_seconds: Family::new_with_constructor(lag_histogram as fn() -> Histogram),
            teardown_failures: Family::default(),
            teardown_retries: Counter::default(),
            teardowns_stuck: Counter::default(),
            provisioning_failures: Counter::default(),
            sweeper_errors: Family::default(),
            slack_errors: Family::default(),
            slack_rate_limited: Family::default(),
            call_seconds: Family::new_with_constructor(call_histogram as fn() -> Histogram),
        };
        m.registry.register("sessions", "Live sessions by state (read from the store at each scrape)", m.sessions.clone());
        m.registry.register("sessions_closed", "Sessions this process closed at the end of a teardown (denied, cancelled and timed-out requests are not counted), by outcome", m.sessions_closed.clone());
        m.registry.register("handover_seconds", "Seconds from approval to the hand-over DM", m.handover_seconds.clone());
        m.registry.register("teardown_lag_seconds", "Seconds from a session's deadline (expiry, end, revocation, failure) to its teardown being complete", m.teardown_lag_seconds.clone());
        m.registry.register("teardown_failures", "Failed teardown attempts, by the step that failed", m.teardown_failures.clone());
        m.registry.register("teardown_retries", "Teardown attempts that retry an earlier failure", m.teardown_retries.clone());
        m.registry.register("teardowns_stuck", "Teardowns still failing after [scheduler] teardown_alert_after (the approvals channel is alerted)", m.teardowns_stuck.clone());
        m.registry.register("provisioning_failures", "Provisionings that failed and were rolled back", m.provisioning_failures.clone());
        m.registry.register("sweeper_errors", "Sweeper ticks that could not read the store, and steps that failed", m.sweeper_errors.clone());
        m.registry.register("slack_api_errors", "Slack Web API calls that failed, by method", m.slack_errors.clone());
        m.registry.register("slack_rate_limited", "Slack Web API answers 429 (rate-limited), by method", m.slack_rate_limited.clone());
        m.registry.register("call_seconds", "Seconds per call to AWS (DynamoDB, EC2, SSM) and MySQL, by adapter and operation", m.call_seconds.clone());
        m
    }
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

// ---------------------------------------------------------------------------------------------
// What is measured
// ---------------------------------------------------------------------------------------------

/// A session was handed over (its DM sent): approval to hand-over.
pub fn handed_over(session: &Session) {
    if let (Some(approved), Some(handed)) = (session.approved_at, session.handed_over_at) {
        let seconds = seconds_between(approved, handed);
        metrics().handover_seconds.observe(seconds);
        emf("HandoverSeconds", Unit::Seconds, vec![], seconds);
    }
}

/// A session was closed after its teardown; `deadline` is when it had to end (its expiry, or
/// when it was ended, revoked or failed), if known.
pub fn torn_down(session: &Session, deadline: Option<chrono::DateTime<chrono::Utc>>) {
    let outcome = session.state.outcome().map(Outcome::as_str).unwrap_or("unknown");
    metrics().sessions_closed.get_or_create(&[("outcome", outcome.to_string())]).inc();
    emf("SessionsClosed", Unit::Count, vec![("Outcome", outcome.to_string())], 1.0);
    if let (Some(deadline), Some(closed)) = (deadline, session.closed_at) {
        let seconds = seconds_between(deadline, closed);
        metrics().teardown_lag_seconds.get_or_create(&[("reason", outcome.to_string())]).observe(seconds);
        emf("TeardownLagSeconds", Unit::Seconds, vec![("Reason", outcome.to_string())], seconds);
    }
}

/// A teardown attempt failed on `step`, the system it was stuck on (`database`, `ec2`, `slack`,
/// `store`, or `other`; the outbox retries Slack notices apart from the teardown).
pub fn teardown_failed(step: &'static str) {
    metrics().teardown_failures.get_or_create(&[("step", step.to_string())]).inc();
    emf("TeardownFailures", Unit::Count, vec![("Step", step.to_string())], 1.0);
}

/// A teardown attempt started after an earlier one failed.
pub fn teardown_retried() {
    metrics().teardown_retries.inc();
    emf("TeardownRetries", Unit::Count, vec![], 1.0);
}

/// A teardown has failed for longer than `teardown_alert_after` (alerted once per session).
pub fn teardown_stuck() {
    metrics().teardowns_stuck.inc();
    emf("TeardownsStuck", Unit::Count, vec![], 1.0);
}

/// A provisioning failed and was rolled back.
pub fn provisioning_failed() {
    metrics().provisioning_failures.inc();
    emf("ProvisioningFailures", Unit::Count, vec![], 1.0);
}

/// The sweeper could not read what is due (`stage = "read_due"`) or a step failed (`"step"`).
pub fn sweeper_error(stage: &'static str) {
    metrics().sweeper_errors.get_or_create(&[("stage", stage.to_string())]).inc();
    // One EMF metric without the stage, so one alarm covers both.
    emf("SweeperErrors", Unit::Count, vec![], 1.0);
}

/// A Slack Web API call failed, after its retries (a 429 that outlasted them included).
pub fn slack_api_error(method: &'static str) {
    metrics().slack_errors.get_or_create(&[("method", method.to_string())]).inc();
    emf("SlackApiErrors", Unit::Count, vec![("Method", method.to_string())], 1.0);
}

/// Slack answered 429 to `method` (each answer, including those then retried).
pub fn slack_rate_limited(method: &'static str) {
    metrics().slack_rate_limited.get_or_create(&[("method", method.to_string())]).inc();
    emf("SlackRateLimited", Unit::Count, vec![("Method", method.to_string())], 1.0);
}

/// One call to an adapter's system took `seconds`.
pub fn call(adapter: &'static str, operation: &'static str, seconds: f64) {
    metrics().call_seconds.get_or_create(&[("adapter", adapter.to_string()), ("operation", operation.to_string())]).observe(seconds);
    emf("CallSeconds", Unit::Seconds, vec![("Adapter", adapter.to_string()), ("Operation", operation.to_string())], seconds);
}

/// The live sessions now (`serve` at each scrape, the sweeper Lambda at each tick).
pub fn live_sessions(sessions: &[Session]) {
    let mut counts: BTreeMap<&'static str, i64> = LIVE_STATES.iter().map(|s| (*s, 0)).collect();
    for session in sessions {
        let name = match session.state {
            State::TearingDown(_) => "tearing_down",
            other => other.name(),
        };
        *counts.entry(name).or_default() += 1;
    }
    for (state, count) in counts {
        metrics().sessions.get_or_create(&[("state", state.to_string())]).set(count);
        emf("Sessions", Unit::Count, vec![("State", state.to_string())], count as f64);
    }
}

fn seconds_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

/// The content type of [`render`]'s text (OpenMetrics, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text exposition of everything observed so far.
pub fn render() -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &metrics().registry);
    text
}

// ---------------------------------------------------------------------------------------------
// CloudWatch embedded metric format (the Lambda functions)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    name: &'static str,
    unit: Unit,
    dimensions: Vec<(&'static str, String)>,
    value: f64,
}

/// Set once something reads the metrics (`serve`'s `/metrics`, a Lambda's EMF lines): only then
/// are the observations that need an extra store call made.
static EXPORTED: AtomicBool = AtomicBool::new(false);

/// This process exports its metrics (`serve`, at start).
pub fn export() {
    EXPORTED.store(true, Ordering::Relaxed);
}

/// Whether [`export`] or [`emit_emf`] was called.
pub fn exported() -> bool {
    EXPORTED.load(Ordering::Relaxed)
}

/// `None` until [`emit_emf`]: a process that does not flush must not keep samples.
static EMF: Mutex<Option<Vec<Sample>>> = Mutex::new(None);

/// The EMF namespace of every metric.
pub const EMF_NAMESPACE: &str = "Powerpole";
/// EMF allows at most 100 values per metric in one line.
const EMF_MAX_VALUES: usize = 100;

fn emf(name: &'static str, unit: Unit, dimensions: Vec<(&'static str, String)>, value: f64) {
    let mut buffer = EMF.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(samples) = buffer.as_mut() {
        samples.push(Sample { name, unit, dimensions, value });
    }
}

/// From now on, keep what is observed for [`emf_lines`] (the Lambda functions, at start).
pub fn emit_emf() {
    export();
    let mut buffer = EMF.lock().unwrap_or_else(|p| p.into_inner());
    buffer.get_or_insert_with(Vec::new);
}

/// What was observed since the last call, as CloudWatch EMF JSON lines (one per set of
/// dimensions; counters summed, durations as value lists), each with `deployment` as the
/// `Deployment` dimension and `timestamp_ms` as its time. Empty when nothing was observed.
pub fn emf_lines(deployment: &str, timestamp_ms: i64) -> Vec<String> {
    let samples = {
        let mut buffer = EMF.lock().unwrap_or_else(|p| p.into_inner());
        match buffer.as_mut() {
            Some(samples) => std::mem::take(samples),
            None => return Vec::new(),
        }
    };
    // Dimensions -> metric -> (unit, values).
    type Group = BTreeMap<&'static str, (Unit, Vec<f64>)>;
    let mut groups: BTreeMap<Vec<(&'static str, String)>, Group> = BTreeMap::new();
    for sample in samples {
        let metric = groups.entry(sample.dimensions).or_default().entry(sample.name).or_insert((sample.unit, Vec::new()));
        match sample.unit {
            // Counts add up; a gauge (Sessions) is reported as its last value.
            Unit::Count if sample.name == "Sessions" => metric.1 = vec![sample.value],
            Unit::Count => match metric.1.first_mut() {
                Some(sum) => *sum += sample.value,
                None => metric.1.push(sample.value),
            },
            Unit::Seconds if metric.1.len() < EMF_MAX_VALUES => metric.1.push(sample.value),
            Unit::Seconds => {}
        }
    }
    groups
        .into_iter()
        .map(|(dimensions, metrics)| {
            let mut keys = vec!["Deployment"];
            keys.extend(dimensions.iter().map(|(k, _)| *k));
            let definitions: Vec<serde_json::Value> = metrics.iter().map(|(name, (unit, _))| serde_json::json!({"Name": name, "Unit": unit.as_str()})).collect();
            let mut line = serde_json::Map::new();
            line.insert(
                "_aws".into(),
                serde_json::json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{"Namespace": EMF_NAMESPACE, "Dimensions": [keys], "Metrics": definitions}],
                }),
            );
            line.insert("Deployment".into(), deployment.into());
            for (key, value) in dimensions {
                line.insert(key.into(), value.into());
            }
            for (name, (_, values)) in metrics {
                let value = if values.len() == 1 { serde_json::json!(values[0]) } else { serde_json::json!(values) };
                line.insert(name.into(), value);
            }
            serde_json::Value::Object(line).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_group_by_dimensions_sum_counts_and_list_durations() {
        emit_emf();
        // Other tests in this process may observe too: read only what this one names.
        let _ = emf_lines("t", 0);
        teardown_failed("revoke_account");
        teardown_failed("revoke_account");
        teardown_stuck();
        call("dynamodb", "unit_test_op", 0.5);
        call("dynamodb", "unit_test_op", 1.5);
        let lines: Vec<serde_json::Value> = emf_lines("prod", 1_700_000_000_000).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let failures = lines.iter().find(|l| l.get("TeardownFailures").is_some()).expect("a line with the failures");
        assert_eq!(failures["TeardownFailures"], serde_json::json!(2.0));
        assert_eq!(failures["Step"], "revoke_account");
        assert_eq!(failures["Deployment"], "prod");
        assert_eq!(failures["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Deployment", "Step"]]));
        assert_eq!(failures["_aws"]["CloudWatchMetrics"][0]["Namespace"], EMF_NAMESPACE);
        let stuck = lines.iter().find(|l| l.get("TeardownsStuck").is_some()).expect("a line with the stuck teardown");
        assert_eq!(stuck["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Deployment"]]), "the alarm's dimensions: Deployment only");
        let calls = lines.iter().find(|l| l.get("Operation").and_then(|o| o.as_str()) == Some("unit_test_op")).expect("the calls' line");
        assert_eq!(calls["CallSeconds"], serde_json::json!([0.5, 1.5]));
        assert!(emf_lines("prod", 0).iter().all(|l| !l.contains("unit_test_op")), "a flush empties the buffer");
    }

    #[test]
    fn the_exposition_names_every_metric() {
        call("mysql", "exposition_test", 0.01);
        let text = render();
        for name in ["powerpole_handover_seconds", "powerpole_teardown_retries_total", "powerpole_provisioning_failures_total", "powerpole_call_seconds_bucket"] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
