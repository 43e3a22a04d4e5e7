//! Revocation on time with the real adapters (issue 23 item 3): `N` sessions live at once, all of
//! them due in the same second (half by their deadline, half ended by their requester at that
//! second), swept by the production sweeper (`run_sweeper`, what `serve` runs) with the real
//! adapters: MariaDB for the accounts, moto for EC2 and DynamoDB, the SSM and Slack stand-ins.
//! Measured from outside, as a security team would check: how long after the deadline each
//! account is gone from `mysql.user` and each bastion is `terminated` in moto; p50, p99 and max.
//!
//! Four scenarios: the sessions on one target and spread over three; each with
//! `instance_endpoints` empty (the kill goes to the admin host, through the same pool: the case
//! that starved in issue 23) and set to a second name of the same server. The sessions are made
//! straight through the adapters (launch, grant, stored active) so that only the revocation is
//! timed. The database is a MariaDB of the bench's own that refuses logins without TLS
//! (`require_secure_transport`), reached as a deployment reaches Aurora: TLS verified against the
//! target's CA bundle, for the admin connection and each kill, so every new connection pays its
//! handshake. Run with `cargo bench --bench revocation_real` after `make standins` and
//! `source .local/standins.env`.

#[path = "../tests/world/mod.rs"]
mod world;
#[path = "../tests/grants_support/mod.rs"]
mod grants_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mysql_async::prelude::Queryable;

use powerpole::bastion::LaunchSpec;
use powerpole::domain::{AccessDuration, Actor, AuditEvent, AuditKind, DbUsername, Requester, Role, Session, SessionId, SlackUserId, State};
use powerpole::grants::AccountRequest;
use powerpole::workflow::{run_sweeper, SystemClock};
use grants_support::private::{Certs, PrivateMariadb};
use world::{Options, World, DB_HOST_ON_BRIDGE};

/// Sessions per scenario: three times a pool of four, twice over.
const N: usize = 24;
/// The deadline is this long after the sessions are in place (the sweeper is running by then).
const LEAD: Duration = Duration::from_secs(8);
/// How long an account or bastion may take before it counts as never removed.
const GIVE_UP: Duration = Duration::from_secs(120);
/// The goal for p99 and max, deadline -> gone.
const GOAL_SECS: f64 = 5.0;

