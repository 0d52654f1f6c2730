//! A fast, exact path from WGS84 points to H3 cells inside a bounded box.
//!
//! Computing an H3 cell from scratch (h3o's `LatLng::to_cell`) projects the
//! point onto an icosahedron face with several trigonometric calls. Inside a
//! box the size of a city that projection is smooth, so over a tile of about a
//! kilometre it is an affine map to within a few thousandths of a cell. The
//! cells of one resolution are the Voronoi regions of a hexagonal lattice in
//! that projection, so once a point's lattice coordinates are known to within
//! an error bound, its cell is the nearest lattice point, unless the point
//! lies within that bound of the cell's edge; those few points go the slow
//! way. The answer is therefore the same cell h3o gives, never an
//! approximation of it.
//!
//! Per tile, the affine map is fitted by least squares to the centres of the
//! cells at a 7 x 7 grid of sample points (their lattice coordinates are exact
//! integers, from h3o's local IJ coordinates), and the worst residual sets the
//! tile's margin: twice the residual plus a floor. Over Greater London the
//! residuals are about 0.0013 cell spacings (6 cm at resolution 11); on the
//! edges and vertices of 60,000 random cells the largest fit error found was
//! 1.06 times its tile's residual, so the margin has room to spare (the
//! tests below fail when it is cut to half the residual). A tile whose fit
//! is poor (a face edge of the icosahedron or a pentagon nearby) is never
//! used. The lattice coordinates of a cell are turned back into its index
//! through blocks of 8 x 8 cells, each cell checked to round-trip. Tiles
//! and blocks are built on first use, so only the places that see data cost
//! anything, and the structure can be shared by threads.

use std::sync::OnceLock;

use h3o::{CellIndex, CoordIJ, LatLng, LocalIJ, Resolution};

/// Tile size in degrees of latitude and longitude (about 1.1 km x 1.0 km in London).
const TILE_DLAT: f64 = 0.01;
const TILE_DLON: f64 = 0.015;
/// Sample points per tile side for the fit.
const SAMPLES: usize = 7;
/// A tile whose worst residual exceeds this (in cell spacings) is not used.
const MAX_RESIDUAL: f64 = 0.01;
/// Safety added to the residual bound, in cell spacings (about 5 cm at
/// resolution 11): covers the curvature of the map between sample points (two
/// orders of magnitude smaller) and floating-point rounding.
const MARGIN_FLOOR: f64 = 1e-3;
/// Blocks are 2^BLOCK_BITS cells on a side.
const BLOCK_BITS: u32 = 3;
const BLOCK_SIDE: usize = 1 << BLOCK_BITS;
const BLOCK_LEN: usize = BLOCK_SIDE * BLOCK_SIDE;
/// Beyond these sizes the box is too large for a lattice and every point
/// takes the slow path.
const MAX_TILES: usize = 1 << 20;
const MAX_BLOCKS: usize = 1 << 20;

const SQRT3_2: f64 = 0.866_025_403_784_438_6;

/// Cell index 0 is not a valid H3 index: marks a lattice point without a cell.
const NO_CELL: u64 = 0;

/// An affine map from a point's position in its tile (u, v in 0..1) to
/// lattice coordinates (x, y), with the distance from a cell edge below which
/// the nearest lattice point is not trusted.
#[derive(Debug, Clone, Copy)]
struct Tile {
    x: [f64; 3],
    y: [f64; 3],
    /// Greater than 0.5 for a tile that must not be used.
    margin: f64,
}

const UNUSABLE: Tile = Tile {
    x: [0.0; 3],
    y: [0.0; 3],
    margin: 1.0,
};

/// The cells of one block of lattice points and their payloads, kept apart
/// so a caller that needs only one of them touches only its array, and an
/// arena the payloads may point into (a cell's variable-sized data, in one
/// allocation shared by the block). A lattice point without a cell has
/// `NO_CELL` and the default payload.
struct Block<P, A> {
    cells: [u64; BLOCK_LEN],
    payloads: [P; BLOCK_LEN],
    arena: Vec<A>,
}

