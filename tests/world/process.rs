//! The real `powerpole` binary in a world: `serve` as a child process that a test can SIGKILL
//! and start again, and one-shot commands (`reconcile`). The configuration is written to a
//! directory of its own, removed when the process is dropped; the child is killed when dropped,
//! however the test ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use powerpole_standins::driver::SlackDriver;

use super::{suffix, Http, World, SECRET};

/// How long `serve` may take to start listening (a cold binary reads secrets from moto first).
const START_WITHIN: Duration = Duration::from_secs(30);

/// A configuration file in a directory of its own.
pub struct ConfigFile {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn write(text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("powerpole-process-{}", suffix()));
        std::fs::create_dir_all(&dir).expect("create the config directory");
        let path = dir.join("powerpole.toml");
        std::fs::write(&path, text).expect("write the config file");
        ConfigFile { dir, path }
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `powerpole serve`.
pub struct Serve {
    child: Option<tokio::process::Child>,
    pub addr: SocketAddr,
    pub http: Http,
    logs: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
    /// When the process said it was listening.
    pub listening_after: Duration,
    _config: ConfigFile,
}

impl Serve {
    /// Starts `powerpole serve` with `config_text` in `world`'s environment plus `extra_env`, and
    /// returns once `/healthz` answers and the process says it serves Slack.
    pub async fn start(world: &World, config_text: &str, extra_env: &[(&str, String)]) -> Serve {
        let config = ConfigFile::write(config_text);
        let started = Instant::now();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_powerpole"));
        command
            .args(["serve", "--config"])
            .arg(&config.path)
            .args(["--listen", "127.0.0.1:0"])
            .envs(world.process_env())
            .env("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the powerpole binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let sink = logs.clone();
        // Read stderr to the end, always: a full pipe would stop the child.
        tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("listening for Slack") {
                    let addr = line.split("\"addr\":\"").nth(1).and_then(|rest| rest.split('"').next()).and_then(|a| a.parse().ok());
                    if let (Some(addr), Some(tx)) = (addr, addr_tx.take()) {
                        let _ = tx.send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match tokio::time::timeout(START_WITHIN, addr_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let _ = child.start_kill();
                panic!("serve did not listen within {START_WITHIN:?}; its log:\n{}", logs.lock().unwrap().join("\n"));
            }
        };
        let listening_after = started.elapsed();
        let health = wait_until(Duration::from_secs(10), || async {
            reqwest::get(format!("http://{addr}/healthz")).await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
        assert!(health.is_some(), "GET /healthz did not answer");
        // `/healthz` answers from the first moment; Slack is served once the service is assembled.
        let ready = wait_until(START_WITHIN, || async { logs.lock().unwrap().iter().any(|l| l.contains("ready: Slack requests are served")).then_some(()) }).await;
        assert!(ready.is_some(), "serve never became ready; its log:\n{}", logs.lock().unwrap().join("\n"));
        let driver = SlackDriver::new(&format!("http://{addr}"), SECRET).with_slack(&world.slack);
        Serve { child: Some(child), addr, http: Http { addr, driver }, logs, started, listening_after, _config: config }
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL the service");
        }
    }

    /// SIGTERM, then wait up to `within` for the process to exit; its exit code (`None` if it
    /// was still running at `within`, or died of a signal).
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = child.start_kill();
                None
            }
        }
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Log lines containing every one of `words`.
    pub fn log_lines(&self, words: &[&str]) -> Vec<String> {
        self.logs.lock().unwrap().iter().filter(|l| words.iter().all(|w| l.contains(w))).cloned().collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Runs `powerpole ARGS --config FILE` to the end in `world`'s environment plus `extra_env`;
/// returns the exit code and stdout (stderr is appended to a failure message by the caller).
pub async fn run_command(world: &World, args: &[&str], config_text: &str, extra_env: &[(&str, String)]) -> (i32, String, String) {
    let config = ConfigFile::write(config_text);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_powerpole"));
    command.args(args).arg("--config").arg(&config.path).envs(world.process_env()).env("RUST_LOG", "warn").kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command finishes within a minute")
        .expect("the powerpole binary runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Polls `probe` every 50 ms until it gives `Some`, or `within` has passed.
pub async fn wait_until<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
