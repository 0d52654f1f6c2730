//! A batch's changes to the roll-up tables: the key columns of a cube key
//! ([`KeyView`], [`Part`]) and their sums per table row ([`RollupDeltas`]).

use super::{Grain, Table, MAX_COLUMNS};
use crate::cube::{cell_to_int, Column, CubeKey, Tally, Value};
use crate::event::{Event, LocationStatus};
use chrono::NaiveDate;
use h3o::CellIndex;
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::HashMap;

/// A key column's value in a roll-up row, borrowed from a cube key or an
/// event; unknowns are the cube's sentinels (-1 hour, 0 cell, '' area).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Part<'a> {
    /// No column here (the roll-up keeps fewer than [`MAX_COLUMNS`]).
    #[default]
    Absent,
    /// An integer column's value.
    Int(i64),
    /// A text column's value.
    Text(&'a str),
}

impl Part<'_> {
    /// The owned stored value.
    pub fn to_value(self) -> Value {
        match self {
            Part::Absent => Value::Int(0),
            Part::Int(i) => Value::Int(i),
            Part::Text(t) => Value::Text(t.to_owned()),
        }
    }
}

/// A cube key's columns, borrowed from a [`CubeKey`] or straight from an
/// [`Event`] (a new record's +1 needs no owned key).
#[derive(Debug, Clone, Copy)]
pub struct KeyView<'a> {
    /// London date.
    pub day: NaiveDate,
    /// London hour, when known.
    pub hour: Option<u8>,
    /// Means of assault.
    pub method: AssaultMethod,
    /// Kind of place.
    pub location_type: LocationType,
    /// Age band.
    pub age_band: AgeBand,
    /// Sex.
    pub sex: Sex,
    /// ODS site code.
    pub site: &'a str,
    /// Whether the incident was placed.
    pub status: LocationStatus,
    /// Cells at resolutions 7 to 10.
    pub cells: [Option<CellIndex>; 4],
    /// Borough code.
    pub borough: Option<&'a str>,
    /// Ward code.
    pub ward: Option<&'a str>,
    /// LSOA code.
    pub lsoa: Option<&'a str>,
}

impl<'a> KeyView<'a> {
    /// The columns of a cube key.
    pub fn of_key(k: &'a CubeKey) -> KeyView<'a> {
        KeyView {
            day: k.day,
            hour: k.hour,
            method: k.method,
            location_type: k.location_type,
            age_band: k.age_band,
            sex: k.sex,
            site: &k.site,
            status: k.location_status,
            cells: k.cells,
            borough: k.borough.as_deref(),
            ward: k.ward.as_deref(),
            lsoa: k.lsoa.as_deref(),
        }
    }

    /// The columns of [`CubeKey::of`]`(e)`, without copying its strings.
    pub fn of_event(e: &'a Event) -> KeyView<'a> {
        KeyView {
            day: e.assault_date,
            hour: e.assault_hour,
            method: e.method,
            location_type: e.location_type,
            age_band: e.age_band,
            sex: e.sex,
            site: &e.site_code,
            status: e.location_status(),
            cells: CubeKey::cells_of(e),
            borough: e.borough.as_deref(),
            ward: e.ward.as_deref(),
            lsoa: e.lsoa.as_deref(),
        }
    }

    /// The stored value of one column (the day as it is stored in the cube,
    /// `YYYY-MM-DD`, is not a part: roll-ups keep it as a bucket).
    pub fn part(&self, column: Column) -> Part<'a> {
        match column {
            Column::Day => Part::Absent,
            Column::Hour => Part::Int(self.hour.map_or(-1, i64::from)),
            Column::Method => Part::Text(self.method.as_str()),
            Column::LocationType => Part::Text(self.location_type.as_str()),
            Column::AgeBand => Part::Text(self.age_band.as_str()),
            Column::Sex => Part::Text(self.sex.as_str()),
            Column::Site => Part::Text(self.site),
            Column::LocationStatus => Part::Text(self.status.as_str()),
            Column::Cell(r) => Part::Int(cell_to_int(self.cells[usize::from(r.get() - 7)])),
            Column::Borough => Part::Text(self.borough.unwrap_or("")),
            Column::Ward => Part::Text(self.ward.unwrap_or("")),
            Column::Lsoa => Part::Text(self.lsoa.unwrap_or("")),
        }
    }
}

/// One roll-up row's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupRow<'a> {
    /// The time bucket.
    pub bucket: i32,
    /// The kept columns' values, in [`Rollup::columns`] order; the rest
    /// [`Part::Absent`].
    pub parts: [Part<'a>; MAX_COLUMNS],
    /// The change.
    pub tally: Tally,
}

/// The changes a batch makes to every roll-up table, summed per row.
///
/// The cube keys are kept as they come and summed one table at a time in
/// [`RollupDeltas::into_tables`]: with 70 tables, summing each key
/// into every table's map at once touched a cold map per table and key
/// (measured side by side on a 500,000-row upload: see the README's
/// "How a query is answered"). Each key is kept as integers, its texts as
/// codes of the batch numbered in text order, so that the 70 sums hash and
/// sort integers, not strings: hashing and comparing the strings of every
/// key in every table was a quarter of the server's time in a profile of
/// an upload.
#[derive(Debug, Default)]
pub struct RollupDeltas<'a> {
    keys: Vec<(Coded, Buckets, Tally)>,
    texts: HashMap<&'a str, u32, foldhash::fast::RandomState>,
    /// The texts by code.
    symbols: Vec<&'a str>,
}

