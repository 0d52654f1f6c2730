//! A month's release: every borough of the geography by every assault
//! method, noised once, and its two published forms.

use crate::noise::{DiscreteLaplace, NoiseSource};
use crate::{Month, ReleaseError};
use chrono::{DateTime, SecondsFormat, Utc};
use istv_core::AssaultMethod;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// One published figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// The borough's ONS code.
    pub borough: String,
    /// The assault method's canonical name.
    pub assault_method: &'static str,
    /// The noisy count, 0 where the noise took it below 0.
    pub count: u64,
}

/// A computed release, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The month.
    pub month: Month,
    /// The epsilon of the mechanism.
    pub epsilon: f64,
    /// The mechanism's name.
    pub mechanism: &'static str,
    /// The mechanism's parameters.
    pub parameters: Value,
    /// When it was computed, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_at: String,
    /// Every borough x method, boroughs in code order, methods in code
    /// order.
    pub rows: Vec<ReleaseRow>,
}

/// Computes the release of `month`: `exact` holds the stored counts by
/// (borough, method), as they are when this runs; every borough of
/// `boroughs` gets a row for every method, 0 included, so the shape says
/// nothing. Counts of boroughs not in `boroughs` (records without a
/// borough, or of another vintage) are not released. Each count gets one
/// draw of noise from `source`, then a negative value is published as 0
/// (post-processing, which costs no privacy).
pub fn compute(
    month: Month,
    boroughs: &[String],
    exact: &HashMap<(String, AssaultMethod), u64>,
    mechanism: &DiscreteLaplace,
    source: &mut dyn NoiseSource,
    now: DateTime<Utc>,
) -> Result<Release, ReleaseError> {
    let boroughs: BTreeSet<&String> = boroughs.iter().collect();
    if boroughs.is_empty() {
        return Err(ReleaseError::NoBoroughs);
    }
    let mut cells = Vec::with_capacity(boroughs.len() * AssaultMethod::ALL.len());
    let mut counts = Vec::with_capacity(cells.capacity());
    for borough in &boroughs {
        for &method in AssaultMethod::ALL {
            let count = exact
                .get(&((*borough).clone(), method))
                .copied()
                .unwrap_or(0);
            cells.push(((*borough).clone(), method));
            counts.push(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    let noisy = source.noisy(mechanism, &counts)?;
    if noisy.len() != counts.len() {
        return Err(ReleaseError::Library(format!(
            "{} noisy counts for {} cells",
            noisy.len(),
            counts.len()
        )));
    }
    let rows = cells
        .into_iter()
        .zip(noisy)
        .map(|((borough, method), v)| ReleaseRow {
            borough,
            assault_method: method.as_str(),
            count: v.max(0) as u64,
        })
        .collect();
    Ok(Release {
        month,
        epsilon: mechanism.epsilon(),
        mechanism: DiscreteLaplace::NAME,
        parameters: mechanism.parameters(),
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        rows,
    })
}

impl Release {
    /// The JSON document served for the month, byte for byte as stored.
    pub fn json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({"borough": r.borough, "assault_method": r.assault_method, "count": r.count})
            })
            .collect();
        json!({
            "month": self.month.to_string(),
            "epsilon": self.epsilon,
            "mechanism": self.mechanism,
            "parameters": self.parameters,
            "created_at": self.created_at,
            "rows": rows,
        })
        .to_string()
    }

    /// The CSV served for the month (`month,borough,assault_method,count`),
    /// byte for byte as stored. Codes and method names hold no comma or
    /// quote.
    pub fn csv(&self) -> String {
        let mut out = String::from("month,borough,assault_method,count\n");
        let month = self.month.to_string();
        for r in &self.rows {
            out.push_str(&format!(
                "{month},{},{},{}\n",
                r.borough, r.assault_method, r.count
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// No noise: the release shows the exact counts.
    struct Zero;

    impl NoiseSource for Zero {
        fn noisy(&mut self, _: &DiscreteLaplace, c: &[i64]) -> Result<Vec<i64>, ReleaseError> {
            Ok(c.to_vec())
        }
    }

    /// Adds the given offsets, in order.
    struct Offsets(Vec<i64>);

    impl NoiseSource for Offsets {
        fn noisy(&mut self, _: &DiscreteLaplace, c: &[i64]) -> Result<Vec<i64>, ReleaseError> {
            Ok(c.iter().zip(&self.0).map(|(c, o)| c + o).collect())
        }
    }

    fn exact() -> HashMap<(String, AssaultMethod), u64> {
        HashMap::from([
            (("E09000002".into(), AssaultMethod::SharpObject), 4),
            (("E09000001".into(), AssaultMethod::BodyPart), 7),
            (("E09000001".into(), AssaultMethod::NotKnown), 1),
            // Not a borough of the geography: not released.
            (("E09000099".into(), AssaultMethod::BodyPart), 3),
        ])
    }

    fn boroughs() -> Vec<String> {
        vec!["E09000002".into(), "E09000001".into()]
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 4, 8, 3, 0, 0).unwrap()
    }

    #[test]
    fn every_borough_and_method_is_released_with_zero_noise_exactly() {
        let m = DiscreteLaplace::new(1.0).unwrap();
        let month = Month::parse("2024-03").unwrap();
        let r = compute(month, &boroughs(), &exact(), &m, &mut Zero, now()).unwrap();
        let got: Vec<(&str, &str, u64)> = r
            .rows
            .iter()
            .map(|r| (r.borough.as_str(), r.assault_method, r.count))
            .collect();
        assert_eq!(
            got,
            [
                ("E09000001", "body_part", 7),
                ("E09000001", "blunt_object", 0),
                ("E09000001", "sharp_object", 0),
                ("E09000001", "firearm", 0),
                ("E09000001", "other", 0),
                ("E09000001", "not_known", 1),
                ("E09000002", "body_part", 0),
                ("E09000002", "blunt_object", 0),
                ("E09000002", "sharp_object", 4),
                ("E09000002", "firearm", 0),
                ("E09000002", "other", 0),
                ("E09000002", "not_known", 0),
            ]
        );
        assert_eq!(
            r.csv(),
            "month,borough,assault_method,count\n\
             2024-03,E09000001,body_part,7\n2024-03,E09000001,blunt_object,0\n\
             2024-03,E09000001,sharp_object,0\n2024-03,E09000001,firearm,0\n\
             2024-03,E09000001,other,0\n2024-03,E09000001,not_known,1\n\
             2024-03,E09000002,body_part,0\n2024-03,E09000002,blunt_object,0\n\
             2024-03,E09000002,sharp_object,4\n2024-03,E09000002,firearm,0\n\
             2024-03,E09000002,other,0\n2024-03,E09000002,not_known,0\n"
        );
        let doc: Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(doc["month"], "2024-03");
        assert_eq!(doc["epsilon"], 1.0);
        assert_eq!(doc["mechanism"], "discrete_laplace");
        assert_eq!(doc["parameters"]["scale"], 1.0);
        assert_eq!(doc["parameters"]["sensitivity"], 1);
        assert_eq!(doc["created_at"], "2024-04-08T03:00:00Z");
        assert_eq!(doc["rows"].as_array().unwrap().len(), 12);
        assert_eq!(
            doc["rows"][8],
            json!({"borough": "E09000002", "assault_method": "sharp_object", "count": 4})
        );
    }

    #[test]
    fn negative_noisy_counts_are_published_as_zero() {
        let m = DiscreteLaplace::new(0.5).unwrap();
        let month = Month::parse("2024-03").unwrap();
        let mut offsets = vec![0; 12];
        offsets[0] = -9; // 7 - 9
        offsets[1] = -1; // 0 - 1
        offsets[5] = 2; // 1 + 2
        offsets[8] = -4; // 4 - 4
        let r = compute(
            month,
            &boroughs(),
            &exact(),
            &m,
            &mut Offsets(offsets),
            now(),
        )
        .unwrap();
        let counts: Vec<u64> = r.rows.iter().map(|r| r.count).collect();
        assert_eq!(counts, [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.epsilon, 0.5);
    }

    #[test]
    fn a_geography_without_boroughs_is_refused() {
        let m = DiscreteLaplace::new(1.0).unwrap();
        let month = Month::parse("2024-03").unwrap();
        assert!(matches!(
            compute(month, &[], &exact(), &m, &mut Zero, now()),
            Err(ReleaseError::NoBoroughs)
        ));
    }
}
