//! `powerpole serve`: assemble the service from its configuration ([`App`]), run the sweeper
//! (provisioning, warnings, expiries, teardown retries) and serve Slack over HTTP or Socket Mode
//! until stopped.
//!
//! A target whose admin credential cannot be read does not stop the service: it is logged and
//! requests for it are refused with the reason ([`TargetHealth`]); it is checked again every
//! [`RECHECK_EVERY`], so creating the secret later is enough.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{router, SlackApp, TargetHealth};
use crate::config::{Config, ConfigError, SlackMode};
use crate::app::App;
use crate::secrets::{SecretError, Secrets};
use crate::workflow::run_sweeper_with;

/// How often unreachable targets are checked again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(300);
/// How long one credential check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Loads the configuration and the AWS settings, builds the adapters and serves.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let config = Arc::new(Config::load(&options.config)?);
    let built = App::build(Config::clone(&config)).await?;
    let (secrets, client) = (built.secrets.clone(), built.slack.clone());
    let signing_secret = match config.slack.mode {
        SlackMode::Http => secrets.resolve(&config.slack.signing_secret).await.map_err(|source| ServeError::Secret { what: "signing secret", source })?,
        // Socket Mode requests are not signed; the WebSocket is authenticated by the app token.
        SlackMode::Socket => crate::secrets::Secret::new(""),
    };
    if config.slack.mode == SlackMode::Http && signing_secret.expose().is_empty() {
        return Err(ServeError::Secret { what: "signing secret", source: SecretError::Empty });
    }
    let follow_ups = Arc::new(TrackedFollowUps::default());
    let app = SlackApp::with_follow_ups(built.workflow.clone(), built.notifier.clone(), signing_secret, follow_ups.clone());
    check_targets(&app, &secrets).await;
    let recheck = (app.clone(), secrets.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RECHECK_EVERY).await;
            check_targets(&recheck.0, &recheck.1).await;
        }
    });
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
    match config.slack.mode {
        SlackMode::Http => {
            let addr = options.listen.unwrap_or_else(|| config.server.listen.clone());
            let listening = listen_until(app, &addr, terminated()).await?;
            tracing::info!(addr = %listening.addr, "listening for Slack on /slack/commands, /slack/interactions, /slack/events");
            listening.task.await.map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
            // SIGTERM: the listener has stopped accepting and answered what it had.
            stop_sweeper.abort();
            let in_flight = follow_ups.in_flight();
            tracing::info!(in_flight, bound_secs = SHUTDOWN_BOUND.as_secs(), "stopping: no new requests or sweeps; letting follow-ups finish");
            if follow_ups.drained(SHUTDOWN_BOUND).await {
                tracing::info!("stopped cleanly");
            } else {
                tracing::warn!(left = follow_ups.in_flight(), "follow-ups still running at the shutdown bound; their sessions' leases let another replica resume them");
            }
            Ok(())
        }
        SlackMode::Socket => {
            let app_token = secrets.resolve(&config.slack.app_token).await.map_err(|source| ServeError::Secret { what: "app-level token", source })?;
            Ok(super::socket::run(app, client, &app_token).await?)
        }
    }
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

/// Serves the router for `app` on `addr` (port 0 picks a free port).
pub async fn listen(app: Arc<SlackApp>, addr: &str) -> Result<Listening, ServeError> {
    listen_until(app, addr, std::future::pending()).await
}

/// As [`listen`], until `stop` completes: then no new connection is accepted, requests being
/// answered are finished, and the task ends.
pub async fn listen_until(app: Arc<SlackApp>, addr: &str, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<Listening, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| ServeError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    let bound = listener.local_addr().map_err(|e| ServeError::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(app)).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "the HTTP listener stopped");
        }
    });
    Ok(Listening { addr: bound, task })
}

/// How long a stopping `serve` waits for follow-ups (card posts, DMs, decisions) in flight.
/// Below the 45 s stop timeout of deploy/systemd and the 30 s default of ECS and Kubernetes
/// minus a margin for the listener to drain.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(25);

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

/// Runs each follow-up at once, like [`super::SpawnFollowUps`], counting those in flight so
/// that a stopping service can wait for them.
#[derive(Default)]
pub struct TrackedFollowUps {
    in_flight: Arc<tokio::sync::watch::Sender<usize>>,
}

/// Counts a follow-up done even if it panics.
struct Done(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl TrackedFollowUps {
    pub fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    /// Whether every follow-up finished within `bound`.
    pub async fn drained(&self, bound: Duration) -> bool {
        let mut count = self.in_flight.subscribe();
        let drained = matches!(tokio::time::timeout(bound, count.wait_for(|n| *n == 0)).await, Ok(Ok(_)));
        drained
    }
}

impl super::FollowUps for TrackedFollowUps {
    fn accept(&self, follow_up: super::FollowUp) {
        self.in_flight.send_modify(|n| *n += 1);
        let done = Done(self.in_flight.clone());
        tokio::spawn(async move {
            let _done = done;
            follow_up.run().await;
        });
    }
}

/// Checks every target's admin credential; refuses requests for those that cannot be read.
pub async fn check_targets(app: &SlackApp, secrets: &Secrets) {
    let health: &TargetHealth = &app.health;
    for target in app.workflow.config.targets.values() {
        let checked = tokio::time::timeout(CHECK_TIMEOUT, secrets.check_exists(&target.admin_secret)).await;
        let problem = match checked {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("checking the secret `{}` took longer than {}s", target.admin_secret, CHECK_TIMEOUT.as_secs())),
        };
        match problem {
            None => {
                if health.refusal(&target.name).is_some() {
                    tracing::info!(target = %target.name, "target reachable again; accepting requests");
                }
                health.accept(&target.name);
            }
            Some(problem) => {
                tracing::error!(target = %target.name, %problem, "target unreachable: its admin credential cannot be read; refusing requests for it");
                health.refuse(&target.name, "powerpole cannot read its admin credential; the platform team has to fix the target's `admin_secret` (see `powerpole doctor`)");
            }
        }
    }
}
