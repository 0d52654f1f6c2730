//! Importing reference data into the data directory. Inputs are parsed fully
//! before anything is written, and each file is replaced atomically, so a
//! broken input leaves the previous data in place.

use std::io::Read;
use std::path::Path;

use crate::areas::{AreaImportSummary, AreaKind, AreaLayer, AreaProperties};
use crate::binfmt::{write_atomic, Enc};
use crate::error::ImportError;
use crate::gazetteer::{Gazetteer, PlaceImportSummary};
use crate::geocoder::{AREAS_TAG, PLACES_FILE, PLACES_TAG, POSTCODES_FILE, POSTCODES_TAG};
use crate::postcode::{PostcodeImportSummary, PostcodeIndex};

/// Imports a postcode directory CSV (ONSPD, NSPL or Code-Point Open) into
/// `data_dir/postcodes.bin`. `progress` receives the number of rows read.
pub fn import_postcodes<R: Read>(
    input: R,
    data_dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<PostcodeImportSummary, ImportError> {
    let (idx, summary) = PostcodeIndex::from_csv(input, progress)?;
    let mut e = Enc::new(POSTCODES_TAG);
    idx.encode(&mut e);
    write_atomic(data_dir, POSTCODES_FILE, &e.into_bytes())?;
    Ok(summary)
}

/// Imports a gazetteer CSV (`name,lat,lon[,borough][,precision_m]`) into
/// `data_dir/places.bin`. `progress` receives the number of places read.
pub fn import_places<R: Read>(
    input: R,
    data_dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<PlaceImportSummary, ImportError> {
    let (g, summary) = Gazetteer::from_csv(input, progress)?;
    let mut e = Enc::new(PLACES_TAG);
    g.encode(&mut e);
    write_atomic(data_dir, PLACES_FILE, &e.into_bytes())?;
    Ok(summary)
}

/// Imports a GeoJSON boundary file into `data_dir/areas-<kind>.bin`.
/// `progress` receives the number of features read.
pub fn import_areas<R: Read>(
    kind: AreaKind,
    input: R,
    props: &AreaProperties<'_>,
    data_dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<AreaImportSummary, ImportError> {
    let (layer, summary) = AreaLayer::from_geojson(kind, input, props, progress)?;
    let mut e = Enc::new(AREAS_TAG);
    layer.encode(&mut e);
    write_atomic(data_dir, kind.file_name(), &e.into_bytes())?;
    Ok(summary)
}
