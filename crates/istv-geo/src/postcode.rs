//! UK postcodes: normalisation, extraction from free text, and the postcode
//! directory index (units, plus sector and district centroids).

use std::collections::HashMap;
use std::io::Read;

use crate::binfmt::{Dec, Enc};
use crate::error::ImportError;
use crate::grid::{distance_m, osgb36_to_wgs84};

/// Nominal precision of a unit postcode centroid in metres: a London unit
/// postcode covers about 15 addresses, typically one side of a street block.
pub const UNIT_PRECISION_M: u32 = 50;
/// Smallest precision reported for a sector centroid, in metres.
pub const SECTOR_MIN_PRECISION_M: u32 = 500;
/// Smallest precision reported for a district centroid, in metres.
pub const DISTRICT_MIN_PRECISION_M: u32 = 1500;

/// How much of a postcode is known or was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostcodeLevel {
    /// A full unit postcode, e.g. "SW1A 1AA".
    Unit,
    /// A postcode sector, e.g. "SW1A 1".
    Sector,
    /// A postcode district (outward code), e.g. "SW1A".
    District,
}

/// A syntactically valid (possibly partial) postcode in canonical form.
/// Stored inline (no allocation) because parsing is on the per-record path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Postcode {
    /// Upper-case outward then inward characters, unspaced.
    buf: [u8; 7],
    out_len: u8,
    in_len: u8,
}

impl Postcode {
    fn from_parts(outward: &[u8], inward: &[u8]) -> Self {
        let mut buf = [0u8; 7];
        buf[..outward.len()].copy_from_slice(outward);
        buf[outward.len()..outward.len() + inward.len()].copy_from_slice(inward);
        Postcode {
            buf,
            out_len: outward.len() as u8,
            in_len: inward.len() as u8,
        }
    }

    /// Parses a unit, sector or district postcode, ignoring case and spacing
    /// ("sw1a1aa", "SW1A 1", "sw1a"). A sector needs its space ("N1 1"),
    /// because unspaced "N11" is a district.
    pub fn parse(s: &str) -> Option<Self> {
        let mut c = [0u8; 7];
        let mut n = 0;
        // Length of the compact form before the last whitespace run, if any.
        let mut before_last_space = None;
        let mut pending_space = false;
        for &b in s.trim().as_bytes() {
            if b.is_ascii_whitespace() {
                pending_space = true;
                continue;
            }
            if !b.is_ascii_alphanumeric() || n == 7 {
                return None;
            }
            if pending_space {
                before_last_space = Some(n);
                pending_space = false;
            }
            c[n] = b.to_ascii_uppercase();
            n += 1;
        }
        let b = &c[..n];
        if n >= 5 && is_inward(&b[n - 3..]) && is_outward(&b[..n - 3]) {
            return Some(Self::from_parts(&b[..n - 3], &b[n - 3..]));
        }
        if before_last_space == Some(n.wrapping_sub(1))
            && n >= 3
            && b[n - 1].is_ascii_digit()
            && is_outward(&b[..n - 1])
        {
            return Some(Self::from_parts(&b[..n - 1], &b[n - 1..]));
        }
        if before_last_space.is_none() && is_outward(b) {
            return Some(Self::from_parts(b, b""));
        }
        None
    }

    /// What the postcode specifies.
    pub fn level(&self) -> PostcodeLevel {
        match self.in_len {
            3 => PostcodeLevel::Unit,
            1 => PostcodeLevel::Sector,
            _ => PostcodeLevel::District,
        }
    }

    fn outward_bytes(&self) -> &[u8] {
        &self.buf[..self.out_len as usize]
    }

    fn inward_bytes(&self) -> &[u8] {
        &self.buf[self.out_len as usize..(self.out_len + self.in_len) as usize]
    }

    /// The outward code (district), e.g. "SW1A".
    pub fn outward(&self) -> &str {
        std::str::from_utf8(self.outward_bytes()).expect("ascii")
    }

    /// The sector this postcode lies in, if at least the sector is known ("SW1A 1").
    pub fn sector(&self) -> Option<String> {
        self.inward_bytes()
            .first()
            .map(|d| format!("{} {}", self.outward(), *d as char))
    }

