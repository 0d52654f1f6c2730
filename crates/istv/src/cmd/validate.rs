//! `istv validate`: the check an ED data manager runs before sending a feed.

use crate::progress;
use istv_core::{Feed, FieldError, Format, Tally, Validator};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// Arguments of `istv validate`.
#[derive(clap::Args)]
pub struct Args {
    /// The feed (CSV, JSON Lines or Avro; gzip-compressed or not).
    file: PathBuf,
    /// The format, when the file name does not tell it.
    #[arg(long, value_parser = super::parse_format)]
    format: Option<Format>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// With text output, how many row errors to list.
    #[arg(long, default_value_t = 50)]
    max_errors: usize,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut feed = match Feed::open_path(&args.file, args.format) {
        Ok(f) => f,
        Err(e) => return unreadable(&mut out, args.json, &e.to_string()),
    };
    let total = std::fs::metadata(&args.file).ok().map(|m| m.len());
    let bar = progress::bytes(total, "validating");
    let read = feed.bytes_read();
    let mut validator = Validator::new(chrono::Utc::now());
    let mut tally = Tally::default();
    let mut listed = 0usize;
    let mut notices = Vec::new();
    if args.json {
        // Errors stream out as they are found, so memory stays flat.
        write!(out, "{{\"errors\":[")?;
    }
    let mut first = true;
    loop {
        let raw = match feed.next() {
            None => break,
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                bar.finish_and_clear();
                if args.json {
                    // Close the array so the output stays one JSON document.
                    writeln!(
                        out,
                        "],\"error\":{}}}",
                        serde_json::to_string(&e.to_string())?
                    )?;
                    out.flush()?;
                } else {
                    out.flush()?;
                    eprintln!("error: {e}");
                }
                return Ok(ExitCode::from(2));
            }
        };
        let verdict = validator.validate(&raw);
        tally.add(&verdict);
        if let Some(earlier) = verdict.replaces {
            if notices.len() < 1000 {
                notices.push((verdict.row, earlier));
            }
        }
        for e in &verdict.errors {
            if args.json {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut out, &json_error(e))?;
            } else if listed < args.max_errors {
                listed += 1;
                writeln!(out, "{e}")?;
            }
        }
        if tally.rows % 65_536 == 0 {
            bar.set_position(read.load(Ordering::Relaxed));
        }
    }
    bar.finish_and_clear();
    if args.json {
        let notices: Vec<_> = notices
            .iter()
            .map(|(row, earlier)| {
                serde_json::json!({"row": row, "code": "duplicate_record_id",
                    "message": format!("replaces row {earlier}, which has the same site_code and record_id")})
            })
            .collect();
        let by_code: serde_json::Map<String, serde_json::Value> = tally
            .by_code
            .iter()
            .map(|(c, n)| (c.as_str().to_string(), (*n).into()))
            .collect();
        writeln!(
            out,
            "],\"rows\":{},\"valid\":{},\"invalid\":{},\"duplicates\":{},\"by_code\":{},\"notices\":{}}}",
            tally.rows,
            tally.valid,
            tally.invalid,
            tally.duplicates,
            serde_json::Value::Object(by_code),
            serde_json::Value::Array(notices)
        )?;
    } else {
        let shown: u64 = tally.by_code.values().sum();
        if shown > listed as u64 {
            writeln!(
                out,
                "... and {} more problems (use --json for all)",
                shown - listed as u64
            )?;
        }
        for (row, earlier) in notices.iter().take(args.max_errors) {
            writeln!(
                out,
                "row {row}: replaces row {earlier}, which has the same site_code and record_id"
            )?;
        }
        writeln!(
            out,
            "{}: {} rows, {} valid, {} invalid, {} replacing an earlier row",
            args.file.display(),
            tally.rows,
            tally.valid,
            tally.invalid,
            tally.duplicates
        )?;
        for (code, n) in &tally.by_code {
            writeln!(out, "  {code}: {n}")?;
        }
    }
    out.flush()?;
    Ok(if tally.invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn json_error(e: &FieldError) -> serde_json::Value {
    serde_json::json!({"row": e.row, "field": e.field, "code": e.code.as_str(), "message": e.message})
}

fn unreadable(out: &mut impl Write, json: bool, message: &str) -> anyhow::Result<ExitCode> {
    if json {
        writeln!(out, "{}", serde_json::json!({"error": message}))?;
        out.flush()?;
    } else {
        eprintln!("error: {message}");
    }
    Ok(ExitCode::from(2))
}
