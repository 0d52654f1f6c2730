//! Geocoding for ISTV: resolves an incident location from coordinates, a grid
//! reference, a postcode or a free-text description, then places it in an H3
//! cell and in London areas (borough, ward, LSOA), never more finely than the
//! location's precision allows.
//!
//! Reference data (postcode directory, gazetteer, boundary files) is imported
//! once into a data directory of compact binary files (see [`import`]) and
//! loaded by [`Geocoder::load`].

#![warn(missing_docs)]

pub mod areas;
mod binfmt;
mod cellareas;
pub mod cells;
pub mod error;
pub mod gazetteer;
pub mod geocoder;
pub mod grid;
pub mod import;
mod lattice;
pub mod postcode;

pub use areas::{Area, AreaCode, AreaImportSummary, AreaKind, AreaLayer, AreaProperties};
pub use error::{ImportError, LoadError};
pub use gazetteer::{Gazetteer, Place, PlaceImportSummary};
pub use geocoder::{
    Geocode, GeocodeMethod, Geocoder, GeocoderConfig, LocationInput, ServiceArea, PLACES_FILE,
    POSTCODES_FILE, WARM_MAX_CELLS,
};
pub use h3o::{CellIndex, Resolution};
pub use import::{import_areas, import_places, import_postcodes};
pub use postcode::{PostcodeImportSummary, PostcodeIndex, PostcodeLayout};
