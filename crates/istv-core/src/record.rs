//! The attendance record: its fields, its coded values and the validated form.

use crate::postcode::Postcode;
use crate::time::AssaultTime;
use chrono::{DateTime, Utc};

/// A column of the ISTV attendance feed. The names are the exact column names
/// (CSV header, JSON key, Avro field name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// ODS code of the site of treatment.
    SiteCode,
    /// The ED's own stable, non-identifying reference for the attendance.
    RecordId,
    /// Arrival at the ED.
    ArrivalDatetime,
    /// When the assault happened.
    AssaultDatetime,
    /// Primary means of assault.
    AssaultMethod,
    /// Free text when the method is `other`.
    AssaultMethodOther,
    /// Kind of place where the assault happened.
    AssaultLocationType,
    /// Free-text description of the place.
    AssaultLocationDescription,
    /// Full or partial postcode of the incident location.
    AssaultPostcode,
    /// WGS84 latitude of the incident.
    AssaultLatitude,
    /// WGS84 longitude of the incident.
    AssaultLongitude,
    /// British National Grid easting of the incident, metres.
    AssaultEasting,
    /// British National Grid northing of the incident, metres.
    AssaultNorthing,
    /// Age in whole years.
    PatientAge,
    /// Sex of the patient.
    PatientSex,
}

impl Field {
    /// Every field, in the canonical column order.
    pub const ALL: [Field; 15] = [
        Field::SiteCode,
        Field::RecordId,
        Field::ArrivalDatetime,
        Field::AssaultDatetime,
        Field::AssaultMethod,
        Field::AssaultMethodOther,
        Field::AssaultLocationType,
        Field::AssaultLocationDescription,
        Field::AssaultPostcode,
        Field::AssaultLatitude,
        Field::AssaultLongitude,
        Field::AssaultEasting,
        Field::AssaultNorthing,
        Field::PatientAge,
        Field::PatientSex,
    ];

    /// Number of fields.
    pub const COUNT: usize = 15;

