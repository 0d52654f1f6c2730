//! One module per subcommand; each parses its own arguments and returns the
//! process exit code.

pub mod aggregate;
pub mod audit;
pub mod generate;
pub mod geo;
pub mod geocode;
pub mod ingest;
pub mod kafka;
pub mod registry;
pub mod release;
pub mod serve;
pub mod sites;
pub mod topics;
pub mod upload;
pub mod users;
pub mod validate;

use istv_core::Format;

pub(crate) use serve::{init_logging, shutdown_signal, start_logging};

/// Parses `--format`.
pub fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("unknown format {s:?}; expected csv, jsonl or avro"))
}

/// A single-threaded runtime for commands that only talk to the store.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
