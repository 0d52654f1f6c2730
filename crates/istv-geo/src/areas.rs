//! Area layers (boroughs, wards, LSOAs): GeoJSON import, point-in-polygon
//! lookup with an R-tree, and an H3 cell -> area cache for speed.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Arc, OnceLock};

use geo::{BoundingRect, Coord, Intersects, LineString, MultiPolygon, Point, Polygon};
use h3o::{CellIndex, LatLng, Resolution};
use rstar::primitives::{GeomWithData, Line, Rectangle};
use rstar::{RTree, AABB};
use serde_json::Value;

use crate::binfmt::{Dec, Enc};
use crate::cellareas::{winding_number, CellAreas, LocalBuilder, Rings};
use crate::error::ImportError;

/// An area code such as "E09000001"; cheap to clone.
pub type AreaCode = Arc<str>;

/// Which kind of area a layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AreaKind {
    /// London borough (local authority district).
    Borough,
    /// Electoral ward.
    Ward,
    /// Lower Layer Super Output Area.
    Lsoa,
}

impl AreaKind {
    /// All kinds, coarsest first.
    pub const ALL: [AreaKind; 3] = [AreaKind::Borough, AreaKind::Ward, AreaKind::Lsoa];

    /// Stable lower-case name: `borough`, `ward`, `lsoa`.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaKind::Borough => "borough",
            AreaKind::Ward => "ward",
            AreaKind::Lsoa => "lsoa",
        }
    }

    /// File name of the layer in the data directory, e.g. `areas-borough.bin`.
    pub fn file_name(self) -> &'static str {
        match self {
            AreaKind::Borough => "areas-borough.bin",
            AreaKind::Ward => "areas-ward.bin",
            AreaKind::Lsoa => "areas-lsoa.bin",
        }
    }

    fn tag(self) -> u8 {
        self as u8
    }
}

/// Names of the GeoJSON feature properties holding an area's code and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaProperties<'a> {
    /// Property holding the area code, e.g. `code` or `WD13CD`.
    pub code: &'a str,
    /// Property holding the area name, e.g. `name` or `WD13NM`.
    pub name: &'a str,
}

/// One area with its boundary (WGS84, x = longitude, y = latitude).
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// Area code.
    pub code: AreaCode,
    /// Area name.
    pub name: Arc<str>,
    /// Boundary; features sharing a code are merged.
    pub geometry: MultiPolygon<f64>,
}

/// Counts from an area import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaImportSummary {
    /// Features read.
    pub features: usize,
    /// Distinct areas (features with the same code are merged).
    pub areas: usize,
    /// H3 cells found to lie wholly inside one area (or none), cached for fast lookup.
    pub cached_cells: usize,
}

/// Resolution of the cell computed for every lookup; cache entries are its ancestors.
/// At resolution 11 (~29 m edges) the band of cells straddling a boundary,
/// where the polygons must be tested, is under a tenth of lookups, while the
/// cache stays small enough to load quickly (res 12 doubles it for little gain).
pub(crate) const CACHE_RES: Resolution = Resolution::Eleven;
const COARSEST_CACHE_RES: Resolution = Resolution::Five;
pub(crate) const NO_AREA: u32 = u32::MAX;

/// Bits of an H3 index holding its resolution.
const RES_BITS: u64 = 0xF << 52;

/// The cell cache: cells wholly inside one area (or outside all), each stored
/// as the range of keys its descendants take. With the resolution bits
/// cleared, an H3 index is its base cell followed by fifteen 3-bit digits, the
/// unused ones all 7; the descendants of a cell at resolution `r` therefore
/// span the keys from the cell's own key with digits `r+1..` zeroed up to the
/// cell's own key. Cached cells never nest, so the ranges are disjoint, and one
/// binary search over their upper ends finds the cached ancestor (if any) of a
/// point's cell at any resolution.
#[derive(Debug, Default)]
struct CellCache {
    /// Upper keys (the cells' indexes without resolution bits), ascending.
    ends: Vec<u64>,
    /// Lower keys, in the same order.
    starts: Vec<u64>,
    /// Area index or `NO_AREA`, in the same order.
    values: Vec<u32>,
    /// The cached cells themselves, in the same order.
    cells: Vec<u64>,
}

