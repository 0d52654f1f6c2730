//! The areas of the points of one small H3 cell, from the few boundary edges
//! that cross it rather than whole polygons.
//!
//! A ward polygon has hundreds of vertices and a borough thousands; testing a
//! point against them costs a microsecond or more, and in London about a third
//! of points lie in a resolution-11 cell that some ward boundary crosses. Yet
//! only a handful of edges pass through such a cell. For a reference point r
//! in the cell whose winding number around each ring is computed once, the
//! winding number around a point p of the same cell is r's plus the signed
//! crossings of the segment r->p with the ring, and every edge that segment
//! can cross lies in the cell's box. The result is the same as the full
//! point-in-polygon test (geo's winding-number rule, points on an edge
//! belonging to the polygon, the lowest area index winning), decided with
//! exact orientation predicates.

use geo::kernels::{Kernel, Orientation};
use geo::{Coord, GeoNum, LineString};

/// What a cell knows about the areas of its points in one layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CellAreas {
    /// Every point lies in this area, or in none (`NO_AREA`).
    Whole(u32),
    /// The cell straddles boundaries; its points are decided from these
    /// words (see [`LocalBuilder`]).
    Local(Vec<u32>),
    /// No usable reference point: the caller tests the polygons.
    Polygons,
}

/// The rings of a layer's polygon parts, as the local words refer to them:
/// ring `k` of part `j` (0 the exterior, then the holes in order).
pub(crate) trait Rings {
    /// The closed ring's coordinates.
    fn ring(&self, part: u32, k: u32) -> &[Coord<f64>];
}

/// Where a point lies relative to one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingPos {
    Inside,
    OnEdge,
    Outside,
}

fn orient(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>) -> Orientation {
    <f64 as GeoNum>::Ker::orient2d(a, b, c)
}

fn between(v: f64, a: f64, b: f64) -> bool {
    v >= a.min(b) && v <= a.max(b)
}

/// Winding number of a closed ring around a point, with the same edge rules
/// as geo's point-in-ring test, or `None` if the point is on the ring.
pub(crate) fn winding_number(p: Coord<f64>, ring: &LineString<f64>) -> Option<i32> {
    let mut w = 0;
    for line in ring.lines() {
        let (s, e) = (line.start, line.end);
        if orient(s, e, p) == Orientation::Collinear
            && between(p.x, s.x, e.x)
            && between(p.y, s.y, e.y)
        {
            return None;
        }
        if s.y <= p.y {
            if e.y > p.y && orient(s, e, p) == Orientation::CounterClockwise {
                w += 1;
            }
        } else if e.y <= p.y && orient(s, e, p) == Orientation::Clockwise {
            w -= 1;
        }
    }
    Some(w)
}

/// Position of `p` relative to a ring, from the reference point's winding
/// number around it and the ring's edges (starting vertex indexes into
/// `coords`) that meet the cell's box, given the reference point `r` (on no
/// ring) and that the segment r->p lies in that box.
fn ring_position(
    winding: i32,
    coords: &[Coord<f64>],
    starts: &[u32],
    r: Coord<f64>,
    p: Coord<f64>,
) -> RingPos {
    let mut w = winding;
    for &v in starts {
        let v = v as usize;
        let (Some(&a), Some(&b)) = (coords.get(v), coords.get(v + 1)) else {
            continue;
        };
        let o_p = orient(a, b, p);
        if o_p == Orientation::Collinear && between(p.x, a.x, b.x) && between(p.y, a.y, b.y) {
            return RingPos::OnEdge;
        }
        // Vertices on the line r-p count as right of it (as if the line were
        // shifted by an infinitesimal amount), so an edge crosses the line
        // exactly when its ends fall on different sides.
        let left_a = orient(r, p, a) == Orientation::CounterClockwise;
        let left_b = orient(r, p, b) == Orientation::CounterClockwise;
        if left_a != left_b {
            let o_r = orient(a, b, r);
            if o_p != Orientation::Collinear && o_r != Orientation::Collinear && o_p != o_r {
                w += if o_p == Orientation::CounterClockwise {
                    1
                } else {
                    -1
                };
            }
        }
    }
    if w != 0 {
        RingPos::Inside
    } else {
        RingPos::Outside
    }
}

