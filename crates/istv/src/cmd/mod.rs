//! One module per subcommand; each parses its own arguments and returns the
//! process exit code.

pub mod generate;
pub mod validate;

use istv_core::Format;

/// Parses `--format`.
pub fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("unknown format {s:?}; expected csv, jsonl or avro"))
}
