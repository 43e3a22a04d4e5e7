//! `make bench`: the service's figures, each against a baseline measured in the same run on the
//! same machine, one line each: `figure: NAME = VALUE UNIT (goal GOAL)`.
//!
//! - the release binary `powerpole serve` (built by `cargo bench` with the release profile) runs
//!   against the stand-ins: moto for DynamoDB and Secrets Manager, the Slack stand-in (in this
//!   process) for the Web API and response URLs;
//! - the baseline is a bare axum server (this binary, run again with `--bare-axum`) that reads the
//!   same POST's body and answers it with the bytes `serve` answers `help` with (read from `serve`
//!   first), on the same runtime settings: both put the same response on the wire, so the ratio
//!   is the cost of the handling (signature, form, log line), not of the help text's length;
//! - ack throughput and p99: `wrk` (Debian's; `make bench` installs it) sends the same pre-signed
//!   `/powerpole help` to each for `ROUND_SECONDS` at 200 connections (a signature stays valid for
//!   5 minutes, and `help` has no follow-up, so this is the acknowledgement alone), in rounds
//!   alternating the two servers (bare, serve, serve, bare, bare, serve, ...) so that drift in the
//!   machine's load falls on both. Each round also reads the machine's steal time (`/proc/stat`:
//!   time the hypervisor gave this VM's CPUs to somebody else) and its idle time (how far from
//!   saturated the server and wrk kept the CPUs). On a shared VM steal comes in stalls of about
//!   100 ms, and a round with one has a p99 of 50-90 ms whichever server it measures, against 6-9
//!   ms without: a median over a few long rounds is decided by where the stalls fell. So rounds are
//!   short and run until each server has `CLEAN_ROUNDS` rounds without steal (at most
//!   `ROUND_LIMIT`); the p99 figure is the ratio of the medians over those rounds, printed beside
//!   the medians over all rounds, every round's ratio, steal and idle, so a reader can see what was
//!   set aside and why. Too few clean rounds is said, and the p99 figure is MISSED (undecided).
//!   Throughput is the ratio of the medians over all rounds: a stall costs a round a few percent
//!   of its requests, whichever server it falls on, and choosing rounds by steal would choose
//!   them by something that may follow a server's own load;
//! - serve logs as deployed: JSON lines on stderr, read by another process (as journald or a
//!   container runtime reads them), at the default `info` level;
//! - RSS idle: `VmRSS` after start-up and one request; RSS after a burst: `VmHWM` (the peak)
//!   after `BURST` signed `request` commands at 200 at once. The bench's `billing` target names a
//!   database nobody runs, so `serve` refuses them at once (what the first was told is printed):
//!   this is the memory of the acknowledgement under load, not of 10,000 follow-ups;
//! - the binary size of `powerpole` as built (no baseline: it does not vary between runs).
//!
//! The approve -> hand-over figure is printed by `benches/handover.rs`.

#[path = "../tests/slack_support/mod.rs"]
mod slack_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use powerpole_standins::driver::{SlackDriver, SlashCommand};
use powerpole_standins::slack::SlackStandin;
use slack_support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const CONNECTIONS: usize = 200;
/// One round of wrk per server: short, so that most rounds see no stall of the hypervisor.
const ROUND_SECONDS: u64 = 2;
/// Rounds without steal wanted per server: the figures are their medians.
const CLEAN_ROUNDS: usize = 12;
/// Rounds without steal below which a figure is undecided (MISSED).
const CLEAN_ENOUGH: usize = 5;
/// Rounds per server at most, however many had steal.
const ROUND_LIMIT: usize = 45;
/// Steal in a round (in `/proc/stat` ticks, 10 ms each) up to which the round counts as clean:
/// one tick is the counter's resolution.
const CLEAN_STEAL_TICKS: u64 = 1;
const BURST: usize = 10_000;
const MB: f64 = 1024.0 * 1024.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--bare-axum") {
        let answer = std::fs::read(args.get(at + 1).expect("--bare-axum ANSWER_FILE")).expect("the answer file");
        return bare_axum(answer);
    }
    install_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(figures());
}

/// The baseline: axum reading the POST's body and answering `answer` (the bytes `serve` answers
/// `help` with, so both put the same response on the wire) as JSON.
fn bare_axum(answer: Vec<u8>) {
    let answer = axum::body::Bytes::from(answer);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let app = axum::Router::new().route(
            "/slack/commands",
            axum::routing::post(move |_body: axum::body::Bytes| {
                let answer = answer.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], answer) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        println!("{}", listener.local_addr().expect("an address"));
        axum::serve(listener, app).await.expect("serves");
    });
}

