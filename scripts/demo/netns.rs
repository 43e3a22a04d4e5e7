//! A stand-in host holding a given 10.200.x.y address (a network namespace on the test-host bridge,
//! made by scripts/netns.sh), so that MariaDB sees connections coming from that address, as it
//! would from a real bastion. Removed again when dropped.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

use crate::handover::MysqlLogin;

pub struct Namespace {
    script: PathBuf,
    pub name: String,
    pub ip: String,
}

/// What the `mariadb` client did.
pub struct ClientRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// What it printed, stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr).trim_end().to_owned()
    }
}

impl Namespace {
    /// `scripts/netns.sh add NAME IP`, tried twice: other processes making namespaces at the same
    /// moment (tests running beside the demo) can make one attempt fail.
    pub async fn add(script: PathBuf, name: &str, ip: &str) -> Result<Self> {
        // Made before the script runs, so that dropping it removes whatever part of it exists.
        let ns = Self { script, name: name.to_owned(), ip: ip.to_owned() };
        let mut failures = Vec::new();
        for _ in 0..2 {
            let out = Command::new(&ns.script).args(["add", name, ip]).output().await.context("run scripts/netns.sh add")?;
            if out.status.success() {
                return Ok(ns);
            }
            failures.push(String::from_utf8_lossy(&out.stderr).trim().to_owned());
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        bail!("scripts/netns.sh add {name} {ip} failed (it needs root and iproute2): {}", failures.join("; then: "))
    }

    /// Runs `mariadb -h HOST -P PORT -u USER -e SQL` from this address, the password in
    /// `MYSQL_PWD` (never on a command line, where `ps` would show it).
    pub async fn mariadb(&self, login: &MysqlLogin, sql: &str) -> Result<ClientRun> {
        let out = Command::new(&self.script)
            .args(["exec", &self.name, "mariadb", "--no-defaults", "--connect-timeout=5", "--table"])
            .args(["-h", &login.host, "-P", &login.port.to_string(), "-u", &login.user])
            .env("MYSQL_PWD", &login.password)
            .args(["-e", sql])
            .stdin(Stdio::null())
            .output()
            .await
            .context("run mariadb in the namespace")?;
        Ok(ClientRun {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.script)
            .args(["del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
