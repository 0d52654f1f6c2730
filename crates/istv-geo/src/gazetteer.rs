//! A gazetteer of named places (streets, pubs, stations, estates) matched
//! tolerantly against free-text location descriptions.

use std::collections::HashMap;
use std::io::Read;

use crate::binfmt::{Dec, Enc};
use crate::error::ImportError;
use crate::grid::distance_m;

/// Default precision of a gazetteer match in metres when the file gives none:
/// a named street or building is known to about a block.
pub const DEFAULT_PLACE_PRECISION_M: u32 = 250;
/// Default Jaro-Winkler similarity a fuzzy phrase match must reach.
pub const DEFAULT_SIMILARITY: f64 = 0.92;
/// Places sharing a name that lie further apart than this are ambiguous and
/// are not used (a "Church Street" in two boroughs says nothing about where).
pub const AMBIGUITY_RADIUS_M: f64 = 1000.0;

/// Street-type words and their canonical abbreviation; both sides of a match
/// are rewritten to the abbreviation so "St"/"Street"/"St." compare equal.
const CANONICAL: &[(&str, &str)] = &[
    ("street", "st"),
    ("saint", "st"),
    ("road", "rd"),
    ("avenue", "ave"),
    ("av", "ave"),
    ("lane", "ln"),
    ("place", "pl"),
    ("square", "sq"),
    ("gardens", "gdns"),
    ("garden", "gdn"),
    ("crescent", "cres"),
    ("court", "ct"),
    ("drive", "dr"),
    ("terrace", "tce"),
    ("terr", "tce"),
    ("park", "pk"),
    ("close", "cl"),
    ("grove", "gr"),
    ("station", "stn"),
    ("green", "grn"),
    ("market", "mkt"),
    ("estate", "est"),
    ("parade", "pde"),
    ("broadway", "bdwy"),
    ("mount", "mt"),
    ("north", "n"),
    ("south", "s"),
    ("east", "e"),
    ("west", "w"),
    ("upper", "upr"),
    ("lower", "lwr"),
    ("great", "gt"),
    ("&", "and"),
];

/// Words that never identify a place on their own.
const GENERIC: &[&str] = &[
    "st", "rd", "ave", "ln", "pl", "sq", "gdns", "gdn", "cres", "ct", "dr", "tce", "pk", "cl",
    "gr", "stn", "grn", "mkt", "est", "pde", "bdwy", "mt", "n", "s", "e", "w", "upr", "lwr", "gt",
    "and", "of", "in", "on", "at", "by", "near", "outside", "inside", "opposite", "the", "a", "an",
    "to", "from", "high", "london",
];

/// Splits text into canonical lower-case tokens: punctuation separates words
/// (apostrophes are dropped inside words), street types are abbreviated and
/// "the" is ignored.
pub fn normalise_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            let w = std::mem::take(cur);
            let w = CANONICAL
                .iter()
                .find(|(long, _)| *long == w)
                .map_or(w, |(_, short)| (*short).to_string());
            if w != "the" {
                out.push(w);
            }
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if c == '\'' || c == '\u{2019}' {
            // "St Mary's" -> "st marys"
        } else if c == '&' {
            flush(&mut cur, &mut out);
            out.push("and".into());
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// One named place.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Name as imported.
    pub name: String,
    /// WGS84 latitude in degrees.
    pub lat: f64,
    /// WGS84 longitude in degrees.
    pub lon: f64,
    /// Optional borough (code or name) given in the file.
    pub borough: Option<String>,
    /// Precision of the place location in metres.
    pub precision_m: u32,
}

/// A gazetteer match.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceMatch<'a> {
    /// The matched place.
    pub place: &'a Place,
    /// Similarity of the matched phrase, 1.0 for an exact (normalised) match.
    pub score: f64,
}

/// Counts from a gazetteer import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceImportSummary {
    /// Places stored.
    pub places: usize,
    /// Distinct normalised names.
    pub names: usize,
}

/// The imported gazetteer with its lookup indexes.
#[derive(Debug, Default)]
pub struct Gazetteer {
    places: Vec<Place>,
    /// Normalised phrase -> places with that name.
    exact: HashMap<String, Vec<u32>>,
    /// (token count, first letter) -> distinct normalised names, for fuzzy matching.
    buckets: HashMap<(usize, char), Vec<String>>,
    max_tokens: usize,
    similarity: f64,
}

