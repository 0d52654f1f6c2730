//! The geocoder: resolves an incident location by the first method that
//! works, then places it in an H3 cell and in areas no finer than its precision.

use std::path::Path;

use h3o::{CellIndex, Resolution};

use crate::areas::{AreaCode, AreaKind, AreaLayer, CACHE_RES, NO_AREA};
use crate::binfmt::{corrupt, read_optional, Dec};
use crate::cellareas::{locate_local, CellAreas};
use crate::cells::{cell_at, normalise_longitude, resolution_for_precision};
use crate::error::LoadError;
use crate::gazetteer::Gazetteer;
use crate::grid::osgb36_to_wgs84;
use crate::lattice::{CellLattice, Entry};
use crate::postcode::{find_postcode_in_text, PostcodeHit, PostcodeIndex, PostcodeLevel};

/// File name of the postcode directory in the data directory.
pub const POSTCODES_FILE: &str = "postcodes.bin";
/// File name of the gazetteer in the data directory.
pub const PLACES_FILE: &str = "places.bin";
pub(crate) const POSTCODES_TAG: &[u8; 4] = b"PCDS";
pub(crate) const PLACES_TAG: &[u8; 4] = b"PLCS";
pub(crate) const AREAS_TAG: &[u8; 4] = b"AREA";

/// The location fields of one record; any may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocationInput<'a> {
    /// WGS84 latitude in degrees.
    pub latitude: Option<f64>,
    /// WGS84 longitude in degrees (values above 180 are normalised).
    pub longitude: Option<f64>,
    /// OSGB36 British National Grid easting in metres.
    pub easting: Option<f64>,
    /// OSGB36 British National Grid northing in metres.
    pub northing: Option<f64>,
    /// A unit, sector or district postcode in any case or spacing.
    pub postcode: Option<&'a str>,
    /// Free-text description of the location.
    pub description: Option<&'a str>,
}

/// How a location was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GeocodeMethod {
    /// From latitude/longitude.
    LatLon,
    /// From OSGB36 easting/northing.
    Grid,
    /// From a unit postcode in the directory.
    PostcodeUnit,
    /// From the centroid of the postcode's sector.
    PostcodeSector,
    /// From the centroid of the postcode's district.
    PostcodeDistrict,
    /// From a postcode found in the description.
    TextPostcode,
    /// From a named place found in the description.
    Gazetteer,
    /// Located, but outside the service area.
    OutOfArea,
    /// No method worked: counted under "location unknown".
    Unresolved,
}

impl GeocodeMethod {
    /// Every method, in resolution order.
    pub const ALL: [GeocodeMethod; 9] = [
        GeocodeMethod::LatLon,
        GeocodeMethod::Grid,
        GeocodeMethod::PostcodeUnit,
        GeocodeMethod::PostcodeSector,
        GeocodeMethod::PostcodeDistrict,
        GeocodeMethod::TextPostcode,
        GeocodeMethod::Gazetteer,
        GeocodeMethod::OutOfArea,
        GeocodeMethod::Unresolved,
    ];

    /// Stable name, e.g. `latlon`, `postcode_sector`, `unresolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            GeocodeMethod::LatLon => "latlon",
            GeocodeMethod::Grid => "grid",
            GeocodeMethod::PostcodeUnit => "postcode_unit",
            GeocodeMethod::PostcodeSector => "postcode_sector",
            GeocodeMethod::PostcodeDistrict => "postcode_district",
            GeocodeMethod::TextPostcode => "text_postcode",
            GeocodeMethod::Gazetteer => "gazetteer",
            GeocodeMethod::OutOfArea => "out_of_area",
            GeocodeMethod::Unresolved => "unresolved",
        }
    }

    /// Parses a name returned by [`GeocodeMethod::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl std::fmt::Display for GeocodeMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of geocoding one record. The exact point is deliberately not
/// part of it: only a cell no finer than the precision, and areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geocode {
    /// How the location was resolved.
    pub method: GeocodeMethod,
    /// Precision of the location in metres (`None` when unresolved).
    pub precision_m: Option<u32>,
    /// H3 cell at the finest resolution the precision allows (capped by the
    /// configured finest resolution); `None` when unresolved or out of area.
    pub cell: Option<CellIndex>,
    /// Borough code.
    pub borough: Option<AreaCode>,
    /// Ward code.
    pub ward: Option<AreaCode>,
    /// LSOA code.
    pub lsoa: Option<AreaCode>,
}

impl Geocode {
    /// An unresolved result.
    pub fn unresolved() -> Self {
        Geocode {
            method: GeocodeMethod::Unresolved,
            precision_m: None,
            cell: None,
            borough: None,
            ward: None,
            lsoa: None,
        }
    }
}

/// A latitude/longitude box; locations outside it are `out_of_area`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceArea {
    /// Southern bound in degrees.
    pub min_lat: f64,
    /// Northern bound in degrees.
    pub max_lat: f64,
    /// Western bound in degrees.
    pub min_lon: f64,
    /// Eastern bound in degrees.
    pub max_lon: f64,
}

impl ServiceArea {
    /// Greater London's bounding box (51.29..51.69, -0.51..0.33) plus a margin
    /// of about 5 km.
    pub const GREATER_LONDON: ServiceArea = ServiceArea {
        min_lat: 51.23,
        max_lat: 51.75,
        min_lon: -0.60,
        max_lon: 0.38,
    };

