//! `make demo`: one whole powerpole session, end to end, against the local stand-ins.
//!
//! Alice asks in Slack for READ access to `billing` for 2 minutes; Bob approves; powerpole
//! launches a bastion in moto, creates Alice's own MariaDB account bound to the bastion's IP and
//! DMs her the details; she logs in from the bastion's address (a network namespace) and from
//! nowhere else; a minute before expiry she is warned; at expiry everything is torn down.
//! The demo prints a timeline of what each system saw and exits 0 only if every check held.
//!
//! Run it with `make demo` (scripts/demo.sh): it starts the stand-ins, builds `powerpole` and this
//! program, and sources `.local/standins.env`. Everything it writes is under `.local/demo/`.

mod audit;
mod handover;
mod inspect;
mod netns;
mod report;
mod service;
mod slack;
mod world;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use powerpole_standins::driver::{ButtonClick, SlackDriver, SlashCommand};
use powerpole_standins::slack::{render_message, RecordedCall, SlackStandin};
use powerpole_standins::ssm::SsmStandin;

use audit::StoredSession;
use handover::MysqlLogin;
use inspect::Bastion;
use netns::Namespace;
use report::Report;
use service::{Powerpole, Service, ServeEnv};
use slack::{button_labelled, button_value, buttons, dm_channel, is_post_in, wait_message, SlackLog};
use world::{StandinEnv, World, APPROVALS_CHANNEL, APPROVER, DB_BRIDGE_HOST, REQUESTER, SCHEMA, SUBNET_PREFIX};

/// What Alice types after `/powerpole`.
const REQUEST: &str = "request billing READ 2m INC-42 investigate refund mismatch";
const SESSION_LENGTH: Duration = Duration::from_secs(120);
const WARNING_LEAD: Duration = Duration::from_secs(60);
/// The sweeper's tick in the demo config: the slack every deadline may take.
const TICK: Duration = Duration::from_secs(5);
const BOT_TOKEN: &str = "xoxb-demo";

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut report = Report::new();
    println!("powerpole demo: one just-in-time database session, from request to teardown, against the local stand-ins");
    let outcome = tokio::select! {
        outcome = run(&mut report) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C); the service and the namespaces were cleaned up")),
    };
    if let Err(error) = outcome {
        report.fail("the demo ran to the end", &error);
    }
    report.summary();
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(report: &mut Report) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    report.step("Preflight");
    let (powerpole, env) = preflight(report, &root)?;

    report.step("Setting up the world in the stand-ins");
    let run = format!("{}-{}", Utc::now().format("%H%M%S"), std::process::id());
    let world = World::create(report, &run, env).await?;
    let outcome = session(report, &root, &powerpole, &world).await;
    world.cleanup().await;
    outcome
}

/// Everything the demo needs that is not made here: says all that is missing at once.
fn preflight(report: &Report, root: &Path) -> Result<(Powerpole, StandinEnv)> {
    let mut problems = Vec::new();
    let env = StandinEnv::from_env().map_err(|e| problems.push(e.to_string())).ok();
    let powerpole = Powerpole::beside_this_program().map_err(|e| problems.push(e.to_string())).ok();
    if let Some(p) = &powerpole {
        for command in p.missing_commands() {
            problems.push(format!("this build of powerpole has no `powerpole {command}`"));
        }
    }
    if !netns_script(root).is_file() {
        problems.push("scripts/netns.sh is missing (it gives this machine the bastion's address)".into());
    }
    if !is_root() {
        problems.push("the demo must run as root: scripts/netns.sh makes network namespaces".into());
    }
    if let Some(env) = &env {
        if let Err(e) = db_listens_on_bridge(env) {
            problems.push(e.to_string());
        }
    }
    match (problems.is_empty(), powerpole, env) {
        (true, Some(powerpole), Some(env)) => {
            report.say("powerpole binary, stand-ins, scripts/netns.sh and MariaDB on the bridge address are all there");
            Ok((powerpole, env))
        }
        _ => bail!("the demo cannot start:\n  - {}", problems.join("\n  - ")),
    }
}

fn netns_script(root: &Path) -> PathBuf {
    root.join("scripts/netns.sh")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn db_listens_on_bridge(env: &StandinEnv) -> Result<()> {
    let port = world::MysqlUrl::parse(&env.mysql_url)?.port;
    let addr: std::net::SocketAddr = format!("{DB_BRIDGE_HOST}:{port}").parse()?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop).map_err(|e| {
        anyhow!(
            "MariaDB does not answer on {addr} ({e}), the address bastions reach it on: restart the stand-ins \
             (`scripts/standins.sh stop && scripts/standins.sh start`) so that it also binds the test-host bridge"
        )
    })
}

