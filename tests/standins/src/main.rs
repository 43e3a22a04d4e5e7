//! Runs one stand-in as a process, for `scripts/demo` and `make standins`:
//!
//! ```text
//! powerpole-standins ssm --moto http://127.0.0.1:5000 [--listen 127.0.0.1:0]
//! powerpole-standins slack [--listen 127.0.0.1:0]
//! ```
//!
//! Prints the stand-in's URL on stdout (one line, flushed) and serves until killed: for `ssm`
//! the value for `AWS_ENDPOINT_URL_SSM`, for `slack` the API URL (`http://127.0.0.1:PORT/api`;
//! `response_url`s and the `/_standin/` control surface are on the same host and port).

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use powerpole_standins::slack::SlackStandin;
use powerpole_standins::ssm::SsmStandin;

const USAGE: &str = "usage: powerpole-standins ssm --moto URL [--listen ADDR]\n       \
                     powerpole-standins slack [--listen ADDR]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, flags) = args.split_first().context(USAGE)?;
    let listen: SocketAddr = flag(flags, "--listen")?
        .unwrap_or("127.0.0.1:0")
        .parse()
        .context("--listen takes an address such as 127.0.0.1:0")?;
    // Each arm keeps its stand-in alive until the process is killed.
    match command.as_str() {
        "ssm" => {
            let moto = flag(flags, "--moto")?.context("ssm needs --moto URL")?;
            let standin = SsmStandin::start_on(moto, listen).await?;
            announce(&standin.url())?;
            wait_for_signal().await
        }
        "slack" => {
            let standin = SlackStandin::start_on(listen).await?;
            announce(&standin.api_url())?;
            wait_for_signal().await
        }
        _ => bail!("unknown stand-in `{command}`\n{USAGE}"),
    }
}

/// The value after `name`, if `name` is given; every flag must be a known one with a value.
fn flag<'a>(flags: &'a [String], name: &str) -> anyhow::Result<Option<&'a str>> {
    let mut found = None;
    for pair in flags.chunks(2) {
        match pair {
            [key, value] if key == name => found = Some(value.as_str()),
            [key, _] if key == "--listen" || key == "--moto" => {}
            _ => bail!("unexpected arguments {pair:?}\n{USAGE}"),
        }
    }
    Ok(found)
}

fn announce(url: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