    /// Whether a point lies inside (bounds included).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

impl Default for ServiceArea {
    fn default() -> Self {
        Self::GREATER_LONDON
    }
}

/// Geocoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeocoderConfig {
    /// Finest H3 resolution reported (default 10, ~76 m edges).
    pub finest_resolution: Resolution,
    /// Locations outside are `out_of_area`.
    pub service_area: ServiceArea,
    /// Precision assumed for latitude/longitude input, in metres (default 10).
    pub latlon_precision_m: u32,
    /// Coarsest precision (metres) still assigned a borough (default 2000).
    pub borough_max_precision_m: u32,
    /// Coarsest precision (metres) still assigned a ward (default 500).
    pub ward_max_precision_m: u32,
    /// Coarsest precision (metres) still assigned an LSOA (default 100).
    pub lsoa_max_precision_m: u32,
    /// Jaro-Winkler similarity a fuzzy gazetteer match must reach (default 0.92).
    pub gazetteer_similarity: f64,
}

impl Default for GeocoderConfig {
    fn default() -> Self {
        GeocoderConfig {
            finest_resolution: Resolution::Ten,
            service_area: ServiceArea::GREATER_LONDON,
            latlon_precision_m: 10,
            borough_max_precision_m: 2000,
            ward_max_precision_m: 500,
            lsoa_max_precision_m: 100,
            gazetteer_similarity: crate::gazetteer::DEFAULT_SIMILARITY,
        }
    }
}

/// The most cells (at resolution 11, about 2,150 m2 each) whose tables
/// [`Geocoder::warm`] builds: about 8,600 km2, over three times the box of
/// Greater London's boundaries.
pub const WARM_MAX_CELLS: usize = 4_000_000;

/// Resolves locations using whatever reference data is loaded.
#[derive(Debug, Default)]
pub struct Geocoder {
    config: GeocoderConfig,
    postcodes: Option<PostcodeIndex>,
    places: Option<Gazetteer>,
    layers: [Option<AreaLayer>; 3],
    /// Fast exact cells at `CACHE_RES` over the service area, each with what
    /// its points need to find their area in every layer. Built when a layer
    /// is loaded and rebuilt whenever one changes; `None` without layers.
    lattice: Option<CellLattice<FineCell, u32>>,
    /// Fast exact cells at the finest resolution reported (a point's cell is
    /// not always its finer cell's parent, so it is looked up on its own).
    /// Depends on the settings only.
    out_lattice: Option<CellLattice<()>>,
}

/// What a lattice cell at `CACHE_RES` carries: per layer, an area index
/// below `LOCAL`, `NO_AREA16`, `NEEDS_POLYGONS`, or `LOCAL` plus the offset
/// of the cell's boundary items in its block's arena. Eight bytes, so the
/// table for all of London stays a few megabytes.
#[derive(Debug, Clone, Copy, Default)]
struct FineCell {
    areas: [u16; 3],
    /// False for a lattice point without a cell (the default).
    valid: bool,
}

/// No area holds the cell's points.
const NO_AREA16: u16 = u16::MAX;
/// The cell's points need the layer's polygons (a layer with too many
/// areas for this table, or a cell without a usable reference point).
const NEEDS_POLYGONS: u16 = u16::MAX - 1;
/// From this bit up: the offset of the cell's boundary items.
const LOCAL: u16 = 1 << 15;

/// One layer's entry of a [`FineCell`], decoded.
enum Slot {
    /// Every point lies in this area.
    Area(u32),
    /// No area holds the cell's points.
    NoArea,
    /// The layer's polygons decide.
    Polygons,
    /// The cell's boundary items start at this offset of the block's arena.
    Local(usize),
}

impl Slot {
    #[inline]
    fn of(a: u16) -> Slot {
        match a {
            NO_AREA16 => Slot::NoArea,
            NEEDS_POLYGONS => Slot::Polygons,
            a if a & LOCAL != 0 => Slot::Local(usize::from(a & !LOCAL)),
            a => Slot::Area(u32::from(a)),
        }
    }
}

impl Geocoder {
    /// A geocoder with no reference data: only coordinates resolve, without areas.
    pub fn new(config: GeocoderConfig) -> Self {
        let a = &config.service_area;
        let out_lattice = CellLattice::new(
            config.finest_resolution,
            a.min_lat,
            a.max_lat,
            a.min_lon,
            a.max_lon,
        );
        Geocoder {
            config,
            out_lattice,
            ..Default::default()
        }
    }

    /// Rebuilds the area lattice after the layers changed (its payloads
    /// hold their answers).
    fn reset_area_lattice(&mut self) {
        let a = &self.config.service_area;
        self.lattice = self
            .layers
            .iter()
            .any(Option::is_some)
            .then(|| CellLattice::new(CACHE_RES, a.min_lat, a.max_lat, a.min_lon, a.max_lon))
            .flatten();
    }

    /// What the points of a cell at `CACHE_RES` need to find their area in
    /// each layer, with boundary items appended to `arena`.
    fn fine_cell(&self, fine: CellIndex, arena: &mut Vec<u32>) -> FineCell {
        let areas = AreaKind::ALL.map(|kind| match &self.layers[kind as usize] {
            None => NO_AREA16,
            Some(layer) => match layer.cell_areas(fine) {
                CellAreas::Whole(NO_AREA) => NO_AREA16,
                CellAreas::Whole(a) if a < u32::from(LOCAL) => a as u16,
                CellAreas::Local(items) if arena.len() < usize::from(NEEDS_POLYGONS - LOCAL) => {
                    let at = LOCAL | arena.len() as u16;
                    arena.extend(items);
                    at
                }
                _ => NEEDS_POLYGONS,
            },
        });
        FineCell { areas, valid: true }
    }