/// Whether a polygon contains `p` or has it on an edge, from its ring words,
/// in geo's order: the exterior first, then the holes, the first hole to
/// decide winning.
fn part_intersects(
    rings: &impl Rings,
    part: u32,
    mut words: &[u32],
    r: Coord<f64>,
    p: Coord<f64>,
) -> bool {
    let mut exterior = true;
    while let [k, winding, n, rest @ ..] = words {
        let n = (*n as usize).min(rest.len());
        let (starts, rest) = rest.split_at(n);
        words = rest;
        let pos = ring_position(*winding as i32, rings.ring(part, *k), starts, r, p);
        match (exterior, pos) {
            (true, RingPos::Outside) => return false,
            (true, RingPos::OnEdge) => return true,
            (true, RingPos::Inside) => exterior = false,
            (false, RingPos::Outside) => {}
            (false, RingPos::OnEdge) => return true,
            (false, RingPos::Inside) => return false,
        }
    }
    !exterior
}

/// The lowest area whose polygon holds the point (lon, lat), from the words
/// of one cell (see [`LocalBuilder`]; parts are in ascending area order).
pub(crate) fn locate_local(rings: &impl Rings, words: &[u32], lat: f64, lon: f64) -> Option<u32> {
    let p = Coord { x: lon, y: lat };
    let [parts, x0, x1, y0, y1, rest @ ..] = words else {
        return None;
    };
    let f = |lo: u32, hi: u32| f64::from_bits(u64::from(lo) | (u64::from(hi) << 32));
    let r = Coord {
        x: f(*x0, *x1),
        y: f(*y0, *y1),
    };
    let mut rest = rest;
    for _ in 0..*parts {
        let [area, part, len, after @ ..] = rest else {
            return None;
        };
        let len = (*len as usize).min(after.len());
        if part_intersects(rings, *part, &after[..len], r, p) {
            return Some(*area);
        }
        rest = &after[len..];
    }
    None
}

/// Builds the words describing one cell, compactly (a few words per edge,
/// the coordinates staying in the layer's polygons):
/// `parts, reference x (2 words), reference y (2 words)`, then per part
/// `area, part index, number of words that follow`, then per ring
/// `ring index, winding number, number of edges`, then each edge's starting
/// vertex index.
#[derive(Debug)]
pub(crate) struct LocalBuilder {
    words: Vec<u32>,
    parts: u32,
    part_start: Option<usize>,
}

impl LocalBuilder {
    /// Starts a cell with its reference point.
    pub(crate) fn new(reference: Coord<f64>) -> Self {
        let (x, y) = (reference.x.to_bits(), reference.y.to_bits());
        LocalBuilder {
            words: vec![0, x as u32, (x >> 32) as u32, y as u32, (y >> 32) as u32],
            parts: 0,
            part_start: None,
        }
    }

    fn close_part(&mut self) {
        if let Some(start) = self.part_start.take() {
            self.words[start + 2] = (self.words.len() - start - 3) as u32;
        }
    }

    /// Starts polygon part `part` of area `area`; parts must come in
    /// ascending area order.
    pub(crate) fn part(&mut self, area: u32, part: u32) {
        self.close_part();
        self.part_start = Some(self.words.len());
        self.words.extend([area, part, 0]);
        self.parts += 1;
    }

    /// Adds ring `k` of the current part (the exterior first) with the
    /// reference point's winding number and the starting vertices of the
    /// ring's edges that meet the cell's box.
    pub(crate) fn ring(&mut self, k: u32, winding: i32, starts: &[u32]) {
        self.words.extend([k, winding as u32, starts.len() as u32]);
        self.words.extend_from_slice(starts);
    }

