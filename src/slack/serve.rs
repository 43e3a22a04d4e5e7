//! `powerpole serve`: listen at once, then assemble the service from its configuration ([`App`]),
//! run the sweeper (provisioning, warnings, expiries, teardown retries) and reconcile (every
//! `[scheduler] reconcile_every`), and serve Slack over HTTP or Socket Mode until stopped. On
//! SIGTERM it stops accepting, lets follow-ups in flight finish (up to [`SHUTDOWN_BOUND`]), stops
//! its sweeper steps and releases their claims (up to [`RELEASE_BOUND`], see
//! `workflow::claims`), and exits 0.
//!
//! Start-up never waits on a dependency before it answers: the HTTP port is bound first and
//! answers `/healthz` at once, and `503 Retry-After` on the Slack routes until the Slack secrets
//! are read (Slack retries events; a person sees "try again"). Each target is then checked in the
//! background ([`watch_target`]) by logging in exactly as a grant does (the admin secret, TLS
//! verified against the target's CA bundle, the admin's right to create accounts, the schemas),
//! with backoff while it fails; until a check succeeds, requests for that target are refused when
//! people ask, in words for them ([`TargetHealth`]), and the cause goes to the log. A healthy
//! target is checked again every [`RECHECK_EVERY`], so fixing the cause later is enough.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::{BoxFuture, Either};
use rand::RngExt;
use tokio::task::JoinHandle;

use super::{router, SlackApp, TargetHealth};
use crate::app::App;
use crate::config::{Config, ConfigError, SlackMode, TargetConfig};
use crate::secrets::SecretError;
use crate::store::Store;
use crate::workflow::{run_reconciler, run_sweeper_with};

/// How often reachable targets are checked again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(300);
/// How long one credential check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry of a failed check; each further failure doubles it, up to [`RECHECK_EVERY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// How long start-up waits for the first target checks before it serves Slack anyway (targets
/// still unchecked then are refused with a clear answer until their check succeeds).
const FIRST_CHECKS_WITHIN: Duration = Duration::from_secs(2);