    /// Loads whatever the data directory holds; a missing file (or directory)
    /// just leaves that method or layer unavailable.
    pub fn load(data_dir: &Path, config: GeocoderConfig) -> Result<Self, LoadError> {
        let mut g = Geocoder::new(config);
        if let Some(bytes) = read_optional(data_dir, POSTCODES_FILE)? {
            let idx = decode(&bytes, POSTCODES_TAG, PostcodeIndex::decode)
                .map_err(|p| corrupt(data_dir, POSTCODES_FILE, p))?;
            g.postcodes = Some(idx);
        }
        if let Some(bytes) = read_optional(data_dir, PLACES_FILE)? {
            let gz = decode(&bytes, PLACES_TAG, Gazetteer::decode)
                .map_err(|p| corrupt(data_dir, PLACES_FILE, p))?;
            g.set_gazetteer(Some(gz));
        }
        for kind in AreaKind::ALL {
            if let Some(bytes) = read_optional(data_dir, kind.file_name())? {
                let layer = decode(&bytes, AREAS_TAG, |d| AreaLayer::decode(d, kind))
                    .map_err(|p| corrupt(data_dir, kind.file_name(), p))?;
                g.layers[kind as usize] = Some(layer);
            }
        }
        g.reset_area_lattice();
        Ok(g)
    }

    /// Replaces the postcode directory.
    pub fn set_postcodes(&mut self, postcodes: Option<PostcodeIndex>) {
        self.postcodes = postcodes;
    }

    /// Replaces the gazetteer (its similarity threshold is set from the config).
    pub fn set_gazetteer(&mut self, mut places: Option<Gazetteer>) {
        if let Some(g) = places.as_mut() {
            g.set_similarity(self.config.gazetteer_similarity);
        }
        self.places = places;
    }

    /// Replaces the layer of the given layer's kind.
    pub fn set_layer(&mut self, layer: AreaLayer) {
        let k = layer.kind() as usize;
        self.layers[k] = Some(layer);
        self.reset_area_lattice();
    }

    /// The settings.
    pub fn config(&self) -> &GeocoderConfig {
        &self.config
    }

    /// The postcode directory, if loaded.
    pub fn postcodes(&self) -> Option<&PostcodeIndex> {
        self.postcodes.as_ref()
    }

    /// The gazetteer, if loaded.
    pub fn gazetteer(&self) -> Option<&Gazetteer> {
        self.places.as_ref()
    }

    /// An area layer (with names and polygons), if loaded.
    pub fn areas(&self, kind: AreaKind) -> Option<&AreaLayer> {
        self.layers[kind as usize].as_ref()
    }

    /// Resolves one record's location by the first method that works:
    /// latitude/longitude, easting/northing, postcode, description (a postcode
    /// in the text, then a gazetteer place), else `unresolved`. Non-finite
    /// numbers count as absent; (0, 0) pairs are treated as missing-value
    /// placeholders. Never panics.
    pub fn geocode(&self, input: &LocationInput<'_>) -> Geocode {
        let placing = match self.resolve(input) {
            Resolved::At(at) => self.prepare(at),
            Resolved::Done(g) => Err(g),
        };
        match placing {
            Ok(mut p) => {
                p.read();
                self.finish(p)
            }
            Err(g) => g,
        }
    }

    /// Builds ahead of time the lookup tables that the first points of each
    /// place otherwise build as they arrive (about a microsecond per cell),
    /// so that a new server's first uploads run at full speed. Answers never
    /// change, only when the work is done. Covers the service area where
    /// loaded areas lie (all of it without layers), split into `parts`
    /// bands of latitude of which this call builds band `part`, so threads
    /// can share the work. Returns the number of points visited, or `None`
    /// when that box holds more than [`WARM_MAX_CELLS`] cells (tables for a
    /// region much larger than a city would take too long and too much
    /// memory; they are then built on use). The table of a finest
    /// resolution finer than 10 is always built on use.
    pub fn warm(&self, part: usize, parts: usize) -> Option<usize> {
        let a = &self.config.service_area;
        let (mut lat0, mut lat1, mut lon0, mut lon1) = (a.min_lat, a.max_lat, a.min_lon, a.max_lon);
        let bounds = self.layers.iter().flatten().filter_map(AreaLayer::bounds);
        if let Some(b) =
            bounds.reduce(|p, q| (p.0.min(q.0), p.1.max(q.1), p.2.min(q.2), p.3.max(q.3)))
        {
            (lat0, lat1) = (lat0.max(b.0), lat1.min(b.1));
            (lon0, lon1) = (lon0.max(b.2), lon1.min(b.3));
        }
        if !(lat0 < lat1 && lon0 < lon1) || parts == 0 || part >= parts {
            return Some(0);
        }
        const M_PER_DEG: f64 = 111_200.0;
        let cos_lat = ((lat0 + lat1) * 0.5).to_radians().cos();
        let box_m2 = (lat1 - lat0) * M_PER_DEG * (lon1 - lon0) * M_PER_DEG * cos_lat;
        if box_m2 / CACHE_RES.area_m2() > WARM_MAX_CELLS as f64 {
            return None;
        }
        // Points two cell spacings apart (at the finer lattice) reach every
        // block of 8 x 8 cells, and every tile, that the box touches.
        let spacing_m = 3f64.sqrt() * CACHE_RES.edge_length_m();
        let dlat = 2.0 * spacing_m / M_PER_DEG;
        let dlon = dlat / cos_lat;
        let rows = ((lat1 - lat0) / dlat).ceil() as usize + 1;
        let cols = ((lon1 - lon0) / dlon).ceil() as usize + 1;
        // Whole bands per thread: threads filling neighbouring rows would
        // wait for each other's blocks.
        let (first, last) = (rows * part / parts, rows * (part + 1) / parts);
        let fill = |cell, arena: &mut Vec<u32>| self.fine_cell(cell, arena);
        let out = self
            .out_lattice
            .as_ref()
            .filter(|_| self.config.finest_resolution < CACHE_RES);
        for r in first..last {
            let lat = (lat0 + r as f64 * dlat).min(lat1);
            for c in 0..cols {
                let lon = (lon0 + c as f64 * dlon).min(lon1);
                if let Some(l) = out {
                    l.entry(lat, lon, |_, _| ());
                }
                if let Some(l) = &self.lattice {
                    l.entry(lat, lon, fill);
                }
            }
        }
        Some((last - first) * cols)
    }