/// The number of columns a key is coded as (every [`Column::ALL`] but the
/// day, which the buckets hold).
const CODED: usize = Column::ALL.len();

/// A cube key's columns as integers, by position in [`Column::ALL`]: an
/// integer column as it is stored, a text column as the batch's code.
type Coded = [i64; CODED];

/// The position of a column in [`Column::ALL`].
fn slot(column: Column) -> usize {
    Column::ALL
        .iter()
        .position(|c| *c == column)
        .expect("every column is in Column::ALL")
}

/// A key's bucket at each grain, worked out once for all tables.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    day: i32,
    month: i32,
    month_weekday: i32,
}

impl Buckets {
    fn of(day: NaiveDate) -> Buckets {
        Buckets {
            day: Grain::Day.bucket(day),
            month: Grain::Month.bucket(day),
            month_weekday: Grain::MonthWeekday.bucket(day),
        }
    }

    fn at(&self, grain: Grain) -> i32 {
        match grain {
            Grain::Day => self.day,
            Grain::Month => self.month,
            Grain::MonthWeekday => self.month_weekday,
        }
    }
}

impl<'a> RollupDeltas<'a> {
    /// No changes yet.
    pub fn new() -> RollupDeltas<'a> {
        RollupDeltas::default()
    }

    /// Adds a cube key's change to every table.
    pub fn add(&mut self, key: &KeyView<'a>, tally: Tally) {
        let mut coded = [0; CODED];
        for (code, column) in coded.iter_mut().zip(Column::ALL).skip(1) {
            *code = match key.part(column) {
                Part::Absent => 0,
                Part::Int(i) => i,
                Part::Text(t) => {
                    let next = self.symbols.len() as u32;
                    let code = *self.texts.entry(t).or_insert(next);
                    if code == next {
                        self.symbols.push(t);
                    }
                    i64::from(code)
                }
            };
        }
        self.keys.push((coded, Buckets::of(key.day), tally));
    }

    /// The changes per table, without zeros, each table's rows in key order
    /// (which keeps concurrent writers' row locks in one order).
    pub fn into_tables(mut self) -> Vec<(Table, Vec<RollupRow<'a>>)> {
        // Renumber the codes in text order, so that integer order is key order.
        let mut by_text: Vec<u32> = (0..self.symbols.len() as u32).collect();
        by_text.sort_unstable_by_key(|&code| self.symbols[code as usize]);
        let mut rank = vec![0_i64; by_text.len()];
        for (r, &code) in by_text.iter().enumerate() {
            rank[code as usize] = r as i64;
        }
        let sorted: Vec<&'a str> = by_text.iter().map(|&c| self.symbols[c as usize]).collect();
        let text_slots: Vec<usize> = (1..CODED).filter(|&s| !Column::ALL[s].is_int()).collect();
        for (coded, _, _) in &mut self.keys {
            for &s in &text_slots {
                coded[s] = rank[coded[s] as usize];
            }
        }

        let mut map: HashMap<(i32, [i64; MAX_COLUMNS]), Tally, foldhash::fast::RandomState> =
            HashMap::default();
        Table::all()
            .iter()
            .map(|table| {
                map.clear();
                let columns = table.rollup.columns;
                let mut slots = [0; MAX_COLUMNS];
                for (s, c) in slots.iter_mut().zip(columns) {
                    *s = slot(*c);
                }
                let slots = &slots[..columns.len()];
                for (coded, buckets, tally) in &self.keys {
                    let mut parts = [0; MAX_COLUMNS];
                    for (p, s) in parts.iter_mut().zip(slots) {
                        *p = coded[*s];
                    }
                    *map.entry((buckets.at(table.grain), parts)).or_default() += *tally;
                }
                let lead = table.rollup.lead;
                let mut rows: Vec<((i32, [i64; MAX_COLUMNS]), Tally)> =
                    map.drain().filter(|(_, t)| !t.is_zero()).collect();
                rows.sort_unstable_by(|((ab, a), _), ((bb, b), _)| {
                    (&a[..lead], ab, &a[lead..]).cmp(&(&b[..lead], bb, &b[lead..]))
                });
                let rows = rows
                    .into_iter()
                    .map(|((bucket, codes), tally)| {
                        let mut parts = [Part::Absent; MAX_COLUMNS];
                        for ((p, c), code) in parts.iter_mut().zip(columns).zip(codes) {
                            *p = if c.is_int() {
                                Part::Int(code)
                            } else {
                                Part::Text(sorted[code as usize])
                            };
                        }
                        RollupRow {
                            bucket,
                            parts,
                            tally,
                        }
                    })
                    .collect();
                (*table, rows)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(day: &str, site: &'a str, borough: &'a str) -> KeyView<'a> {
        KeyView {
            day: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
            hour: Some(3),
            method: AssaultMethod::SharpObject,
            location_type: LocationType::Street,
            age_band: AgeBand::Age18To24,
            sex: Sex::Female,
            site,
            status: LocationStatus::Resolved,
            cells: [None; 4],
            borough: Some(borough),
            ward: None,
            lsoa: None,
        }
    }

    fn tally(count: i64, keysum: i64) -> Tally {
        Tally { count, keysum }
    }

    fn table(name: &str) -> Table {
        *Table::all()
            .iter()
            .find(|t| t.name() == name)
            .expect("a declared table")
    }

    #[test]
    fn rows_are_summed_and_come_in_the_tables_key_order() {
        let mut d = RollupDeltas::new();
        // Texts arrive out of order, so the batch's first codes are not
        // in text order.
        d.add(&key("2024-01-09", "RJ2", "E09000002"), tally(1, 5));
        d.add(&key("2024-01-20", "RJ1", "E09000033"), tally(1, 7));
        d.add(&key("2024-02-01", "RJ1", "E09000001"), tally(1, 11));
        d.add(&key("2024-01-03", "RJ1", "E09000033"), tally(1, 13));
        // A correction moving a record away: its row sums to zero.
        d.add(&key("2024-03-01", "RJ3", "E09000001"), tally(1, 17));
        d.add(&key("2024-03-01", "RJ3", "E09000001"), tally(-1, -17));
        let tables = d.into_tables();
        let rows = |name: &str| {
            let want = table(name);
            tables
                .iter()
                .find(|(t, _)| *t == want)
                .map(|(_, rows)| rows.clone())
                .unwrap()
        };
        let (jan, feb) = (2024 * 12, 2024 * 12 + 1);
        // Site, then the month, then the borough (`sb` leads with the site).
        let sb: Vec<(&str, i32, &str, i64, i64)> = rows("rollup_sb_month")
            .iter()
            .map(|r| match r.parts {
                [Part::Text(s), Part::Text(b), Part::Absent] => {
                    (s, r.bucket, b, r.tally.count, r.tally.keysum)
                }
                other => panic!("unexpected parts {other:?}"),
            })
            .collect();
        assert_eq!(
            sb,
            vec![
                ("RJ1", jan, "E09000033", 2, 20),
                ("RJ1", feb, "E09000001", 1, 11),
                ("RJ2", jan, "E09000002", 1, 5),
            ]
        );
        // Integer columns come back as they were: the hour per day.
        let mh: Vec<(i32, Part, Part, i64)> = rows("rollup_mh_day")
            .iter()
            .map(|r| (r.bucket, r.parts[0], r.parts[1], r.tally.count))
            .collect();
        let day = |s: &str| Grain::Day.bucket(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let m = Part::Text("sharp_object");
        assert_eq!(
            mh,
            vec![
                (day("2024-01-03"), m, Part::Int(3), 1),
                (day("2024-01-09"), m, Part::Int(3), 1),
                (day("2024-01-20"), m, Part::Int(3), 1),
                (day("2024-02-01"), m, Part::Int(3), 1),
            ]
        );
    }
}
