//! The `powerpole` command: parse arguments and config, build adapters, hand them on.
//! Everything it does lives in the library; this file only wires it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use powerpole::app::App;
use powerpole::config::Config;
use powerpole::config_source::{ConfigBase, ConfigLocation, LoadError};
use powerpole::slack::serve::{serve as run_service, ServeOptions};
use powerpole::store::dynamo::{self, TableCreated};
use powerpole::store::schema;
use powerpole::domain::{SessionId, SlackUserId, TargetName};
use powerpole::workflow::{audit_json, audit_line, run_sweeper, AuditQuery};

/// Just-in-time, approved, per-person access to Aurora MySQL through ephemeral SSM-only bastions,
/// driven from Slack.
///
/// AWS settings come from the SDK's usual sources (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL...).
/// Logs are JSON lines on stderr; RUST_LOG filters them (default: info). `serve` logs each Slack
/// request as one line at `[server] request_log` (default info; `off` for none).
#[derive(Debug, Parser)]
#[command(name = "powerpole", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Describe or create the DynamoDB table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Serve Slack (HTTP or Socket Mode, as configured) and run the sweeper that provisions,
    /// warns, expires and tears down, and reconcile every `[scheduler] reconcile_every`, until stopped.
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead of `[server] listen` (HTTP mode), e.g. 127.0.0.1:3000.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Do the due work (pending timeouts, provisioning, warnings, expiries, teardown retries)
    /// without serving Slack: once with --once (for cron), else on every `[scheduler] tick`.
    Sweep {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// One tick, waiting for every step it starts, then exit (non-zero if a step failed).
        #[arg(long)]
        once: bool,
    },
    /// Check the configuration, the Slack secrets and token, every Slack user group the
    /// configuration names (approvers, on-call, policy), the DynamoDB table, and every
    /// target's network, AMI, admin login and schemas; say exactly what is wrong. Changes nothing.
    /// Exits 0 when everything is fine, 1 otherwise (2 for a bad configuration).
    Doctor {
        /// The configuration: a file, or `ssm:/name`, the Parameter Store parameter the Terraform
        /// module writes (output `config_parameter_name`).
        #[arg(long, env = "POWERPOLE_CONFIG")]
        config: String,
        /// With an `ssm:` configuration: `ssm:/path` of the fragments the module writes
        /// (`<config parameter>.d`), merged over it exactly as the Lambda functions merge them.
        #[arg(long, env = "POWERPOLE_CONFIG_LAYERS")]
        config_layers: Option<String>,
    },
    /// List the audit trail, oldest first: for a session, a person, a target, a time range, or
    /// everything on the configured targets. Filters combine. `audit verify` checks the trail
    /// against its locked copy in S3.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Audit {
        #[command(subcommand)]
        action: Option<AuditCommand>,
        /// The configuration: a file, or `ssm:/name`, the Parameter Store parameter the Terraform
        /// module writes (output `config_parameter_name`).
        #[arg(long, env = "POWERPOLE_CONFIG")]
        config: Option<String>,
        /// With an `ssm:` configuration: `ssm:/path` of the fragments the module writes
        /// (`<config parameter>.d`), merged over it exactly as the Lambda functions merge them.
        #[arg(long, env = "POWERPOLE_CONFIG_LAYERS")]
        config_layers: Option<String>,
        /// One session (pp-...).
        #[arg(long)]
        session: Option<String>,
        /// A requester's Slack user id (U...).
        #[arg(long)]
        user: Option<String>,
        /// A target name.
        #[arg(long)]
        target: Option<String>,
        /// Events at or after this time (RFC 3339, or a date: 2026-11-01).
        #[arg(long)]
        since: Option<String>,
        /// Events at or before this time (RFC 3339, or a date, meaning its end).
        #[arg(long)]
        until: Option<String>,
        /// At most this many sessions are read.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// With --session: the security team's report, one ordered timeline of the trail, the
        /// Session Manager transcript (CloudWatch Logs, `[audit] session_log_group`) and the
        /// database's audit events for the person's account (`[audit.database_logs]`).
        #[arg(long, requires = "session")]
        report: bool,
        /// The report's format: text, json, or html (one self-contained page).
        #[arg(long, value_enum, default_value = "text", requires = "report")]
        format: ReportFormat,
    },
    /// Things to set up a target's database with.
    #[command(subcommand)]
    Db(DbCommand),
    /// Things to set up the Slack app with.
    #[command(subcommand)]
    Slack(SlackCommand),
    /// Who may ask for what: see what the targets' policies ([targets.NAME.policy]) do.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Find and remove what should not exist in this deployment (`[deployment] id`): its bastions
    /// without a live session (sparing those younger than `[scheduler] reconcile_grace`), database
    /// accounts it made that no live session owns, and sessions whose deadline passed unnoticed.
    /// Posts what it removed in the approvals channel. `serve` also runs this every `[scheduler]
    /// reconcile_every`. Prints what it found and did; exits 1 if anything could not be fixed.
    Reconcile {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only report; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit trail in DynamoDB against its locked copy in the audit bucket (each
    /// object's oldest version): every event's hash, the chain of `prev_hash` links in each
    /// session, and every event changed, removed or added since it was exported, each named.
    /// Read-only. Exits 0 when the two agree, 1 when anything differs.
    Verify {
        /// The configuration: a file, or `ssm:/name` (as for `audit`).
        #[arg(long, env = "POWERPOLE_CONFIG")]
        config: String,
        /// With an `ssm:` configuration: `ssm:/path` of the module's fragments.
        #[arg(long, env = "POWERPOLE_CONFIG_LAYERS")]
        config_layers: Option<String>,
        /// The audit bucket (the Terraform output `audit_export_bucket_name`).
        #[arg(long)]
        bucket: String,
        /// Only this session (pp-...); otherwise every session in the table and the bucket.
        #[arg(long)]
        session: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE, or the deployed configuration (`ssm:/name` with --config-layers), with
    /// POWERPOLE_* environment overrides applied. Exits 0 when valid, and prints each target's
    /// policy: who may ask (or that anyone may, where no eligibility rule is set), role maximums,
    /// approval rules and auto-approvals; otherwise prints every problem with its field path and
    /// exits 2 (1 if Parameter Store could not be read).
    Check {
        /// The configuration file (start from powerpole.example.toml), or `ssm:/name`, the
        /// Parameter Store parameter the Terraform module writes.
        #[arg(env = "POWERPOLE_CONFIG")]
        file: String,
        /// With an `ssm:` configuration: `ssm:/path` of the fragments the module writes
        /// (`<config parameter>.d`), merged over it exactly as the Lambda functions merge them.
        #[arg(long, env = "POWERPOLE_CONFIG_LAYERS")]
        config_layers: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print what would happen if USER asked for ROLE on TARGET (for DURATION) now, and why:
    /// eligibility, the role's maximum, the approval rule and its approvers, auto-approval (and
    /// the person's auto-approved sessions against the cap). User groups are read live from
    /// Slack with the bot token, and the person's sessions from the table; nothing is changed.
    /// Exits 0 when the request would be filed (or auto-approved), 1 when it would be refused.
    Explain {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The person's Slack user id (U...).
        #[arg(long)]
        user: String,
        /// The target, as named under [targets].
        #[arg(long)]
        target: String,
        /// READ, DML or DDL.
        #[arg(long)]
        role: String,
        /// The duration asked for (e.g. 30m, 2h); without it, the longest allowed.
        #[arg(long)]
        duration: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Print the SQL that creates TARGET's admin account with the least powerpole needs (for the
    /// target's dialect, kill statement, schemas and role privileges), with a fresh password.
    /// Run it once as the cluster's master user; put the same password in the target's admin
    /// secret (--secret-file writes that secret's JSON, readable by you only).
    AdminSql {
        /// The configuration: a file, or `ssm:/name`, the Parameter Store parameter the Terraform
        /// module writes (output `config_parameter_name`).
        #[arg(long, env = "POWERPOLE_CONFIG")]
        config: String,
        /// With an `ssm:` configuration: `ssm:/path` of the fragments the module writes
        /// (`<config parameter>.d`), merged over it exactly as the Lambda functions merge them.
        #[arg(long, env = "POWERPOLE_CONFIG_LAYERS")]
        config_layers: Option<String>,
        /// The target, as named under [targets] in the configuration.
        #[arg(long)]
        target: String,
        /// The admin account's user name.
        #[arg(long, default_value = "powerpole_admin")]
        admin_user: String,
        /// Where the admin connects from: `%`, or the subnet of serve/the Lambdas in netmask form
        /// (10.0.0.0/255.255.0.0).
        #[arg(long, default_value = "%")]
        admin_host: String,
        /// Also write the admin secret's JSON (host, port, username, password) to this new file
        /// (mode 0600), for `aws secretsmanager put-secret-value --secret-string file://FILE`.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SlackCommand {
    /// Print the Slack app manifest (JSON) for "Create an app > From a manifest": the slash
    /// command, interactivity, event subscriptions, App Home and exactly the bot scopes powerpole
    /// uses. Give --base-url (HTTP: `powerpole serve` or the Lambda function URL) or --socket-mode.
    Manifest {
        /// The public https address Slack calls, e.g. https://powerpole.example.com
        /// (request URLs are <base>/slack/commands, /slack/interactions, /slack/events).
        #[arg(long)]
        base_url: Option<String>,
        /// Socket Mode: no request URLs (then also create an app-level token with connections:write).
        #[arg(long)]
        socket_mode: bool,
        /// The slash command, as `[slack] command` in the configuration.
        #[arg(long, default_value = "/powerpole")]
        command: String,
    },
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Print the table definition as JSON (what infra/ must match).
    Schema,
    /// Create the table named in FILE (`store.table`) with its indexes and TTL, for local use.
    /// An existing table that matches is left as it is.
    Create {
        /// The configuration file (start from powerpole.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    // Two TLS stacks (ring, aws-lc-rs) are linked in: choose one before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Config(ConfigCommand::Check { file, config_layers }) => with_location(&file, config_layers.as_deref(), |location| config_check(&location)),
        Command::Table(TableCommand::Schema) => table_schema(),
        Command::Table(TableCommand::Create { config }) => with_config(&ConfigLocation::file(config), table_create),
        Command::Serve { config, listen } => {
            let _logs = init_logs();
            run(async move { run_service(ServeOptions { config, listen }).await.map(|()| ExitCode::SUCCESS).map_err(|e| format!("serve: {e}")) })
        }
        Command::Sweep { config, once } => with_config(&ConfigLocation::file(config), |config| {
            let _logs = init_logs();
            run(sweep(config, once))
        }),
        Command::Doctor { config, config_layers } => with_location(&config, config_layers.as_deref(), |location| with_config(&location, |config| run(doctor(config)))),
        Command::Audit { action: Some(AuditCommand::Verify { config, config_layers, bucket, session }), .. } => {
            with_location(&config, config_layers.as_deref(), |location| with_config(&location, |config| run(audit_verify(config, bucket, session))))
        }
        Command::Audit { config: None, .. } => {
            eprintln!("powerpole audit: give --config FILE or ssm:/name (or set POWERPOLE_CONFIG)");
            ExitCode::from(2)
        }
        Command::Audit { config: Some(config), config_layers, session: Some(session), report: true, format, .. } => {
            with_location(&config, config_layers.as_deref(), |location| with_config(&location, |config| run(session_report(config, session, format))))
        }
        Command::Audit { config: Some(config), config_layers, session, user, target, since, until, limit, json, .. } => {
            let query = match audit_query(session, user, target, since, until, limit) {
                Ok(q) => q,
                Err(problem) => {
                    eprintln!("powerpole audit: {problem}");
                    return ExitCode::from(2);
                }
            };
            with_location(&config, config_layers.as_deref(), |location| with_config(&location, |config| run(audit(config, query, json))))
        }
        Command::Db(DbCommand::AdminSql { config, config_layers, target, admin_user, admin_host, secret_file }) => with_location(&config, config_layers.as_deref(), |location| {
            with_config(&location, |config| admin_sql(&config, &target, admin_user, admin_host, secret_file.as_deref()))
        }),
        Command::Slack(SlackCommand::Manifest { base_url, socket_mode, command }) => slack_manifest(base_url.as_deref(), socket_mode, &command),
        Command::Policy(PolicyCommand::Explain { config, user, target, role, duration }) => {
            with_config(&ConfigLocation::file(config), |config| run(policy_explain(config, user, target, role, duration)))
        }
        Command::Reconcile { config, dry_run } => with_config(&ConfigLocation::file(config), |config| {
            let _logs = init_logs();
            run(reconcile(config, dry_run))
        }),
    }
}

fn config_check(location: &ConfigLocation) -> ExitCode {
    with_config(location, |config| {
        let names: Vec<&str> = config.targets.keys().map(|t| t.as_str()).collect();
        println!("{}: valid ({} target(s): {})", location.describe(), names.len(), names.join(", "));
        for target in config.targets.values() {
            for line in powerpole::policy::summary(target) {
                println!("  {line}");
            }
        }
        // Valid, but worth an operator's attention (a shared `default` deployment id, a target
        // without TLS): on stderr, so that scripts reading the summary are not disturbed.
        for warning in config.warnings() {
            eprintln!("warning: {warning}");
        }
        ExitCode::SUCCESS
    })
}

/// `--config` (a file or `ssm:/name`) and `--config-layers`, or exit 2 saying what is wrong.
fn with_location(config: &str, layers: Option<&str>, then: impl FnOnce(ConfigLocation) -> ExitCode) -> ExitCode {
    match ConfigLocation::parse(config, layers) {
        Ok(location) => then(location),
        Err(err) => {
            eprintln!("powerpole: {err}");
            ExitCode::from(2)
        }
    }
}

/// Loads and validates the configuration with the library's one loader (the Lambda functions'
/// too): a bad configuration prints every problem and exits 2; Parameter Store that cannot be
/// read exits 1.
fn with_config(location: &ConfigLocation, then: impl FnOnce(Config) -> ExitCode) -> ExitCode {
    let loaded = if location.needs_aws() {
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        runtime.block_on(async {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            location.load(&aws).await
        })
    } else {
        // A file needs no AWS settings: load it without looking for any.
        match &location.base {
            ConfigBase::File(path) => Config::load(path).map_err(|error| LoadError::Invalid { source_name: location.describe(), error }),
            ConfigBase::Parameter(_) => unreachable!("a parameter needs AWS"),
        }
    };
    match loaded {
        Ok(config) => then(config),
        Err(LoadError::Invalid { source_name, error }) => {
            eprintln!("{source_name}: {error}");
            ExitCode::from(2)
        }
        Err(err) if err.is_invalid() => {
            eprintln!("powerpole: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("powerpole: {err}");
            ExitCode::FAILURE
        }
    }
}

/// JSON lines on stderr, written by a thread of their own (`powerpole::logs`); keep the guard
/// until the command ends, so what is queued is written out.
fn init_logs() -> powerpole::logs::Flushed {
    powerpole::logs::init()
}

/// Runs `work` on a multi-threaded runtime; an error is printed and exits 1.
fn run(work: impl std::future::Future<Output = Result<ExitCode, String>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("powerpole: {err}");
            ExitCode::FAILURE
        }
    }
}

fn admin_sql(config: &Config, target: &str, user: String, host: String, secret_file: Option<&Path>) -> ExitCode {
    use powerpole::grants::admin_sql::{admin_sql, AdminAccount};
    let fail = |problem: String| {
        eprintln!("powerpole db admin-sql: {problem}");
        ExitCode::from(2)
    };
    let Some(target) = TargetName::parse(target).ok().and_then(|name| config.target(&name).cloned()) else {
        let names: Vec<&str> = config.targets.keys().map(|t| t.as_str()).collect();
        return fail(format!("no target `{target}` in the configuration; it has: {}", names.join(", ")));
    };
    let password = powerpole::grants::Password::generate();
    let sql = match admin_sql(&target, &config.deployment.id, &AdminAccount { user: user.clone(), host }, &password) {
        Ok(sql) => sql,
        Err(_) => return fail("the user name or host cannot be quoted safely: use letters, digits, `_`, `-`, `.`, `%` and `/`".into()),
    };
    if let Some(file) = secret_file {
        let secret = serde_json::json!({"host": target.writer_endpoint, "port": target.port, "username": user, "password": password.expose()});
        if let Err(e) = write_private(file, &secret.to_string()) {
            return fail(format!("cannot write {}: {e} (it must not exist yet)", file.display()));
        }
    }
    print!("{sql}");
    eprintln!(
        "powerpole db admin-sql: the password above is new; store it in the secret `{}` (the same password), then run the SQL as the master user",
        target.admin_secret
    );
    ExitCode::SUCCESS
}

/// Creates `file` readable by its owner only; refuses to overwrite.
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(text.as_bytes())
}

fn slack_manifest(base_url: Option<&str>, socket_mode: bool, command: &str) -> ExitCode {
    use powerpole::slack::manifest::{manifest, Delivery};
    let built = Delivery::parse(base_url, socket_mode).and_then(|delivery| manifest(&delivery, command));
    match built.map(|m| serde_json::to_string_pretty(&m)) {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("cannot render the manifest: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("powerpole slack manifest: {err}");
            ExitCode::from(2)
        }
    }
}

fn table_schema() -> ExitCode {
    match serde_json::to_string_pretty(&schema::table_definition()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot render the schema: {err}");
            ExitCode::FAILURE
        }
    }
}

fn table_create(config: Config) -> ExitCode {
    let table = config.store.table;
    run(async move {
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        match dynamo::DynamoStore::create_table(&aws, &table).await {
            Ok(TableCreated::Created) => println!("table `{table}` created with its indexes and TTL"),
            Ok(TableCreated::AlreadyExisted) => println!("table `{table}` already exists and matches the schema; TTL is on"),
            Err(err) => return Err(err.to_string()),
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn sweep(config: Config, once: bool) -> Result<ExitCode, String> {
    let tick = config.scheduler.tick;
    let app = App::build(config).await.map_err(|e| e.to_string())?;
    if !once {
        run_sweeper(app.lifecycle, tick.to_std(), app.workflow.wake).await.map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = app.lifecycle.tick(tick.to_chrono()).await.map_err(|e| e.to_string())?;
    let mut failed = false;
    for (id, outcome) in report.acted() {
        match outcome {
            Ok(done) => println!("{id}: {done:?}"),
            Err(e) => {
                failed = true;
                println!("{id}: FAILED: {e}");
            }
        }
    }
    println!("sweep: {} session(s) acted on; read {} page(s), {} item(s)", report.acted().count(), report.pages, report.items_read);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn reconcile(config: Config, dry_run: bool) -> Result<ExitCode, String> {
    // Work in flight is due within a tick or two; only what is later than that is "missed".
    let grace = config.scheduler.tick.to_chrono() * 2;
    let app = App::build(config).await.map_err(|e| e.to_string())?;
    let found = app.lifecycle.reconcile(dry_run, grace).await.map_err(|e| e.to_string())?;
    for fixed in &found {
        println!("{fixed}");
    }
    let failed = found.iter().filter(|f| matches!(f.result, Some(Err(_)))).count();
    let mode = if dry_run { " (dry run: nothing changed)" } else { "" };
    println!("reconcile: {} finding(s), {failed} could not be fixed{mode}", found.len());
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Validates the audit filters before anything is read.
fn audit_query(
    session: Option<String>,
    user: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: usize,
) -> Result<AuditQuery, String> {
    let time = |text: &str, end_of_day: bool| -> Result<chrono::DateTime<chrono::Utc>, String> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(t.with_timezone(&chrono::Utc));
        }
        let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a time: use 2026-11-01 or 2026-11-01T09:00:00Z"))?;
        let at = if end_of_day { day.and_hms_opt(23, 59, 59) } else { day.and_hms_opt(0, 0, 0) };
        at.map(|t| t.and_utc()).ok_or_else(|| format!("`{text}` is not a time"))
    };
    Ok(AuditQuery {
        session: session.as_deref().map(SessionId::parse).transpose().map_err(|e| e.to_string())?,
        user: user.as_deref().map(SlackUserId::parse).transpose().map_err(|e| e.to_string())?,
        target: target.as_deref().map(TargetName::parse).transpose().map_err(|e| e.to_string())?,
        since: since.as_deref().map(|t| time(t, false)).transpose()?,
        until: until.as_deref().map(|t| time(t, true)).transpose()?,
        sessions_limit: limit,
    })
}

async fn audit(config: Config, query: AuditQuery, json: bool) -> Result<ExitCode, String> {
    // Read-only: only the store is needed (no Slack token, no database credentials).
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = std::sync::Arc::new(dynamo::DynamoStore::from_sdk_config(&aws, &config.store));
    let workflow = powerpole::workflow::Workflow {
        config: std::sync::Arc::new(config),
        store,
        clock: std::sync::Arc::new(powerpole::workflow::SystemClock),
        wake: std::sync::Arc::new(tokio::sync::Notify::new()),
    };
    let events = workflow.audit(&query).await.map_err(|e| e.to_string())?;
    for record in &events {
        if json {
            println!("{}", audit_json(record));
        } else {
            println!("{}", audit_line(record));
        }
    }
    if !json {
        eprintln!("audit: {} event(s)", events.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `powerpole audit verify`: the trail against its locked copy.
async fn audit_verify(config: Config, bucket: String, session: Option<String>) -> Result<ExitCode, String> {
    let id = session.as_deref().map(SessionId::parse).transpose().map_err(|e| e.to_string())?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = dynamo::DynamoStore::from_sdk_config(&aws, &config.store);
    // An S3 stand-in or S3-compatible endpoint (AWS_ENDPOINT_URL...) is addressed path-style.
    let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3 = if custom_endpoint { powerpole::export::S3Export::path_style(&aws, &bucket) } else { powerpole::export::S3Export::new(&aws, &bucket) };
    let (items, prefix) = match &id {
        Some(id) => (store.audit_items(id).await, format!("audit/{}/", id.as_str())),
        None => (store.audit_items_since(None).await, "audit/".to_string()),
    };
    let items = items.map_err(|e| e.to_string())?;
    let locked = s3.locked_copy(&prefix).await.map_err(|e| e.to_string())?;
    let verdict = powerpole::export::verify::verify(&items, &locked, chrono::Utc::now());
    for finding in &verdict.findings {
        println!("{finding}");
    }
    let scope = id.map(|id| format!("session {}", id.as_str())).unwrap_or_else(|| "every session".into());
    if verdict.findings.is_empty() {
        println!("audit verify: {scope}: {} event(s) agree with the locked copy in {bucket} ({} expired from the table by their ttl)", verdict.events, verdict.expired);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("audit verify: {scope}: {} problem(s) in {} event(s) against the locked copy in {bucket}", verdict.findings.len(), verdict.events);
        Ok(ExitCode::FAILURE)
    }
}

/// How `audit --report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Html,
}

async fn session_report(config: Config, session: String, format: ReportFormat) -> Result<ExitCode, String> {
    let id = SessionId::parse(&session).map_err(|e| e.to_string())?;
    // Read-only: the store and CloudWatch Logs (no Slack token, no database credentials).
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = dynamo::DynamoStore::from_sdk_config(&aws, &config.store);
    let logs = powerpole::transcripts::CloudWatchLogs::new(&aws);
    let report = powerpole::report::gather(&config, &store, Some(&logs), &id, chrono::Utc::now()).await.map_err(|e| e.to_string())?;
    match format {
        ReportFormat::Text => print!("{}", report.text()),
        ReportFormat::Json => println!("{}", report.json()),
        ReportFormat::Html => print!("{}", powerpole::report::html::render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn doctor(config: Config) -> Result<ExitCode, String> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    println!("ok    configuration: {} target(s)", config.targets.len());
    let checks = powerpole::doctor::run(&config, &aws).await;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    println!("doctor: {} check(s), {failed} failed", checks.len() + 1);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn policy_explain(config: Config, user: String, target: String, role: String, duration: Option<String>) -> Result<ExitCode, String> {
    let usage = |problem: String| Err(format!("policy explain: {problem}"));
    let user = match SlackUserId::parse(&user) {
        Ok(u) => u,
        Err(e) => return usage(e.to_string()),
    };
    let Some(target) = TargetName::parse(&target).ok().and_then(|name| config.target(&name).cloned()) else {
        let names: Vec<&str> = config.targets.keys().map(|t| t.as_str()).collect();
        return usage(format!("no target `{target}` in the configuration; it has: {}", names.join(", ")));
    };
    let role: powerpole::domain::Role = match role.parse() {
        Ok(r) => r,
        Err(_) => return usage(format!("unknown role `{role}`: use READ, DML or DDL")),
    };
    let duration = match duration.as_deref().map(str::parse::<powerpole::domain::AccessDuration>).transpose() {
        Ok(d) => d,
        Err(e) => return usage(e.to_string()),
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let token = powerpole::secrets::Secrets::new(&aws).resolve(&config.slack.bot_token).await.map_err(|e| format!("the Slack bot token: {e}"))?;
    let notifier = powerpole::notify::SlackNotifier::new(&config.slack.api_url, token.expose());
    // The cap counts the person's auto-approved sessions: read them when the role has a rule.
    let held = match powerpole::policy::auto_rule(&target, role) {
        Some(_) => {
            let store = std::sync::Arc::new(dynamo::DynamoStore::from_sdk_config(&aws, &config.store));
            let workflow = powerpole::workflow::Workflow {
                config: std::sync::Arc::new(config.clone()),
                store,
                clock: std::sync::Arc::new(powerpole::workflow::SystemClock),
                wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            };
            workflow.auto_approved_held(&user).await.map_err(|e| format!("the person's sessions could not be read: {e}"))?
        }
        None => 0,
    };
    let mut dir = powerpole::policy::Directory::new(&notifier);
    let verdict = powerpole::policy::evaluate(&mut dir, &target, config.access.max_duration, role, duration, &user, chrono::Utc::now(), held)
        .await
        .map_err(|e| format!("a user group could not be read from Slack: {e}"))?;
    for line in verdict.explain_lines() {
        println!("{line}");
    }
    Ok(if verdict.eligible() && !verdict.too_long() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