    /// The finished words.
    pub(crate) fn finish(mut self) -> Vec<u32> {
        self.close_part();
        self.words[0] = self.parts;
        self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::coordinate_position::{coord_pos_relative_to_ring, CoordPos};

    fn ring(pts: &[(f64, f64)]) -> LineString<f64> {
        LineString::from(pts.to_vec())
    }

    /// Parts as lists of rings.
    struct Parts(Vec<Vec<LineString<f64>>>);

    impl Rings for Parts {
        fn ring(&self, part: u32, k: u32) -> &[Coord<f64>] {
            &self.0[part as usize][k as usize].0
        }
    }

    #[test]
    fn winding_numbers_match_geo_and_count_loops() {
        let square = ring(&[(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0)]);
        assert_eq!(winding_number(Coord { x: 1.0, y: 1.0 }, &square), Some(1));
        assert_eq!(winding_number(Coord { x: 3.0, y: 1.0 }, &square), Some(0));
        assert_eq!(winding_number(Coord { x: 2.0, y: 1.0 }, &square), None);
        assert_eq!(winding_number(Coord { x: 0.0, y: 0.0 }, &square), None);
        // Clockwise: -1, still inside.
        let cw = ring(&[(0.0, 0.0), (0.0, 2.0), (2.0, 2.0), (2.0, 0.0), (0.0, 0.0)]);
        assert_eq!(winding_number(Coord { x: 1.0, y: 1.0 }, &cw), Some(-1));
        // A ring that goes round twice.
        let twice = ring(&[
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (0.0, 0.0),
        ]);
        assert_eq!(winding_number(Coord { x: 1.0, y: 1.0 }, &twice), Some(2));
        for (x, y) in [(1.0, 1.0), (3.0, 1.0), (1.0, 0.0), (-1.0, 0.0)] {
            let c = Coord { x, y };
            let ours = match winding_number(c, &square) {
                None => CoordPos::OnBoundary,
                Some(0) => CoordPos::Outside,
                Some(_) => CoordPos::Inside,
            };
            assert_eq!(ours, coord_pos_relative_to_ring(c, &square), "at {x}, {y}");
        }
    }

    /// Every edge of a ring, so every point can be checked against the full test.
    fn all_edges(ring: &LineString<f64>) -> Vec<u32> {
        (0..ring.0.len() as u32 - 1).collect()
    }

    #[test]
    fn crossings_from_a_reference_point_match_the_full_test() {
        // A concave ring with collinear runs and vertices on a grid, so many
        // segments from the reference pass exactly through vertices.
        let shape = ring(&[
            (0.0, 0.0),
            (4.0, 0.0),
            (4.0, 1.0),
            (2.0, 1.0),
            (2.0, 2.0),
            (4.0, 2.0),
            (4.0, 4.0),
            (3.0, 3.0),
            (2.0, 4.0),
            (1.0, 3.0),
            (0.0, 4.0),
            (0.0, 2.0),
            (1.0, 2.0),
            (0.0, 1.0),
            (0.0, 0.0),
        ]);
        let starts = all_edges(&shape);
        for r in [
            Coord { x: 0.5, y: 0.5 },
            Coord { x: 3.0, y: 1.5 },
            Coord { x: -1.0, y: 2.0 },
        ] {
            let winding = winding_number(r, &shape).unwrap();
            let mut y = -0.5;
            while y <= 4.5 {
                let mut x = -0.5;
                while x <= 4.5 {
                    let p = Coord { x, y };
                    let want = match coord_pos_relative_to_ring(p, &shape) {
                        CoordPos::Inside => RingPos::Inside,
                        CoordPos::OnBoundary => RingPos::OnEdge,
                        CoordPos::Outside => RingPos::Outside,
                    };
                    assert_eq!(
                        ring_position(winding, &shape.0, &starts, r, p),
                        want,
                        "from {r:?} to {p:?}"
                    );
                    x += 0.25;
                }
                y += 0.25;
            }
        }
    }

    #[test]
    fn holes_are_decided_in_geo_order() {
        let outer = ring(&[(0.0, 0.0), (6.0, 0.0), (6.0, 6.0), (0.0, 6.0), (0.0, 0.0)]);
        let hole = ring(&[(2.0, 2.0), (4.0, 2.0), (4.0, 4.0), (2.0, 4.0), (2.0, 2.0)]);
        // A lower area that never holds the points, then the holed square.
        let far = ring(&[(10.0, 0.0), (11.0, 0.0), (11.0, 1.0), (10.0, 0.0)]);
        let parts = Parts(vec![vec![far], vec![outer, hole]]);
        let r = Coord { x: 1.0, y: 1.0 };
        let mut b = LocalBuilder::new(r);
        for (area, j) in [(3, 0u32), (7, 1)] {
            b.part(area, j);
            for (k, rg) in parts.0[j as usize].iter().enumerate() {
                b.ring(k as u32, winding_number(r, rg).unwrap(), &all_edges(rg));
            }
        }
        let words = b.finish();
        let at = |x: f64, y: f64| locate_local(&parts, &words, y, x);
        assert_eq!(at(5.0, 5.0), Some(7));
        assert_eq!(at(3.0, 3.0), None, "in the hole");
        assert_eq!(at(2.0, 3.0), Some(7), "on the hole's edge");
        assert_eq!(at(6.0, 3.0), Some(7), "on the exterior");
        assert_eq!(at(7.0, 3.0), None);
        assert_eq!(at(10.5, 0.2), Some(3));
        assert_eq!(locate_local(&parts, &[], 0.0, 0.0), None);
        assert_eq!(
            locate_local(&parts, &words[..7], 5.0, 5.0),
            None,
            "truncated"
        );
    }
}