    /// Geocodes many locations, appending to `out` exactly what
    /// [`Geocoder::geocode`] gives for each, in order. Faster per location:
    /// the table lookups of a few locations at a time are started before any
    /// of their results is used, so their memory reads overlap instead of
    /// waiting one after the other.
    pub fn geocode_many(&self, inputs: &[LocationInput<'_>], out: &mut Vec<Geocode>) {
        const LANES: usize = 16;
        out.reserve(inputs.len());
        let mut placing: Vec<Result<Placing<'_>, Geocode>> = Vec::with_capacity(LANES);
        for chunk in inputs.chunks(LANES) {
            placing.extend(chunk.iter().map(|input| match self.resolve(input) {
                Resolved::At(at) => self.prepare(at),
                Resolved::Done(g) => Err(g),
            }));
            for p in placing.iter_mut().flatten() {
                p.read();
            }
            for p in placing.iter().flatten() {
                p.touch_arena();
            }
            out.extend(placing.drain(..).map(|p| match p {
                Ok(p) => self.finish(p),
                Err(g) => g,
            }));
        }
    }

    /// The point of a location, by the first method that works, or the
    /// result when there is none.
    fn resolve(&self, input: &LocationInput<'_>) -> Resolved {
        if let Some((lat, lon)) = latlon(input.latitude, input.longitude) {
            return Resolved::At(At {
                lat,
                lon,
                method: GeocodeMethod::LatLon,
                precision_m: self.config.latlon_precision_m,
            });
        }
        if let (Some(e), Some(n)) = (finite(input.easting), finite(input.northing)) {
            if e != 0.0 || n != 0.0 {
                if let Some((lat, lon)) = osgb36_to_wgs84(e, n) {
                    return Resolved::At(At {
                        lat,
                        lon,
                        method: GeocodeMethod::Grid,
                        precision_m: grid_precision(e, n),
                    });
                }
            }
        }
        if let (Some(pc), Some(idx)) = (input.postcode, self.postcodes.as_ref()) {
            if let Some(hit) = idx.lookup_str(pc) {
                let method = match hit.level {
                    PostcodeLevel::Unit => GeocodeMethod::PostcodeUnit,
                    PostcodeLevel::Sector => GeocodeMethod::PostcodeSector,
                    PostcodeLevel::District => GeocodeMethod::PostcodeDistrict,
                };
                return Resolved::At(At::hit(hit, method));
            }
        }
        if let Some(text) = input.description {
            let text_hit = find_postcode_in_text(text)
                .zip(self.postcodes.as_ref())
                .and_then(|(pc, idx)| idx.lookup(&pc));
            if let Some(hit) = text_hit {
                return Resolved::At(At::hit(hit, GeocodeMethod::TextPostcode));
            }
            if let Some(m) = self.places.as_ref().and_then(|g| g.find_in(text)) {
                return Resolved::At(At {
                    lat: m.place.lat,
                    lon: m.place.lon,
                    method: GeocodeMethod::Gazetteer,
                    precision_m: m.place.precision_m,
                });
            }
        }
        Resolved::Done(Geocode::unresolved())
    }

    /// Starts placing a located point: checks the service area, picks the
    /// resolution and finds (without reading) its lattice entries. A point
    /// outside the service area is already its result.
    fn prepare(&self, at: At) -> Result<Placing<'_>, Geocode> {
        if !self.config.service_area.contains(at.lat, at.lon) {
            let mut g = Geocode::unresolved();
            g.method = GeocodeMethod::OutOfArea;
            g.precision_m = Some(at.precision_m);
            return Err(g);
        }
        let res =
            resolution_for_precision(f64::from(at.precision_m)).min(self.config.finest_resolution);
        let out = self
            .out_lattice
            .as_ref()
            .filter(|_| res == self.config.finest_resolution)
            .and_then(|l| l.entry(at.lat, at.lon, |_, _| ()));
        let mut p = Placing {
            at,
            res,
            out,
            fine: None,
            fine_cell: None,
            raw_cell: None,
            cached: None,
        };
        if let Some(lattice) = &self.lattice {
            let fill = |cell, arena: &mut Vec<u32>| self.fine_cell(cell, arena);
            p.fine = lattice.entry(at.lat, at.lon, fill);
            if p.fine.is_none() {
                // A point the lattice left to h3o (near a cell edge) still
                // finds its cell's entry, from the cell.
                p.fine_cell = cell_at(at.lat, at.lon, CACHE_RES);
                p.fine = p.fine_cell.and_then(|c| lattice.entry_of(c, fill));
            }
        }
        Ok(p)
    }