impl CellCache {
    /// Builds the cache from (cell, area) entries; errors if two cells overlap.
    fn from_entries(mut entries: Vec<(u64, u32)>) -> Result<Self, String> {
        entries.sort_unstable_by_key(|&(c, _)| c & !RES_BITS);
        let mut cache = CellCache {
            ends: Vec::with_capacity(entries.len()),
            starts: Vec::with_capacity(entries.len()),
            values: Vec::with_capacity(entries.len()),
            cells: Vec::with_capacity(entries.len()),
        };
        for (cell, value) in entries {
            let res = (cell & RES_BITS) >> 52;
            let end = cell & !RES_BITS;
            let start = end & !((1u64 << (3 * (15 - res))) - 1);
            if cache.ends.last().is_some_and(|&prev| prev >= start) {
                return Err(format!("cell cache entry {cell:x} overlaps another"));
            }
            cache.ends.push(end);
            cache.starts.push(start);
            cache.values.push(value);
            cache.cells.push(cell);
        }
        Ok(cache)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The cached value of the cell containing `fine` (any finer resolution).
    #[inline]
    fn get(&self, fine: u64) -> Option<u32> {
        let key = fine & !RES_BITS;
        let i = self.ends.partition_point(|&e| e < key);
        (i < self.ends.len() && self.starts[i] <= key).then(|| self.values[i])
    }
}

/// A loaded area layer.
#[derive(Debug)]
pub struct AreaLayer {
    kind: AreaKind,
    /// Sorted by code, so the lowest index is the lowest code (the tie-break).
    areas: Vec<Area>,
    /// Polygon parts: (area index, polygon).
    parts: Vec<(u32, Polygon<f64>)>,
    /// Bounding boxes of the parts; data = index into `parts`.
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    /// Cells wholly inside one area (or outside all): cell -> area index or NO_AREA.
    cache: CellCache,
    /// Every boundary edge, with its (part, ring, starting vertex); built on
    /// first use.
    edges: OnceLock<EdgeTree>,
}

impl Rings for AreaLayer {
    fn ring(&self, part: u32, k: u32) -> &[Coord<f64>] {
        let Some((_, poly)) = self.parts.get(part as usize) else {
            return &[];
        };
        let ring = match k {
            0 => Some(poly.exterior()),
            k => poly.interiors().get(k as usize - 1),
        };
        ring.map_or(&[], |r| r.0.as_slice())
    }
}

/// Boundary edges, each with its (part, ring, starting vertex).
type EdgeTree = RTree<GeomWithData<Line<[f64; 2]>, (u32, u32, u32)>>;

/// An edge of a ring as an R-tree line.
fn edge_line(l: geo::Line<f64>) -> Line<[f64; 2]> {
    Line::new([l.start.x, l.start.y], [l.end.x, l.end.y])
}

/// The bounding box of a cell's hexagon, widened by `margin_m` metres.
fn cell_box(cell: CellIndex, margin_m: f64) -> AABB<[f64; 2]> {
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for v in cell.boundary().iter() {
        min_x = min_x.min(v.lng());
        max_x = max_x.max(v.lng());
        min_y = min_y.min(v.lat());
        max_y = max_y.max(v.lat());
    }
    let dlat = margin_m / 111_000.0;
    let dlon = margin_m / (111_000.0 * max_y.abs().max(min_y.abs()).to_radians().cos());
    AABB::from_corners([min_x - dlon, min_y - dlat], [max_x + dlon, max_y + dlat])
}

/// Margin of the box that holds every point whose `CACHE_RES` cell is a
/// given cell: the hexagon's edges bulge past its vertices' box by far less.
const FINE_BOX_MARGIN_M: f64 = 1.0;

fn gj_err(msg: impl Into<String>) -> ImportError {
    ImportError::MalformedGeoJson(msg.into())
}

fn prop_string(props: Option<&Value>, name: &str) -> Option<String> {
    match props?.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_ring(v: &Value, index: usize, ring: usize) -> Result<LineString<f64>, ImportError> {
    let bad = |problem: String| ImportError::BadGeometry { index, problem };
    let arr = v
        .as_array()
        .ok_or_else(|| bad(format!("ring {ring} is not an array of positions")))?;
    let mut coords = Vec::with_capacity(arr.len());
    for (p, pos) in arr.iter().enumerate() {
        let xy = pos.as_array().filter(|a| a.len() >= 2);
        let x = xy.and_then(|a| a[0].as_f64());
        let y = xy.and_then(|a| a[1].as_f64());
        match (x, y) {
            (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => {
                coords.push(Coord { x, y });
            }
            _ => {
                return Err(bad(format!(
                    "bad coordinate at ring {ring} position {p}: expected [longitude, latitude] in degrees, found {pos}"
                )))
            }
        }
    }
    if coords.len() < 4 {
        return Err(bad(format!(
            "ring {ring} has {} positions, at least 4 are needed",
            coords.len()
        )));
    }
    Ok(LineString::new(coords))
}

fn parse_polygon(v: &Value, index: usize) -> Result<Polygon<f64>, ImportError> {
    let rings = v
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ImportError::BadGeometry {
            index,
            problem: "polygon coordinates are not a non-empty array of rings".into(),
        })?;
    let mut rings = rings
        .iter()
        .enumerate()
        .map(|(i, r)| parse_ring(r, index, i))
        .collect::<Result<Vec<_>, _>>()?;
    let exterior = rings.remove(0);
    Ok(Polygon::new(exterior, rings))
}

impl AreaLayer {
    /// Parses a GeoJSON FeatureCollection of Polygon/MultiPolygon features and
    /// builds the layer, including its cell cache (a few seconds for LSOAs).
    pub fn from_geojson<R: Read>(
        kind: AreaKind,
        input: R,
        props: &AreaProperties<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Self, AreaImportSummary), ImportError> {
        let doc: Value = serde_json::from_reader(std::io::BufReader::new(input)).map_err(|e| {
            if e.is_io() {
                ImportError::Read(e.into())
            } else {
                gj_err(e.to_string().to_lowercase())
            }
        })?;
        match doc.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => {}
            Some(t) => {
                return Err(gj_err(format!(
                    "expected a FeatureCollection, found type {t:?}"
                )))
            }
            None => {
                return Err(gj_err(
                    "expected a FeatureCollection object with a \"type\" member",
                ))
            }
        }
        let features = doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| gj_err("the FeatureCollection has no \"features\" array"))?;
        if features.is_empty() {
            return Err(ImportError::EmptyBoundaryFile);
        }
        let mut by_code: HashMap<String, (String, Vec<Polygon<f64>>)> = HashMap::new();
        for (index, f) in features.iter().enumerate() {
            let p = f.get("properties");
            let code = prop_string(p, props.code).ok_or_else(|| ImportError::MissingProperty {
                index,
                property: props.code.to_string(),
            })?;
            let name = prop_string(p, props.name).ok_or_else(|| ImportError::MissingProperty {
                index,
                property: props.name.to_string(),
            })?;
            let geom =
                f.get("geometry")
                    .filter(|g| !g.is_null())
                    .ok_or(ImportError::BadGeometry {
                        index,
                        problem: "feature has no geometry".into(),
                    })?;
            let coords = geom.get("coordinates").ok_or(ImportError::BadGeometry {
                index,
                problem: "geometry has no coordinates".into(),
            })?;
            let polys = match geom.get("type").and_then(Value::as_str) {
                Some("Polygon") => vec![parse_polygon(coords, index)?],
                Some("MultiPolygon") => coords
                    .as_array()
                    .ok_or(ImportError::BadGeometry {
                        index,
                        problem: "multipolygon coordinates are not an array".into(),
                    })?
                    .iter()
                    .map(|c| parse_polygon(c, index))
                    .collect::<Result<Vec<_>, _>>()?,
                other => {
                    return Err(ImportError::BadGeometry {
                        index,
                        problem: format!(
                            "unsupported geometry type {:?} (expected Polygon or MultiPolygon)",
                            other.unwrap_or("none")
                        ),
                    })
                }
            };
            by_code
                .entry(code)
                .or_insert_with(|| (name, Vec::new()))
                .1
                .extend(polys);
            progress(index as u64 + 1);
        }
        let mut areas: Vec<Area> = by_code
            .into_iter()
            .map(|(code, (name, polys))| Area {
                code: code.into(),
                name: name.into(),
                geometry: MultiPolygon::new(polys),
            })
            .collect();
        areas.sort_by(|a, b| a.code.cmp(&b.code));
        let mut layer = AreaLayer::new(kind, areas, CellCache::default());
        layer.build_cache();
        let summary = AreaImportSummary {
            features: features.len(),
            areas: layer.areas.len(),
            cached_cells: layer.cache.len(),
        };
        Ok((layer, summary))
    }