    /// The column name.
    pub const fn name(self) -> &'static str {
        match self {
            Field::SiteCode => "site_code",
            Field::RecordId => "record_id",
            Field::ArrivalDatetime => "arrival_datetime",
            Field::AssaultDatetime => "assault_datetime",
            Field::AssaultMethod => "assault_method",
            Field::AssaultMethodOther => "assault_method_other",
            Field::AssaultLocationType => "assault_location_type",
            Field::AssaultLocationDescription => "assault_location_description",
            Field::AssaultPostcode => "assault_postcode",
            Field::AssaultLatitude => "assault_latitude",
            Field::AssaultLongitude => "assault_longitude",
            Field::AssaultEasting => "assault_easting",
            Field::AssaultNorthing => "assault_northing",
            Field::PatientAge => "patient_age",
            Field::PatientSex => "patient_sex",
        }
    }

    /// Position in [`Field::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The field with this column name. Matching ignores ASCII case and
    /// surrounding spaces, as spreadsheet exports vary in both.
    pub fn from_name(name: &str) -> Option<Field> {
        let name = name.trim();
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// True for free-text fields, which are screened for NHS numbers.
    pub const fn is_free_text(self) -> bool {
        matches!(
            self,
            Field::RecordId | Field::AssaultMethodOther | Field::AssaultLocationDescription
        )
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `str::trim`, skipping its Unicode scan when both ends are printable
/// ASCII, as nearly every value's are.
#[inline]
pub(crate) fn trim(value: &str) -> &str {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

/// Lower-cases and maps spaces and hyphens to underscores, so "Sharp Object",
/// "sharp-object" and "SHARP_OBJECT" all read as `sharp_object`.
fn fold(value: &str, buf: &mut [u8; 32]) -> Option<usize> {
    let v = trim(value).as_bytes();
    if v.len() > buf.len() {
        return None;
    }
    for (i, b) in v.iter().enumerate() {
        buf[i] = match b {
            b' ' | b'-' => b'_',
            _ => b.to_ascii_lowercase(),
        };
    }
    Some(v.len())
}

macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, $code:literal $(| $alias:literal)* ; )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical lower-case name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The two-digit national code.
            pub const fn national_code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }

            /// Parses a canonical name (any case, spaces or hyphens for
            /// underscores), a national code (with or without its leading
            /// zero) or a common alias.
            pub fn parse(value: &str) -> Option<$name> {
                let mut buf = [0u8; 32];
                let n = fold(value, &mut buf)?;
                let v = &buf[..n];
                $(
                    let short = $code.trim_start_matches('0');
                    if v == $text.as_bytes() || v == $code.as_bytes()
                        || (!short.is_empty() && v == short.as_bytes())
                        $(|| v == $alias.as_bytes())* {
                        return Some($name::$variant);
                    }
                )+
                None
            }

            /// The accepted canonical names, for error messages.
            pub fn expected() -> String {
                let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                names.join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum! {
    /// Primary means of assault (ISTV ASSAULT METHOD).
    AssaultMethod {
        /// Fist, foot, head or other body part.
        BodyPart = "body_part", "01" | "bodypart";
        /// A blunt object such as a bottle or bat.
        BluntObject = "blunt_object", "02" | "blunt";
        /// A knife, glass or other sharp object.
        SharpObject = "sharp_object", "03" | "sharp";
        /// A firearm.
        Firearm = "firearm", "04" | "gun";
        /// Another means, described in `assault_method_other`.
        Other = "other", "05";
        /// Not known.
        NotKnown = "not_known", "99" | "unknown";
    }
}

coded_enum! {
    /// Kind of place where the assault happened (ISTV ASSAULT LOCATION TYPE).
    LocationType {
        /// A street or other public outdoor place.
        Street = "street", "01";
        /// A pub, bar, club or other licensed premises.
        LicensedPremises = "licensed_premises", "02";
        /// A home.
        Home = "home", "03";
        /// A workplace.
        Workplace = "workplace", "04" | "work";
        /// A school, college or university.
        Education = "education", "05";
        /// A bus, train, station or other public transport.
        PublicTransport = "public_transport", "06";
        /// Another kind of place.
        Other = "other", "07";
        /// Not known.
        NotKnown = "not_known", "99" | "unknown";
    }
}

coded_enum! {
    /// Sex of the patient.
    Sex {
        /// Female.
        Female = "female", "02" | "f";
        /// Male.
        Male = "male", "01" | "m";
        /// Other.
        Other = "other", "09";
        /// Not known.
        NotKnown = "not_known", "00" | "0" | "unknown" | "u" | "x";
    }
}

/// The published age bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeBand {
    /// 0 to 9 years.
    Age0To9,
    /// 10 to 17 years.
    Age10To17,
    /// 18 to 24 years.
    Age18To24,
    /// 25 to 34 years.
    Age25To34,
    /// 35 to 44 years.
    Age35To44,
    /// 45 to 54 years.
    Age45To54,
    /// 55 to 64 years.
    Age55To64,
    /// 65 years and over.
    Age65Plus,
    /// Age not given.
    Unknown,
}

impl AgeBand {
    /// Every band, youngest first, `unknown` last.
    pub const ALL: [AgeBand; 9] = [
        AgeBand::Age0To9,
        AgeBand::Age10To17,
        AgeBand::Age18To24,
        AgeBand::Age25To34,
        AgeBand::Age35To44,
        AgeBand::Age45To54,
        AgeBand::Age55To64,
        AgeBand::Age65Plus,
        AgeBand::Unknown,
    ];

    /// The band of an age in whole years; `None` is `unknown`.
    pub fn of(age: Option<u8>) -> AgeBand {
        match age {
            None => AgeBand::Unknown,
            Some(0..=9) => AgeBand::Age0To9,
            Some(10..=17) => AgeBand::Age10To17,
            Some(18..=24) => AgeBand::Age18To24,
            Some(25..=34) => AgeBand::Age25To34,
            Some(35..=44) => AgeBand::Age35To44,
            Some(45..=54) => AgeBand::Age45To54,
            Some(55..=64) => AgeBand::Age55To64,
            Some(_) => AgeBand::Age65Plus,
        }
    }

    /// The published label, e.g. `18-24`, `65+`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgeBand::Age0To9 => "0-9",
            AgeBand::Age10To17 => "10-17",
            AgeBand::Age18To24 => "18-24",
            AgeBand::Age25To34 => "25-34",
            AgeBand::Age35To44 => "35-44",
            AgeBand::Age45To54 => "45-54",
            AgeBand::Age55To64 => "55-64",
            AgeBand::Age65Plus => "65+",
            AgeBand::Unknown => "unknown",
        }
    }

    /// The band with this label.
    pub fn parse(label: &str) -> Option<AgeBand> {
        AgeBand::ALL.into_iter().find(|b| b.as_str() == label)
    }
}

