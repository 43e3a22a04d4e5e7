//! The `slack-handler` function, behind a Lambda function URL (Slack's request URL): the router
//! of `powerpole serve`, run through lambda_http. It answers within Slack's 3 seconds and queues
//! each follow-up for `slack-worker` (see `powerpole::slack::deferred`): on Lambda, nothing may
//! run after the answer.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    powerpole_lambda::init_process();
    let app = powerpole_lambda::app().await?;
    let queue = Arc::new(powerpole_lambda::follow_up_queue(&app)?);
    let slack = Arc::new(powerpole_lambda::slack_deferrer(&app, queue).await?);
    let deployment: Arc<str> = app.config.deployment.id.as_str().into();
    lambda_http::run(service_fn(move |request: Request| {
        let slack = slack.clone();
        let deployment = deployment.clone();
        async move {
            let (parts, body) = request.into_parts();
            let request = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
            let answer = slack.acknowledge(request).await;
            powerpole_lambda::flush_metrics(&deployment);
            Ok::<_, Infallible>(answer)
        }
    }))
    .await
}