    fn new(kind: AreaKind, areas: Vec<Area>, cache: CellCache) -> Self {
        let mut parts = Vec::new();
        for (i, a) in areas.iter().enumerate() {
            for p in &a.geometry.0 {
                parts.push((i as u32, p.clone()));
            }
        }
        let rects = parts
            .iter()
            .enumerate()
            .filter_map(|(j, (_, p))| {
                let r = p.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    j as u32,
                ))
            })
            .collect();
        AreaLayer {
            kind,
            areas,
            parts,
            tree: RTree::bulk_load(rects),
            cache,
            edges: OnceLock::new(),
        }
    }

    fn edges(&self) -> &EdgeTree {
        self.edges.get_or_init(|| {
            let lines = self
                .parts
                .iter()
                .enumerate()
                .flat_map(|(j, (_, p))| {
                    std::iter::once(p.exterior())
                        .chain(p.interiors())
                        .enumerate()
                        .flat_map(move |(k, ring)| {
                            ring.lines().enumerate().map(move |(v, l)| {
                                GeomWithData::new(edge_line(l), (j as u32, k as u32, v as u32))
                            })
                        })
                })
                .collect();
            RTree::bulk_load(lines)
        })
    }

    /// What the points of a cell at `CACHE_RES` need to find their area: the
    /// cached area, or the boundary edges crossing the cell.
    pub(crate) fn cell_areas(&self, fine: CellIndex) -> CellAreas {
        if let Some(v) = self.cache.get(u64::from(fine)) {
            return CellAreas::Whole(v);
        }
        let bx = cell_box(fine, FINE_BOX_MARGIN_M);
        let mut parts: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(bx)
            .map(|item| item.data)
            .collect();
        parts.sort_unstable_by_key(|&j| (self.parts[j as usize].0, j));
        let centre = LatLng::from(fine);
        let (lo, hi) = (bx.lower(), bx.upper());
        // The centre, else points near it, until one is on no ring.
        let candidates = [
            (0.5, 0.5),
            (0.45, 0.55),
            (0.55, 0.45),
            (0.4, 0.4),
            (0.6, 0.6),
        ];
        'reference: for (k, (fx, fy)) in candidates.into_iter().enumerate() {
            let r = if k == 0 {
                Coord {
                    x: centre.lng(),
                    y: centre.lat(),
                }
            } else {
                Coord {
                    x: lo[0] + fx * (hi[0] - lo[0]),
                    y: lo[1] + fy * (hi[1] - lo[1]),
                }
            };
            // Per part: (part, area, per ring: winding and local edge starts).
            type RingEdges = (i32, Vec<u32>);
            let mut local: Vec<(u32, u32, Vec<RingEdges>)> = Vec::with_capacity(parts.len());
            for &j in &parts {
                let (area, poly) = &self.parts[j as usize];
                let mut rings = Vec::with_capacity(1 + poly.interiors().len());
                for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                    let Some(winding) = winding_number(r, ring) else {
                        continue 'reference;
                    };
                    rings.push((winding, Vec::new()));
                }
                local.push((j, *area, rings));
            }
            for item in self.edges().locate_in_envelope_intersecting(bx) {
                let (j, k, v) = item.data;
                if let Some((_, _, rings)) = local.iter_mut().find(|(pj, ..)| *pj == j) {
                    rings[k as usize].1.push(v);
                }
            }
            let mut b = LocalBuilder::new(r);
            for (j, area, rings) in &mut local {
                // A part whose exterior neither surrounds the box nor
                // crosses it cannot hold a point of the cell.
                if rings[0].0 == 0 && rings[0].1.is_empty() {
                    continue;
                }
                b.part(*area, *j);
                for (k, (winding, starts)) in rings.iter_mut().enumerate() {
                    // Ascending, so a ring's edges are read in memory order.
                    starts.sort_unstable();
                    b.ring(k as u32, *winding, starts);
                }
            }
            return CellAreas::Local(b.finish());
        }
        CellAreas::Polygons
    }

    /// Marks every cell (from resolution 5 down to 11) whose whole extent
    /// contains no boundary segment: all points in it share the area of its
    /// centre. Cells are keyed as ancestors of the res-11 cell of a point; the
    /// points whose res-11 cell descends from a cell can lie slightly outside
    /// that cell's hexagon, so the test box is widened by one edge length.
    fn build_cache(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let segs = self.edges();
        let env: AABB<[f64; 2]> = self.tree.root().envelope();
        let (lo, hi) = (env.lower(), env.upper());
        let mut start: BTreeSet<CellIndex> = BTreeSet::new();
        let step = 0.02;
        let mut lat = lo[1] - 0.1;
        while lat <= hi[1] + 0.1 {
            let mut lon = lo[0] - 0.1;
            while lon <= hi[0] + 0.1 {
                if let Ok(ll) = LatLng::new(lat, lon) {
                    start.insert(ll.to_cell(COARSEST_CACHE_RES));
                }
                lon += step;
            }
            lat += step;
        }
        let mut stack: Vec<CellIndex> = start.into_iter().collect();
        let mut cache: Vec<(u64, u32)> = Vec::new();
        while let Some(cell) = stack.pop() {
            let res = cell.resolution();
            let margin_m = if res == CACHE_RES {
                FINE_BOX_MARGIN_M
            } else {
                res.edge_length_m()
            };
            let bx = cell_box(cell, margin_m);
            if segs.locate_in_envelope_intersecting(bx).next().is_none() {
                let c = LatLng::from(cell);
                let area = self.locate_exact(c.lat(), c.lng()).unwrap_or(NO_AREA);
                cache.push((u64::from(cell), area));
            } else if res < CACHE_RES {
                let next = res.succ().expect("a finer resolution exists");
                stack.extend(cell.children(next));
            }
        }
        self.cache = CellCache::from_entries(cache).expect("cached cells never nest");
    }

    /// Which kind of area this layer holds.
    pub fn kind(&self) -> AreaKind {
        self.kind
    }

    /// All areas, sorted by code.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The area with a code.
    pub fn get(&self, code: &str) -> Option<&Area> {
        self.areas
            .binary_search_by(|a| (*a.code).cmp(code))
            .ok()
            .map(|i| &self.areas[i])
    }

    /// The box holding every area of the layer, as (min_lat, max_lat,
    /// min_lon, max_lon); `None` for a layer without areas.
    pub fn bounds(&self) -> Option<(f64, f64, f64, f64)> {
        (self.tree.size() > 0).then(|| {
            let e = self.tree.root().envelope();
            let (lo, hi) = (e.lower(), e.upper());
            (lo[1], hi[1], lo[0], hi[0])
        })
    }

    /// Number of cached cells.
    pub fn cached_cells(&self) -> usize {
        self.cache.len()
    }

    /// The area containing a WGS84 point. A point on the boundary between
    /// areas belongs to the one with the lowest code.
    pub fn locate(&self, lat: f64, lon: f64) -> Option<&Area> {
        let cell = crate::cells::cell_at(lat, lon, CACHE_RES)?;
        self.locate_index(lat, lon, cell)
            .map(|i| &self.areas[i as usize])
    }

    /// The area containing a point whose cell at `CACHE_RES` is known; cache first.
    pub(crate) fn locate_index(&self, lat: f64, lon: f64, fine: CellIndex) -> Option<u32> {
        match self.cache.get(u64::from(fine)) {
            Some(a) => (a != NO_AREA).then_some(a),
            None => self.locate_exact(lat, lon),
        }
    }

    /// Point-in-polygon over the R-tree candidates, ignoring the cache.
    pub fn locate_exact(&self, lat: f64, lon: f64) -> Option<u32> {
        let p = Point::new(lon, lat);
        let mut best: Option<u32> = None;
        for item in self.tree.locate_all_at_point([lon, lat]) {
            let (area, poly) = &self.parts[item.data as usize];
            if best.is_some_and(|b| b <= *area) {
                continue;
            }
            if poly.intersects(&p) {
                best = Some(*area);
            }
        }
        best
    }

    /// The area at an index returned by [`AreaLayer::locate_exact`].
    pub fn area(&self, index: u32) -> &Area {
        &self.areas[index as usize]
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.u8(self.kind.tag());
        e.len(self.areas.len());
        for a in &self.areas {
            e.str(&a.code);
            e.str(&a.name);
            e.len(a.geometry.0.len());
            for p in &a.geometry.0 {
                e.len(1 + p.interiors().len());
                for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                    e.len(ring.0.len());
                    for c in &ring.0 {
                        e.f64(c.x);
                        e.f64(c.y);
                    }
                }
            }
        }
        // Sorted so the file is byte-for-byte reproducible.
        let mut entries: Vec<(u64, u32)> = self
            .cache
            .cells
            .iter()
            .copied()
            .zip(self.cache.values.iter().copied())
            .collect();
        entries.sort_unstable();
        e.len(entries.len());
        for (k, v) in entries {
            e.u64(k);
            e.u32(v);
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>, kind: AreaKind) -> Result<Self, String> {
        let tag = d.u8()?;
        if tag != kind.tag() {
            return Err(format!("holds area kind {tag}, expected {}", kind.as_str()));
        }
        let n = d.len(9)?;
        let mut areas = Vec::with_capacity(n);
        for _ in 0..n {
            let code: AreaCode = d.str()?.into();
            let name: Arc<str> = d.str()?.into();
            let np = d.len(4)?;
            let mut polys = Vec::with_capacity(np);
            for _ in 0..np {
                let nr = d.len(4)?;
                let mut rings = Vec::with_capacity(nr);
                for _ in 0..nr {
                    let nc = d.len(16)?;
                    let mut coords = Vec::with_capacity(nc);
                    for _ in 0..nc {
                        coords.push(Coord {
                            x: d.f64()?,
                            y: d.f64()?,
                        });
                    }
                    rings.push(LineString::new(coords));
                }
                if rings.is_empty() {
                    return Err(format!("area {code}: polygon without rings"));
                }
                let ext = rings.remove(0);
                polys.push(Polygon::new(ext, rings));
            }
            areas.push(Area {
                code,
                name,
                geometry: MultiPolygon::new(polys),
            });
        }
        if !areas.windows(2).all(|w| w[0].code < w[1].code) {
            return Err("areas are not sorted by code".into());
        }
        let nc = d.len(12)?;
        let mut cache = Vec::with_capacity(nc);
        for _ in 0..nc {
            let k = d.u64()?;
            let v = d.u32()?;
            if v != NO_AREA && v as usize >= areas.len() {
                return Err(format!(
                    "cell cache entry points at area {v} of {}",
                    areas.len()
                ));
            }
            if CellIndex::try_from(k).is_err() {
                return Err(format!("cell cache entry {k:x} is not an H3 cell"));
            }
            cache.push((k, v));
        }
        let cache = CellCache::from_entries(cache)?;
        Ok(AreaLayer::new(kind, areas, cache))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn props() -> AreaProperties<'static> {
        AreaProperties {
            code: "code",
            name: "name",
        }
    }

    /// Two unit squares sharing the edge lon = 0 (west "B2", east "A1"),
    /// around London so the cache is exercised.
    pub(crate) const TWO_SQUARES: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"code":"B2","name":"West"},"geometry":{"type":"Polygon",
       "coordinates":[[[-0.1,51.4],[0.0,51.4],[0.0,51.6],[-0.1,51.6],[-0.1,51.4]]]}},
      {"type":"Feature","properties":{"code":"A1","name":"East"},"geometry":{"type":"MultiPolygon",
       "coordinates":[[[[0.0,51.4],[0.1,51.4],[0.1,51.6],[0.0,51.6],[0.0,51.4]]]]}}]}"#;

    fn layer() -> AreaLayer {
        AreaLayer::from_geojson(
            AreaKind::Borough,
            TWO_SQUARES.as_bytes(),
            &props(),
            &mut |_| {},
        )
        .unwrap()
        .0
    }

    #[test]
    fn shared_edge_goes_to_lowest_code() {
        let l = layer();
        let code = |lat, lon| l.locate(lat, lon).map(|a| a.code.to_string());
        assert_eq!(code(51.5, -0.05).as_deref(), Some("B2"));
        assert_eq!(code(51.5, 0.05).as_deref(), Some("A1"));
        // Exactly on the shared edge: both polygons intersect, "A1" < "B2".
        assert_eq!(code(51.5, 0.0).as_deref(), Some("A1"));
        // Shared corner and outer edge.
        assert_eq!(code(51.6, 0.0).as_deref(), Some("A1"));
        assert_eq!(code(51.5, -0.1).as_deref(), Some("B2"));
        assert_eq!(code(51.7, 0.0), None);
        assert_eq!(code(f64::NAN, 0.0), None);
        assert_eq!(l.get("B2").unwrap().name.as_ref(), "West");
    }

    #[test]
    fn cache_agrees_with_exact_lookup() {
        let l = layer();
        assert!(l.cached_cells() > 100, "{}", l.cached_cells());
        let mut n = 0;
        for i in 0..200 {
            for j in 0..200 {
                let lat = 51.35 + i as f64 * 0.0015;
                let lon = -0.15 + j as f64 * 0.0015;
                let cell = crate::cells::cell_at(lat, lon, CACHE_RES).unwrap();
                assert_eq!(
                    l.locate_index(lat, lon, cell),
                    l.locate_exact(lat, lon),
                    "{lat} {lon}"
                );
                n += 1;
            }
        }
        assert_eq!(n, 40_000);
    }

    #[test]
    fn import_errors() {
        let imp = |s: &str| {
            AreaLayer::from_geojson(AreaKind::Ward, s.as_bytes(), &props(), &mut |_| {})
                .unwrap_err()
        };
        let e = imp(r#"{"type":"FeatureCollection","features":[]}"#);
        assert!(matches!(e, ImportError::EmptyBoundaryFile), "{e}");
        assert_eq!(
            e.to_string(),
            "empty boundary file: the feature collection has no features"
        );
        let e = imp(r#"{"type":"FeatureCollection","features":[{"#);
        assert!(matches!(e, ImportError::MalformedGeoJson(_)), "{e}");
        assert!(
            e.to_string()
                .starts_with("malformed geojson: eof while parsing"),
            "{e}"
        );
        let e = imp(r#"{"type":"Feature"}"#);
        assert_eq!(
            e.to_string(),
            "malformed geojson: expected a FeatureCollection, found type \"Feature\""
        );
        let e = imp(r#"{"type":"FeatureCollection"}"#);
        assert_eq!(
            e.to_string(),
            "malformed geojson: the FeatureCollection has no \"features\" array"
        );
        let e = imp(&TWO_SQUARES.replace(r#""code":"A1","#, ""));
        assert_eq!(
            e.to_string(),
            "feature 1: missing \"code\" property (or it is not a string or number)"
        );
        let e = imp(&TWO_SQUARES.replace(r#"[0.1,51.4]"#, r#"[0.1,"x"]"#));
        assert!(
            e.to_string()
                .starts_with("feature 1: bad coordinate at ring 0 position 1"),
            "{e}"
        );
        let e = imp(&TWO_SQUARES.replacen(r#""type":"Polygon""#, r#""type":"Point""#, 1));
        assert_eq!(
            e.to_string(),
            "feature 0: unsupported geometry type \"Point\" (expected Polygon or MultiPolygon)"
        );
    }

    #[test]
    fn encode_roundtrip() {
        let l = layer();
        let mut e = Enc::new(b"AREA");
        l.encode(&mut e);
        let bytes = e.into_bytes();
        let mut d = Dec::new(&bytes, b"AREA").unwrap();
        let back = AreaLayer::decode(&mut d, AreaKind::Borough).unwrap();
        d.finish().unwrap();
        assert_eq!(back.areas(), l.areas());
        assert_eq!(back.cached_cells(), l.cached_cells());
        assert_eq!(back.cache.cells, l.cache.cells);
        assert_eq!(back.cache.values, l.cache.values);
        let mut d = Dec::new(&bytes, b"AREA").unwrap();
        assert!(AreaLayer::decode(&mut d, AreaKind::Ward).is_err());
    }
}
