//! A realistic synthetic feed for demos and benchmarks: London ED sites,
//! night-time and weekend peaks, a typical weapon mix, locations given in
//! every way the schema allows, and a share of bad rows on request.
//!
//! Deterministic per seed (its own small generator, so the output does not
//! change with a dependency's version). It is demo and benchmark input, never
//! test truth.

use crate::formats::writer::TextRow;
use crate::record::{AssaultMethod, Field, LocationType};
use crate::time::{london_instant, london_local};
use chrono::{Duration, NaiveDate, NaiveTime};

/// London type 1 emergency departments (ODS site code, name, lat, lon).
pub const SITES: &[(&str, &str, f64, f64)] = &[
    ("RJ122", "King's College Hospital", 51.4682, -0.0937),
    ("R1H12", "The Royal London Hospital", 51.5186, -0.0590),
    ("RJ701", "St George's Hospital", 51.4268, -0.1749),
    ("RAL01", "Royal Free Hospital", 51.5532, -0.1657),
    ("RYJ02", "St Mary's Hospital", 51.5174, -0.1736),
    ("RRV03", "University College Hospital", 51.5246, -0.1357),
    ("RJ1", "St Thomas' Hospital", 51.4989, -0.1181),
    ("RQXM1", "Homerton University Hospital", 51.5467, -0.0450),
    ("RF4QH", "Queen's Hospital Romford", 51.5686, 0.1800),
    ("RAX01", "Kingston Hospital", 51.4138, -0.2845),
    ("RVR05", "Croydon University Hospital", 51.3898, -0.1075),
    ("RAS01", "Hillingdon Hospital", 51.5260, -0.4610),
];

/// Settings for [`Generator`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed; the same seed gives the same rows.
    pub seed: u64,
    /// First assault date.
    pub from: NaiveDate,
    /// Last assault date.
    pub to: NaiveDate,
    /// Share of rows (0..=1) with one deliberate error.
    pub invalid_rate: f64,
    /// Only this site, when set.
    pub site: Option<String>,
}

/// SplitMix64: tiny, fast and stable forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// Relative frequency of assaults by hour of day: low mornings, a peak
/// around midnight.
const HOUR_WEIGHTS: [u32; 24] = [
    90, 85, 70, 50, 30, 18, 12, 12, 15, 20, 24, 28, 32, 35, 38, 42, 48, 55, 62, 70, 78, 86, 95, 100,
];
/// Relative frequency by day of week, Monday first: Friday and Saturday
/// nights run into Saturday and Sunday mornings.
const WEEKDAY_WEIGHTS: [u32; 7] = [11, 10, 11, 12, 17, 21, 18];
/// body_part, blunt_object, sharp_object, firearm, other, not_known.
const METHOD_WEIGHTS: [u32; 6] = [55, 12, 15, 1, 5, 12];
/// street, licensed_premises, home, workplace, education, public_transport, other, not_known.
const LOCATION_WEIGHTS: [u32; 8] = [38, 14, 22, 6, 3, 5, 5, 7];

/// Places for the free-text descriptions: named places the demo gazetteer
/// can match, and postcodes written into text.
const PLACES: &[&str] = &[
    "outside Brixton station",
    "Camden High St near the market",
    "Peckham Rye bus station",
    "Church St, by the Red Lion",
    "Oxford Street, outside the shops",
    "Mare St, Hackney",
    "on the bus, route 36, near SE5 8",
    "park behind the estate",
    "at a party",
];

/// Outward codes across London with a sector digit spread.
const DISTRICTS: &[&str] = &[
    "E1", "E8", "E15", "N1", "N7", "N17", "NW1", "NW10", "SE1", "SE5", "SE15", "SW2", "SW9",
    "SW17", "W1D", "W2", "W12", "CR0", "BR1", "HA0", "IG1", "RM1", "UB1", "KT1",
];

/// Produces rows one at a time.
pub struct Generator {
    rng: Rng,
    options: Options,
    days: i64,
    sites: Vec<usize>,
    next_id: u64,
}

impl Generator {
    /// A generator with these options.
    pub fn new(options: Options) -> Self {
        let days = (options.to - options.from).num_days().max(0) + 1;
        let sites = match &options.site {
            Some(code) => SITES
                .iter()
                .enumerate()
                .filter(|(_, s)| s.0.eq_ignore_ascii_case(code))
                .map(|(i, _)| i)
                .collect(),
            None => (0..SITES.len()).collect(),
        };
        Generator {
            rng: Rng::new(options.seed),
            options,
            days,
            sites,
            next_id: 1,
        }
    }