/// What `powerpole serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    /// Overrides `[server] listen`.
    pub listen: Option<String>,
}

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("the Slack {what} could not be read: {source}")]
    Secret { what: &'static str, source: SecretError },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("{0}")]
    App(#[from] crate::app::AppError),
    #[error("{0}")]
    Socket(#[from] super::socket::SocketError),
}

/// Loads the configuration, listens (HTTP mode), then builds the adapters and serves until
/// SIGTERM.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let config = Arc::new(Config::load(&options.config)?);
    match config.slack.mode {
        SlackMode::Http => {
            let addr = options.listen.unwrap_or_else(|| config.server.listen.clone());
            let gate = Gate::new();
            crate::metrics::export();
            let listening = listen_service(gate.clone(), &addr, terminated()).await?;
            tracing::info!(addr = %listening.addr, "listening for Slack on /slack/commands, /slack/interactions, /slack/events");
            let started = start(&config).await?;
            gate.open(started.app.clone());
            tracing::info!("ready: Slack requests are served");
            listening.task.await.map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
            // SIGTERM: the listener has stopped accepting and answered what it had.
            started.stop_sweeper.abort();
            let in_flight = started.follow_ups.in_flight();
            tracing::info!(in_flight, bound_secs = SHUTDOWN_BOUND.as_secs(), "stopping: no new requests or sweeps; letting follow-ups finish");
            let drained = started.follow_ups.drained(SHUTDOWN_BOUND).await;
            if !drained {
                tracing::warn!(left = started.follow_ups.in_flight(), "follow-ups still running at the shutdown bound; their sessions' leases let another replica resume them");
            }
            // The sweeper's steps in flight: stopped, and their claims given back.
            let lifecycle = &started.built.lifecycle;
            let running = lifecycle.claims.running();
            match tokio::time::timeout(RELEASE_BOUND, lifecycle.release_claims()).await {
                Ok(released) => tracing::info!(running, released, "sweeper steps stopped; claims released for another replica"),
                Err(_) => tracing::warn!(running, "releasing the claims took longer than {}s; their leases run out instead", RELEASE_BOUND.as_secs()),
            }
            if drained {
                tracing::info!("stopped cleanly");
            }
            Ok(())
        }
        SlackMode::Socket => {
            let started = start(&config).await?;
            let built = &started.built;
            let app_token = built.secrets.resolve(&config.slack.app_token).await.map_err(|source| ServeError::Secret { what: "app-level token", source })?;
            Ok(super::socket::run(started.app.clone(), built.slack.clone(), &app_token).await?)
        }
    }
}

/// A started service: its Slack handlers, adapters, follow-ups in flight and sweeper.
struct Started {
    app: Arc<SlackApp>,
    built: App,
    follow_ups: Arc<super::FollowUpPool>,
    stop_sweeper: tokio::task::AbortHandle,
}

/// Builds the service, starts the background target checks, the sweeper and the reconciler.
async fn start(config: &Arc<Config>) -> Result<Started, ServeError> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let built = App::build(Config::clone(config)).await?;
    let signing_secret = match config.slack.mode {
        SlackMode::Http => built.secrets.resolve(&config.slack.signing_secret).await.map_err(|source| ServeError::Secret { what: "signing secret", source })?,
        // Socket Mode requests are not signed; the WebSocket is authenticated by the app token.
        SlackMode::Socket => crate::secrets::Secret::new(""),
    };
    if config.slack.mode == SlackMode::Http && signing_secret.expose().is_empty() {
        return Err(ServeError::Secret { what: "signing secret", source: SecretError::Empty });
    }
    // Follow-ups run through a bounded pool (`[server] follow_up_workers`, `follow_up_queue`).
    let server = &config.server;
    let follow_ups = Arc::new(super::FollowUpPool::new(server.follow_up_workers, server.follow_up_queue));
    let app = match config.slack.mode {
        // Over HTTP each follow-up is journaled in the store before Slack's answer, and any
        // replica replays one whose process died (`slack::journal`).
        SlackMode::Http => {
            let journaled = Arc::new(super::journal::JournaledFollowUps::new(follow_ups.clone(), built.workflow.store.clone(), built.workflow.clock.clone()));
            let owner = journaled.owner().to_string();
            let app = SlackApp::with_follow_ups(built.workflow.clone(), built.notifier.clone(), signing_secret, journaled);
            tokio::spawn(super::journal::Replayer::new(&app, &owner).run());
            app
        }
        SlackMode::Socket => SlackApp::with_pool(built.workflow.clone(), built.notifier.clone(), signing_secret, follow_ups.clone()),
    };
    // Each target is checked by logging in as a grant does (TLS verified, the admin's rights).
    let checker = Arc::new(
        crate::grants::MysqlGrants::new(Arc::new(crate::grants::SecretsManagerAdmin::from_sdk_config(&config.calls.secrets_manager.aws(&built.aws))))
            .in_deployment(config.deployment.id.clone())
            .with_connect_timeout(config.calls.mysql.timeout.to_std()),
    );
    watch_targets(&app, &checker).await;
    // The sweeper: provisioning, warnings, expiries and teardown retries, driven by the store.
    let sweeper = start_sweeper(&app, built.lifecycle.clone(), config.scheduler.tick.to_std());
    let stop_sweeper = sweeper.abort_handle();
    tokio::spawn(async move {
        match sweeper.await {
            Err(e) if e.is_cancelled() => {}
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the sweeper stopped; deadlines are not being kept"),
            Err(e) => tracing::error!(error = %e, "the sweeper panicked; deadlines are not being kept"),
        }
    });
    // Reconcile: this deployment's strays, every `[scheduler] reconcile_every`.
    tokio::spawn(run_reconciler(built.lifecycle.clone(), config.scheduler.reconcile_every.to_std()));
    Ok(Started { app, built, follow_ups, stop_sweeper })
}

/// What answers HTTP from the first moment: until the service is assembled, `/healthz` answers,
/// everything else is `503` with `Retry-After`; once [`Gate::open`] is called, Slack's POSTs go
/// straight to their handler (`http::slack_endpoint`: three paths compared, no router) and every other
/// request to the real router. `/metrics` (Prometheus) is always served here, not by the Slack
/// router the Lambda function URL shares: only `serve` has a scraper.
#[derive(Clone)]
struct Gate {
    open: Arc<OnceLock<Opened>>,
    /// `/healthz`, `/metrics`, and `503` for the rest.
    own: Router,
}

/// The assembled service behind an open [`Gate`].
struct Opened {
    app: Arc<SlackApp>,
    router: Router,
}