    /// Cell and areas for a prepared point, limited by its precision.
    fn finish(&self, p: Placing<'_>) -> Geocode {
        let At {
            lat,
            lon,
            method,
            precision_m,
        } = p.at;
        let mut g = Geocode::unresolved();
        g.precision_m = Some(precision_m);
        g.method = method;
        let fast_cell = p.raw_cell.and_then(|c| CellIndex::try_from(c).ok());
        g.cell = fast_cell.or_else(|| cell_at(lat, lon, p.res));
        if g.cell.is_none() {
            g.method = GeocodeMethod::OutOfArea;
            return g;
        }
        // Without a lattice entry, the layers' own cache needs the point's
        // `CACHE_RES` cell: computed at most once, and only then.
        let mut fine: Option<Option<CellIndex>> = p.fine_cell.map(Some);
        let limits = [
            self.config.borough_max_precision_m,
            self.config.ward_max_precision_m,
            self.config.lsoa_max_precision_m,
        ];
        let mut codes: [Option<AreaCode>; 3] = [None, None, None];
        for kind in AreaKind::ALL {
            let k = kind as usize;
            if precision_m > limits[k] {
                continue; // too coarse to say which area
            }
            if let Some(layer) = &self.layers[k] {
                let index = match p.cached.map(|(c, arena)| (Slot::of(c.areas[k]), arena)) {
                    Some((Slot::Area(a), _)) => Some(a),
                    Some((Slot::NoArea, _)) => None,
                    Some((Slot::Polygons, _)) => layer.locate_exact(lat, lon),
                    Some((Slot::Local(at), arena)) => locate_local(layer, &arena[at..], lat, lon),
                    None => match *fine.get_or_insert_with(|| cell_at(lat, lon, CACHE_RES)) {
                        Some(fine) => layer.locate_index(lat, lon, fine),
                        None => layer.locate_exact(lat, lon),
                    },
                };
                codes[k] = index.map(|i| layer.area(i).code.clone());
            }
        }
        let [borough, ward, lsoa] = codes;
        g.borough = borough;
        g.ward = ward;
        g.lsoa = lsoa;
        g
    }
}

/// A located point, before it is placed in a cell and areas.
#[derive(Debug, Clone, Copy)]
struct At {
    lat: f64,
    lon: f64,
    method: GeocodeMethod,
    precision_m: u32,
}

impl At {
    fn hit(hit: PostcodeHit, method: GeocodeMethod) -> Self {
        At {
            lat: hit.lat,
            lon: hit.lon,
            method,
            precision_m: hit.precision_m,
        }
    }
}

/// What [`Geocoder::resolve`] found.
enum Resolved {
    /// A point to place.
    At(At),
    /// No point: the result as it stands.
    Done(Geocode),
}

/// A point being placed: its lattice entries, then what they hold.
struct Placing<'a> {
    at: At,
    res: Resolution,
    out: Option<Entry<'a, (), ()>>,
    fine: Option<Entry<'a, FineCell, u32>>,
    /// The point's `CACHE_RES` cell from h3o, when the lattice left it there.
    fine_cell: Option<CellIndex>,
    raw_cell: Option<u64>,
    cached: Option<(FineCell, &'a [u32])>,
}

impl Placing<'_> {
    /// Reads the entries (the memory reads that are likely cache misses).
    #[inline]
    fn read(&mut self) {
        self.raw_cell = self.out.as_ref().map(|e| e.raw_cell());
        self.cached = self
            .fine
            .as_ref()
            .map(|e| (e.payload(), e.arena()))
            .filter(|(c, _)| c.valid);
    }

    /// Reads the first word of each layer's boundary items, so a batch's
    /// reads of them overlap too.
    #[inline]
    fn touch_arena(&self) {
        if let Some((c, arena)) = self.cached {
            for a in c.areas {
                if let Slot::Local(at) = Slot::of(a) {
                    std::hint::black_box(arena.get(at).copied());
                }
            }
        }
    }
}

