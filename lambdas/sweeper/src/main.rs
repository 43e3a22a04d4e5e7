//! The `sweeper` function, on EventBridge schedules. Two rules invoke it:
//!
//! - the tick rule delivers the scheduled event itself: one scheduler tick (pending timeouts,
//!   provisioning, warnings, expiries, teardown retries), exactly what `powerpole sweep --once` does;
//! - the reconcile rule delivers the constant input `{"action": "reconcile"}`: one reconcile of this
//!   deployment ([`powerpole::workflow::Lifecycle::reconcile_now`]), which posts what it removed in
//!   the approvals channels.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// What an invocation asks for.
#[derive(Debug, PartialEq)]
enum Invocation {
    Tick(Box<EventBridgeEvent>),
    Reconcile,
}

/// The reconcile rule's input (infra/modules/powerpole/reconcile.tf sends exactly this).
const RECONCILE_ACTION: &str = "reconcile";

fn parse(payload: Value) -> Result<Invocation, String> {
    match payload.get("action") {
        Some(Value::String(a)) if a == RECONCILE_ACTION => Ok(Invocation::Reconcile),
        Some(other) => Err(format!("unknown action {other}: the sweeper knows only {{\"action\": \"{RECONCILE_ACTION}\"}} or a scheduled event")),
        None => serde_json::from_value(payload).map(|e| Invocation::Tick(Box::new(e))).map_err(|e| format!("not a scheduled event: {e}")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let app = Arc::new(powerpole_lambda::app().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let answer = invoke(&app, event.payload).await;
            powerpole_lambda::flush_metrics(app.config.deployment.id.as_str());
            answer
        }
    }))
    .await
}

/// One invocation: a tick or a reconcile.
async fn invoke(app: &powerpole::app::App, payload: Value) -> Result<Value, Error> {
    match parse(payload).map_err(Error::from)? {
        Invocation::Tick(e) => powerpole_lambda::tick(app, &e).await.map(|s| serde_json::to_value(s).unwrap_or_default()).map_err(Error::from),
        Invocation::Reconcile => {
            let summary = app.lifecycle.reconcile_now().await.map_err(|e| Error::from(e.to_string()))?;
            if summary.failed.is_empty() {
                Ok(serde_json::to_value(summary).unwrap_or_default())
            } else {
                // Failing the invocation shows in the function's Errors metric.
                Err(Error::from(format!("reconcile could not fix {} finding(s): {}", summary.failed.len(), summary.failed.join("; "))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconcile_rules_input_selects_reconcile_and_a_scheduled_event_a_tick() {
        assert_eq!(parse(serde_json::json!({"action": "reconcile"})), Ok(Invocation::Reconcile));
        let scheduled = serde_json::json!({
            "version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-12-01T00:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/tick"], "detail": {}
        });
        assert!(matches!(parse(scheduled), Ok(Invocation::Tick(_))));
        assert!(parse(serde_json::json!({"action": "drop-everything"})).unwrap_err().contains("unknown action"));
    }
}
