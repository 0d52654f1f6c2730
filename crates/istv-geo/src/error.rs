//! Error types for importing reference data and loading the data directory.

use std::path::PathBuf;

/// Why an import failed. Nothing is written when an import fails, so the
/// previously imported data stays in place.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read.
    #[error("cannot read input: {0}")]
    Read(#[source] std::io::Error),
    /// The imported data could not be written to the data directory.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A boundary file has no features.
    #[error("empty boundary file: the feature collection has no features")]
    EmptyBoundaryFile,
    /// A boundary file is not a GeoJSON feature collection.
    #[error("malformed geojson: {0}")]
    MalformedGeoJson(String),
    /// A feature lacks the configured code or name property.
    #[error("feature {index}: missing {property:?} property (or it is not a string or number)")]
    MissingProperty {
        /// Zero-based feature index.
        index: usize,
        /// Property name that was expected.
        property: String,
    },
    /// A feature's geometry is not a polygon or multipolygon, or is invalid.
    #[error("feature {index}: {problem}")]
    BadGeometry {
        /// Zero-based feature index.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// The postcode file header matches none of the supported layouts.
    #[error("unrecognised postcode file layout: expected ONS Postcode Directory, NSPL or Code-Point Open columns (found {found})")]
    UnknownPostcodeLayout {
        /// The columns of the first row, comma-separated.
        found: String,
    },
    /// A postcode row is invalid.
    #[error("postcode row {row}: {problem}")]
    BadPostcodeRow {
        /// One-based line number in the file (the header is line 1).
        row: u64,
        /// What is wrong.
        problem: String,
    },
    /// The postcode file holds no postcode with a usable location.
    #[error("empty postcode file: no postcode with a location")]
    EmptyPostcodeFile,
    /// A required gazetteer column is missing.
    #[error("gazetteer: missing column {0:?}")]
    MissingColumn(String),
    /// A gazetteer row is invalid.
    #[error("gazetteer row {row}: {problem}")]
    BadPlaceRow {
        /// One-based line number in the file (the header is line 1).
        row: u64,
        /// What is wrong.
        problem: String,
    },
    /// The gazetteer file holds no places.
    #[error("empty gazetteer: no places")]
    EmptyGazetteer,
    /// The CSV reader failed (for example invalid UTF-8 or unequal field counts).
    #[error("csv line {line}: {message}")]
    Csv {
        /// One-based line number, 0 if unknown.
        line: u64,
        /// The CSV reader's message.
        message: String,
    },
}

impl ImportError {
    pub(crate) fn csv(e: csv::Error) -> Self {
        let line = e.position().map_or(0, csv::Position::line);
        match e.into_kind() {
            csv::ErrorKind::Io(io) => ImportError::Read(io),
            other => ImportError::Csv {
                line,
                message: format!("{other:?}").to_lowercase(),
            },
        }
    }
}

/// Why the data directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A data file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is truncated, of another version or otherwise unreadable.
    #[error("{path}: {problem}")]
    Corrupt {
        /// File being read.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}
