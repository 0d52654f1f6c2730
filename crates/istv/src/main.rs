//! `istv`: the ISTV assault-record pipeline in one binary.

mod cmd;
mod config;
mod content_key;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Turns emergency departments' assault records into the figures community
/// safety teams act on.
///
/// Settings come from built-in defaults, then a TOML file (--config), then
/// ISTV_* environment variables, then flags; later ones win.
#[derive(Parser)]
#[command(name = "istv", version, about, propagate_version = true)]
struct Cli {
    /// Where istv keeps its data: imported geography and the embedded store
    /// [default: ./istv-data].
    #[arg(long, global = true, env = "ISTV_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML file of settings (keys as the long flags, with underscores).
    #[arg(long, global = true, env = "ISTV_CONFIG")]
    config: Option<PathBuf>,
    /// The store: a postgres:// URL for PostgreSQL; by default an embedded
    /// SQLite file in the data directory.
    #[arg(long, global = true, env = "ISTV_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    geo: config::GeoFlags,
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
    /// Import reference geography and check how a feed's locations resolve.
    #[command(subcommand)]
    Geo(cmd::geo::Command),
    /// Run the whole pipeline as one service: uploads, query API, metrics.
    Serve(Box<cmd::serve::Args>),
    /// Serve the query API and portal over the store, taking no upload
    /// (the store is filled by `istv aggregate`). Takes the flags of
    /// `istv serve` except --demo.
    Query(Box<cmd::serve::Args>),
    /// Consume geocoded events from Kafka into the store, offsets in the
    /// same transaction, and publish the changed aggregates.
    Aggregate(Box<cmd::aggregate::Args>),
    /// Manage ED sites and their upload tokens.
    #[command(subcommand)]
    Sites(cmd::sites::Command),
    /// Manage organisations.
    #[command(subcommand)]
    Orgs(cmd::users::OrgsCommand),
    /// Manage users, their roles, scopes, profiles and API tokens.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Send a feed to a running service and print the receipt.
    ///
    /// Exit status: 0 every row accepted, 1 some rows rejected, 2 the upload
    /// failed.
    Upload(cmd::upload::Args),
    /// List and verify the audit log.
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    /// Compute and store the public tier's release of a month, once.
    ///
    /// Exit status: 0 released, 1 the month has a release already (a
    /// release is never recomputed), 2 an error.
    Release(cmd::release::Args),
    /// Serve a Confluent-compatible schema registry over the store.
    Registry(cmd::registry::Args),
    /// The upload API of serve, forwarding validated rows to Kafka.
    ///
    /// Same credentials, limits and receipts as serve; accepted rows go to
    /// istv.attendances.v1, row rejections to istv.rejections.v1, and the
    /// receipt is sent once the broker has acknowledged every one.
    Ingest(Box<cmd::ingest::IngestArgs>),
    /// Geocode attendances from Kafka into istv.geocoded.v1.
    ///
    /// Each batch is one Kafka transaction with its consumed offsets:
    /// effectively once for read_committed consumers.
    Geocode(Box<cmd::geocode::Args>),
    /// Manage the Kafka topics of the scaled-out services.
    #[command(subcommand)]
    Topics(cmd::topics::Command),
    /// Recount the aggregates from the stored records and compare.
    ///
    /// Exit status: 0 they agree, 1 they differ.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = config::FileConfig::load(cli.config.as_deref()).and_then(|file| {
        let common = config::Common::resolve(cli.data_dir, cli.database_url, &cli.geo, &file)?;
        match cli.command {
            Command::Validate(args) => cmd::validate::run(args),
            Command::Generate(args) => cmd::generate::run(args),
            Command::Geo(c) => cmd::geo::run(c, &common),
            Command::Serve(args) => cmd::serve::run(*args, &common, &file),
            Command::Query(args) => cmd::serve::run_query(*args, &common, &file),
            Command::Aggregate(args) => cmd::aggregate::run(*args, &common, &file),
            Command::Sites(c) => cmd::sites::run(c, &common),
            Command::Orgs(c) => cmd::users::orgs(c, &common),
            Command::Users(c) => cmd::users::users(c, &common),
            Command::Upload(args) => cmd::upload::run(args),
            Command::Audit(c) => cmd::audit::run(c, &common),
            Command::Release(args) => cmd::release::run(args, &common, &file),
            Command::Registry(args) => cmd::registry::run(args, &common, &file),
            Command::Topics(c) => cmd::topics::run(c, &file),
            Command::Ingest(args) => cmd::ingest::run(*args, &common, &file),
            Command::Geocode(args) => cmd::geocode::run(*args, &common, &file),
            Command::Check => cmd::sites::check(&common),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