/// One lattice point's entry in its block.
pub(crate) struct Entry<'a, P, A> {
    block: &'a Block<P, A>,
    k: usize,
}

impl<'a, P: Copy, A> Entry<'a, P, A> {
    /// The cell's index as stored: `NO_CELL` (0, never a valid index) if the
    /// lattice point has none.
    #[inline]
    pub(crate) fn raw_cell(&self) -> u64 {
        self.block.cells[self.k]
    }

    /// The payload (the default where the lattice point has no cell).
    #[inline]
    pub(crate) fn payload(&self) -> P {
        self.block.payloads[self.k]
    }

    /// The block's arena, which payloads may point into.
    #[inline]
    pub(crate) fn arena(&self) -> &'a [A] {
        &self.block.arena
    }
}

/// Points to H3 cells at one resolution, inside one latitude/longitude box,
/// with a payload per cell computed once (for example the areas of cells that
/// lie wholly inside one area), which may refer to items of its block's arena.
pub(crate) struct CellLattice<P, A = ()> {
    resolution: Resolution,
    anchor: CellIndex,
    lat0: f64,
    lon0: f64,
    tiles_lat: usize,
    tiles_lon: usize,
    tiles: Vec<OnceLock<Tile>>,
    /// Lattice coordinates of the first block's first cell.
    i0: i32,
    j0: i32,
    blocks_i: usize,
    blocks_j: usize,
    blocks: Vec<OnceLock<Box<Block<P, A>>>>,
}

impl<P, A> std::fmt::Debug for CellLattice<P, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellLattice")
            .field("resolution", &self.resolution)
            .field("tiles", &self.tiles.len())
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

/// Lattice coordinates (x, y) of the centre of the cell at local IJ (i, j):
/// the i axis along x, the j axis at 120 degrees, neighbours one unit apart.
fn ij_to_xy(i: i32, j: i32) -> (f64, f64) {
    (f64::from(i) - 0.5 * f64::from(j), f64::from(j) * SQRT3_2)
}

impl<P: Copy + Default, A> CellLattice<P, A> {
    /// A lattice over the box, or `None` if the box is too large, not finite,
    /// or too far from its centre for local IJ coordinates (near a pentagon).
    pub(crate) fn new(
        resolution: Resolution,
        min_lat: f64,
        max_lat: f64,
        min_lon: f64,
        max_lon: f64,
    ) -> Option<Self> {
        let finite = [min_lat, max_lat, min_lon, max_lon]
            .iter()
            .all(|v| v.is_finite());
        if !finite || min_lat >= max_lat || min_lon >= max_lon || min_lat < -85.0 || max_lat > 85.0
        {
            return None;
        }
        if min_lon < -180.0 || max_lon > 180.0 {
            return None;
        }
        let tiles_lat = ((max_lat - min_lat) / TILE_DLAT).ceil() as usize;
        let tiles_lon = ((max_lon - min_lon) / TILE_DLON).ceil() as usize;
        if tiles_lat.checked_mul(tiles_lon)? > MAX_TILES {
            return None;
        }
        let lat1 = min_lat + tiles_lat as f64 * TILE_DLAT;
        let lon1 = min_lon + tiles_lon as f64 * TILE_DLON;
        let centre = LatLng::new(0.5 * (min_lat + lat1), 0.5 * (min_lon + lon1)).ok()?;
        let anchor = centre.to_cell(resolution);
        // The lattice range: local IJ of points around the box's edge, padded
        // for the curvature of the edges between them.
        let (mut imin, mut imax, mut jmin, mut jmax) = (i32::MAX, i32::MIN, i32::MAX, i32::MIN);
        const EDGE: usize = 16;
        for k in 0..=EDGE {
            let t = k as f64 / EDGE as f64;
            for (lat, lon) in [
                (min_lat, min_lon + t * (lon1 - min_lon)),
                (lat1, min_lon + t * (lon1 - min_lon)),
                (min_lat + t * (lat1 - min_lat), min_lon),
                (min_lat + t * (lat1 - min_lat), lon1),
            ] {
                let cell = LatLng::new(lat, lon).ok()?.to_cell(resolution);
                let ij = cell.to_local_ij(anchor).ok()?.coord;
                imin = imin.min(ij.i);
                imax = imax.max(ij.i);
                jmin = jmin.min(ij.j);
                jmax = jmax.max(ij.j);
            }
        }
        let pad = 64;
        let i0 = imin.checked_sub(pad)?;
        let j0 = jmin.checked_sub(pad)?;
        let blocks_i = ((imax + pad - i0) as usize >> BLOCK_BITS) + 1;
        let blocks_j = ((jmax + pad - j0) as usize >> BLOCK_BITS) + 1;
        if blocks_i.checked_mul(blocks_j)? > MAX_BLOCKS {
            return None;
        }
        Some(CellLattice {
            resolution,
            anchor,
            lat0: min_lat,
            lon0: min_lon,
            tiles_lat,
            tiles_lon,
            tiles: (0..tiles_lat * tiles_lon)
                .map(|_| OnceLock::new())
                .collect(),
            i0,
            j0,
            blocks_i,
            blocks_j,
            blocks: (0..blocks_i * blocks_j).map(|_| OnceLock::new()).collect(),
        })
    }

