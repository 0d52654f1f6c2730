//! OSGB36 British National Grid easting/northing to WGS84 latitude/longitude.
//!
//! This is the published Ordnance Survey method ("A guide to coordinate
//! systems in Great Britain"): inverse Transverse Mercator on the Airy 1830
//! ellipsoid, then the 7-parameter Helmert transformation OSGB36 -> WGS84.
//! It is the transformation PROJ applies without the OSTN15 grid; against
//! OSTN15 it is typically within 2 m in London (up to about 3.5 m elsewhere in
//! Great Britain), well inside the precision of a postcode or street.

use std::f64::consts::PI;

const AIRY_A: f64 = 6_377_563.396;
const AIRY_B: f64 = 6_356_256.909;
const WGS84_A: f64 = 6_378_137.0;
const WGS84_B: f64 = 6_356_752.314_245;
const F0: f64 = 0.999_601_271_7;
const LAT0: f64 = 49.0 * PI / 180.0;
const LON0: f64 = -2.0 * PI / 180.0;
const E0: f64 = 400_000.0;
const N0: f64 = -100_000.0;

// Helmert OSGB36 -> WGS84 (position-vector convention, the inverse of the
// published WGS84 -> OSGB36 parameters).
const TX: f64 = 446.448;
const TY: f64 = -125.157;
const TZ: f64 = 542.060;
const S_PPM: f64 = -20.4894;
const RX_SEC: f64 = 0.1502;
const RY_SEC: f64 = 0.2470;
const RZ_SEC: f64 = 0.8421;

/// Largest easting of the British National Grid, in metres.
pub const MAX_EASTING: f64 = 700_000.0;
/// Largest northing of the British National Grid, in metres.
pub const MAX_NORTHING: f64 = 1_300_000.0;

/// Converts an OSGB36 easting/northing in metres to WGS84 `(latitude, longitude)`
/// in degrees. Returns `None` for non-finite values or values outside the grid
/// (0..=700 km east, 0..=1300 km north).
pub fn osgb36_to_wgs84(easting: f64, northing: f64) -> Option<(f64, f64)> {
    if !(0.0..=MAX_EASTING).contains(&easting) || !(0.0..=MAX_NORTHING).contains(&northing) {
        return None; // also rejects NaN
    }
    let (lat, lon) = grid_to_airy(easting, northing);
    let (x, y, z) = to_cartesian(lat, lon, AIRY_A, AIRY_B);
    let s = S_PPM * 1e-6;
    let sec = PI / (180.0 * 3600.0);
    let (rx, ry, rz) = (RX_SEC * sec, RY_SEC * sec, RZ_SEC * sec);
    let x2 = TX + x * (1.0 + s) - y * rz + z * ry;
    let y2 = TY + x * rz + y * (1.0 + s) - z * rx;
    let z2 = TZ - x * ry + y * rx + z * (1.0 + s);
    let (lat, lon) = from_cartesian(x2, y2, z2, WGS84_A, WGS84_B);
    Some((lat.to_degrees(), lon.to_degrees()))
}

fn meridional_arc(lat: f64, n: f64) -> f64 {
    let (n2, n3) = (n * n, n * n * n);
    let (d, s) = (lat - LAT0, lat + LAT0);
    AIRY_B
        * F0
        * ((1.0 + n + 1.25 * n2 + 1.25 * n3) * d
            - (3.0 * n + 3.0 * n2 + 21.0 / 8.0 * n3) * d.sin() * s.cos()
            + (15.0 / 8.0 * n2 + 15.0 / 8.0 * n3) * (2.0 * d).sin() * (2.0 * s).cos()
            - 35.0 / 24.0 * n3 * (3.0 * d).sin() * (3.0 * s).cos())
}