    fn key(&self) -> u64 {
        pack(self.outward_bytes(), self.inward_bytes())
    }

    fn sector_key(&self) -> Option<u64> {
        self.inward_bytes()
            .get(..1)
            .map(|d| pack(self.outward_bytes(), d))
    }

    fn district_key(&self) -> u64 {
        pack(self.outward_bytes(), b"")
    }
}

impl std::fmt::Display for Postcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inward = std::str::from_utf8(self.inward_bytes()).expect("ascii");
        if inward.is_empty() {
            f.write_str(self.outward())
        } else {
            write!(f, "{} {inward}", self.outward())
        }
    }
}

/// Normalises a unit postcode to the canonical spaced upper-case form
/// ("sw1a1aa" -> "SW1A 1AA"); `None` if it is not a full unit postcode.
pub fn normalise_postcode(s: &str) -> Option<String> {
    Postcode::parse(s)
        .filter(|p| p.level() == PostcodeLevel::Unit)
        .map(|p| p.to_string())
}

/// Finds the first full unit postcode in free text ("outside 12 High St, e17 4rq").
pub fn find_postcode_in_text(text: &str) -> Option<Postcode> {
    let tokens: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let up = t.to_ascii_uppercase();
        if let Some(next) = tokens.get(i + 1) {
            let nu = next.to_ascii_uppercase();
            if is_outward(up.as_bytes()) && is_inward(nu.as_bytes()) {
                return Some(Postcode::from_parts(up.as_bytes(), nu.as_bytes()));
            }
        }
        let b = up.as_bytes();
        if (5..=7).contains(&b.len())
            && is_inward(&b[b.len() - 3..])
            && is_outward(&b[..b.len() - 3])
        {
            return Some(Postcode::from_parts(&b[..b.len() - 3], &b[b.len() - 3..]));
        }
    }
    None
}

fn is_inward(b: &[u8]) -> bool {
    b.len() == 3
        && b[0].is_ascii_digit()
        && b[1].is_ascii_alphabetic()
        && b[2].is_ascii_alphabetic()
}

/// Outward code shapes: A9, A99, AA9, AA99, A9A, AA9A (upper-case input).
fn is_outward(b: &[u8]) -> bool {
    let a = |i: usize| b.get(i).is_some_and(u8::is_ascii_uppercase);
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    match b.len() {
        2 => a(0) && d(1),
        3 => a(0) && ((d(1) && d(2)) || (a(1) && d(2)) || (d(1) && a(2))),
        4 => a(0) && a(1) && d(2) && (d(3) || a(3)),
        _ => false,
    }
}

/// Packs up to 8 ASCII bytes (outward then inward, unspaced) into a sortable
/// key; unambiguous within one table because each table has a fixed inward length.
fn pack(outward: &[u8], inward: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    for (slot, b) in k.iter_mut().zip(outward.iter().chain(inward)) {
        *slot = *b;
    }
    u64::from_be_bytes(k)
}

/// A postcode directory layout, detected from the header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostcodeLayout {
    /// ONS Postcode Directory (`pcds`, `oslaua`, `oseast1m`, `osnrth1m`, `lat`, `long`).
    Onspd,
    /// National Statistics Postcode Lookup (`pcds`, `laua`, `oseast1m`, `osnrth1m`, `lat`, `long`).
    Nspl,
    /// Code-Point Open with a header row (`postcode`/`pc`, `easting`/`ea`, `northing`/`no`,
    /// optionally `latitude`, `longitude`).
    CodePoint,
    /// Code-Point Open as shipped, without a header: postcode, quality, easting, northing, ...
    CodePointHeaderless,
}

/// Counts from a postcode import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostcodeImportSummary {
    /// Detected layout.
    pub layout: PostcodeLayout,
    /// Data rows read.
    pub rows: u64,
    /// Unit postcodes stored.
    pub units: usize,
    /// Sectors with a centroid.
    pub sectors: usize,
    /// Districts with a centroid.
    pub districts: usize,
    /// Rows skipped because the directory gives no location for them.
    pub without_location: u64,
    /// Rows skipped because the postcode appeared earlier in the file.
    pub duplicates: u64,
}

