//! The `sweeper` function, on an EventBridge schedule: one scheduler tick per scheduled event
//! (pending timeouts, provisioning, warnings, expiries, teardown retries), exactly what
//! `powerpole sweep --once` does.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let app = Arc::new(powerpole_lambda::app().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move { powerpole_lambda::tick(&app, &event.payload).await.map_err(Error::from) }
    }))
    .await
}