/// Starts the Slack and SSM stand-ins and `powerpole serve`, then plays the session through.
async fn session(report: &mut Report, root: &Path, powerpole: &Powerpole, world: &World) -> Result<()> {
    let slack = SlackStandin::start().await;
    for (id, email, tz) in [REQUESTER, APPROVER] {
        slack.add_user(id, email, tz);
    }
    let ssm = SsmStandin::start(&world.env.moto_url).await.context("start the SSM stand-in")?;
    report.say(format!("Slack stand-in at {} (users {} {} and {} {})", slack.base_url(), REQUESTER.0, REQUESTER.1, APPROVER.0, APPROVER.1));
    report.say(format!("SSM stand-in at {} (DescribeInstanceInformation from moto's EC2, the rest passed to moto)", ssm.url()));

    let dir = root.join(".local/demo");
    let config = world.write_config(&dir, &slack.api_url())?;
    report.say(format!("config: {}", config.display()));
    let created = powerpole.table_create(&config).await?;
    report.say(format!("$ powerpole table create --config {}", config.display()));
    report.quote(&created);

    report.step("Starting powerpole serve");
    let signing_secret = random_hex();
    let env = ServeEnv { signing_secret: &signing_secret, bot_token: BOT_TOKEN, ssm_endpoint: &ssm.url() };
    let mut service = powerpole.serve(&config, env, &dir.join("powerpole.log"))?;
    service.wait_healthy(Duration::from_secs(30)).await?;
    report.check("powerpole serve answers /healthz and is ready (/readyz)", true, format!("{}, pid {}, log {}", service.url, service.pid().unwrap_or(0), service.log.display()));

    let driver = SlackDriver::new(&service.url, &signing_secret).with_slack(&slack);
    let mut demo = Demo { report, world, slack, driver, log: SlackLog::default(), netns: netns_script(root), config };
    let outcome = demo.play(&mut service).await;
    if outcome.is_err() {
        demo.log.print_new(demo.report, &demo.slack);
        demo.report.say(format!("the end of powerpole's log ({}):", service.log.display()));
        demo.report.quote(&service.log_tail(20));
    }
    outcome
}

/// One session, driven as Slack would, with every outside system inspected on the way.
struct Demo<'a> {
    report: &'a mut Report,
    world: &'a World,
    slack: SlackStandin,
    driver: SlackDriver,
    log: SlackLog,
    netns: PathBuf,
    config: PathBuf,
}

/// What the hand-over gave Alice.
struct HandedOver {
    dm: RecordedCall,
    position: usize,
    login: MysqlLogin,
    expires_at: DateTime<Utc>,
}