/// A resolved postcode location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostcodeHit {
    /// WGS84 latitude in degrees.
    pub lat: f64,
    /// WGS84 longitude in degrees.
    pub lon: f64,
    /// Which level matched (a unit not in the directory falls back to its sector, then district).
    pub level: PostcodeLevel,
    /// Precision of the location in metres.
    pub precision_m: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Centroid {
    lat: f64,
    lon: f64,
    precision_m: u32,
    units: u32,
}

/// Sorted table of keys to centroids, searched by binary search.
#[derive(Debug, Default)]
struct Table {
    keys: Vec<u64>,
    values: Vec<Centroid>,
}

impl Table {
    fn get(&self, key: u64) -> Option<&Centroid> {
        self.keys.binary_search(&key).ok().map(|i| &self.values[i])
    }
}

/// The imported postcode directory.
#[derive(Debug, Default)]
pub struct PostcodeIndex {
    units: Table,
    sectors: Table,
    districts: Table,
}

const COL_POSTCODE: &[&str] = &["pcds", "pcd", "pcd2", "postcode", "pc", "postcode_spaced"];
const COL_LAT: &[&str] = &["lat", "latitude"];
const COL_LON: &[&str] = &["long", "lon", "lng", "longitude"];
const COL_EAST: &[&str] = &["oseast1m", "easting", "eastings", "ea"];
const COL_NORTH: &[&str] = &["osnrth1m", "northing", "northings", "no"];

struct Columns {
    layout: PostcodeLayout,
    postcode: usize,
    lat: Option<usize>,
    lon: Option<usize>,
    east: Option<usize>,
    north: Option<usize>,
}

fn detect(first: &csv::StringRecord) -> Result<Columns, ImportError> {
    let names: Vec<String> = first
        .iter()
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let find = |cands: &[&str]| cands.iter().find_map(|c| names.iter().position(|n| n == c));
    let has = |n: &str| names.iter().any(|x| x == n);
    if let Some(postcode) = find(COL_POSTCODE) {
        let (lat, lon) = (find(COL_LAT), find(COL_LON));
        let (east, north) = (find(COL_EAST), find(COL_NORTH));
        let geo = lat.is_some() && lon.is_some();
        let grid = east.is_some() && north.is_some();
        if geo || grid {
            let layout = if has("oslaua") || has("osgrdind") && !has("laua") {
                PostcodeLayout::Onspd
            } else if has("laua") {
                PostcodeLayout::Nspl
            } else {
                PostcodeLayout::CodePoint
            };
            return Ok(Columns {
                layout,
                postcode,
                lat: lat.filter(|_| geo),
                lon: lon.filter(|_| geo),
                east: east.filter(|_| grid),
                north: north.filter(|_| grid),
            });
        }
    }
    // Code-Point Open ships without a header: PC, PQ, EA, NO, ...
    let headerless = first.len() >= 4
        && normalise_postcode(&first[0]).is_some()
        && first[2].trim().parse::<f64>().is_ok()
        && first[3].trim().parse::<f64>().is_ok();
    if headerless {
        return Ok(Columns {
            layout: PostcodeLayout::CodePointHeaderless,
            postcode: 0,
            lat: None,
            lon: None,
            east: Some(2),
            north: Some(3),
        });
    }
    Err(ImportError::UnknownPostcodeLayout {
        found: names.join(","),
    })
}

fn parse_opt(
    rec: &csv::StringRecord,
    col: Option<usize>,
    row: u64,
    what: &str,
) -> Result<Option<f64>, ImportError> {
    let Some(col) = col else { return Ok(None) };
    let s = rec.get(col).unwrap_or("").trim();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(ImportError::BadPostcodeRow {
            row,
            problem: format!("bad coordinate: {what} {s:?} is not a number"),
        }),
    }
}