/// A child process that is killed when this ends, however it ends.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

impl Child {
    fn pid(&self) -> u32 {
        self.0.id().expect("the child runs")
    }
}

/// `VmRSS` or `VmHWM` of `pid`, in bytes.
fn memory(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process exists");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|rest| rest.trim_start_matches(':').trim().trim_end_matches("kB").trim().to_string()))
        .and_then(|v| v.parse().ok())
        .expect("the field is there");
    kb * 1024.0
}

async fn start_bare(answer: &Path) -> (Child, String) {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("this binary"))
        .arg("--bare-axum")
        .arg(answer)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the baseline starts");
    let stdout = child.stdout.take().expect("piped");
    let addr = BufReader::new(stdout).lines().next_line().await.expect("reads").expect("an address");
    (Child(child), format!("http://{addr}"))
}

/// Starts `powerpole serve` on a fresh table, with a reachable `billing` target; returns it and
/// its base URL once it listens.
async fn start_powerpole(slack: &SlackStandin, dir: &Path) -> (Child, String) {
    let unique = powerpole::domain::SessionId::random().to_string();
    let table = format!("powerpole-bench-{unique}");
    powerpole::store::dynamo::create_table(&dynamodb().await, &table).await.expect("the table is created");
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let admin_secret = format!("powerpole/bench-admin-{unique}");
    aws_sdk_secretsmanager::Client::new(&aws).create_secret().name(&admin_secret).secret_string("{}").send().await.expect("moto keeps the secret");
    let config = config_text(&slack.api_url())
        .replace("powerpole/billing-admin", &admin_secret)
        .replace("powerpole/orders-admin", &admin_secret)
        .replace("{ env = \"UNUSED_IN_TESTS\" }", "{ env = \"POWERPOLE_BENCH_SIGNING_SECRET\" }")
        + &format!("\n[store]\ntable = \"{table}\"\n");
    let file = dir.join("powerpole-bench.toml");
    std::fs::write(&file, config).expect("the config is written");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .env("POWERPOLE_BENCH_SIGNING_SECRET", SECRET)
        .env("SLACK_BOT_TOKEN", "xoxb-powerpole-bench")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("powerpole starts");
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("\"addr\":\"").nth(1) {
                return rest.split('"').next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("powerpole listens within a minute")
    .expect("powerpole logs its address");
    // The per-request log lines go to stderr, as in production; keep reading them.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Child(child), format!("http://{addr}"))
}

/// A signed `/powerpole help` as Slack sends it, for wrk to repeat (valid for 5 minutes).
fn wrk_script(dir: &Path) -> PathBuf {
    let body = serde_urlencoded::to_string([
        ("token", "standin-verification-token"),
        ("team_id", "T0BENCH"),
        ("team_domain", "bench"),
        ("channel_id", ACCESS),
        ("channel_name", "powerpole"),
        ("user_id", ALICE),
        ("user_name", "alice"),
        ("command", "/powerpole"),
        ("text", "help"),
        ("api_app_id", "A0BENCH"),
        ("is_enterprise_install", "false"),
        ("response_url", "http://127.0.0.1:9/response/bench"),
        ("trigger_id", "1.2.bench"),
    ])
    .expect("a form");
    let now = chrono::Utc::now().timestamp();
    let [(ts_name, ts), (sig_name, sig)] = powerpole_standins::sign::headers(SECRET, now, body.as_bytes());
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{body}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.headers[\"{ts_name}\"] = \"{ts}\"\nwrk.headers[\"{sig_name}\"] = \"{sig}\"\n"
    );
    let file = dir.join("help.lua");
    std::fs::write(&file, script).expect("the script is written");
    file
}

/// One wrk run against one server.
#[derive(Debug, Clone, Copy)]
struct Round {
    rps: f64,
    /// The 99th percentile latency, in ms.
    p99: f64,
    /// The machine's steal time during the run, in `/proc/stat` ticks; `None` where it cannot
    /// be read (not Linux).
    steal: Option<u64>,
    /// The machine's idle time during the run, in `/proc/stat` ticks (both CPUs together): how
    /// far from saturated the server and wrk kept them.
    idle: Option<u64>,
}

impl Round {
    fn clean(&self) -> bool {
        self.steal.is_none_or(|ticks| ticks <= CLEAN_STEAL_TICKS)
    }
}

/// The `idle` and `steal` columns of `/proc/stat`'s `cpu` line: ticks no task wanted the CPUs,
/// and ticks the hypervisor took them from this VM.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let columns: Vec<u64> = stat.lines().find(|l| l.starts_with("cpu "))?.split_whitespace().skip(1).map(|c| c.parse().ok()).collect::<Option<_>>()?;
    Some((*columns.get(3)?, *columns.get(7)?))
}