/// How long a scrape waits for the store's live sessions before it answers without them.
const SCRAPE_STORE_TIMEOUT: Duration = Duration::from_secs(3);

impl Gate {
    fn new() -> Gate {
        let open: Arc<OnceLock<Opened>> = Arc::default();
        let scraped = open.clone();
        let own = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(move || {
                let opened = scraped.clone();
                async move { metrics(opened.get().map(|o| &o.app.workflow.store)).await }
            }))
            .fallback(|| async { (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "powerpole is starting; try again in a few seconds").into_response() });
        Gate { open, own }
    }

    /// From now on, requests are answered by `app` (through [`router`] for all but Slack's POSTs).
    fn open(&self, app: Arc<SlackApp>) {
        let _ = self.open.set(Opened { router: router(app.clone()), app });
    }
}

impl tower::Service<Request> for Gate {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Either<axum::routing::future::RouteFuture<std::convert::Infallible>, BoxFuture<'static, Result<Response, std::convert::Infallible>>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.open.get() {
            Some(opened) if request.uri().path() != "/metrics" => match super::http::slack_endpoint(&request) {
                Some(endpoint) => {
                    let app = opened.app.clone();
                    Either::Right(Box::pin(async move { Ok(super::http::read_and_verify(&app, endpoint, request).await) }))
                }
                None => Either::Left(opened.router.clone().call(request)),
            },
            _ => Either::Left(self.own.call(request)),
        }
    }
}

/// The Prometheus exposition, with the sessions by state read from the store now (a store that
/// does not answer leaves the last values, and the call's latency shows why).
async fn metrics(store: Option<&Arc<dyn Store>>) -> Response {
    if let Some(store) = store {
        match tokio::time::timeout(SCRAPE_STORE_TIMEOUT, store.live()).await {
            Ok(Ok(live)) => crate::metrics::live_sessions(&live),
            Ok(Err(e)) => tracing::warn!(error = %e, "/metrics: the store did not list the live sessions"),
            Err(_) => tracing::warn!("/metrics: the store did not list the live sessions in time"),
        }
    }
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], crate::metrics::render()).into_response()
}

/// How long the sweeper may go without a successful tick before `/readyz` fails: three ticks,
/// and never less than a minute (a slow store answer is not an outage).
pub fn sweeper_bound(tick: Duration) -> chrono::Duration {
    let bound = (tick * 3).max(Duration::from_secs(60));
    chrono::Duration::from_std(bound).unwrap_or(chrono::Duration::minutes(1))
}

/// Spawns the sweeper for `app`, reporting each successful tick to `/readyz`.
pub fn start_sweeper(app: &SlackApp, lifecycle: crate::workflow::Lifecycle, tick: Duration) -> JoinHandle<anyhow::Result<()>> {
    app.readiness.expect_sweeper(sweeper_bound(tick));
    app.readiness.observe(lifecycle.dependencies.clone());
    let readiness = app.readiness.clone();
    let wake = app.workflow.wake.clone();
    tokio::spawn(run_sweeper_with(lifecycle, tick, wake, Arc::new(move || readiness.sweeper_ticked())))
}

/// A running HTTP listener.
#[derive(Debug)]
pub struct Listening {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Serves `app` on `addr` as `serve` does once it is ready (port 0 picks a free port).
pub async fn listen(app: Arc<SlackApp>, addr: &str) -> Result<Listening, ServeError> {
    listen_until(app, addr, std::future::pending()).await
}

/// As [`listen`], until `stop` completes: then no new connection is accepted, requests being
/// answered are finished, and the task ends.
pub async fn listen_until(app: Arc<SlackApp>, addr: &str, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<Listening, ServeError> {
    let gate = Gate::new();
    gate.open(app);
    listen_service(gate, addr, stop).await
}

/// Serves `gate` on `addr`.
async fn listen_service(gate: Gate, addr: &str, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<Listening, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| ServeError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    let bound = listener.local_addr().map_err(|e| ServeError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(gate)).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "the HTTP listener stopped");
        }
    });
    Ok(Listening { addr: bound, task })
}

/// How long a stopping `serve` waits for follow-ups (card posts, DMs, decisions) in flight.
/// Below the 45 s stop timeout of deploy/systemd and the 30 s default of ECS and Kubernetes
/// minus a margin for the listener to drain.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(25);