impl PostcodeIndex {
    /// Parses a postcode directory CSV (ONSPD, NSPL or Code-Point Open, detected
    /// from the header). Latitude/longitude columns are used when present and
    /// valid, otherwise easting/northing are converted from OSGB36.
    pub fn from_csv<R: Read>(
        input: R,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Self, PostcodeImportSummary), ImportError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut rec = csv::StringRecord::new();
        if !rdr.read_record(&mut rec).map_err(ImportError::csv)? {
            return Err(ImportError::EmptyPostcodeFile);
        }
        let cols = detect(&rec)?;
        let mut summary = PostcodeImportSummary {
            layout: cols.layout,
            rows: 0,
            units: 0,
            sectors: 0,
            districts: 0,
            without_location: 0,
            duplicates: 0,
        };
        let mut units: HashMap<u64, (Postcode, f64, f64)> = HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        let mut line = 1u64;
        let mut pending = cols.layout == PostcodeLayout::CodePointHeaderless;
        loop {
            if !pending {
                if !rdr.read_record(&mut rec).map_err(ImportError::csv)? {
                    break;
                }
                line += 1;
            }
            pending = false;
            summary.rows += 1;
            if summary.rows % 10_000 == 0 {
                progress(summary.rows);
            }
            let raw = rec.get(cols.postcode).unwrap_or("").trim();
            let Some(pc) = Postcode::parse(raw).filter(|p| p.level() == PostcodeLevel::Unit) else {
                return Err(ImportError::BadPostcodeRow {
                    row: line,
                    problem: format!("invalid unit postcode {raw:?}"),
                });
            };
            let lat = parse_opt(&rec, cols.lat, line, "latitude")?;
            let lon = parse_opt(&rec, cols.lon, line, "longitude")?;
            // ONSPD/NSPL mark "no location" with latitude 99.999999.
            let geo = match (lat, lon) {
                (Some(la), Some(lo))
                    if la.abs() <= 90.0 && lo.abs() <= 180.0 && !(la == 0.0 && lo == 0.0) =>
                {
                    Some((la, lo))
                }
                (Some(la), Some(_)) if la > 90.0 => None,
                (Some(la), Some(lo)) if la != 0.0 || lo != 0.0 => {
                    return Err(ImportError::BadPostcodeRow {
                        row: line,
                        problem: format!(
                            "bad coordinate: latitude {la}, longitude {lo} out of range"
                        ),
                    })
                }
                _ => None,
            };
            let geo = match geo {
                Some(g) => Some(g),
                None => {
                    let e = parse_opt(&rec, cols.east, line, "easting")?;
                    let n = parse_opt(&rec, cols.north, line, "northing")?;
                    match (e, n) {
                        // Code-Point marks "no location" with 0,0; ONSPD with northing 0 or empty.
                        (Some(e), Some(n)) if e > 0.0 && n > 0.0 => match osgb36_to_wgs84(e, n) {
                            Some(g) => Some(g),
                            None => {
                                return Err(ImportError::BadPostcodeRow {
                                    row: line,
                                    problem: format!("bad coordinate: easting {e}, northing {n} outside the national grid"),
                                })
                            }
                        },
                        _ => None,
                    }
                }
            };
            let Some((lat, lon)) = geo else {
                summary.without_location += 1;
                continue;
            };
            let key = pc.key();
            if units.contains_key(&key) {
                summary.duplicates += 1;
                continue;
            }
            order.push(key);
            units.insert(key, (pc, lat, lon));
        }
        progress(summary.rows);
        if units.is_empty() {
            return Err(ImportError::EmptyPostcodeFile);
        }
        let index = Self::build(order.iter().map(|k| &units[k]));
        summary.units = index.units.keys.len();
        summary.sectors = index.sectors.keys.len();
        summary.districts = index.districts.keys.len();
        Ok((index, summary))
    }

    fn build<'a>(units: impl Iterator<Item = &'a (Postcode, f64, f64)>) -> Self {
        let mut unit_rows: Vec<(u64, Centroid)> = Vec::new();
        let mut sectors: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
        let mut districts: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
        for (pc, lat, lon) in units {
            unit_rows.push((
                pc.key(),
                Centroid {
                    lat: *lat,
                    lon: *lon,
                    precision_m: UNIT_PRECISION_M,
                    units: 1,
                },
            ));
            if let Some(k) = pc.sector_key() {
                sectors.entry(k).or_default().push((*lat, *lon));
            }
            districts
                .entry(pc.district_key())
                .or_default()
                .push((*lat, *lon));
        }
        PostcodeIndex {
            units: table(unit_rows),
            sectors: table(
                sectors
                    .into_iter()
                    .map(|(k, v)| (k, centroid(&v, SECTOR_MIN_PRECISION_M)))
                    .collect(),
            ),
            districts: table(
                districts
                    .into_iter()
                    .map(|(k, v)| (k, centroid(&v, DISTRICT_MIN_PRECISION_M)))
                    .collect(),
            ),
        }
    }

    /// Looks up a unit, sector or district postcode; a unit missing from the
    /// directory falls back to its sector, then its district centroid.
    pub fn lookup(&self, postcode: &Postcode) -> Option<PostcodeHit> {
        let hit = |c: &Centroid, level| PostcodeHit {
            lat: c.lat,
            lon: c.lon,
            level,
            precision_m: c.precision_m,
        };
        if postcode.level() == PostcodeLevel::Unit {
            if let Some(c) = self.units.get(postcode.key()) {
                return Some(hit(c, PostcodeLevel::Unit));
            }
        }
        if let Some(c) = postcode.sector_key().and_then(|k| self.sectors.get(k)) {
            return Some(hit(c, PostcodeLevel::Sector));
        }
        self.districts
            .get(postcode.district_key())
            .map(|c| hit(c, PostcodeLevel::District))
    }

    /// Parses and looks up a postcode string (see [`PostcodeIndex::lookup`]).
    pub fn lookup_str(&self, postcode: &str) -> Option<PostcodeHit> {
        Postcode::parse(postcode).and_then(|p| self.lookup(&p))
    }

    /// Number of unit postcodes.
    pub fn unit_count(&self) -> usize {
        self.units.keys.len()
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        for t in [&self.units, &self.sectors, &self.districts] {
            e.len(t.keys.len());
            for (k, c) in t.keys.iter().zip(&t.values) {
                e.u64(*k);
                e.f64(c.lat);
                e.f64(c.lon);
                e.u32(c.precision_m);
                e.u32(c.units);
            }
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Self, String> {
        let mut tables = Vec::with_capacity(3);
        for _ in 0..3 {
            let n = d.len(32)?;
            let mut t = Table {
                keys: Vec::with_capacity(n),
                values: Vec::with_capacity(n),
            };
            for _ in 0..n {
                t.keys.push(d.u64()?);
                t.values.push(Centroid {
                    lat: d.f64()?,
                    lon: d.f64()?,
                    precision_m: d.u32()?,
                    units: d.u32()?,
                });
            }
            if !t.keys.windows(2).all(|w| w[0] < w[1]) {
                return Err("postcode keys are not sorted".into());
            }
            tables.push(t);
        }
        let districts = tables.pop().expect("3 tables");
        let sectors = tables.pop().expect("3 tables");
        let units = tables.pop().expect("3 tables");
        Ok(PostcodeIndex {
            units,
            sectors,
            districts,
        })
    }
}

fn table(mut rows: Vec<(u64, Centroid)>) -> Table {
    rows.sort_by_key(|r| r.0);
    Table {
        keys: rows.iter().map(|r| r.0).collect(),
        values: rows.into_iter().map(|r| r.1).collect(),
    }
}

/// Mean of the unit locations; the precision is the distance within which 90%
/// of the units lie, rounded up to 10 m, and never below `min_precision`.
fn centroid(points: &[(f64, f64)], min_precision: u32) -> Centroid {
    let n = points.len() as f64;
    let lat = points.iter().map(|p| p.0).sum::<f64>() / n;
    let lon = points.iter().map(|p| p.1).sum::<f64>() / n;
    let mut d: Vec<f64> = points
        .iter()
        .map(|p| distance_m(lat, lon, p.0, p.1))
        .collect();
    d.sort_by(f64::total_cmp);
    let p90 = d[((d.len() - 1) as f64 * 0.9).round() as usize];
    let precision = ((p90 / 10.0).ceil() * 10.0) as u32;
    Centroid {
        lat,
        lon,
        precision_m: precision.max(min_precision),
        units: u32::try_from(points.len()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(normalise_postcode("sw1a1aa").as_deref(), Some("SW1A 1AA"));
        assert_eq!(
            normalise_postcode(" SW1A   1AA ").as_deref(),
            Some("SW1A 1AA")
        );
        assert_eq!(normalise_postcode("e17 4rq").as_deref(), Some("E17 4RQ"));
        assert_eq!(normalise_postcode("N1 9GU").as_deref(), Some("N1 9GU"));
        assert_eq!(normalise_postcode("W1A0AX").as_deref(), Some("W1A 0AX"));
        assert_eq!(normalise_postcode("SW1A"), None);
        assert_eq!(normalise_postcode("12345"), None);
        assert_eq!(normalise_postcode("SW1A 1A"), None);
        assert_eq!(normalise_postcode("SW1A_1AA"), None);
        assert_eq!(
            Postcode::parse("SW1A 1").unwrap().level(),
            PostcodeLevel::Sector
        );
        assert_eq!(Postcode::parse("sw1a 1").unwrap().to_string(), "SW1A 1");
        assert_eq!(
            Postcode::parse("N11").unwrap().level(),
            PostcodeLevel::District
        );
        assert_eq!(Postcode::parse("N1 1").unwrap().to_string(), "N1 1");
        assert_eq!(
            Postcode::parse("SW1A 1AA").unwrap().sector().as_deref(),
            Some("SW1A 1")
        );
        assert_eq!(Postcode::parse("road"), None);
    }

    #[test]
    fn finds_postcodes_in_text() {
        let f = |s| find_postcode_in_text(s).map(|p| p.to_string());
        assert_eq!(
            f("outside 12 High St, e17 4rq, near bus stop").as_deref(),
            Some("E17 4RQ")
        );
        assert_eq!(f("assaulted at SW1A1AA").as_deref(), Some("SW1A 1AA"));
        assert_eq!(f("on the A13 near 2 roads"), None);
        assert_eq!(f("flat 3, 45 N1 9GU."), Some("N1 9GU".to_string()));
        assert_eq!(f(""), None);
    }

    const CODEPOINT: &str = "postcode,postcode_spaced,positional_quality,easting,northing,latitude,longitude,country_code\n\
        BR1 1AB,BR1 1AB,10,540260,169398,51.406271,0.015177,E92000001\n\
        BR1 1AE,BR1 1AE,10,540194,169201,,,E92000001\n\
        BR1 2XX,BR1 2XX,90,0,0,,,E92000001\n\
        BR2 9ZZ,BR2 9ZZ,10,541000,168000,51.3936,0.0279,E92000001\n";

    #[test]
    fn imports_code_point_with_header_and_falls_back() {
        let (idx, s) = PostcodeIndex::from_csv(CODEPOINT.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(s.layout, PostcodeLayout::CodePoint);
        assert_eq!(
            (s.rows, s.units, s.without_location, s.duplicates),
            (4, 3, 1, 0)
        );
        assert_eq!((s.sectors, s.districts), (2, 2));
        let h = idx.lookup_str("br11ab").unwrap();
        assert_eq!(
            (h.lat, h.lon, h.level, h.precision_m),
            (51.406271, 0.015177, PostcodeLevel::Unit, 50)
        );
        // The second row has no lat/lon: converted from the grid reference.
        let h = idx.lookup_str("BR1 1AE").unwrap();
        assert!(distance_m(h.lat, h.lon, 51.404517, 0.014151) < 0.5);
        // Unknown unit -> sector centroid (mean of the two BR1 1 units).
        let h = idx.lookup_str("BR1 1ZZ").unwrap();
        assert_eq!(h.level, PostcodeLevel::Sector);
        assert!((h.lat - (51.406271 + 51.404517) / 2.0).abs() < 1e-6);
        assert_eq!(h.precision_m, SECTOR_MIN_PRECISION_M);
        // Unknown sector -> district; district asked for directly.
        assert_eq!(
            idx.lookup_str("BR1 5ZZ").unwrap().level,
            PostcodeLevel::District
        );
        let h = idx.lookup_str("br2").unwrap();
        assert_eq!(
            (h.lat, h.lon, h.level),
            (51.3936, 0.0279, PostcodeLevel::District)
        );
        assert_eq!(idx.lookup_str("E1 6AN"), None);
    }

    #[test]
    fn imports_headerless_code_point_and_onspd() {
        let cp = "\"BR1 1AB\",10,540260,169398,\"E92000001\"\n\"BR1 1AE\",10,540194,169201,\"E92000001\"\n";
        let (idx, s) = PostcodeIndex::from_csv(cp.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(
            (s.layout, s.units, s.rows),
            (PostcodeLayout::CodePointHeaderless, 2, 2)
        );
        assert!(idx.lookup_str("BR1 1AB").is_some());

        let onspd = "pcd,pcd2,pcds,dointr,doterm,oscty,oslaua,osward,usertype,oseast1m,osnrth1m,osgrdind,lat,long\n\
            BR1 1AB,BR1  1AB,BR1 1AB,198001,,E99999999,E09000006,E05000109,0,540260,169398,1,51.406271,0.015177\n\
            ZZ1 1ZZ,ZZ1  1ZZ,ZZ1 1ZZ,198001,,E99999999,,,0,,,9,99.999999,0.000000\n";
        let (_, s) = PostcodeIndex::from_csv(onspd.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(
            (s.layout, s.units, s.without_location),
            (PostcodeLayout::Onspd, 1, 1)
        );

        let nspl =
            "pcd,pcd2,pcds,dointr,doterm,usertype,oseast1m,osnrth1m,osgrdind,laua,lat,long\n\
            BR1 1AB,BR1  1AB,BR1 1AB,198001,,0,540260,169398,1,E09000006,51.406271,0.015177\n";
        let (_, s) = PostcodeIndex::from_csv(nspl.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(s.layout, PostcodeLayout::Nspl);
    }

    #[test]
    fn import_errors_name_the_row() {
        let bad = "postcode,easting,northing\nBR1 1AB,540260,169398\nBR1 1AE,54x194,169201\n";
        let e = PostcodeIndex::from_csv(bad.as_bytes(), &mut |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "postcode row 3: bad coordinate: easting \"54x194\" is not a number"
        );
        let bad = "postcode,easting,northing\nNOTAPOSTCODE,540260,169398\n";
        let e = PostcodeIndex::from_csv(bad.as_bytes(), &mut |_| {}).unwrap_err();
        assert_eq!(
            e.to_string(),
            "postcode row 2: invalid unit postcode \"NOTAPOSTCODE\""
        );
        let e = PostcodeIndex::from_csv("name,x,y\na,1,2\n".as_bytes(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(e, ImportError::UnknownPostcodeLayout { .. }),
            "{e}"
        );
        let e = PostcodeIndex::from_csv("".as_bytes(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImportError::EmptyPostcodeFile));
    }

    #[test]
    fn encode_roundtrip() {
        let (idx, _) = PostcodeIndex::from_csv(CODEPOINT.as_bytes(), &mut |_| {}).unwrap();
        let mut e = Enc::new(b"TEST");
        idx.encode(&mut e);
        let bytes = e.into_bytes();
        let mut d = Dec::new(&bytes, b"TEST").unwrap();
        let back = PostcodeIndex::decode(&mut d).unwrap();
        d.finish().unwrap();
        assert_eq!(back.lookup_str("BR1 1AB"), idx.lookup_str("BR1 1AB"));
        assert_eq!(back.lookup_str("BR2"), idx.lookup_str("BR2"));
        assert!(Dec::new(&bytes[..10], b"TEST").is_err());
        assert!(Dec::new(&bytes, b"XXXX").is_err());
    }
}