/// One wrk run of `ROUND_SECONDS` against `base`.
fn wrk(script: &Path, base: &str) -> Round {
    let before = cpu_ticks();
    let out = std::process::Command::new("wrk")
        .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{ROUND_SECONDS}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("{base}/slack/commands"))
        .output()
        .expect("wrk runs (make bench installs it: apt-get install wrk)");
    let during = before.zip(cpu_ticks()).map(|((idle, steal), (idle_after, steal_after))| (idle_after.saturating_sub(idle), steal_after.saturating_sub(steal)));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no Requests/sec in:\n{text}"));
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%")).map(|v| duration_ms(v.trim())).unwrap_or_else(|| panic!("no 99% in:\n{text}"));
    Round { rps, p99, idle: during.map(|d| d.0), steal: during.map(|d| d.1) }
}

/// Alternated rounds (bare, serve, serve, bare, ...) until each server has [`CLEAN_ROUNDS`]
/// clean ones or [`ROUND_LIMIT`] in all; each round is printed as it ends.
fn alternated_rounds(script: &Path, bare_url: &str, pp_url: &str) -> (Vec<Round>, Vec<Round>) {
    let (mut bare_runs, mut pp_runs): (Vec<Round>, Vec<Round>) = (Vec::new(), Vec::new());
    let clean = |runs: &[Round]| runs.iter().filter(|r| r.clean()).count();
    while (clean(&bare_runs) < CLEAN_ROUNDS || clean(&pp_runs) < CLEAN_ROUNDS) && pp_runs.len() < ROUND_LIMIT {
        // Which server goes first alternates too (bare, serve, serve, bare, ...), so that nothing
        // periodic on the machine falls on one server's rounds more than on the other's.
        let (bare, pp) = if pp_runs.len() % 2 == 0 {
            let bare = wrk(script, bare_url);
            (bare, wrk(script, pp_url))
        } else {
            let pp = wrk(script, pp_url);
            (wrk(script, bare_url), pp)
        };
        let ticks = |r: &Round| format!("steal {}, idle {}", r.steal.map_or("?".to_string(), |t| t.to_string()), r.idle.map_or("?".to_string(), |t| t.to_string()));
        println!(
            "  round {}: powerpole {:.0} req/s p99 {:.2} ms ({}); bare axum {:.0} req/s p99 {:.2} ms ({}); ratio {:.2} x, p99 {:.2} x",
            pp_runs.len() + 1,
            pp.rps,
            pp.p99,
            ticks(&pp),
            bare.rps,
            bare.p99,
            ticks(&bare),
            pp.rps / bare.rps,
            pp.p99 / bare.p99
        );
        bare_runs.push(bare);
        pp_runs.push(pp);
    }
    (bare_runs, pp_runs)
}

/// wrk's `12.34ms`, `567.00us`, `1.02s`, in milliseconds.
fn duration_ms(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let value: f64 = text[..split].parse().unwrap_or(f64::NAN);
    match &text[split..] {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => f64::NAN,
    }
}

/// `BURST` signed `request` commands, `CONNECTIONS` at once; how many were answered "busy", and
/// the first answer's text (what the burst was told: a filing, or a refusal).
async fn burst(driver: &SlackDriver) -> (usize, String) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders = (0..CONNECTIONS).map(|_| {
        let (driver, next) = (driver.clone(), next.clone());
        tokio::spawn(async move {
            let (mut busy, mut first) = (0, None);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= BURST {
                    return (busy, first);
                }
                let text = format!("request billing READ 1h burst #{i}");
                let reply = driver.command(SlashCommand::new(ALICE, "alice", ACCESS, &text)).await.expect("an answer");
                assert_eq!(reply.status, 200, "{}", reply.body);
                busy += usize::from(reply.body.contains("busy"));
                if i == 0 {
                    first = Some(reply.body);
                }
            }
        })
    });
    let results = futures::future::join_all(senders).await.into_iter().map(|r| r.expect("the sender ran"));
    results.fold((0, String::new()), |(busy, first), (b, f)| (busy + b, f.unwrap_or(first)))
}