/// How long a stopping `serve` spends giving back the claims of its sweeper steps (one
/// conditional write each). [`SHUTDOWN_BOUND`] plus this stays under the 30 s stop timeouts.
pub const RELEASE_BOUND: Duration = Duration::from_secs(4);

/// Completes on SIGTERM or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the service cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stop signal received");
}

/// Marks every target unchecked and starts one background check loop per target; returns once
/// every first check is done or [`FIRST_CHECKS_WITHIN`] has passed, so that a healthy target is
/// not refused in the first moments after start-up, and a slow dependency delays nothing longer.
pub async fn watch_targets(app: &Arc<SlackApp>, checker: &Arc<crate::grants::MysqlGrants>) {
    let now = chrono::Utc::now();
    let mut first_checks = Vec::new();
    for target in app.workflow.config.targets.values() {
        app.health.unchecked(&target.name, &target.approvals_channel, now);
        let (done, first) = tokio::sync::oneshot::channel();
        first_checks.push(first);
        tokio::spawn(watch_target(app.clone(), checker.clone(), target.clone(), done));
    }
    let _ = tokio::time::timeout(FIRST_CHECKS_WITHIN, futures::future::join_all(first_checks)).await;
}

/// Checks `target` until the process ends (logging in as a grant does: [`check_once`]): at once, then with backoff while it
/// fails (2 s doubling to [`RECHECK_EVERY`], with jitter), and every [`RECHECK_EVERY`] while it
/// succeeds. `first_done` is told when the first check has finished.
async fn watch_target(app: Arc<SlackApp>, checker: Arc<crate::grants::MysqlGrants>, target: TargetConfig, first_done: tokio::sync::oneshot::Sender<()>) {
    let health: &TargetHealth = &app.health;
    let mut failures: u32 = 0;
    let mut first_done = Some(first_done);
    loop {
        let wait = match check_once(&checker, &target).await {
            None => {
                if health.is_refused(&target.name) {
                    tracing::info!(target = %target.name, "target reachable; accepting requests");
                }
                health.accept(&target.name);
                failures = 0;
                RECHECK_EVERY
            }
            Some(problem) => {
                failures = failures.saturating_add(1);
                let wait = retry_after(failures);
                let next_try = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::error!(target = %target.name, %problem, attempt = failures, retry_in_s = wait.as_secs(), "target unreachable: powerpole cannot log in as a grant does (admin secret, TLS, the admin's privileges, schemas); refusing requests for it");
                health.refuse(&target.name, &target.approvals_channel, next_try);
                wait
            }
        };
        if let Some(done) = first_done.take() {
            let _ = done.send(());
        }
        tokio::time::sleep(wait).await;
    }
}

/// What keeps powerpole from creating accounts on `target`, if anything: the admin secret is
/// read and the admin logs in exactly as a grant does (over TLS verified against the target's
/// CA bundle unless `admin_tls = "disabled"`), may create accounts, and sees every schema
/// (`MysqlGrants::check_admin`, as `powerpole doctor`).
async fn check_once(checker: &crate::grants::MysqlGrants, target: &TargetConfig) -> Option<String> {
    match tokio::time::timeout(CHECK_TIMEOUT, checker.check_admin(target)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("logging in to `{}` as its admin took longer than {}s", target.writer_endpoint, CHECK_TIMEOUT.as_secs())),
    }
}

/// The wait before the next check after `failures` failures in a row: 2 s doubling, capped at
/// [`RECHECK_EVERY`], minus up to a fifth at random so that replicas do not check in step.
fn retry_after(failures: u32) -> Duration {
    let base = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(RECHECK_EVERY);
    let jitter = rand::rng().random_range(0.0..0.2);
    base.mul_f64(1.0 - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_checks_back_off_to_the_recheck_interval() {
        let first = retry_after(1);
        assert!(first <= FIRST_RETRY && first >= FIRST_RETRY.mul_f64(0.8), "{first:?}");
        let third = retry_after(3);
        assert!(third <= FIRST_RETRY * 4 && third >= (FIRST_RETRY * 4).mul_f64(0.8), "{third:?}");
        assert!(retry_after(40) <= RECHECK_EVERY && retry_after(40) >= RECHECK_EVERY.mul_f64(0.8));
    }
}