    /// The cell containing a point, its payload and its block's arena, or
    /// `None` when the point is outside the box or too close to a cell edge
    /// to decide here (the caller then asks h3o). `payload` is called once
    /// per cell, when the block holding it is first used.
    #[cfg(test)]
    #[inline]
    pub(crate) fn locate(
        &self,
        lat: f64,
        lon: f64,
        payload: impl Fn(CellIndex, &mut Vec<A>) -> P,
    ) -> Option<(CellIndex, P, &[A])> {
        let e = self.entry(lat, lon, payload)?;
        let cell = CellIndex::try_from(e.raw_cell()).ok()?;
        Some((cell, e.payload(), e.arena()))
    }

    /// The entry of the cell containing a point, without reading it yet: a
    /// caller that needs entries of two lattices finds both first, so the
    /// two memory reads (each likely a cache miss) overlap.
    #[inline]
    pub(crate) fn entry(
        &self,
        lat: f64,
        lon: f64,
        payload: impl Fn(CellIndex, &mut Vec<A>) -> P,
    ) -> Option<Entry<'_, P, A>> {
        let (i, j) = self.lattice_point(lat, lon)?;
        self.entry_at(i, j, payload)
    }

    /// The entry of a given cell (at this lattice's resolution), for points
    /// the lattice left to h3o: their cell is known, its entry still holds
    /// the payload.
    pub(crate) fn entry_of(
        &self,
        cell: CellIndex,
        payload: impl Fn(CellIndex, &mut Vec<A>) -> P,
    ) -> Option<Entry<'_, P, A>> {
        if cell.resolution() != self.resolution {
            return None;
        }
        let c = cell.to_local_ij(self.anchor).ok()?.coord;
        let e = self.entry_at(c.i, c.j, payload)?;
        // Lattice points whose cell did not round-trip have no entry.
        (e.block.cells[e.k] == u64::from(cell)).then_some(e)
    }

    #[inline]
    fn entry_at(
        &self,
        i: i32,
        j: i32,
        payload: impl Fn(CellIndex, &mut Vec<A>) -> P,
    ) -> Option<Entry<'_, P, A>> {
        let (bi, bj) = (
            i.wrapping_sub(self.i0) as u32,
            j.wrapping_sub(self.j0) as u32,
        );
        let (block_i, block_j) = ((bi >> BLOCK_BITS) as usize, (bj >> BLOCK_BITS) as usize);
        if block_i >= self.blocks_i || block_j >= self.blocks_j {
            return None;
        }
        let block = self.blocks[block_i * self.blocks_j + block_j]
            .get_or_init(|| self.fill(block_i, block_j, &payload));
        let k = ((bi as usize & (BLOCK_SIDE - 1)) << BLOCK_BITS) | (bj as usize & (BLOCK_SIDE - 1));
        Some(Entry { block, k })
    }

    /// The local IJ coordinates of the cell containing a point, when the
    /// lattice can decide it; reads only the small, hot tile table.
    #[inline]
    fn lattice_point(&self, lat: f64, lon: f64) -> Option<(i32, i32)> {
        let fu = (lat - self.lat0) * (1.0 / TILE_DLAT);
        let fv = (lon - self.lon0) * (1.0 / TILE_DLON);
        // Written so NaN fails too.
        if !(fu >= 0.0 && fu < self.tiles_lat as f64 && fv >= 0.0 && fv < self.tiles_lon as f64) {
            return None;
        }
        let (tu, tv) = (fu as usize, fv as usize);
        let tile = self.tile(tu, tv);
        let (u, v) = (fu - tu as f64, fv - tv as f64);
        let x = tile.x[0] + tile.x[1] * u + tile.x[2] * v;
        let y = tile.y[0] + tile.y[1] * u + tile.y[2] * v;
        nearest_lattice_point(x, y, tile.margin)
    }

    fn tile(&self, tu: usize, tv: usize) -> Tile {
        *self.tiles[tu * self.tiles_lon + tv].get_or_init(|| self.fit(tu, tv).unwrap_or(UNUSABLE))
    }

    /// Least-squares affine fit of lattice coordinates over one tile.
    fn fit(&self, tu: usize, tv: usize) -> Option<Tile> {
        let lat_t = self.lat0 + tu as f64 * TILE_DLAT;
        let lon_t = self.lon0 + tv as f64 * TILE_DLON;
        let mut samples = Vec::with_capacity(SAMPLES * SAMPLES);
        for a in 0..SAMPLES {
            for b in 0..SAMPLES {
                let lat = lat_t + TILE_DLAT * a as f64 / (SAMPLES - 1) as f64;
                let lon = lon_t + TILE_DLON * b as f64 / (SAMPLES - 1) as f64;
                let cell = LatLng::new(lat, lon).ok()?.to_cell(self.resolution);
                let ij = cell.to_local_ij(self.anchor).ok()?.coord;
                let centre = LatLng::from(cell);
                let (x, y) = ij_to_xy(ij.i, ij.j);
                let u = (centre.lat() - lat_t) / TILE_DLAT;
                let v = (centre.lng() - lon_t) / TILE_DLON;
                samples.push((u, v, x, y));
            }
        }
        let x = least_squares(&samples, |s| s.2)?;
        let y = least_squares(&samples, |s| s.3)?;
        let mut worst: f64 = 0.0;
        for &(u, v, sx, sy) in &samples {
            let dx = x[0] + x[1] * u + x[2] * v - sx;
            let dy = y[0] + y[1] * u + y[2] * v - sy;
            worst = worst.max(dx.hypot(dy));
        }
        if worst.is_nan() || worst > MAX_RESIDUAL {
            return None;
        }
        Some(Tile {
            x,
            y,
            margin: 2.0 * worst + MARGIN_FLOOR,
        })
    }

    fn fill(
        &self,
        block_i: usize,
        block_j: usize,
        payload: &impl Fn(CellIndex, &mut Vec<A>) -> P,
    ) -> Box<Block<P, A>> {
        let mut block = Box::new(Block {
            cells: [NO_CELL; BLOCK_LEN],
            payloads: [P::default(); BLOCK_LEN],
            arena: Vec::new(),
        });
        let base_i = self.i0 + (block_i << BLOCK_BITS) as i32;
        let base_j = self.j0 + (block_j << BLOCK_BITS) as i32;
        for a in 0..BLOCK_SIDE {
            for b in 0..BLOCK_SIDE {
                let coord = CoordIJ::new(base_i + a as i32, base_j + b as i32);
                let Ok(cell) = CellIndex::try_from(LocalIJ::new(self.anchor, coord)) else {
                    continue;
                };
                // Only cells whose coordinates round-trip are trusted.
                if cell.to_local_ij(self.anchor).ok().map(|l| l.coord) != Some(coord) {
                    continue;
                }
                let k = (a << BLOCK_BITS) | b;
                block.cells[k] = u64::from(cell);
                block.payloads[k] = payload(cell, &mut block.arena);
            }
        }
        block.arena.shrink_to_fit();
        block
    }
}