fn figure(name: &str, value: f64, unit: &str, goal: &str, met: bool) {
    println!("figure: {name} = {value:.3} {unit} (goal {goal}) {}", if met { "ok" } else { "MISSED" });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// The TLS-only MariaDB the sessions live on, and its CA.
struct Database {
    server: PrivateMariadb,
    certs: Certs,
}

impl Database {
    /// Root over verified TLS (the server refuses logins without it).
    async fn root(&self) -> mysql_async::Conn {
        let root = self.server.server();
        root.login_over_tls(&root.user, &root.password, &self.certs.ca).await.expect("root logs in to the bench's MariaDB over TLS")
    }
}

/// The world's configuration with `targets` targets on the bench's MariaDB (`billing`,
/// `billing2`, ...), TLS verified against its CA, each with `instance_endpoints` as given, and a
/// one-second tick.
fn config_text(world: &World, db: &Database, targets: usize, instance_endpoints: &[&str]) -> String {
    let base = world.config_text();
    let at = base.find("[targets.billing]").expect("the billing target");
    // Not set at all for "without" (an empty list is refused: the key lists every instance).
    let endpoints = match instance_endpoints {
        [] => String::new(),
        list => format!("instance_endpoints = [{}]\n", list.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")),
    };
    let tls = format!("tls_ca_bundle = \"{}\"\n", db.certs.ca.display());
    let block = base[at..]
        .replace("[targets.billing]\n", &format!("[targets.billing]\n{endpoints}{tls}"))
        .replace(&format!("writer_endpoint = \"{DB_HOST_ON_BRIDGE}\""), "writer_endpoint = \"127.0.0.1\"")
        .replace(&format!("port = {}\n", world.db.port), &format!("port = {}\n", db.server.port))
        .replace("admin_tls = \"disabled\"\n", "")
        .replace("local_endpoint = true\n", "");
    assert!(block.contains(&format!("port = {}", db.server.port)) && !block.contains("admin_tls"), "the bench's target block:\n{block}");
    let mut text = format!("{}{block}", &base[..at]);
    for t in 2..=targets {
        text.push_str(&block.replace("[targets.billing]", &format!("[targets.billing{t}]")));
    }
    text
}

struct Scenario {
    name: &'static str,
    targets: usize,
    instance_endpoints: &'static [&'static str],
}

async fn run(world: &World, db: &Database, scenario: &Scenario, round: usize) {
    let text = config_text(world, db, scenario.targets, scenario.instance_endpoints);
    let app = world.app_with(&text, Arc::new(SystemClock)).await;
    let lifecycle = app.lifecycle.clone();
    let targets: Vec<_> = app.config.targets.values().cloned().collect();
    let deadline_at = Instant::now() + LEAD;
    let deadline = Utc::now() + chrono::Duration::from_std(LEAD).unwrap_or_default();
    let mut live = Vec::new();
    for n in 0..N {
        let target = &targets[n % targets.len()];
        let user = format!("rv{round}x{n}{}", world.id.chars().filter(char::is_ascii_alphanumeric).take(6).collect::<String>()).to_ascii_lowercase();
        let (Ok(slack_id), Ok(db_user), Ok(ten)) = (SlackUserId::parse(&format!("U0RV{round}X{n}")), DbUsername::parse(&user), AccessDuration::from_minutes(10)) else {
            panic!("the bench's names are valid: {user}");
        };
        let requester = Requester { slack_id: slack_id.clone(), email: format!("{user}@example.com"), db_user: db_user.clone(), tz: None };
        let id = SessionId::random();
        let now = Utc::now();
        let mut s = Session::new(id.clone(), requester, target.name.clone(), Role::Read, ten, "RV-1 bench".into(), now, ten);
        s.state = State::Active;
        s.approved_at = Some(now);
        s.handed_over_at = Some(now);
        let ends = n % 2 == 1;
        // Half expire at the deadline; the other half are ended by their requester at that second.
        let expires = if ends { deadline + chrono::Duration::hours(1) } else { deadline };
        (s.expires_at, s.warn_at, s.warned) = (Some(expires), Some(expires), true);
        let spec = LaunchSpec::new(id.clone(), slack_id.clone(), &s.requester.email, target);
        let instance = lifecycle.bastions.launch(&spec).await.expect("moto launches the bastion");
        let host = instance.private_ip.to_string();
        let request = AccountRequest { earlier_attempt: false, user: db_user.clone(), host: host.clone(), role: Role::Read };
        lifecycle.grants.create_account(target, &request).await.expect("MariaDB creates the account");
        (s.instance_id, s.private_ip, s.account_host) = (Some(instance.id.clone()), Some(host.clone()), Some(host.clone()));
        app.workflow.store.create(&s, &AuditEvent::ok(AuditKind::Requested, Actor::System, now, "revocation bench")).await.expect("the store keeps the session");
        live.push((id, slack_id, user, host, instance.id, ends));
    }
    assert!(Instant::now() < deadline_at, "setting up {N} sessions took longer than {LEAD:?}: raise LEAD");
    let sweeper = tokio::spawn(run_sweeper(lifecycle.clone(), Duration::from_secs(1), app.workflow.wake.clone()));

    // The ends, all at the deadline's second.
    tokio::time::sleep_until(deadline_at.into()).await;
    let enders: Vec<_> = live
        .iter()
        .filter(|l| l.5)
        .map(|(id, who, ..)| {
            let (wf, notifier, id, who) = (app.workflow.clone(), app.lifecycle.notifier.clone(), id.clone(), who.clone());
            tokio::spawn(async move { wf.end(notifier.as_ref(), &who, &id).await.map(|_| ()) })
        })
        .collect();

    // Watch from outside until everything is gone or GIVE_UP.
    let mut root = db.root().await;
    let mut dropped: BTreeMap<String, f64> = BTreeMap::new();
    let mut terminated: BTreeMap<String, f64> = BTreeMap::new();
    while (dropped.len() < N || terminated.len() < N) && deadline_at.elapsed() < GIVE_UP {
        let at = deadline_at.elapsed().as_secs_f64();
        let accounts: Vec<(String, String)> = root.exec("SELECT User, Host FROM mysql.user WHERE User LIKE ?", (format!("rv{round}x%"),)).await.unwrap_or_default();
        for (_, _, user, host, _, _) in &live {
            if !dropped.contains_key(user) && !accounts.iter().any(|(u, h)| u == user && h == host) {
                dropped.insert(user.clone(), at);
            }
        }
        let ids: Vec<String> = live.iter().map(|l| l.4.clone()).filter(|i| !terminated.contains_key(i)).collect();
        if !ids.is_empty() {
            if let Ok(answer) = world.ec2.describe_instances().set_instance_ids(Some(ids)).send().await {
                for i in answer.reservations().iter().flat_map(|r| r.instances()) {
                    let gone = i.state().and_then(|s| s.name()).is_some_and(|n| matches!(n.as_str(), "shutting-down" | "terminated"));
                    if let (true, Some(id)) = (gone, i.instance_id()) {
                        terminated.insert(id.to_string(), at);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = futures::future::join_all(enders).await.into_iter().filter(|r| !matches!(r, Ok(Ok(())))).count();
    sweeper.abort();

    let report = |what: &str, gone: &BTreeMap<String, f64>| {
        let mut lags: Vec<f64> = gone.values().map(|a| a.max(0.0)).collect();
        lags.sort_by(|a, b| a.total_cmp(b));
        let (p50, p99, max) = (percentile(&lags, 0.5), percentile(&lags, 0.99), lags.last().copied().unwrap_or(f64::NAN));
        let name = format!("revocation_real_{}_{what}", scenario.name);
        println!("  {what}: {} of {N} within {GIVE_UP:?}; p50 {p50:.2} s, p99 {p99:.2} s, max {max:.2} s", gone.len());
        figure(&format!("{name}_p99"), p99, "s", &format!("<= {GOAL_SECS} s, all {N} gone"), gone.len() == N && p99 <= GOAL_SECS);
        figure(&format!("{name}_max"), max, "s", &format!("<= {GOAL_SECS} s"), gone.len() == N && max <= GOAL_SECS);
    };
    println!(
        "revocation with the real adapters, {}: {N} sessions on {} target(s), instance_endpoints {:?}, TLS verified, half expiring and half ended at the same second ({refused} ends refused)",
        scenario.name, scenario.targets, scenario.instance_endpoints
    );
    report("account_dropped", &dropped);
    report("instance_terminated", &terminated);
    // Whatever a failed run left.
    let left: Vec<(String, String)> = root.exec("SELECT User, Host FROM mysql.user WHERE User LIKE ?", (format!("rv{round}x%"),)).await.unwrap_or_default();
    for (user, host) in left {
        let _ = root.exec_drop("DROP USER ?@?", (user, host)).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let world = World::new(Options { tick: "1s", ..Options::default() }).await;
        let certs = Certs::make(&std::env::temp_dir().join(format!("powerpole-rv-certs-{}", world.id)), "rv");
        let server = {
            let certs = certs.clone();
            tokio::task::spawn_blocking(move || PrivateMariadb::start(grants_support::private::Options { tls: Some(certs), ..Default::default() })).await.expect("the bench's MariaDB starts")
        };
        server.socket_sql(&format!("CREATE DATABASE `{}`", world.schema)).expect("the schema is created");
        let login = server.server();
        world.point_admin_secret_with(&login.host, login.port, &login.user, &login.password).await;
        let db = Database { server, certs };
        // `localhost`: a second name of the same server, which its certificate carries.
        let scenarios = [
            Scenario { name: "one_target", targets: 1, instance_endpoints: &[] },
            Scenario { name: "one_target_instance_endpoints", targets: 1, instance_endpoints: &["localhost"] },
            Scenario { name: "three_targets", targets: 3, instance_endpoints: &[] },
            Scenario { name: "three_targets_instance_endpoints", targets: 3, instance_endpoints: &["localhost"] },
        ];
        for (round, scenario) in scenarios.iter().enumerate() {
            run(&world, &db, scenario, round).await;
        }
        let _ = std::fs::remove_dir_all(&db.certs.dir);
    });
}
