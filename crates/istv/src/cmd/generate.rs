//! `istv generate`: a synthetic feed for demos and benchmarks.

use crate::progress;
use anyhow::Context;
use chrono::NaiveDate;
use istv_core::generate::{Generator, Options};
use istv_core::{FeedWriter, Format};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `istv generate`.
#[derive(clap::Args)]
pub struct Args {
    /// How many rows.
    #[arg(long)]
    records: u64,
    /// Seed: the same seed gives the same rows (byte for byte in CSV and JSON
    /// Lines; an Avro container's header metadata and sync marker vary).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format; by default from the file name, else CSV.
    #[arg(long, value_parser = super::parse_format)]
    format: Option<Format>,
    /// First assault date (YYYY-MM-DD); default one year before --to.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last assault date (YYYY-MM-DD); default yesterday.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Share of rows (0 to 1) with a deliberate error.
    #[arg(long, default_value_t = 0.0)]
    invalid_rate: f64,
    /// Only rows for this ED site code.
    #[arg(long)]
    site: Option<String>,
    /// Output file; `-` for standard output; a `.gz` name is gzip-compressed.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.invalid_rate),
        "--invalid-rate must be between 0 and 1"
    );
    let to = args
        .to
        .unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(1));
    let from = args.from.unwrap_or(to - chrono::Duration::days(364));
    anyhow::ensure!(from <= to, "--from must not be after --to");
    let format = args
        .format
        .or_else(|| Format::from_path(&args.output))
        .unwrap_or(Format::Csv);
    let gzip = args.output.extension().is_some_and(|e| e == "gz");
    let sink: Box<dyn Write> = if args.output == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output.display()))?;
        Box::new(std::io::BufWriter::with_capacity(256 << 10, file))
    };
    let sink = if gzip {
        Sink::Gzip(flate2::write::GzEncoder::new(
            sink,
            flate2::Compression::fast(),
        ))
    } else {
        Sink::Plain(sink)
    };
    let mut generator = Generator::new(Options {
        seed: args.seed,
        from,
        to,
        invalid_rate: args.invalid_rate,
        site: args.site,
    });
    let mut writer = FeedWriter::new(format, sink)?;
    let bar = progress::items(args.records, "generating");
    for i in 0..args.records {
        writer.write(&generator.row())?;
        if i % 65_536 == 0 {
            bar.set_position(i);
        }
    }
    bar.finish_and_clear();
    writer.finish()?.finish()?;
    if args.output != Path::new("-") {
        eprintln!(
            "wrote {} {} rows to {}",
            args.records,
            format,
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The output, maybe compressed.
enum Sink {
    Plain(Box<dyn Write>),
    Gzip(flate2::write::GzEncoder<Box<dyn Write>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Flushes, ending the gzip stream when there is one, so that write
    /// errors surface instead of being lost in a drop.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}