fn decode<T>(
    bytes: &[u8],
    tag: &[u8; 4],
    f: impl FnOnce(&mut Dec<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let mut d = Dec::new(bytes, tag)?;
    let v = f(&mut d)?;
    d.finish()?;
    Ok(v)
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn latlon(lat: Option<f64>, lon: Option<f64>) -> Option<(f64, f64)> {
    let (lat, lon) = (finite(lat)?, finite(lon)?);
    if !(-90.0..=90.0).contains(&lat) || (lat == 0.0 && lon == 0.0) {
        return None;
    }
    Some((lat, normalise_longitude(lon)))
}

/// Grid references rounded to 100 m or 10 m (6- or 8-figure references) are
/// only that precise; otherwise metre precision.
fn grid_precision(e: f64, n: f64) -> u32 {
    if e % 100.0 == 0.0 && n % 100.0 == 0.0 {
        100
    } else if e % 10.0 == 0.0 && n % 10.0 == 0.0 {
        10
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::areas::tests::TWO_SQUARES;
    use crate::areas::AreaProperties;
    use crate::import::{import_areas, import_places, import_postcodes};

    const POSTCODES: &str = "postcode,easting,northing,latitude,longitude\n\
        BR1 1AB,540260,169398,51.406271,0.015177\n\
        BR1 1AE,540194,169201,51.404517,0.014151\n\
        SE1 7PB,530500,179500,51.4970,-0.1150\n\
        CB1 1AA,545500,258500,52.2000,0.1300\n";
    const PLACES: &str = "name,lat,lon,borough\n\
        Church Street,51.5300,-0.0700,B2\n\
        Red Lion,51.5000,0.0500,\n\
        Red Lion,51.4500,0.0500,\n";
    const PROPS: AreaProperties<'static> = AreaProperties {
        code: "code",
        name: "name",
    };

    /// A data directory with the two-square layer as boroughs and as wards.
    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        import_postcodes(POSTCODES.as_bytes(), p, &mut |_| {}).unwrap();
        import_places(PLACES.as_bytes(), p, &mut |_| {}).unwrap();
        import_areas(
            AreaKind::Borough,
            TWO_SQUARES.as_bytes(),
            &PROPS,
            p,
            &mut |_| {},
        )
        .unwrap();
        import_areas(
            AreaKind::Ward,
            TWO_SQUARES.as_bytes(),
            &PROPS,
            p,
            &mut |_| {},
        )
        .unwrap();
        dir
    }

    fn geocoder() -> (tempfile::TempDir, Geocoder) {
        let dir = data_dir();
        let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();
        (dir, g)
    }

    fn code(c: &Option<AreaCode>) -> Option<&str> {
        c.as_deref()
    }

    #[test]
    fn latlon_input() {
        let (_d, g) = geocoder();
        let r = g.geocode(&LocationInput {
            latitude: Some(51.5),
            longitude: Some(0.05),
            postcode: Some("BR1 1AB"),
            ..Default::default()
        });
        assert_eq!(r.method, GeocodeMethod::LatLon);
        assert_eq!(r.precision_m, Some(10));
        assert_eq!(r.cell, cell_at(51.5, 0.05, Resolution::Ten));
        assert_eq!(
            (code(&r.borough), code(&r.ward), code(&r.lsoa)),
            (Some("A1"), Some("A1"), None)
        );
        // Longitude in the 0..360 convention.
        let r = g.geocode(&LocationInput {
            latitude: Some(51.5),
            longitude: Some(359.95),
            ..Default::default()
        });
        assert_eq!(
            (r.method, code(&r.borough)),
            (GeocodeMethod::LatLon, Some("B2"))
        );
        assert_eq!(r.cell, cell_at(51.5, -0.05, Resolution::Ten));
        // On the shared edge: the lowest code.
        let r = g.geocode(&LocationInput {
            latitude: Some(51.5),
            longitude: Some(0.0),
            ..Default::default()
        });
        assert_eq!(code(&r.borough), Some("A1"));
    }

    #[test]
    fn non_finite_and_placeholder_coordinates_fall_through() {
        let (_d, g) = geocoder();
        for (lat, lon) in [
            (f64::NAN, 0.05),
            (51.5, f64::INFINITY),
            (0.0, 0.0),
            (95.0, 0.0),
        ] {
            let r = g.geocode(&LocationInput {
                latitude: Some(lat),
                longitude: Some(lon),
                easting: Some(f64::NAN),
                northing: Some(169_398.0),
                postcode: Some("br11ab"),
                ..Default::default()
            });
            assert_eq!(r.method, GeocodeMethod::PostcodeUnit, "{lat} {lon}");
        }
        let r = g.geocode(&LocationInput {
            latitude: Some(f64::NAN),
            longitude: Some(f64::NAN),
            easting: Some(f64::NEG_INFINITY),
            northing: Some(f64::NAN),
            ..Default::default()
        });
        assert_eq!(r, Geocode::unresolved());
        assert_eq!(g.geocode(&LocationInput::default()), Geocode::unresolved());
    }

    #[test]
    fn grid_input() {
        let (_d, g) = geocoder();
        let r = g.geocode(&LocationInput {
            easting: Some(540_260.0),
            northing: Some(169_398.0),
            ..Default::default()
        });
        assert_eq!((r.method, r.precision_m), (GeocodeMethod::Grid, Some(1)));
        let (lat, lon) = osgb36_to_wgs84(540_260.0, 169_398.0).unwrap();
        assert_eq!(r.cell, cell_at(lat, lon, Resolution::Ten));
        assert_eq!(code(&r.borough), Some("A1"));
        // A 6-figure reference is only 100 m precise: a res-9 cell, no LSOA.
        let r = g.geocode(&LocationInput {
            easting: Some(540_200.0),
            northing: Some(169_300.0),
            ..Default::default()
        });
        assert_eq!(r.precision_m, Some(100));
        assert_eq!(r.cell.unwrap().resolution(), Resolution::Nine);
        assert_eq!(grid_precision(540_261.0, 169_398.0), 1);
        assert_eq!(grid_precision(540_260.0, 169_390.0), 10);
        assert_eq!(grid_precision(540_260.5, 169_300.0), 1);
    }

    #[test]
    fn postcode_levels_limit_cell_and_areas() {
        let (_d, g) = geocoder();
        let pc = |p| {
            g.geocode(&LocationInput {
                postcode: Some(p),
                ..Default::default()
            })
        };
        let r = pc("br1 1ab");
        assert_eq!(
            (r.method, r.precision_m),
            (GeocodeMethod::PostcodeUnit, Some(50))
        );
        assert_eq!(r.cell, cell_at(51.406271, 0.015177, Resolution::Ten));
        assert_eq!((code(&r.borough), code(&r.ward)), (Some("A1"), Some("A1")));
        // Sector: precision 500 m -> res 8 cell (edge ~531 m); ward still allowed.
        let r = pc("BR1 1ZZ");
        assert_eq!(
            (r.method, r.precision_m),
            (GeocodeMethod::PostcodeSector, Some(500))
        );
        let (lat, lon) = ((51.406271 + 51.404517) / 2.0, (0.015177 + 0.014151) / 2.0);
        assert_eq!(r.cell, cell_at(lat, lon, Resolution::Eight));
        assert_eq!((code(&r.borough), code(&r.ward)), (Some("A1"), Some("A1")));
        // District: 1500 m -> res 6 (edge ~3.7 km); borough only.
        let r = pc("BR1");
        assert_eq!(
            (r.method, r.precision_m),
            (GeocodeMethod::PostcodeDistrict, Some(1500))
        );
        assert_eq!(r.cell, cell_at(lat, lon, Resolution::Six));
        assert_eq!((code(&r.borough), code(&r.ward)), (Some("A1"), None));
        // Outside the service area: counted, no cell or areas.
        let r = pc("CB1 1AA");
        assert_eq!(
            (r.method, r.precision_m, r.cell, r.borough),
            (GeocodeMethod::OutOfArea, Some(50), None, None)
        );
        assert_eq!(pc("E1 6AN"), Geocode::unresolved());
        assert_eq!(pc("not a postcode"), Geocode::unresolved());
    }

    #[test]
    fn description_input() {
        let (_d, g) = geocoder();
        let d = |t| {
            g.geocode(&LocationInput {
                description: Some(t),
                postcode: Some("ZZ99 9ZZ"),
                ..Default::default()
            })
        };
        let r = d("outside no. 12, br1 1ae, by the shops");
        assert_eq!(
            (r.method, r.precision_m),
            (GeocodeMethod::TextPostcode, Some(50))
        );
        assert_eq!(r.cell, cell_at(51.404517, 0.014151, Resolution::Ten));
        // Red Lion is ambiguous (two far apart); Church St matches Church Street.
        let r = d("outside the Red Lion, Church St.");
        assert_eq!(
            (r.method, r.precision_m),
            (GeocodeMethod::Gazetteer, Some(250))
        );
        // 250 m -> res 8 (edge ~531 m; res 9 is ~201 m).
        assert_eq!(r.cell, cell_at(51.53, -0.07, Resolution::Eight));
        assert_eq!((code(&r.borough), code(&r.ward)), (Some("B2"), Some("B2")));
        assert_eq!(d("at home").method, GeocodeMethod::Unresolved);
    }

    #[test]
    fn configurable_service_area_and_resolution() {
        let dir = data_dir();
        let config = GeocoderConfig {
            finest_resolution: Resolution::Eight,
            service_area: ServiceArea {
                min_lat: 51.0,
                max_lat: 51.45,
                min_lon: -1.0,
                max_lon: 1.0,
            },
            ..Default::default()
        };
        let g = Geocoder::load(dir.path(), config).unwrap();
        let r = g.geocode(&LocationInput {
            postcode: Some("BR1 1AB"),
            ..Default::default()
        });
        assert_eq!(r.cell, cell_at(51.406271, 0.015177, Resolution::Eight));
        let r = g.geocode(&LocationInput {
            latitude: Some(51.5),
            longitude: Some(0.05),
            ..Default::default()
        });
        assert_eq!(r.method, GeocodeMethod::OutOfArea);
    }

    #[test]
    fn data_dir_lifecycle() {
        // A missing directory: nothing loaded, coordinates still resolve.
        let missing = tempfile::tempdir().unwrap().path().join("nope");
        let g = Geocoder::load(&missing, GeocoderConfig::default()).unwrap();
        assert!(
            g.postcodes().is_none()
                && g.gazetteer().is_none()
                && g.areas(AreaKind::Borough).is_none()
        );
        let r = g.geocode(&LocationInput {
            latitude: Some(51.5),
            longitude: Some(0.05),
            postcode: Some("BR1 1AB"),
            ..Default::default()
        });
        assert_eq!((r.method, r.borough), (GeocodeMethod::LatLon, None));
        assert_eq!(
            g.geocode(&LocationInput {
                postcode: Some("BR1 1AB"),
                ..Default::default()
            })
            .method,
            GeocodeMethod::Unresolved
        );

        // A broken re-import leaves the previous data in place.
        let dir = data_dir();
        let before = std::fs::read(dir.path().join(AreaKind::Borough.file_name())).unwrap();
        let e = import_areas(
            AreaKind::Borough,
            r#"{"type":"FeatureCollection","features":[]}"#.as_bytes(),
            &PROPS,
            dir.path(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, crate::ImportError::EmptyBoundaryFile));
        let e = import_postcodes(
            "postcode,easting,northing\nBR1 1AB,x,1\n".as_bytes(),
            dir.path(),
            &mut |_| {},
        );
        assert!(e.is_err());
        assert_eq!(
            std::fs::read(dir.path().join(AreaKind::Borough.file_name())).unwrap(),
            before
        );
        let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();
        assert_eq!(g.postcodes().unwrap().unit_count(), 4);
        assert_eq!(g.areas(AreaKind::Borough).unwrap().areas().len(), 2);
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");

        // A corrupt file is an error naming the file.
        std::fs::write(
            dir.path().join(POSTCODES_FILE),
            b"ISTVGEO\0PCDS\x01\0\0\0\xff",
        )
        .unwrap();
        let e = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap_err();
        assert!(matches!(e, LoadError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("postcodes.bin: truncated"), "{e}");
    }

    #[test]
    fn many_at_once_gives_the_one_by_one_answers() {
        let (_dir, g) = geocoder();
        let mut inputs = Vec::new();
        for k in 0..40 {
            let t = f64::from(k) / 40.0;
            inputs.push(LocationInput {
                latitude: Some(51.3 + 0.4 * t),
                longitude: Some(-0.2 + 0.3 * t),
                ..Default::default()
            });
            // Every other method, and nothing at all, in between.
            inputs.push(match k % 5 {
                0 => LocationInput {
                    postcode: Some("BR1 1AB"),
                    ..Default::default()
                },
                1 => LocationInput {
                    easting: Some(530_000.0 + 100.0 * f64::from(k)),
                    northing: Some(180_000.0),
                    ..Default::default()
                },
                2 => LocationInput {
                    latitude: Some(55.0),
                    longitude: Some(-3.0),
                    ..Default::default()
                },
                3 => LocationInput {
                    description: Some("near BR1 1AB"),
                    ..Default::default()
                },
                _ => LocationInput::default(),
            });
        }
        let mut many = vec![Geocode::unresolved()];
        g.geocode_many(&inputs, &mut many);
        assert_eq!(many.len(), 1 + inputs.len(), "appends");
        let one: Vec<Geocode> = inputs.iter().map(|i| g.geocode(i)).collect();
        assert_eq!(&many[1..], &one[..]);
        let methods: std::collections::BTreeSet<_> = one.iter().map(|r| r.method).collect();
        assert!(methods.len() >= 5, "{methods:?}");
    }

    #[test]
    fn warm_builds_the_tables_of_every_point_of_the_areas() {
        let (_dir, g) = geocoder();
        let (_dir2, cold) = geocoder();
        assert_eq!(g.warm(2, 2), Some(0), "no such band");
        assert_eq!(g.warm(0, 0), Some(0), "no bands");
        // Two bands visit what one visits.
        let whole = cold.warm(0, 1).unwrap();
        assert_eq!(g.warm(0, 2).unwrap() + g.warm(1, 2).unwrap(), whole);
        assert!(whole > 10_000, "{whole}");
        let (fine, out) = (g.lattice.as_ref().unwrap(), g.out_lattice.as_ref().unwrap());
        let (_dir3, fresh) = geocoder();
        // The areas' box is lat 51.4-51.6, lon -0.1-0.1. A block (8 x 8
        // cells, under 0.6 km across) holding a point a kilometre inside it
        // lies wholly inside, so the warm-up must have built it.
        let built_on_use = std::cell::Cell::new(0);
        let mut inputs = Vec::new();
        for a in 0..60 {
            for b in 0..60 {
                let lat = 51.41 + 0.18 * f64::from(a) / 59.0;
                let lon = -0.085 + 0.17 * f64::from(b) / 59.0;
                fine.entry(lat, lon, |_, _| {
                    built_on_use.set(built_on_use.get() + 1);
                    FineCell::default()
                });
                out.entry(lat, lon, |_, _| built_on_use.set(built_on_use.get() + 1));
                inputs.push(LocationInput {
                    latitude: Some(lat),
                    longitude: Some(lon),
                    ..Default::default()
                });
            }
        }
        assert_eq!(built_on_use.get(), 0);
        // The same answers as a geocoder that builds its tables on use.
        for i in &inputs {
            assert_eq!(g.geocode(i), fresh.geocode(i));
        }
    }

    #[test]
    fn warm_leaves_regions_larger_than_a_city_to_be_built_on_use() {
        // No layers: the whole service area. Greater London's box (about
        // 58 km x 68 km, 1.8M cells) is built; a box of 2 x 2 degrees
        // around it (about 222 km x 137 km, 14M cells) is not.
        let g = Geocoder::new(GeocoderConfig::default());
        assert!(g.warm(0, 1).is_some_and(|n| n > 0));
        let wide = GeocoderConfig {
            service_area: ServiceArea {
                min_lat: 51.0,
                max_lat: 53.0,
                min_lon: -1.0,
                max_lon: 1.0,
            },
            ..Default::default()
        };
        let g = Geocoder::new(wide);
        assert!(g.out_lattice.is_some(), "a lattice to build");
        assert_eq!(g.warm(0, 1), None);
    }

    #[test]
    fn method_names_are_stable() {
        let names: Vec<&str> = GeocodeMethod::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "latlon",
                "grid",
                "postcode_unit",
                "postcode_sector",
                "postcode_district",
                "text_postcode",
                "gazetteer",
                "out_of_area",
                "unresolved"
            ]
        );
        for m in GeocodeMethod::ALL {
            assert_eq!(GeocodeMethod::from_name(m.as_str()), Some(m));
        }
    }
}
