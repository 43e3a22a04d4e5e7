//! Serving an axum router on a loopback port for as long as a stand-in handle lives.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::StartError;

/// A running server; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves the router that `router` builds for
    /// the bound address on a spawned task.
    pub(crate) async fn start(
        addr: SocketAddr,
        router: impl FnOnce(SocketAddr) -> axum::Router,
    ) -> Result<Self, StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let router = router(addr);
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(%addr, error = %err, "stand-in server stopped");
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loopback on a free port: where every stand-in listens unless told otherwise.
pub(crate) fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