    /// The next row, as text by field.
    pub fn row(&mut self) -> TextRow {
        let r = &mut self.rng;
        let mut row: TextRow = Default::default();
        let set = |row: &mut TextRow, f: Field, v: String| row[f.index()] = Some(v);

        let (site_code, site_site) = match self.sites.len() {
            0 => (
                self.options
                    .site
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
                SITES[0],
            ),
            n => {
                let s = SITES[self.sites[r.below(n as u64) as usize]];
                (s.0.to_string(), s)
            }
        };
        set(&mut row, Field::SiteCode, site_code.clone());
        set(
            &mut row,
            Field::RecordId,
            format!("{site_code}-{:08}", self.next_id),
        );
        self.next_id += 1;

        // A day weighted by weekday, then an hour weighted by time of day.
        let date = loop {
            let d = self.options.from + Duration::days(r.below(self.days as u64) as i64);
            let w = WEEKDAY_WEIGHTS[chrono::Datelike::weekday(&d).num_days_from_monday() as usize];
            if r.below(21) < u64::from(w) {
                break d;
            }
        };
        let hour = r.weighted(&HOUR_WEIGHTS) as u32;
        let minute = r.below(60) as u32;
        // Through the real instant, so clock times exist on a London clock
        // (none in the spring-forward gap) and arrival follows assault.
        let instant = london_instant(
            date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time")),
        );
        let delay = Duration::minutes(10 + (r.unit().powi(3) * 600.0) as i64);
        let assault = london_local(instant);
        let arrival = london_local(instant + delay);
        let iso = r.below(4) != 0;
        let fmt = |t: chrono::NaiveDateTime| {
            if iso {
                t.format("%Y-%m-%dT%H:%M").to_string()
            } else {
                t.format("%d/%m/%Y %H:%M").to_string()
            }
        };
        set(
            &mut row,
            Field::AssaultDatetime,
            if r.below(20) == 0 {
                assault.date().format("%Y-%m-%d").to_string()
            } else {
                fmt(assault)
            },
        );
        if r.below(25) != 0 {
            set(&mut row, Field::ArrivalDatetime, fmt(arrival));
        }

        let method = AssaultMethod::ALL[r.weighted(&METHOD_WEIGHTS)];
        set(&mut row, Field::AssaultMethod, method.as_str().to_string());
        if method == AssaultMethod::Other {
            let what = ["dog", "vehicle", "corrosive substance", "fire"];
            set(
                &mut row,
                Field::AssaultMethodOther,
                what[r.below(4) as usize].to_string(),
            );
        }
        let location = LocationType::ALL[r.weighted(&LOCATION_WEIGHTS)];
        set(
            &mut row,
            Field::AssaultLocationType,
            location.as_str().to_string(),
        );

        // Incidents cluster around the ED that treats them.
        let lat = site_site.2 + r.normal() * 0.025;
        let lon = site_site.3 + r.normal() * 0.04;
        match r.weighted(&[40, 15, 25, 10, 10]) {
            0 => {
                set(&mut row, Field::AssaultLatitude, format!("{lat:.5}"));
                set(&mut row, Field::AssaultLongitude, format!("{lon:.5}"));
            }
            1 => {
                // A linear fit of the National Grid around London (metres).
                let e = 530_034.0 + (lon + 0.1276) * 69_520.0;
                let n = 180_381.0 + (lat - 51.5072) * 111_250.0;
                set(&mut row, Field::AssaultEasting, format!("{e:.0}"));
                set(&mut row, Field::AssaultNorthing, format!("{n:.0}"));
            }
            2 => {
                let district = DISTRICTS[r.below(DISTRICTS.len() as u64) as usize];
                let letters = b"ABDEFGHJLNPQRSTUWXYZ";
                let pc = match r.below(3) {
                    0 => district.to_string(),
                    _ => format!(
                        "{district} {}{}{}",
                        1 + r.below(9),
                        letters[r.below(20) as usize] as char,
                        letters[r.below(20) as usize] as char
                    ),
                };
                set(&mut row, Field::AssaultPostcode, pc);
            }
            3 => set(
                &mut row,
                Field::AssaultLocationDescription,
                PLACES[r.below(PLACES.len() as u64) as usize].to_string(),
            ),
            _ => {}
        }

        // Victims of violence are mostly young adults.
        if r.below(20) != 0 {
            let age = (16.0 + r.unit().powf(1.8) * 60.0 + r.normal() * 3.0).clamp(0.0, 99.0) as u32;
            set(&mut row, Field::PatientAge, age.to_string());
        }
        let sex = [
            "male",
            "male",
            "male",
            "female",
            "female",
            "not_known",
            "other",
        ];
        if r.below(15) != 0 {
            set(
                &mut row,
                Field::PatientSex,
                sex[r.weighted(&[35, 35, 2, 20, 3, 4, 1])].to_string(),
            );
        }

        if self.options.invalid_rate > 0.0 && r.unit() < self.options.invalid_rate {
            corrupt(r, &mut row);
        }
        row
    }
}

/// Puts one realistic mistake into a row.
fn corrupt(r: &mut Rng, row: &mut TextRow) {
    let s = |v: &str| Some(v.to_string());
    match r.below(8) {
        0 => row[Field::AssaultDatetime.index()] = s("31/02/2024 23:00"),
        1 => row[Field::AssaultMethod.index()] = s("knife"),
        2 => row[Field::AssaultLocationType.index()] = None,
        3 => {
            row[Field::AssaultLatitude.index()] = s("-0.1");
            row[Field::AssaultLongitude.index()] = s("51.5");
        }
        4 => row[Field::AssaultLocationDescription.index()] = s("pt 943 476 5919 outside"),
        5 => row[Field::AssaultPostcode.index()] = s("LONDON"),
        6 => row[Field::PatientAge.index()] = s("130"),
        _ => row[Field::ArrivalDatetime.index()] = s("2099-01-01T00:00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> Options {
        Options {
            seed,
            from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
            invalid_rate: 0.0,
            site: None,
        }
    }

    #[test]
    fn same_seed_same_rows_other_seed_other_rows() {
        let a: Vec<TextRow> = (0..50)
            .map({
                let mut g = Generator::new(options(7));
                move |_| g.row()
            })
            .collect();
        let mut g = Generator::new(options(7));
        let b: Vec<TextRow> = (0..50).map(|_| g.row()).collect();
        let mut g = Generator::new(options(8));
        let c: Vec<TextRow> = (0..50).map(|_| g.row()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn rng_is_splitmix64() {
        // Reference outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
        let mut r = Rng(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }
}