/// Waits until the follow-ups stop posting approval cards (the pool has drained).
async fn drained(slack: &SlackStandin) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = usize::MAX;
    while Instant::now() < deadline {
        let now = slack.calls_to("chat.postMessage").len();
        if now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Prints one figure line, ending with `ok` or `MISSED` against its goal.
fn figure(name: &str, value: f64, unit: &str, goal: &str, met: bool) {
    println!("figure: {name} = {value:.2} {unit} (goal {goal}) {}", if met { "ok" } else { "MISSED" });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `min..max` of `v`, for the spread beside a median.
fn spread(v: &[f64]) -> String {
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    format!("{lo:.2}..{hi:.2}")
}

/// The body of `help` once the server behind `driver` answers 200.
async fn help_when_ready(driver: &SlackDriver) -> String {
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = driver.command(SlashCommand::new(ALICE, "alice", ACCESS, "help")).await.expect("an answer");
        if reply.status == 200 {
            return reply.body;
        }
        assert!(reply.status == 503 && Instant::now() < ready_by, "not ready within a minute: {} {}", reply.status, reply.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn figures() {
    let dir = std::env::temp_dir().join(format!("powerpole-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let slack = SlackStandin::start().await;
    slack.add_user(ALICE, "alice@example.com", "Europe/Berlin");
    let (pp, pp_url) = start_powerpole(&slack, &dir).await;
    let pp_driver = SlackDriver::new(&pp_url, SECRET).with_slack(&slack);
    // `serve` answers 503 ("starting") until its start-up checks pass: wait for it to be ready.
    let help = help_when_ready(&pp_driver).await;
    // The baseline answers the same bytes, so the ratio is the handling's, not the help text's.
    let answer = dir.join("help.json");
    std::fs::write(&answer, &help).expect("the answer is written");
    let (bare, bare_url) = start_bare(&answer).await;
    let bare_driver = SlackDriver::new(&bare_url, SECRET).with_slack(&slack);
    assert_eq!(help_when_ready(&bare_driver).await, help, "the baseline answers what serve answers");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (bare_idle, pp_idle) = (memory(bare.pid(), "VmRSS"), memory(pp.pid(), "VmRSS"));

    let script = wrk_script(&dir);
    let (bare_runs, pp_runs) = alternated_rounds(&script, &bare_url, &pp_url);
    let clean = |runs: &[Round]| runs.iter().filter(|r| r.clean()).copied().collect::<Vec<Round>>();
    let (bare_clean, pp_clean) = (clean(&bare_runs), clean(&pp_runs));
    let medians = |runs: &[Round]| (median(runs.iter().map(|r| r.rps).collect()), median(runs.iter().map(|r| r.p99).collect()));
    let ((bare_rps, bare_p99), (pp_rps, pp_p99)) = (medians(&bare_clean), medians(&pp_clean));
    let ((bare_rps_all, bare_p99_all), (pp_rps_all, pp_p99_all)) = (medians(&bare_runs), medians(&pp_runs));
    let decided = bare_clean.len().min(pp_clean.len()) >= CLEAN_ENOUGH;

    let (bare_busy, _) = burst(&bare_driver).await;
    let started = Instant::now();
    let (pp_busy, pp_first) = burst(&pp_driver).await;
    let burst_took = started.elapsed();
    drained(&slack).await;
    let (bare_peak, pp_peak) = (memory(bare.pid(), "VmHWM"), memory(pp.pid(), "VmHWM"));
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_powerpole")).expect("the binary").len() as f64;

    let rounds = pp_runs.len();
    println!(
        "speed: {CONNECTIONS} connections; {rounds} alternated rounds of wrk {ROUND_SECONDS} s of `/powerpole help` per server (both answer the same {}-byte JSON); burst of {BURST} `request` commands",
        help.len()
    );
    println!(
        "  rounds without steal (<= {CLEAN_STEAL_TICKS} tick of /proc/stat): powerpole {} of {rounds}, bare axum {} of {rounds}{}",
        pp_clean.len(),
        bare_clean.len(),
        if decided { String::new() } else { format!("; fewer than {CLEAN_ENOUGH}: the machine's hypervisor stalled too often to decide") }
    );
    let ticks_median = |runs: &[Round], of: fn(&Round) -> Option<u64>| median(runs.iter().filter_map(of).map(|t| t as f64).collect());
    println!(
        "  machine per round (medians of /proc/stat's 10 ms ticks over both CPUs, {} in a round): powerpole idle {:.0}, steal {:.0}; bare axum idle {:.0}, steal {:.0}",
        2 * 100 * ROUND_SECONDS,
        ticks_median(&pp_runs, |r| r.idle),
        ticks_median(&pp_runs, |r| r.steal),
        ticks_median(&bare_runs, |r| r.idle),
        ticks_median(&bare_runs, |r| r.steal)
    );
    println!("  ack (medians of the rounds without steal): powerpole {pp_rps:.0} req/s, p99 {pp_p99:.2} ms; bare axum {bare_rps:.0} req/s, p99 {bare_p99:.2} ms");
    println!(
        "  ack (medians of all {rounds} rounds): powerpole {pp_rps_all:.0} req/s, p99 {pp_p99_all:.2} ms; bare axum {bare_rps_all:.0} req/s, p99 {bare_p99_all:.2} ms ({:.2} x, p99 {:.2} x)",
        pp_rps_all / bare_rps_all,
        pp_p99_all / bare_p99_all
    );
    println!("  rss: powerpole idle {:.1} MB, peak after burst {:.1} MB; bare axum idle {:.1} MB, peak {:.1} MB", pp_idle / MB, pp_peak / MB, bare_idle / MB, bare_peak / MB);
    println!(
        "  burst: powerpole answered {} of {BURST} busy in {:.1} s; {} approval cards posted; bare axum {bare_busy} busy",
        pp_busy,
        burst_took.as_secs_f64(),
        slack.calls_to("chat.postMessage").len()
    );
    let told: String = serde_json::from_str::<serde_json::Value>(&pp_first).ok().and_then(|v| v["text"].as_str().map(str::to_owned)).unwrap_or(pp_first);
    println!("  burst: the first request was told: {}", told.chars().take(200).collect::<String>());
    let (rps, p99) = (pp_rps_all / bare_rps_all, pp_p99 / bare_p99);
    let ranges = |pp: &[Round], bare: &[Round], field: fn(&Round) -> f64| {
        format!("powerpole {}, bare axum {}", spread(&pp.iter().map(field).collect::<Vec<_>>()), spread(&bare.iter().map(field).collect::<Vec<_>>()))
    };
    figure("ack_throughput", rps, &format!("x bare axum (medians of all {rounds} rounds; req/s {})", ranges(&pp_runs, &bare_runs, |r| r.rps)), ">= 0.70 x", rps >= 0.70);
    let basis = format!("medians of {} and {} rounds without steal", pp_clean.len(), bare_clean.len());
    figure("ack_p99", p99, &format!("x bare axum ({basis}; p99 ms {})", ranges(&pp_clean, &bare_clean, |r| r.p99)), "<= 1.50 x", decided && p99 <= 1.50);
    figure("rss_idle", pp_idle / MB, &format!("MB ({:.2} x bare axum's {:.1} MB)", pp_idle / bare_idle, bare_idle / MB), "< 20 MB", pp_idle < 20.0 * MB);
    figure("rss_after_burst", pp_peak / MB, &format!("MB ({:.2} x bare axum's {:.1} MB)", pp_peak / bare_peak, bare_peak / MB), "< 64 MB", pp_peak < 64.0 * MB);
    figure("binary_size", size / MB, "MB", "< 25 MB", size < 25.0 * MB);
    lambda_zips();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Lambda zips `make dist` left in `dist/lambda/<arch>/<function>/bootstrap.zip`, one figure
/// each (Lambda takes a zip of up to 50 MB directly); a line saying so when there are none.
fn lambda_zips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/lambda");
    let mut found = 0;
    for arch in ["arm64", "x86_64"] {
        for function in ["slack-handler", "slack-worker", "sweeper", "export"] {
            if let Ok(meta) = std::fs::metadata(root.join(arch).join(function).join("bootstrap.zip")) {
                found += 1;
                let mb = meta.len() as f64 / MB;
                figure(&format!("lambda_zip_{arch}_{}", function.replace('-', "_")), mb, "MB", "< 50 MB, Lambda's direct upload limit", mb < 50.0);
            }
        }
    }
    if found == 0 {
        println!("lambda zips: none (run `make dist` first: the zips are its output); no figure");
    }
}