/// Solves for (c0, c1, c2) minimising the squared error of c0 + c1 u + c2 v.
fn least_squares(
    samples: &[(f64, f64, f64, f64)],
    value: impl Fn(&(f64, f64, f64, f64)) -> f64,
) -> Option<[f64; 3]> {
    let mut m = [[0.0f64; 3]; 3];
    let mut r = [0.0f64; 3];
    for s in samples {
        let basis = [1.0, s.0, s.1];
        let t = value(s);
        for a in 0..3 {
            for b in 0..3 {
                m[a][b] += basis[a] * basis[b];
            }
            r[a] += basis[a] * t;
        }
    }
    solve3(m, r)
}

/// Solves a 3x3 system by Cramer's rule (well conditioned here: the
/// unknowns are scaled to the tile).
fn solve3(m: [[f64; 3]; 3], r: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    if !d.is_normal() {
        return None;
    }
    let mut x = [0.0; 3];
    for (col, out) in x.iter_mut().enumerate() {
        let mut mc = m;
        for (row, v) in mc.iter_mut().zip(r) {
            row[col] = v;
        }
        *out = det(&mc) / d;
    }
    Some(x)
}

/// The lattice point nearest (x, y), if (x, y) is at least `margin` inside
/// that point's hexagon.
#[inline]
fn nearest_lattice_point(x: f64, y: f64, margin: f64) -> Option<(i32, i32)> {
    let jf = y * (1.0 / SQRT3_2);
    let i_f = x + 0.5 * jf;
    if !(i_f.abs() < 1e9 && jf.abs() < 1e9) {
        return None;
    }
    let (i0, j0) = (i_f.floor() as i32, jf.floor() as i32);
    // The nearest lattice point is a corner of the parallelogram holding the
    // point: the parallelogram is two of the lattice's equilateral triangles.
    let mut best = (i0, j0);
    let mut best_d = f64::INFINITY;
    for (di, dj) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let (cx, cy) = ij_to_xy(i0 + di, j0 + dj);
        let d = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        if d < best_d {
            best_d = d;
            best = (i0 + di, j0 + dj);
        }
    }
    let (cx, cy) = ij_to_xy(best.0, best.1);
    let (dx, dy) = (x - cx, y - cy);
    // Distance to the hexagon's edges: half the spacing minus the offset
    // along each of the three neighbour directions.
    let along = dx
        .abs()
        .max((0.5 * dx + SQRT3_2 * dy).abs())
        .max((-0.5 * dx + SQRT3_2 * dy).abs());
    (along <= 0.5 - margin).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn london() -> CellLattice<(), ()> {
        CellLattice::new(Resolution::Eleven, 51.23, 51.75, -0.60, 0.38).unwrap()
    }

    /// xorshift, so the test points are the same on every run.
    fn rng(mut s: u64) -> impl FnMut() -> f64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn nearest_point_and_margin() {
        assert_eq!(nearest_lattice_point(0.0, 0.0, 0.1), Some((0, 0)));
        assert_eq!(nearest_lattice_point(1.1, 0.0, 0.1), Some((1, 0)));
        // The j axis is at 120 degrees: (i, j) = (0, 1) sits at (-0.5, 0.866).
        assert_eq!(nearest_lattice_point(-0.5, 0.85, 0.1), Some((0, 1)));
        // (0.5, 0.866) is i + j = (1, 1).
        assert_eq!(nearest_lattice_point(0.5, 0.87, 0.1), Some((1, 1)));
        // Within the margin of an edge: left to the caller.
        assert_eq!(nearest_lattice_point(0.49, 0.0, 0.02), None);
        assert_eq!(nearest_lattice_point(0.47, 0.0, 0.02), Some((0, 0)));
        assert_eq!(nearest_lattice_point(f64::NAN, 0.0, 0.0), None);
    }

    #[test]
    fn agrees_with_h3o_over_london() {
        let lattice = london();
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut total) = (0usize, 0usize);
        for _ in 0..200_000 {
            let lat = 51.23 + 0.52 * next();
            let lon = -0.60 + 0.98 * next();
            let exact = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eleven);
            total += 1;
            if let Some((cell, ..)) = lattice.locate(lat, lon, |_, _| ()) {
                assert_eq!(cell, exact, "lattice disagrees with h3o at {lat}, {lon}");
                fast += 1;
            }
        }
        // Nearly every point is decided by the lattice.
        assert!(
            fast * 100 > total * 95,
            "only {fast} of {total} points took the fast path"
        );
    }

    #[test]
    fn agrees_with_h3o_on_cell_edges() {
        // Points on and just either side of the edges and vertices of cells,
        // where a wrong lattice would first show.
        let lattice = london();
        let mut next = rng(0x1234_5678_9abc_def1);
        let mut checked = 0usize;
        for _ in 0..2_000 {
            let lat = 51.25 + 0.48 * next();
            let lon = -0.58 + 0.94 * next();
            let cell = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eleven);
            let boundary = cell.boundary();
            let centre = LatLng::from(cell);
            let verts: Vec<LatLng> = boundary.iter().copied().collect();
            for (k, a) in verts.iter().enumerate() {
                let b = verts[(k + 1) % verts.len()];
                for t in [0.0, 0.25, 0.5, 0.9] {
                    let (plat, plon) = (
                        a.lat() + t * (b.lat() - a.lat()),
                        a.lng() + t * (b.lng() - a.lng()),
                    );
                    for s in [-1e-6, -1e-9, 0.0, 1e-9, 1e-6, 1e-5] {
                        // Toward (s > 0) or away from the centre.
                        let lat = plat + s * (centre.lat() - plat) / 1e-4;
                        let lon = plon + s * (centre.lng() - plon) / 1e-4;
                        let exact = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Eleven);
                        if let Some((got, ..)) = lattice.locate(lat, lon, |_, _| ()) {
                            assert_eq!(got, exact, "lattice disagrees with h3o at {lat}, {lon}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(
            checked > 10_000,
            "only {checked} edge points were decided by the lattice"
        );
    }

    #[test]
    fn payload_is_computed_once_per_cell_and_outside_points_are_left_to_h3o() {
        let lattice =
            CellLattice::<u64, u64>::new(Resolution::Eleven, 51.23, 51.75, -0.60, 0.38).unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let f = |c: CellIndex, arena: &mut Vec<u64>| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            arena.push(u64::from(c));
            u64::from(c) ^ 1
        };
        let (cell, p, arena) = lattice.locate(51.5, -0.1, f).unwrap();
        assert_eq!(p, u64::from(cell) ^ 1);
        assert!(arena.contains(&u64::from(cell)));
        let after_first = calls.load(std::sync::atomic::Ordering::Relaxed);
        assert!(after_first > 0 && after_first <= BLOCK_LEN);
        let (cell2, ..) = lattice.locate(51.5, -0.1, f).unwrap();
        assert_eq!(cell2, cell);
        // The same entry, found from the cell.
        let e = lattice.entry_of(cell, f).unwrap();
        assert_eq!(
            (e.raw_cell(), e.payload()),
            (u64::from(cell), u64::from(cell) ^ 1)
        );
        assert!(lattice
            .entry_of(cell.parent(Resolution::Ten).unwrap(), f)
            .is_none());
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::Relaxed),
            after_first
        );
        assert!(lattice.locate(51.0, -0.1, f).is_none());
        assert!(lattice.locate(51.5, 1.0, f).is_none());
        assert!(lattice.locate(f64::NAN, -0.1, f).is_none());
    }

    #[test]
    fn oversized_or_bad_boxes_have_no_lattice() {
        assert!(CellLattice::<()>::new(Resolution::Eleven, -80.0, 80.0, -170.0, 170.0).is_none());
        assert!(CellLattice::<()>::new(Resolution::Eleven, 51.0, 50.0, 0.0, 1.0).is_none());
        assert!(CellLattice::<()>::new(Resolution::Eleven, f64::NAN, 50.0, 0.0, 1.0).is_none());
    }
}