impl Demo<'_> {
    /// A new section of the timeline, after whatever Slack received meanwhile.
    fn step(&mut self, title: &str) {
        self.log.print_new(self.report, &self.slack);
        self.report.step(title);
    }

    async fn play(&mut self, service: &mut Service) -> Result<()> {
        let card = self.request().await?;
        let session_id = self.approve(&card).await?;
        let stored = StoredSession::open(&self.world.aws, &self.config, &session_id)?;
        let handed = self.hand_over(&stored).await?;
        let bastion = self.bastion(&session_id).await?;
        let ip = bastion.private_ip.clone().context("the bastion has no private IP")?;
        self.account(&handed.login, &ip).await?;
        let from_bastion = self.namespace("bastion", &ip).await?;
        self.logins(&from_bastion, &handed.login, &ip).await?;
        let warning = self.warning(&handed).await?;
        self.teardown(&handed, warning).await?;
        self.end_state(&bastion, &handed, &from_bastion).await?;
        self.audit_trail(&stored, &session_id).await?;
        self.step("powerpole serve, at the end");
        self.report.check("powerpole serve ran throughout", service.is_running(), "");
        Ok(())
    }

    async fn request(&mut self) -> Result<RecordedCall> {
        self.step("Alice asks for access");
        self.report.say(format!("{} types: /powerpole {REQUEST}", REQUESTER.0));
        let command = SlashCommand::new(REQUESTER.0, "alice", "C0GENERAL", REQUEST);
        let reply = self.driver.command(command).await.context("send the slash command")?;
        self.report.check("the signed slash command is acknowledged", reply.status == 200, format!("HTTP {}", reply.status));
        if let Some(text) = reply.json().map(|j| slack::shown(&j)).filter(|t| !t.is_empty()) {
            self.report.say("powerpole answers the command:");
            self.report.quote(&text);
        }
        let (_, card) = wait_message(&self.slack, "approval card with an Approve button in C0APPROVALS", Duration::from_secs(20), 0, |c| {
            is_post_in(c, APPROVALS_CHANNEL) && button_labelled(c, "Approve").is_some()
        })
        .await?;
        self.log.print_new(self.report, &self.slack);
        let labels: Vec<String> = buttons(&card).into_iter().map(|(_, label)| label).collect();
        self.report.check("the approval card is posted in C0APPROVALS", true, format!("buttons: {}", labels.join(", ")));
        Ok(card)
    }

    /// Bob clicks Approve; returns the session id (the button's value).
    async fn approve(&mut self, card: &RecordedCall) -> Result<String> {
        self.step("Bob approves");
        let action = button_labelled(card, "Approve").context("the card has no Approve button")?;
        let session_id = button_value(card, &action).context("the Approve button carries no session id")?;
        let click = ButtonClick::on(card, &action, APPROVER.0, "bob").context("cannot click Approve on the card")?;
        self.report.say(format!("{} clicks [Approve] on the card for session {session_id}", APPROVER.0));
        let reply = self.driver.interaction(self.driver.block_actions(&click)).await.context("send the click")?;
        self.report.check("the signed click is acknowledged", reply.status == 200, format!("HTTP {}", reply.status));
        Ok(session_id)
    }

    async fn hand_over(&mut self, stored: &StoredSession) -> Result<HandedOver> {
        self.step("powerpole provisions: bastion, account, hand-over");
        let alice = dm_channel(REQUESTER.0);
        let (position, dm) = wait_message(&self.slack, "hand-over DM to Alice with a `mysql -h` line", Duration::from_secs(120), 0, |c| {
            is_post_in(c, &alice) && c.text().contains("mysql -h")
        })
        .await?;
        self.log.print_new(self.report, &self.slack);
        let login = handover::parse_mysql_line(&dm.text())?;
        let expected = (DB_BRIDGE_HOST, self.world.db_port(), "alice");
        self.report.check(
            "the hand-over DM gives Alice her own account on the target's endpoint",
            (login.host.as_str(), login.port, login.user.as_str()) == expected,
            format!("mysql -h {} -P {} -u {}", login.host, login.port, login.user),
        );
        let expires_at = stored.expires_at().await?;
        let length = (expires_at - dm.received_at).num_milliseconds() as f64 / 1000.0;
        let two_minutes = (SESSION_LENGTH.as_secs_f64() - 5.0..=SESSION_LENGTH.as_secs_f64() + 1.0).contains(&length);
        self.report.check("the 2-minute clock starts at the hand-over", two_minutes, format!("expires {length:.1}s after the DM, at +{:.1}s", self.report.offset_of(expires_at)));
        Ok(HandedOver { dm, position, login, expires_at })
    }

    async fn bastion(&mut self, session_id: &str) -> Result<Bastion> {
        self.step("The bastion, as moto's EC2 reports it");
        let found = inspect::bastions_in_subnet(&self.world.ec2, &self.world.subnet_id).await?;
        self.report.check("exactly one bastion in the demo's subnet", found.len() == 1, format!("{} found", found.len()));
        let bastion = found.into_iter().next().context("no instance in the demo's subnet")?;
        self.report.quote(&bastion.describe());
        let ip = bastion.private_ip.clone().unwrap_or_default();
        self.report.check("it is running", bastion.state == "running", bastion.state.clone());
        self.report.check("private IP in 10.200.8.0/24, no public IP", ip.starts_with(SUBNET_PREFIX) && bastion.public_ip.is_none(), ip);
        self.report.check("IMDSv2 required, no key pair", bastion.imdsv2_required() && bastion.key_name.is_none(), "");
        let encrypted = inspect::root_volume_encrypted(&self.world.ec2, &bastion.id).await?;
        self.report.check("its root volume is encrypted", encrypted, "");
        let tagged = bastion.tags.iter().any(|(_, value)| value == session_id);
        self.report.check("it is tagged with its session", tagged, session_id);
        Ok(bastion)
    }

    async fn account(&mut self, login: &MysqlLogin, ip: &str) -> Result<()> {
        self.step("The account, as MariaDB's mysql.user shows it");
        let hosts = inspect::account_hosts(&self.world.admin, &login.user).await?;
        self.report.say(format!("SELECT User, Host FROM mysql.user WHERE User = '{}'", login.user));
        self.report.quote(&hosts.iter().map(|h| format!("{}  {h}", login.user)).collect::<Vec<_>>().join("\n"));
        self.report.check("the account is bound to the bastion's IP", hosts.iter().any(|h| h == ip), format!("'{}'@'{ip}'", login.user));
        let grants = inspect::grants(&self.world.admin, &login.user, ip).await?;
        self.report.say(format!("SHOW GRANTS FOR '{}'@'{ip}'", login.user));
        self.report.quote(&grants.iter().map(|g| inspect::without_password_hash(g)).collect::<Vec<_>>().join("\n"));
        // The demo config's `[deployment] id` (scripts/demo/world.rs).
        let marker = powerpole::grants::sql::marker_role(&powerpole::domain::DeploymentId::parse("demo").expect("a valid deployment id"));
        let marker = marker.as_str();
        let marker_grants = inspect::role_grants(&self.world.admin, marker).await?;
        self.report.say(format!("SHOW GRANTS FOR `{marker}` (the role powerpole marks its accounts with)"));
        self.report.quote(&marker_grants.join("\n"));
        let exact = inspect::grants_exactly(&grants, "GRANT SELECT, SHOW VIEW ON `billing`.* TO ", marker, &marker_grants);
        self.report.check("READ = SELECT, SHOW VIEW on billing.* and nothing else, no GRANT OPTION", exact, "");
        Ok(())
    }

    async fn namespace(&self, role: &str, ip: &str) -> Result<Namespace> {
        let name = format!("ppdemo-{}-{role}", std::process::id());
        Namespace::add(self.netns.clone(), &name, ip).await
    }

    async fn logins(&mut self, from_bastion: &Namespace, login: &MysqlLogin, ip: &str) -> Result<()> {
        self.step("Alice logs in with the handed-over password");
        let db_log = inspect::DbAuditLog::locate(&self.world.admin).await?;
        let db_log_start = db_log.end().await?;
        let select = format!("SELECT CURRENT_USER(), COUNT(*) FROM {SCHEMA}.{}", self.world.data_table);

        let run = self.client(from_bastion, login, &select).await?;
        let current_user = format!("{}@{ip}", login.user);
        self.report.check("login from the bastion's address works and reads billing", run.ok && run.stdout.contains(&current_user), current_user);

        let other_ip = if ip.ends_with(".250") { format!("{SUBNET_PREFIX}251") } else { format!("{SUBNET_PREFIX}250") };
        let elsewhere = self.namespace("other", &other_ip).await?;
        let run = self.client(&elsewhere, login, &select).await?;
        self.report.check("the same login from another address is refused", refused(&run), format!("from {other_ip}"));
        drop(elsewhere);

        let insert = format!("INSERT INTO {SCHEMA}.{} (order_ref, amount_cents, status) VALUES ('ORD-9999', 1, 'fixed')", self.world.data_table);
        let run = self.client(from_bastion, login, &insert).await?;
        self.report.check("READ cannot INSERT", !run.ok && run.stderr.contains("1142"), "");

        self.database_audit_log(&db_log, db_log_start, login, ip).await
    }

    /// What the database itself recorded during the logins: Alice's own name and her address.
    async fn database_audit_log(&mut self, log: &inspect::DbAuditLog, since: u64, login: &MysqlLogin, ip: &str) -> Result<()> {
        let lines = log.lines_since(since, &login.user).await?;
        self.report.say(format!("MariaDB's audit log (server_audit, like Aurora's) about {} meanwhile:", login.user));
        self.report.quote(&lines.join("\n"));
        let attributed = lines.iter().any(|l| l.contains(&format!(",{},{ip},", login.user)) && l.contains("SELECT CURRENT_USER()"));
        self.report.check("the database's own audit log names alice at the bastion's address", attributed, "");
        Ok(())
    }

    /// Runs the client from `ns` and prints the command and what it answered.
    async fn client(&self, ns: &Namespace, login: &MysqlLogin, sql: &str) -> Result<netns::ClientRun> {
        self.report.say(format!(
            "from {} ({}): mariadb -h {} -P {} -u {} -p<handed-over password> -e \"{sql}\"",
            ns.name, ns.ip, login.host, login.port, login.user
        ));
        let run = ns.mariadb(login, sql).await?;
        self.report.quote(&run.output());
        Ok(run)
    }

    /// Waits for the warning DM (a DM to Alice after the hand-over, with buttons); returns its
    /// position in the recording.
    async fn warning(&mut self, handed: &HandedOver) -> Result<usize> {
        self.step("Waiting for the warning (1 minute before expiry)");
        let alice = dm_channel(REQUESTER.0);
        let timeout = until(handed.expires_at) + TICK * 2;
        let (position, dm) = wait_message(&self.slack, "warning DM to Alice (with buttons) after the hand-over", timeout, handed.position + 1, |c| {
            is_post_in(c, &alice) && !buttons(c).is_empty()
        })
        .await?;
        self.log.print_new(self.report, &self.slack);
        let lead = (handed.expires_at - dm.received_at).num_milliseconds() as f64 / 1000.0;
        let expected = WARNING_LEAD.as_secs_f64();
        let on_time = (expected - TICK.as_secs_f64() * 2.0..=expected + 2.0).contains(&lead);
        self.report.check("Alice is warned about a minute before expiry", on_time, format!("{lead:.1}s before"));
        Ok(position)
    }

    async fn teardown(&mut self, handed: &HandedOver, warning: usize) -> Result<()> {
        self.step("Waiting for expiry and teardown");
        let alice = dm_channel(REQUESTER.0);
        let timeout = until(handed.expires_at) + TICK * 6;
        let (_, notice) = wait_message(&self.slack, "teardown notice to Alice after the warning", timeout, warning + 1, |c| {
            is_post_in(c, &alice) && buttons(c).is_empty()
        })
        .await?;
        self.log.print_new(self.report, &self.slack);
        let late = (notice.received_at - handed.expires_at).num_milliseconds() as f64 / 1000.0;
        let on_time = (-1.0..=TICK.as_secs_f64() * 3.0).contains(&late);
        self.report.check("the session is torn down at expiry", on_time, format!("notice {late:+.1}s from expiry"));
        Ok(())
    }

    async fn end_state(&mut self, bastion: &Bastion, handed: &HandedOver, from_bastion: &Namespace) -> Result<()> {
        self.step("Proof that nothing is left");
        let ec2 = &self.world.ec2;
        let terminated = inspect::poll_until("the bastion's termination", Duration::from_secs(15), Duration::from_millis(500), || async {
            let now = inspect::bastion(ec2, &bastion.id).await?;
            Ok((now.state == "terminated").then_some(now))
        })
        .await;
        let state = terminated.as_ref().map(|b| b.state.clone()).unwrap_or_else(|e| e.to_string());
        self.report.check("moto: the bastion is terminated", terminated.is_ok(), format!("{} {state}", bastion.id));

        let ip = bastion.private_ip.clone().unwrap_or_default();
        let user = handed.login.user.clone();
        let admin = &self.world.admin;
        let gone = inspect::poll_until("the account's removal", Duration::from_secs(15), Duration::from_millis(500), || async {
            Ok((!inspect::account_hosts(admin, &user).await?.contains(&ip)).then_some(()))
        })
        .await;
        self.report.check("MariaDB: the account is gone from mysql.user", gone.is_ok(), format!("'{user}'@'{ip}'"));

        let run = self.client(from_bastion, &handed.login, "SELECT 1").await?;
        self.report.check("the handed-over password no longer logs in, even from the bastion's address", refused(&run), "");

        let channel = handed.dm.response.get("channel").and_then(|c| c.as_str()).unwrap_or_default();
        let ts = handed.dm.response.get("ts").and_then(|t| t.as_str()).unwrap_or_default();
        let latest = self.slack.message(channel, ts).context("the hand-over DM is gone from Slack")?;
        self.report.say("the hand-over DM as Alice now sees it:");
        self.report.quote(&slack::shown(&latest));
        // Every word of it, the notification text included.
        let redacted = !render_message(&latest).contains(&handed.login.password);
        self.report.check("the password in the hand-over DM is redacted", redacted, "");
        Ok(())
    }

    async fn audit_trail(&mut self, stored: &StoredSession, session_id: &str) -> Result<()> {
        self.step(&format!("The audit trail of {session_id}, as powerpole stored it in DynamoDB"));
        let trail = stored.trail().await?;
        for line in &trail {
            self.report.say_at(line.at, format!("{:<20} {}", line.kind, line.text));
        }
        let kinds: Vec<&str> = trail.iter().map(|l| l.kind.as_str()).collect();
        let expected = ["requested", "approved", "launched", "granted", "handed_over", "warned", "expired", "torn_down"];
        let in_order = is_subsequence(&expected, &kinds);
        self.report.check("the audit trail lists every step in order", in_order, expected.join(" → "));
        Ok(())
    }
}

/// A login the server refused: unknown host (1130) or access denied (1045).
fn refused(run: &netns::ClientRun) -> bool {
    !run.ok && (run.stderr.contains("1130") || run.stderr.contains("1045"))
}

/// Whether `wanted` appears in `seen` in the same order (other entries may come between).
fn is_subsequence(wanted: &[&str], seen: &[&str]) -> bool {
    let mut seen = seen.iter();
    wanted.iter().all(|w| seen.any(|s| s == w))
}

/// How long from now until `at` (zero if past).
fn until(at: DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or_default()
}

fn random_hex() -> String {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