impl Gazetteer {
    /// Builds the indexes over a list of places.
    pub fn new(places: Vec<Place>) -> Self {
        let mut exact: HashMap<String, Vec<u32>> = HashMap::new();
        let mut max_tokens = 0;
        for (i, p) in places.iter().enumerate() {
            let toks = normalise_tokens(&p.name);
            if toks.is_empty() {
                continue;
            }
            max_tokens = max_tokens.max(toks.len());
            exact.entry(toks.join(" ")).or_default().push(i as u32);
        }
        let mut buckets: HashMap<(usize, char), Vec<String>> = HashMap::new();
        for name in exact.keys() {
            let n = name.split(' ').count();
            let first = name.chars().next().expect("non-empty name");
            buckets.entry((n, first)).or_default().push(name.clone());
        }
        // Deterministic fuzzy tie-breaks regardless of hash order.
        for v in buckets.values_mut() {
            v.sort();
        }
        Gazetteer {
            places,
            exact,
            buckets,
            max_tokens,
            similarity: DEFAULT_SIMILARITY,
        }
    }

    /// Sets the Jaro-Winkler similarity (0..=1) a fuzzy match must reach.
    pub fn set_similarity(&mut self, similarity: f64) {
        self.similarity = similarity;
    }

    /// All places.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// Parses a CSV with a header naming `name`, `lat`/`latitude`,
    /// `lon`/`lng`/`long`/`longitude`, and optionally `borough` and `precision_m`.
    pub fn from_csv<R: Read>(
        input: R,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Self, PlaceImportSummary), ImportError> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(ImportError::csv)?
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let col = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| headers.iter().position(|h| h == n))
        };
        let name_c = col(&["name"]).ok_or_else(|| ImportError::MissingColumn("name".into()))?;
        let lat_c =
            col(&["lat", "latitude"]).ok_or_else(|| ImportError::MissingColumn("lat".into()))?;
        let lon_c = col(&["lon", "lng", "long", "longitude"])
            .ok_or_else(|| ImportError::MissingColumn("lon".into()))?;
        let borough_c = col(&["borough"]);
        let prec_c = col(&["precision_m"]);
        let mut places = Vec::new();
        let mut rec = csv::StringRecord::new();
        let mut line = 1u64;
        while rdr.read_record(&mut rec).map_err(ImportError::csv)? {
            line += 1;
            let field = |c: usize| rec.get(c).unwrap_or("").trim();
            let bad = |problem: String| ImportError::BadPlaceRow { row: line, problem };
            let name = field(name_c);
            if normalise_tokens(name).is_empty() {
                return Err(bad(format!("empty place name {name:?}")));
            }
            let num = |c: usize, what: &str| {
                field(c)
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        bad(format!(
                            "bad coordinate: {what} {:?} is not a number",
                            field(c)
                        ))
                    })
            };
            let lat = num(lat_c, "latitude")?;
            let lon = num(lon_c, "longitude")?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(bad(format!(
                    "bad coordinate: latitude {lat}, longitude {lon} out of range"
                )));
            }
            let precision_m = match prec_c.map(field).filter(|s| !s.is_empty()) {
                None => DEFAULT_PLACE_PRECISION_M,
                Some(s) => s
                    .parse::<u32>()
                    .map_err(|_| bad(format!("bad precision_m {s:?}: expected whole metres")))?,
            };
            places.push(Place {
                name: name.to_string(),
                lat,
                lon,
                borough: borough_c
                    .map(field)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                precision_m,
            });
            if places.len() % 10_000 == 0 {
                progress(places.len() as u64);
            }
        }
        progress(places.len() as u64);
        if places.is_empty() {
            return Err(ImportError::EmptyGazetteer);
        }
        let g = Gazetteer::new(places);
        let summary = PlaceImportSummary {
            places: g.places.len(),
            names: g.exact.len(),
        };
        Ok((g, summary))
    }

    /// Finds the best place named inside a description. Every run of
    /// consecutive words is tried as a phrase; exact normalised matches beat
    /// fuzzy ones, then longer phrases win, then higher similarity, then the
    /// earlier phrase. Names shared by places more than
    /// [`AMBIGUITY_RADIUS_M`] apart are skipped as ambiguous.
    pub fn find_in(&self, description: &str) -> Option<PlaceMatch<'_>> {
        let toks = normalise_tokens(description);
        // (exact, tokens, score, -start) ranks candidates, highest first.
        type Rank = (bool, usize, f64, isize);
        let mut cands: Vec<(Rank, &str)> = Vec::new();
        for len in (1..=self.max_tokens.min(toks.len())).rev() {
            for start in 0..=toks.len() - len {
                let window = &toks[start..start + len];
                if window.iter().all(|t| GENERIC.contains(&t.as_str())) {
                    continue;
                }
                let phrase = window.join(" ");
                let pos = -(start as isize);
                if let Some((name, _)) = self.exact.get_key_value(&phrase) {
                    cands.push(((true, len, 1.0, pos), name.as_str()));
                    continue;
                }
                if phrase.len() < 5 {
                    continue; // short words match too much by chance
                }
                // Fuzzy: only names with the same word count and first letter,
                // which keeps this cheap on a large gazetteer.
                let first = phrase.chars().next().expect("non-empty");
                let Some(names) = self.buckets.get(&(len, first)) else {
                    continue;
                };
                for name in names {
                    let s = strsim::jaro_winkler(&phrase, name);
                    if s >= self.similarity {
                        cands.push(((false, len, s, pos), name.as_str()));
                    }
                }
            }
        }
        cands.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.1.cmp(b.1))
        });
        cands.into_iter().find_map(|(rank, name)| {
            self.unambiguous(name).map(|place| PlaceMatch {
                place,
                score: rank.2,
            })
        })
    }

    /// The first place of a name if all places of that name lie within
    /// [`AMBIGUITY_RADIUS_M`] of it.
    fn unambiguous(&self, name: &str) -> Option<&Place> {
        let ids = self.exact.get(name)?;
        let first = &self.places[ids[0] as usize];
        ids[1..]
            .iter()
            .map(|&i| &self.places[i as usize])
            .all(|p| distance_m(first.lat, first.lon, p.lat, p.lon) <= AMBIGUITY_RADIUS_M)
            .then_some(first)
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.places.len());
        for p in &self.places {
            e.str(&p.name);
            e.f64(p.lat);
            e.f64(p.lon);
            e.str(p.borough.as_deref().unwrap_or(""));
            e.u32(p.precision_m);
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Self, String> {
        let n = d.len(28)?;
        let mut places = Vec::with_capacity(n);
        for _ in 0..n {
            let name = d.str()?.to_string();
            let lat = d.f64()?;
            let lon = d.f64()?;
            let borough = Some(d.str()?).filter(|s| !s.is_empty()).map(str::to_string);
            places.push(Place {
                name,
                lat,
                lon,
                borough,
                precision_m: d.u32()?,
            });
        }
        Ok(Gazetteer::new(places))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaz() -> Gazetteer {
        let csv = "name,lat,lon,borough\n\
            Church Street,51.5300,-0.1700,E09000033\n\
            St Mary's Road,51.4700,-0.0600,E09000028\n\
            Red Lion,51.5000,-0.1000,\n\
            Red Lion,51.6000,-0.3000,\n\
            Elephant and Castle,51.4950,-0.1000,E09000028\n\
            Peckham Rye Station,51.4700,-0.0690,\n\
            Brixton,51.4613,-0.1156,E09000022\n";
        Gazetteer::from_csv(csv.as_bytes(), &mut |_| {}).unwrap().0
    }

    #[test]
    fn tokens_are_canonical() {
        assert_eq!(normalise_tokens("St. Mary's Road"), ["st", "marys", "rd"]);
        assert_eq!(normalise_tokens("SAINT MARYS RD"), ["st", "marys", "rd"]);
        assert_eq!(
            normalise_tokens("The Red-Lion, Church St"),
            ["red", "lion", "church", "st"]
        );
        assert_eq!(
            normalise_tokens("Elephant & Castle"),
            ["elephant", "and", "castle"]
        );
    }

    #[test]
    fn tolerant_matching() {
        let g = gaz();
        let name = |d: &str| g.find_in(d).map(|m| m.place.name.clone());
        // Abbreviation and punctuation; the Red Lion is ambiguous (two far apart).
        assert_eq!(
            name("outside the Red Lion, Church St").as_deref(),
            Some("Church Street")
        );
        assert_eq!(
            name("ST MARYS RD junction").as_deref(),
            Some("St Mary's Road")
        );
        assert_eq!(
            name("near elephant & castle roundabout").as_deref(),
            Some("Elephant and Castle")
        );
        // Typo, fuzzy match.
        let m = g.find_in("fight at peckam rye stn").unwrap();
        assert_eq!(m.place.name, "Peckham Rye Station");
        assert!(
            m.score < 1.0 && m.score >= DEFAULT_SIMILARITY,
            "{}",
            m.score
        );
        assert_eq!(name("brixton high road").as_deref(), Some("Brixton"));
        assert_eq!(name("at home"), None);
        assert_eq!(name("red lion"), None);
        assert_eq!(name("street road"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn csv_errors() {
        let e = Gazetteer::from_csv("name,lat\nx,1\n".as_bytes(), &mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "gazetteer: missing column \"lon\"");
        let e = Gazetteer::from_csv(
            "name,lat,lon\nA,51.5,-0.1\nB,north,-0.1\n".as_bytes(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "gazetteer row 3: bad coordinate: latitude \"north\" is not a number"
        );
        let e = Gazetteer::from_csv("name,lat,lon\n".as_bytes(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImportError::EmptyGazetteer));
    }
}
