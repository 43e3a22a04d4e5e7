//! The `powerpole` command: parse arguments and config, build adapters, hand them on.
//! Everything it does lives in the library; this file only wires it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use powerpole::config::Config;
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
    /// Describe the DynamoDB table.
    #[command(subcommand)]
    Table(TableCommand),
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
}

fn main() -> ExitCode {
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
