//! `istv geo`: import reference geography into the data directory, and
//! check how a feed's locations resolve before sending it.

use crate::config::Common;
use crate::progress;
use anyhow::Context;
use istv_core::{Feed, Format, Validator};
use istv_geo::{AreaKind, AreaProperties, Geocoder, GeocoderConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `istv geo ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Import area boundaries (GeoJSON FeatureCollection, WGS84) for one level.
    /// Re-importing replaces the level; a broken file leaves the old one.
    Import {
        /// borough, ward or lsoa.
        #[arg(long, value_parser = parse_level)]
        level: AreaKind,
        /// Feature property holding the area code (e.g. code, WD13CD, LSOA11CD).
        #[arg(long)]
        code_property: String,
        /// Feature property holding the area name (e.g. name, WD13NM, LSOA11NM).
        #[arg(long)]
        name_property: String,
        /// The GeoJSON file.
        file: PathBuf,
    },
    /// Import the London boundaries shipped with istv: the 33 boroughs and
    /// the 649 wards of 2013 (Open Government Licence; see geo/london/LICENCE.md
    /// in the source). Replaces those two levels.
    ImportDefault,
    /// Import a postcode directory (ONS Postcode Directory, NSPL or Code-Point
    /// Open CSV, detected from the header).
    ImportPostcodes {
        /// The CSV file.
        file: PathBuf,
    },
    /// Import a gazetteer of named places (CSV: name, lat, lon, optional borough).
    ImportPlaces {
        /// The CSV file.
        file: PathBuf,
    },
    /// Geocode a feed without storing it: CSV on stdout
    /// (row,record_id,method,precision_m,cell,borough_code,ward_code,lsoa_code),
    /// a summary on stderr.
    Locate {
        /// The feed.
        file: PathBuf,
        /// The format, when the file name does not tell it.
        #[arg(long, value_parser = super::parse_format)]
        format: Option<Format>,
    },
}

/// The default geography: (level, code property, name property, gzipped
/// GeoJSON), shipped in the binary so that a fresh data directory can have
/// London's boroughs and wards without any file.
const DEFAULT_LAYERS: [(AreaKind, &str, &str, &[u8]); 2] = [
    (
        AreaKind::Borough,
        "code",
        "name",
        include_bytes!("../../../../geo/london/london_boroughs_2013.geojson.gz"),
    ),
    (
        AreaKind::Ward,
        "WD13CD",
        "WD13NM",
        include_bytes!("../../../../geo/london/london_wards_2013.geojson.gz"),
    ),
];

/// Imports the default geography into `dir` (created if missing); returns
/// the areas imported per level.
pub(crate) fn import_default(dir: &Path) -> anyhow::Result<Vec<(AreaKind, usize)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Vec::new();
    for (level, code, name, gz) in DEFAULT_LAYERS {
        let props = AreaProperties { code, name };
        let input = std::io::BufReader::new(flate2::read::GzDecoder::new(gz));
        let s = istv_geo::import_areas(level, input, &props, dir, &mut |_| {})
            .with_context(|| format!("cannot import the default {} boundaries", level.as_str()))?;
        out.push((level, s.areas));
    }
    Ok(out)
}

fn parse_level(s: &str) -> Result<AreaKind, String> {
    AreaKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown level {s:?}; expected borough, ward or lsoa"))
}

fn open(
    file: &Path,
) -> anyhow::Result<(std::io::BufReader<std::fs::File>, indicatif::ProgressBar)> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = f.metadata()?.len();
    Ok((
        std::io::BufReader::with_capacity(1 << 20, f),
        progress::items(size, "importing"),
    ))
}

/// Runs `istv geo`.
pub fn run(command: Command, common: &Common) -> anyhow::Result<ExitCode> {
    let dir = common.geo_dir();
    if !matches!(command, Command::Locate { .. }) {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match command {
        Command::Import {
            level,
            code_property,
            name_property,
            file,
        } => {
            let (input, bar) = open(&file)?;
            let props = AreaProperties {
                code: &code_property,
                name: &name_property,
            };
            let s =
                istv_geo::import_areas(level, input, &props, &dir, &mut |n| bar.set_position(n))
                    .with_context(|| format!("cannot import {}", file.display()))?;
            bar.finish_and_clear();
            eprintln!(
                "imported {} {} areas from {} features ({} H3 cells cached for fast lookup)",
                s.areas,
                level.as_str(),
                s.features,
                s.cached_cells
            );
        }
        Command::ImportDefault => {
            for (level, areas) in import_default(&dir)? {
                eprintln!("imported {areas} {} areas (London, 2013)", level.as_str());
            }
        }
        Command::ImportPostcodes { file } => {
            let (input, bar) = open(&file)?;
            let s = istv_geo::import_postcodes(input, &dir, &mut |n| bar.set_position(n))
                .with_context(|| format!("cannot import {}", file.display()))?;
            bar.finish_and_clear();
            eprintln!(
                "imported {} unit postcodes ({:?} layout, {} rows): {} sectors, {} districts; skipped {} without a location and {} repeated",
                s.units, s.layout, s.rows, s.sectors, s.districts, s.without_location, s.duplicates
            );
        }
        Command::ImportPlaces { file } => {
            let (input, bar) = open(&file)?;
            let s = istv_geo::import_places(input, &dir, &mut |n| bar.set_position(n))
                .with_context(|| format!("cannot import {}", file.display()))?;
            bar.finish_and_clear();
            eprintln!("imported {} places ({} distinct names)", s.places, s.names);
        }
        Command::Locate { file, format } => return locate(&file, format, &dir, common.geocoder),
    }
    Ok(ExitCode::SUCCESS)
}

fn locate(
    file: &Path,
    format: Option<Format>,
    dir: &Path,
    config: GeocoderConfig,
) -> anyhow::Result<ExitCode> {
    let geocoder = Geocoder::load(dir, config)
        .with_context(|| format!("cannot load geography from {}", dir.display()))?;
    let mut feed = match Feed::open_path(file, format) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(std::io::stdout().lock()));
    out.write_record([
        "row",
        "record_id",
        "method",
        "precision_m",
        "cell",
        "borough_code",
        "ward_code",
        "lsoa_code",
    ])?;
    let mut validator = Validator::new(chrono::Utc::now());
    let mut by_method: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut rows, mut invalid) = (0u64, 0u64);
    while let Some(raw) = feed.next() {
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                out.flush()?;
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        rows += 1;
        let verdict = validator.validate(&raw);
        let Some(record) = verdict.record else {
            invalid += 1;
            let id = raw.get(istv_core::Field::RecordId).unwrap_or("");
            out.write_record([
                &verdict.row.to_string(),
                id,
                "invalid_row",
                "",
                "",
                "",
                "",
                "",
            ])?;
            continue;
        };
        let g = geocoder.geocode(&istv_pipeline::location_input(&record));
        *by_method.entry(g.method.as_str()).or_default() += 1;
        let opt = |v: Option<String>| v.unwrap_or_default();
        out.write_record([
            verdict.row.to_string(),
            record.record_id.clone(),
            g.method.as_str().to_string(),
            opt(g.precision_m.map(|p| p.to_string())),
            opt(g.cell.map(|c| c.to_string())),
            opt(g.borough.map(|c| c.to_string())),
            opt(g.ward.map(|c| c.to_string())),
            opt(g.lsoa.map(|c| c.to_string())),
        ])?;
    }
    out.flush()?;
    let pct = |n: u64| {
        if rows == 0 {
            0.0
        } else {
            100.0 * n as f64 / rows as f64
        }
    };
    eprintln!("{}: {rows} rows", file.display());
    for (method, n) in &by_method {
        eprintln!("  {method:<18} {n:>9}  {:5.1}%", pct(*n));
    }
    if invalid > 0 {
        eprintln!(
            "  {:<18} {invalid:>9}  {:5.1}%  (run istv validate for the reasons)",
            "invalid_row",
            pct(invalid)
        );
    }
    let resolved: u64 = by_method
        .iter()
        .filter(|(m, _)| !matches!(**m, "unresolved" | "out_of_area"))
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "  resolved {:.1}%, out of area {:.1}%, unresolved {:.1}%",
        pct(resolved),
        pct(*by_method.get("out_of_area").unwrap_or(&0)),
        pct(*by_method.get("unresolved").unwrap_or(&0))
    );
    Ok(ExitCode::SUCCESS)
}