/// Inverse Transverse Mercator: grid -> OSGB36 latitude/longitude in radians.
fn grid_to_airy(e: f64, n_: f64) -> (f64, f64) {
    let (a, b) = (AIRY_A, AIRY_B);
    let e2 = 1.0 - (b * b) / (a * a);
    let n = (a - b) / (a + b);
    let mut lat = LAT0;
    let mut m = 0.0;
    // Converges in a handful of iterations; the bound guards against pathological input.
    for _ in 0..100 {
        lat += (n_ - N0 - m) / (a * F0);
        m = meridional_arc(lat, n);
        if (n_ - N0 - m).abs() < 1e-5 {
            break;
        }
    }
    let (sin, cos) = lat.sin_cos();
    let nu = a * F0 / (1.0 - e2 * sin * sin).sqrt();
    let rho = a * F0 * (1.0 - e2) / (1.0 - e2 * sin * sin).powf(1.5);
    let eta2 = nu / rho - 1.0;
    let t = lat.tan();
    let (t2, t4, t6) = (t * t, t.powi(4), t.powi(6));
    let sec = 1.0 / cos;
    let vii = t / (2.0 * rho * nu);
    let viii = t / (24.0 * rho * nu.powi(3)) * (5.0 + 3.0 * t2 + eta2 - 9.0 * t2 * eta2);
    let ix = t / (720.0 * rho * nu.powi(5)) * (61.0 + 90.0 * t2 + 45.0 * t4);
    let x = sec / nu;
    let xi = sec / (6.0 * nu.powi(3)) * (nu / rho + 2.0 * t2);
    let xii = sec / (120.0 * nu.powi(5)) * (5.0 + 28.0 * t2 + 24.0 * t4);
    let xiia = sec / (5040.0 * nu.powi(7)) * (61.0 + 662.0 * t2 + 1320.0 * t4 + 720.0 * t6);
    let de = e - E0;
    let lat = lat - vii * de.powi(2) + viii * de.powi(4) - ix * de.powi(6);
    let lon = LON0 + x * de - xi * de.powi(3) + xii * de.powi(5) - xiia * de.powi(7);
    (lat, lon)
}

fn to_cartesian(lat: f64, lon: f64, a: f64, b: f64) -> (f64, f64, f64) {
    let e2 = 1.0 - (b * b) / (a * a);
    let (sin, cos) = lat.sin_cos();
    let nu = a / (1.0 - e2 * sin * sin).sqrt();
    (
        nu * cos * lon.cos(),
        nu * cos * lon.sin(),
        (1.0 - e2) * nu * sin,
    )
}

fn from_cartesian(x: f64, y: f64, z: f64, a: f64, b: f64) -> (f64, f64) {
    let e2 = 1.0 - (b * b) / (a * a);
    let p = (x * x + y * y).sqrt();
    let mut lat = z.atan2(p * (1.0 - e2));
    for _ in 0..10 {
        let sin = lat.sin();
        let nu = a / (1.0 - e2 * sin * sin).sqrt();
        let next = (z + e2 * nu * sin).atan2(p);
        if (next - lat).abs() < 1e-12 {
            lat = next;
            break;
        }
        lat = next;
    }
    (lat, y.atan2(x))
}

/// Great-circle distance in metres between two WGS84 points given in degrees
/// (haversine on a sphere of radius 6,371,008.8 m).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_guide_worked_example_grid_to_airy() {
        // Worked example from the OS guide, annex C: TQ 651409.903 313177.270
        // is 52°39'27.2531"N 1°43'4.5177"E on OSGB36.
        let (lat, lon) = grid_to_airy(651_409.903, 313_177.270);
        let lat_exp = 52.0 + 39.0 / 60.0 + 27.2531 / 3600.0;
        let lon_exp = 1.0 + 43.0 / 60.0 + 4.5177 / 3600.0;
        assert!(
            (lat.to_degrees() - lat_exp).abs() < 1e-7,
            "{}",
            lat.to_degrees()
        );
        assert!(
            (lon.to_degrees() - lon_exp).abs() < 1e-7,
            "{}",
            lon.to_degrees()
        );
    }

    #[test]
    fn reference_postcode_br1_1ab() {
        // BR1 1AB in the reference file: 540260 169398 -> 51.406271, 0.015177
        // (PROJ, Helmert); we must agree to well under a metre.
        let (lat, lon) = osgb36_to_wgs84(540_260.0, 169_398.0).unwrap();
        assert!(
            distance_m(lat, lon, 51.406_271, 0.015_177) < 0.5,
            "{lat} {lon}"
        );
    }

    #[test]
    fn rejects_out_of_grid_and_non_finite() {
        assert_eq!(osgb36_to_wgs84(f64::NAN, 100.0), None);
        assert_eq!(osgb36_to_wgs84(100.0, f64::INFINITY), None);
        assert_eq!(osgb36_to_wgs84(-1.0, 100.0), None);
        assert_eq!(osgb36_to_wgs84(700_001.0, 100.0), None);
    }

    #[test]
    fn haversine_one_degree_of_latitude() {
        let d = distance_m(51.0, 0.0, 52.0, 0.0);
        assert!((d - 111_195.08).abs() < 0.1, "{d}");
    }
}
