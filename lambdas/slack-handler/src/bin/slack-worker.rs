//! The `slack-worker` function, fed by the follow-up queue (an SQS event source mapping with
//! `ReportBatchItemFailures`): runs the follow-up of each deferred Slack request once.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let app = powerpole_lambda::app().await?;
    let slack = Arc::new(powerpole_lambda::slack_deferrer(&app, Arc::new(powerpole_lambda::NoHandOff)).await?);
    let deployment: Arc<str> = app.config.deployment.id.as_str().into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let slack = slack.clone();
        let deployment = deployment.clone();
        async move {
            let answer = powerpole_lambda::run_follow_ups(&slack, event.payload).await;
            powerpole_lambda::flush_metrics(&deployment);
            Ok::<_, Error>(answer)
        }
    }))
    .await
}
