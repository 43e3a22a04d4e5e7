//! Local stand-ins for the outside systems powerpole talks to, for its integration tests and
//! `make demo`. Nothing here needs an AWS account or a Slack workspace; everything listens on
//! loopback only.
//!
//! - [`slack`]: a recording stand-in of the Slack Web API (the product's outbound side).
//! - [`ssm`]: the SSM calls moto lacks (`DescribeInstanceInformation`), answered from moto's EC2
//!   state; every other request is passed through to moto untouched.
//! - [`sign`]: Slack's request signing (`v0=` HMAC-SHA256), byte-exact.
//! - [`driver`]: sends signed slash commands, interactions and events to the product the way
//!   Slack does (the product's inbound side).
//!
//! AWS itself is served by moto and MySQL by MariaDB; those are real servers, not written here.

pub mod driver;
pub mod sign;
pub mod slack;
pub mod ssm;

mod http_util;

/// Why a stand-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "`{0}` is not an http:// URL; give the moto server's base URL, e.g. http://127.0.0.1:5000"
    )]
    InvalidUrl(String),
}

/// The moto URL for tests: `POWERPOLE_TEST_MOTO_URL`, else `AWS_ENDPOINT_URL`.
///
/// # Panics
/// When neither is set, with a message that says how to start the stand-ins. Tests that need
/// moto call this first so that a missing moto fails loudly instead of hanging in SDK retries.
pub fn moto_url_from_env() -> String {
    ["POWERPOLE_TEST_MOTO_URL", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| {
            panic!(
                "this test needs moto: set POWERPOLE_TEST_MOTO_URL (or AWS_ENDPOINT_URL) to a running \
                 moto_server; start the stand-ins with `make standins`"
            )
        })
}
