//! The `powerpole` binary the demo drives: `table create`, and `serve` as a child process that is
//! killed on every exit path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// The `powerpole` binary built next to this program (`target/debug/powerpole`).
pub struct Powerpole {
    bin: PathBuf,
}

/// What `serve` gets in its environment beyond the demo's own (the AWS variables).
pub struct ServeEnv<'a> {
    pub signing_secret: &'a str,
    pub bot_token: &'a str,
    pub ssm_endpoint: &'a str,
}

impl Powerpole {
    /// `target/debug/examples/demo` -> `target/debug/powerpole`.
    pub fn beside_this_program() -> Result<Self> {
        let exe = std::env::current_exe().context("where is this program?")?;
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("powerpole"))
            .context("this program is not in target/debug/examples")?;
        if !bin.is_file() {
            bail!("{} does not exist: build it with `cargo build --bin powerpole` (make demo does)", bin.display());
        }
        Ok(Self { bin })
    }

    /// The subcommands the demo needs that this build does not have.
    pub fn missing_commands(&self) -> Vec<&'static str> {
        [("serve", &["serve", "--help"][..]), ("table create", &["table", "create", "--help"][..])]
            .into_iter()
            .filter(|(_, args)| {
                let ok = std::process::Command::new(&self.bin)
                    .args(*args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                !ok
            })
            .map(|(name, _)| name)
            .collect()
    }

    /// `powerpole table create --config FILE`; returns what it printed.
    pub async fn table_create(&self, config: &Path) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(["table", "create", "--config"])
            .arg(config)
            .output()
            .await
            .context("run powerpole table create")?;
        let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("powerpole table create failed ({}): {}", out.status, printed.trim());
        }
        Ok(printed.trim().to_owned())
    }

    /// Starts `powerpole serve` on a free loopback port, its output going to `log`.
    pub fn serve(&self, config: &Path, env: ServeEnv<'_>, log: &Path) -> Result<Service> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let out = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(&self.bin)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &listen])
            .env("SLACK_SIGNING_SECRET", env.signing_secret)
            .env("SLACK_BOT_TOKEN", env.bot_token)
            .env("AWS_ENDPOINT_URL_SSM", env.ssm_endpoint)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .context("start powerpole serve")?;
        Ok(Service { child, url: format!("http://{listen}"), log: log.to_owned() })
    }
}

/// A running `powerpole serve`. Dropping it kills the process.
pub struct Service {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Service {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until `/healthz` answers 200, then until `/readyz` does (serve answers Slack only
    /// once it is assembled and has logged in to each target as a grant does; until then every
    /// Slack request gets 503); fails at once if the process exits.
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        self.wait_for("healthz", deadline, timeout).await?;
        self.wait_for("readyz", deadline, timeout).await
    }

    async fn wait_for(&mut self, route: &str, deadline: Instant, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/{route}", self.url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("powerpole serve exited ({status}) before answering /{route}; the end of its log:\n{}", self.log_tail(15));
            }
            if let Ok(answer) = http.get(&url).send().await {
                if answer.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer 200 within {timeout:?}; the end of the log:\n{}", self.log_tail(15));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running (it must be, for the whole lifecycle).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `n` lines of the service's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // kill_on_drop would do it too; doing it here makes the intent plain.
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