impl std::fmt::Display for AgeBand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row that passed every rule.
///
/// It still carries the free-text description and exact coordinates, because
/// the geocoder needs them; the geocoder's output is what gets stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Attendance {
    /// ODS site code, upper case.
    pub site_code: String,
    /// The ED's reference for the attendance.
    pub record_id: String,
    /// Arrival at the ED, when given.
    pub arrival: Option<DateTime<Utc>>,
    /// When the assault happened.
    pub assault: AssaultTime,
    /// Primary means of assault.
    pub assault_method: AssaultMethod,
    /// Description when the method is `other`.
    pub assault_method_other: Option<String>,
    /// Kind of place.
    pub assault_location_type: LocationType,
    /// Free-text description of the place.
    pub assault_location_description: Option<String>,
    /// Postcode of the place, normalised.
    pub assault_postcode: Option<Postcode>,
    /// WGS84 latitude and longitude, both or neither.
    pub assault_latlon: Option<(f64, f64)>,
    /// British National Grid easting and northing, both or neither.
    pub assault_grid: Option<(f64, f64)>,
    /// Age in whole years.
    pub patient_age: Option<u8>,
    /// Sex, when given.
    pub patient_sex: Option<Sex>,
}

impl Attendance {
    /// The published age band.
    pub fn age_band(&self) -> AgeBand {
        AgeBand::of(self.patient_age)
    }

    /// Sex, with a missing value read as `not_known`.
    pub fn sex(&self) -> Sex {
        self.patient_sex.unwrap_or(Sex::NotKnown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip_and_ignore_case() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
            assert_eq!(Field::ALL[f.index()], f);
        }
        assert_eq!(Field::from_name(" Site_Code "), Some(Field::SiteCode));
        assert_eq!(Field::from_name("nhs_number"), None);
    }

    #[test]
    fn enums_accept_common_spellings() {
        assert_eq!(
            AssaultMethod::parse("SHARP_OBJECT"),
            Some(AssaultMethod::SharpObject)
        );
        assert_eq!(
            AssaultMethod::parse("Sharp object"),
            Some(AssaultMethod::SharpObject)
        );
        assert_eq!(
            AssaultMethod::parse("blunt-object"),
            Some(AssaultMethod::BluntObject)
        );
        assert_eq!(AssaultMethod::parse("03"), Some(AssaultMethod::SharpObject));
        assert_eq!(AssaultMethod::parse("3"), Some(AssaultMethod::SharpObject));
        assert_eq!(AssaultMethod::parse("99"), Some(AssaultMethod::NotKnown));
        assert_eq!(AssaultMethod::parse("knife"), None);
        assert_eq!(AssaultMethod::parse(""), None);
        assert_eq!(
            LocationType::parse("Licensed Premises"),
            Some(LocationType::LicensedPremises)
        );
        assert_eq!(
            LocationType::parse("06"),
            Some(LocationType::PublicTransport)
        );
        assert_eq!(Sex::parse("F"), Some(Sex::Female));
        assert_eq!(Sex::parse("Not Known"), Some(Sex::NotKnown));
        assert_eq!(Sex::parse("woman"), None);
        assert_eq!(
            AssaultMethod::expected(),
            "body_part, blunt_object, sharp_object, firearm, other, not_known"
        );
    }

    #[test]
    fn age_bands_have_the_published_edges() {
        let cases = [
            (0, "0-9"),
            (9, "0-9"),
            (10, "10-17"),
            (17, "10-17"),
            (18, "18-24"),
            (24, "18-24"),
            (25, "25-34"),
            (34, "25-34"),
            (35, "35-44"),
            (45, "45-54"),
            (54, "45-54"),
            (55, "55-64"),
            (64, "55-64"),
            (65, "65+"),
            (120, "65+"),
        ];
        for (age, band) in cases {
            assert_eq!(AgeBand::of(Some(age)).as_str(), band, "age {age}");
        }
        assert_eq!(AgeBand::of(None).as_str(), "unknown");
        for b in AgeBand::ALL {
            assert_eq!(AgeBand::parse(b.as_str()), Some(b));
        }
    }
}
