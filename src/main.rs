//! The `powerpole` command: parse arguments and config, build adapters, hand them on.
//! Everything it does lives in the library; this file only wires it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use powerpole::config::Config;
use powerpole::slack::serve::{serve as run_service, ServeOptions};
use powerpole::store::dynamo::{self, TableCreated};
use powerpole::store::schema;

/// Just-in-time, approved, per-person access to Aurora MySQL through ephemeral SSM-only bastions,
/// driven from Slack.
#[derive(Debug, Parser)]
#[command(name = "powerpole", version, about, long_about = None)]
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
    /// Serve Slack (HTTP or Socket Mode, as configured) until stopped. Logs are JSON lines on
    /// stderr; RUST_LOG filters them (default: info).
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead of `[server] listen` (HTTP mode), e.g. 127.0.0.1:3000.
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE (with POWERPOLE_* environment overrides applied). Exits 0 when valid;
    /// otherwise prints every problem with its field path and exits 2.
    Check {
        /// The configuration file (start from powerpole.example.toml).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Print the table definition as JSON (what infra/ must match).
    Schema,
    /// Create the table named in FILE (`store.table`) with its indexes and TTL, for local use.
    /// Uses the usual AWS credentials and honours AWS_ENDPOINT_URL. An existing table that
    /// matches is left as it is.
    Create {
        /// The configuration file (start from powerpole.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    // Two TLS stacks (ring, aws-lc-rs) are linked in: choose one before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Check { file }) => match Config::load(&file) {
            Ok(config) => {
                println!("{}: valid ({} target(s): {})", file.display(), config.targets.len(), config.targets.keys().map(|t| t.as_str()).collect::<Vec<_>>().join(", "));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{}: {err}", file.display());
                ExitCode::from(2)
            }
        },
        Command::Table(TableCommand::Create { config }) => table_create(&config),
        Command::Serve { config, listen } => serve(ServeOptions { config, listen }),
        Command::Table(TableCommand::Schema) => match serde_json::to_string_pretty(&schema::table_definition()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("cannot render the schema: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `powerpole table create --config FILE`.
fn table_create(file: &std::path::Path) -> ExitCode {
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: {err}", file.display());
            return ExitCode::from(2);
        }
    };
    // Both ring and aws-lc-rs end up linked; without a chosen provider the first TLS client panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let table = config.store.table;
    let result = runtime.block_on(async {
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        dynamo::create_table(&aws_sdk_dynamodb::Client::new(&aws), &table).await
    });
    match result {
        Ok(TableCreated::Created) => {
            println!("table `{table}` created with its indexes and TTL");
            ExitCode::SUCCESS
        }
        Ok(TableCreated::AlreadyExisted) => {
            println!("table `{table}` already exists and matches the schema; TTL is on");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(options: ServeOptions) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_service(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "powerpole serve stopped");
            eprintln!("powerpole serve: {err}");
            ExitCode::FAILURE
        }
    }
}
