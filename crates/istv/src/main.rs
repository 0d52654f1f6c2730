//! `istv`: the ISTV assault-record pipeline in one binary.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Turns emergency departments' assault records into the figures community
/// safety teams act on.
#[derive(Parser)]
#[command(name = "istv", version, about, propagate_version = true)]
struct Cli {
    /// Where istv keeps its data (imported directories, the embedded store).
    #[arg(
        long,
        global = true,
        env = "ISTV_DATA_DIR",
        default_value = "./istv-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a feed against the ISTV schema and rules without sending it.
    ///
    /// Exit status: 0 every row is valid, 1 some rows are invalid, 2 the file
    /// cannot be read at all.
    Validate(cmd::validate::Args),
    /// Write a realistic synthetic feed (demo and benchmark input).
    Generate(cmd::generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = &cli.data_dir;
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Generate(args) => cmd::generate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
