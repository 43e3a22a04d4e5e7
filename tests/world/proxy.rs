//! A small TCP proxy in front of a stand-in, for what the stand-ins cannot do themselves:
//!
//! - [`Proxy::hold`] / [`Proxy::release`]: requests stop at the proxy (bytes are kept, in order)
//!   until released, e.g. to keep a grant from reaching MariaDB while a test kills the process;
//! - [`Proxy::withhold_answers_to`]: a connection that carried `marker` (e.g.
//!   `Action=RunInstances`) never gets its answers, so the caller waits forever after the
//!   upstream has done the work;
//! - [`Proxy::set_delay`]: every request waits `delay` before it goes on (a fixed added round
//!   trip, as a network in between would add), for benchmarks.
//!
//! It knows nothing of the protocols: it forwards bytes, so SigV4 and the MySQL handshake pass
//! unchanged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

#[derive(Default)]
struct Controls {
    delay: Duration,
    withhold_marker: Option<Vec<u8>>,
    /// Further markers, any of which withholds too.
    withhold_also: Vec<Vec<u8>>,
}

struct Shared {
    upstream: SocketAddr,
    controls: Mutex<Controls>,
    /// `true` while requests are held.
    held: watch::Sender<bool>,
    /// Connections that carried the withhold marker.
    marked: AtomicUsize,
    connections: AtomicUsize,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`host:port` or a URL).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream_addr(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the proxy binds a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let (held, _) = watch::channel(false);
        let shared = Arc::new(Shared { upstream, controls: Mutex::default(), held, marked: AtomicUsize::new(0), connections: AtomicUsize::new(0) });
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accepting.clone();
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(upstream) = TcpStream::connect(shared.upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        pipe(shared, client, upstream).await;
                    }
                });
            }
        });
        Proxy { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`, for an `AWS_ENDPOINT_URL*`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// From now on, requests wait at the proxy until [`Proxy::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Lets held requests (in order) and all later ones through.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Each request is forwarded `delay` after it arrived.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.controls.lock().unwrap().delay = delay;
    }

    /// Answers on any connection whose requests contained `marker` are dropped from then on.
    pub fn withhold_answers_to(&self, marker: &str) {
        self.shared.controls.lock().unwrap().withhold_marker = Some(marker.as_bytes().to_vec());
    }

    /// As [`Proxy::withhold_answers_to`], for a connection that carried any of `markers`.
    pub fn withhold_answers_to_any(&self, markers: &[&str]) {
        let mut controls = self.shared.controls.lock().unwrap();
        controls.withhold_marker = markers.first().map(|m| m.as_bytes().to_vec());
        controls.withhold_also = markers.iter().skip(1).map(|m| m.as_bytes().to_vec()).collect();
    }

    /// New connections are no longer withheld (those already marked stay so).
    pub fn stop_withholding(&self) {
        let mut controls = self.shared.controls.lock().unwrap();
        controls.withhold_marker = None;
        controls.withhold_also.clear();
    }

    /// How many connections carried the withhold marker so far.
    pub fn withheld(&self) -> usize {
        self.shared.marked.load(Ordering::SeqCst)
    }

    /// How many connections the proxy accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.release();
    }
}

fn upstream_addr(upstream: &str) -> SocketAddr {
    let hostport = upstream.trim_start_matches("http://").trim_start_matches("mysql://");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport).split('/').next().unwrap_or(hostport);
    hostport.parse().unwrap_or_else(|_| panic!("the proxy needs an IP:port upstream, not {upstream}"))
}

/// Copies both ways until either side closes.
async fn pipe(shared: Arc<Shared>, client: TcpStream, upstream: TcpStream) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let withholding = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Set when the client has closed its side (or gone).
    let (client_gone_tx, mut client_gone) = watch::channel(false);

    // Requests: read as they come, stamped; forwarded in order at stamp + delay, when not held.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader_shared = shared.clone();
    let reader_withholding = withholding.clone();
    let reader = tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = buf[..n].to_vec();
            let markers: Vec<Vec<u8>> = {
                let controls = reader_shared.controls.lock().unwrap();
                controls.withhold_marker.iter().chain(controls.withhold_also.iter()).cloned().collect()
            };
            if !markers.is_empty() && !reader_withholding.load(Ordering::SeqCst) {
                // Look across chunk boundaries: keep the last few bytes of the previous chunk.
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&chunk);
                if markers.iter().any(|marker| window.windows(marker.len()).any(|w| w == marker.as_slice())) {
                    reader_withholding.store(true, Ordering::SeqCst);
                    reader_shared.marked.fetch_add(1, Ordering::SeqCst);
                }
                let longest = markers.iter().map(Vec::len).max().unwrap_or(1);
                let keep = longest.saturating_sub(1).min(window.len());
                tail = window[window.len() - keep..].to_vec();
            }
            if tx.send((Instant::now(), chunk)).is_err() {
                break;
            }
        }
        client_gone_tx.send_replace(true);
    });
    let writer_shared = shared.clone();
    let writer = tokio::spawn(async move {
        let mut held = writer_shared.held.subscribe();
        while let Some((arrived, chunk)) = rx.recv().await {
            let delay = writer_shared.controls.lock().unwrap().delay;
            tokio::time::sleep_until(arrived + delay).await;
            if held.wait_for(|h| !*h).await.is_err() {
                break;
            }
            if upstream_write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = upstream_write.shutdown().await;
    });
    // Answers: straight back, unless this connection's answers are withheld.
    let answers = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match upstream_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if withholding.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        if withholding.load(Ordering::SeqCst) {
            // The upstream closed after its withheld answer: the client must not learn even
            // that (it would retry); it waits until it gives up or dies.
            let _ = client_gone.wait_for(|gone| *gone).await;
        }
        let _ = client_write.shutdown().await;
    });
    let _ = reader.await;
    let _ = writer.await;
    let _ = answers.await;
}
