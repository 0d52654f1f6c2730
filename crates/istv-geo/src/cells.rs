//! H3 helpers: cells for points and the coarsest-safe resolution for a precision.

use h3o::{CellIndex, LatLng, Resolution};

/// Brings a longitude in degrees into -180..=180 (for example 215 -> -145).
/// Returns NaN for non-finite input.
pub fn normalise_longitude(lon: f64) -> f64 {
    if !lon.is_finite() {
        return f64::NAN;
    }
    if (-180.0..=180.0).contains(&lon) {
        return lon;
    }
    // One turn off covers the 0..360 convention exactly, without rounding.
    if lon > 180.0 && lon <= 540.0 {
        return lon - 360.0;
    }
    if (-540.0..-180.0).contains(&lon) {
        return lon + 360.0;
    }
    let r = (lon + 180.0).rem_euclid(360.0) - 180.0;
    // rem_euclid maps +180 to -180; keep the sign of the input for that edge.
    if r == -180.0 && lon > 0.0 {
        180.0
    } else {
        r
    }
}

/// The H3 cell of a WGS84 point at a resolution, or `None` if the coordinates
/// are not finite or the latitude is outside -90..=90. Longitudes are normalised.
pub fn cell_at(lat: f64, lon: f64, resolution: Resolution) -> Option<CellIndex> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return None;
    }
    let lon = normalise_longitude(lon);
    LatLng::new(lat, lon).ok().map(|ll| ll.to_cell(resolution))
}

/// The finest H3 resolution whose average hexagon edge length is at least
/// `precision_m`, so a location known only to that precision is never placed
/// in a cell smaller than its uncertainty (res 10 edge ~76 m, 9 ~201 m,
/// 8 ~531 m, 7 ~1.4 km, 6 ~3.7 km, 5 ~9.9 km). Resolution 0 if none is coarse enough.
pub fn resolution_for_precision(precision_m: f64) -> Resolution {
    let mut res = Resolution::Zero;
    for r in Resolution::range(Resolution::Zero, Resolution::Fifteen) {
        if r.edge_length_m() >= precision_m {
            res = r;
        } else {
            break;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longitude_normalisation() {
        assert_eq!(normalise_longitude(215.140264034), 215.140264034 - 360.0);
        assert_eq!(normalise_longitude(-0.1), -0.1);
        assert_eq!(normalise_longitude(180.0), 180.0);
        assert_eq!(normalise_longitude(540.0), 180.0);
        assert_eq!(normalise_longitude(900.0), 180.0);
        assert_eq!(normalise_longitude(-1000.0), 80.0);
        assert_eq!(normalise_longitude(-190.0), 170.0);
        assert!(normalise_longitude(f64::INFINITY).is_nan());
    }

    #[test]
    fn precision_to_resolution() {
        assert_eq!(resolution_for_precision(10.0), Resolution::Twelve);
        assert_eq!(resolution_for_precision(11.0), Resolution::Eleven);
        assert_eq!(resolution_for_precision(50.0), Resolution::Ten);
        assert_eq!(resolution_for_precision(76.0), Resolution::Nine);
        assert_eq!(resolution_for_precision(200.0), Resolution::Nine);
        assert_eq!(resolution_for_precision(500.0), Resolution::Eight);
        assert_eq!(resolution_for_precision(1000.0), Resolution::Seven);
        assert_eq!(resolution_for_precision(3000.0), Resolution::Six);
        assert_eq!(resolution_for_precision(5000.0), Resolution::Five);
        assert_eq!(resolution_for_precision(1e9), Resolution::Zero);
        assert_eq!(resolution_for_precision(0.0), Resolution::Fifteen);
    }

    #[test]
    fn cell_for_bad_coordinates() {
        assert_eq!(cell_at(f64::NAN, 0.0, Resolution::Ten), None);
        assert_eq!(cell_at(91.0, 0.0, Resolution::Ten), None);
        assert_eq!(cell_at(51.5, f64::NEG_INFINITY, Resolution::Ten), None);
        // An H3 reference vector: res-10 cell, longitude above 180.
        let c = cell_at(-36.086574197, 215.140264034, Resolution::Ten).unwrap();
        assert_eq!(c.to_string(), "8ac74e2244dffff");
    }
}
