//! Roll-ups: the cube summed over all but a few of its dimensions, per day,
//! per month or per month and weekday, kept exact at ingest so that a query reads a number of
//! rows that grows with its answer, not with the history.
//!
//! Each [`Rollup`] names the cube columns it keeps and the time grains it is
//! kept at; every (roll-up, grain) pair is one [`Table`] keyed by a time
//! bucket and those columns. A batch's cube changes become changes of every
//! table ([`RollupDeltas`]), applied in the batch's transaction. A query is
//! [`route`]d to the smallest roll-up that keeps every column it groups or
//! filters by: whole months come from the month table, the days at either
//! end from the day table; a weekday over whole months from the month and
//! weekday table. A query no roll-up covers reads the cube.

use crate::cube::{cell_to_int, CellResolution, Column, Cube, CubeKey, Tally, Value};
use crate::event::{Event, LocationStatus};
use crate::query::{Plan, Query};
use chrono::{Datelike, NaiveDate};
use h3o::CellIndex;
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// The time bucket of a roll-up table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    /// A London calendar day; buckets count days from 1970-01-01.
    Day,
    /// A calendar month; buckets are `year * 12 + month - 1`.
    Month,
    /// A calendar month split by day of the week: buckets are the month's
    /// bucket times 7 plus the weekday (Monday 0). A bucket stands for the
    /// first date of its month on its weekday, so a month's or a weekday's
    /// label is exact and a day's or a week's is not: it answers queries
    /// over whole months that group or filter by neither (the portal's
    /// hour x weekday heatmap at a seventh of a day table's rows).
    MonthWeekday,
}

/// Days from 1 January of year 1 to 1 January 1970.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl Grain {
    /// The suffix of its tables' names.
    pub const fn suffix(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Month => "month",
            Grain::MonthWeekday => "mwd",
        }
    }

    /// The bucket holding `day`.
    pub fn bucket(self, day: NaiveDate) -> i32 {
        match self {
            Grain::Day => day.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE,
            Grain::Month => day.year() * 12 + day.month0() as i32,
            Grain::MonthWeekday => {
                Grain::Month.bucket(day) * 7 + day.weekday().num_days_from_monday() as i32
            }
        }
    }

    /// The first day of a bucket, when it is a representable date.
    pub fn start(self, bucket: i32) -> Option<NaiveDate> {
        match self {
            Grain::Day => {
                NaiveDate::from_num_days_from_ce_opt(bucket.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)
            }
            Grain::Month => {
                NaiveDate::from_ymd_opt(bucket.div_euclid(12), bucket.rem_euclid(12) as u32 + 1, 1)
            }
            Grain::MonthWeekday => {
                let first = Grain::Month.start(bucket.div_euclid(7))?;
                let want = bucket.rem_euclid(7) as u32;
                let have = first.weekday().num_days_from_monday();
                first.checked_add_days(chrono::Days::new(u64::from((want + 7 - have) % 7)))
            }
        }
    }
}

/// The most columns a roll-up keeps besides its time bucket.
pub const MAX_COLUMNS: usize = 3;

/// A roll-up: the cube summed over every column but `columns` and the time
/// bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollup {
    /// Short name, part of its tables' names.
    pub name: &'static str,
    /// The cube columns kept, at most [`MAX_COLUMNS`].
    pub columns: &'static [Column],
    /// How many of `columns` come before the time bucket in the key: the
    /// ones queries usually fix to one value (a borough), so that such a
    /// query reads one contiguous range.
    pub lead: usize,
    /// The grains it is kept at.
    pub grains: &'static [Grain],
}

const R7: Column = Column::Cell(CellResolution::ALL[0]);
const R8: Column = Column::Cell(CellResolution::ALL[1]);
const R10: Column = Column::Cell(CellResolution::ALL[3]);
const BOTH: &[Grain] = &[Grain::Day, Grain::Month];
const DAY: &[Grain] = &[Grain::Day];
const MONTH: &[Grain] = &[Grain::Month];

/// The chosen roll-ups, smallest first (before [`pairs`]): a query goes to
/// the first roll-up of [`ROLLUPS`] that covers it.
/// Chosen from the published query set (README): time series overall, per
/// site and per borough, hour and weekday per borough, method and place
/// type, age and sex, H3 maps at resolutions 7, 8 and (per borough) 10,
/// wards by method, and LSOAs; and from the portal's views under each of
/// its filters (method, place type, age band, sex, site): the map's
/// resolution-7 hexagons (and 8 by method), the breakdowns by method and by
/// place type, and the top boroughs (the heatmap under a filter other than
/// method is [`pairs`]' at [`Grain::MonthWeekday`]). Each day
/// table costs about one row write per record of a batch spread over a
/// year, so days are kept only where the query set needs them (weeks,
/// weekdays, days, a borough's week of resolution-10 cells); the rest is
/// kept per month, and a range with partial months at its ends reads a day
/// table that covers it, or the cube. A roll-up that only a filter on its
/// first column sends queries to leads with that column, so that the
/// filtered query reads one contiguous range.
const CHOSEN: &[Rollup] = &[
    Rollup {
        name: "t",
        columns: &[],
        lead: 0,
        grains: BOTH,
    },
    Rollup {
        name: "s",
        columns: &[Column::Site],
        lead: 0,
        grains: BOTH,
    },
    Rollup {
        name: "as",
        columns: &[Column::AgeBand, Column::Sex],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "ml",
        columns: &[Column::Method, Column::LocationType],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "b",
        columns: &[Column::Borough, Column::LocationStatus],
        lead: 1,
        grains: BOTH,
    },
    Rollup {
        name: "c7",
        columns: &[R7],
        lead: 0,
        grains: MONTH,
    },
    // Before `bh`: the heatmap over all of London reads 6 rows per hour
    // and day here, not 34.
    Rollup {
        name: "mh",
        columns: &[Column::Method, Column::Hour],
        lead: 0,
        grains: DAY,
    },
    Rollup {
        name: "bh",
        columns: &[Column::Borough, Column::Hour],
        lead: 1,
        grains: DAY,
    },
    Rollup {
        name: "bas",
        columns: &[Column::Borough, Column::AgeBand, Column::Sex],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "c8",
        columns: &[R8],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "mw",
        columns: &[Column::Method, Column::Ward],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "l",
        columns: &[Column::Lsoa],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "bc10",
        columns: &[Column::Borough, R10],
        lead: 1,
        grains: DAY,
    },
    // The portal's views under one filter (see the list's comment).
    Rollup {
        name: "mla",
        columns: &[Column::Method, Column::LocationType, Column::AgeBand],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "mlx",
        columns: &[Column::Method, Column::LocationType, Column::Sex],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "sml",
        columns: &[Column::Site, Column::Method, Column::LocationType],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "mlb",
        columns: &[Column::Method, Column::LocationType, Column::Borough],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "sb",
        columns: &[Column::Site, Column::Borough],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "mc7",
        columns: &[Column::Method, R7],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "lc7",
        columns: &[Column::LocationType, R7],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "sc7",
        columns: &[Column::Site, R7],
        lead: 1,
        grains: MONTH,
    },
    Rollup {
        name: "asc7",
        columns: &[Column::AgeBand, Column::Sex, R7],
        lead: 0,
        grains: MONTH,
    },
    Rollup {
        name: "mc8",
        columns: &[Column::Method, R8],
        lead: 1,
        grains: MONTH,
    },
];

const MONTH_WEEKDAY: &[Grain] = &[Grain::MonthWeekday];

/// The portal's filters besides the date, with their letters in the names
/// of [`pairs`]' roll-ups (which start with `p`: the chosen names spell
/// site and sex both with `s`).
const FILTERS: [(Column, &str); 6] = [
    (Column::Method, "m"),
    (Column::LocationType, "l"),
    (Column::AgeBand, "a"),
    (Column::Sex, "x"),
    (Column::Site, "s"),
    (Column::Borough, "b"),
];

/// The roll-ups that answer the portal's views under any two of its
/// filters: for each pair, the pair with a third filter column (the trend,
/// the breakdowns by method and by place type, the top boroughs, and every
/// view under a borough and a filter), with the resolution-7 cell (the
/// map), and with the hour per month and weekday (the heatmap). A pair
/// roll-up that an earlier roll-up already covers at its grain is left out:
/// no query would reach it. The alternative, Apache Pinot's star-tree,
/// reads as few rows but changes up to one node per star pattern of a
/// record's path at ingest (`scripts/startree_estimate.py`), and its shape
/// follows the data; these tables are the same roll-ups as the rest, kept
/// and checked the same way.
fn pairs(before: &[Rollup]) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = Vec::new();
    let mut add = |columns: Vec<Column>, letters: String, lead: usize, grains: &'static [Grain]| {
        let covered = before
            .iter()
            .chain(out.iter())
            .any(|r| columns.iter().all(|c| r.keeps(*c)) && grains.iter().all(|g| r.serves(*g)));
        if !covered {
            // Built once, for the life of the process, like the chosen
            // roll-ups' static lists.
            out.push(Rollup {
                name: Box::leak(letters.into_boxed_str()),
                columns: Box::leak(columns.into_boxed_slice()),
                lead,
                grains,
            });
        }
    };
    for (i, (c1, l1)) in FILTERS.iter().enumerate() {
        for (j, (c2, l2)) in FILTERS.iter().enumerate().skip(i + 1) {
            for (c3, l3) in FILTERS.iter().skip(j + 1) {
                add(vec![*c1, *c2, *c3], format!("p{l1}{l2}{l3}"), 3, MONTH);
            }
            add(vec![*c1, *c2, R7], format!("p{l1}{l2}c7"), 2, MONTH);
            add(
                vec![*c1, *c2, Column::Hour],
                format!("p{l1}{l2}h"),
                2,
                MONTH_WEEKDAY,
            );
        }
    }
    out
}

/// Every roll-up: the chosen ones, then [`pairs`]. A query goes to the
/// first that covers it.
pub static ROLLUPS: LazyLock<Vec<Rollup>> = LazyLock::new(|| {
    let mut all = CHOSEN.to_vec();
    let more = pairs(&all);
    all.extend(more);
    all
});

impl Rollup {
    /// True when it keeps `column` (the day is always kept, as the bucket).
    pub fn keeps(&self, column: Column) -> bool {
        column == Column::Day || self.columns.contains(&column)
    }

    /// True when it is kept at a grain that answers every query `grain`
    /// answers: days answer all, the others only themselves.
    fn serves(&self, grain: Grain) -> bool {
        self.grains.iter().any(|g| *g == Grain::Day || *g == grain)
    }
}

/// One stored table: a roll-up at one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The roll-up.
    pub rollup: &'static Rollup,
    /// The grain.
    pub grain: Grain,
}

impl Table {
    /// Every table, in [`ROLLUPS`] order, day before month.
    pub fn all() -> &'static [Table] {
        static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
        TABLES.get_or_init(|| {
            ROLLUPS
                .iter()
                .flat_map(|rollup| {
                    rollup
                        .grains
                        .iter()
                        .map(move |&grain| Table { rollup, grain })
                })
                .collect()
        })
    }

    /// The SQL table name.
    pub fn name(&self) -> String {
        format!("rollup_{}_{}", self.rollup.name, self.grain.suffix())
    }

    /// The key columns in key order: the lead columns, `bucket`, the rest.
    pub fn key_columns(&self) -> Vec<&'static str> {
        let names: Vec<&str> = self.rollup.columns.iter().map(|c| c.name()).collect();
        let lead = self.rollup.lead;
        let mut out = names[..lead].to_vec();
        out.push("bucket");
        out.extend_from_slice(&names[lead..]);
        out
    }
}

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

/// The key of a roll-up row: its bucket and kept columns.
pub type RowKey<'a> = (i32, [Part<'a>; MAX_COLUMNS]);

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
/// "How a query is answered").
#[derive(Debug, Default)]
pub struct RollupDeltas<'a> {
    keys: Vec<(KeyView<'a>, Buckets, Tally)>,
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
        self.keys.push((*key, Buckets::of(key.day), tally));
    }

    /// The changes per table, without zeros, each table's rows in key order
    /// (which keeps concurrent writers' row locks in one order).
    pub fn into_tables(self) -> Vec<(Table, Vec<RollupRow<'a>>)> {
        let mut map: HashMap<RowKey<'a>, Tally, foldhash::fast::RandomState> = HashMap::default();
        Table::all()
            .iter()
            .map(|table| {
                map.clear();
                let columns = table.rollup.columns;
                for (key, buckets, tally) in &self.keys {
                    let mut parts = [Part::Absent; MAX_COLUMNS];
                    for (p, c) in parts.iter_mut().zip(columns) {
                        *p = key.part(*c);
                    }
                    *map.entry((buckets.at(table.grain), parts)).or_default() += *tally;
                }
                let lead = table.rollup.lead;
                let mut rows: Vec<RollupRow> = map
                    .drain()
                    .filter(|(_, t)| !t.is_zero())
                    .map(|((bucket, parts), tally)| RollupRow {
                        bucket,
                        parts,
                        tally,
                    })
                    .collect();
                rows.sort_unstable_by(|a, b| {
                    (&a.parts[..lead], a.bucket, &a.parts[lead..]).cmp(&(
                        &b.parts[..lead],
                        b.bucket,
                        &b.parts[lead..],
                    ))
                });
                (*table, rows)
            })
            .collect()
    }
}

/// A bucket range of one table, both ends inclusive; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// The table.
    pub table: Table,
    /// First bucket.
    pub from: Option<i32>,
    /// Last bucket.
    pub to: Option<i32>,
}

/// How a query is answered from the roll-ups: one roll-up, one or more
/// bucket ranges of its tables, which together cover the query's days once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The roll-up.
    pub rollup: &'static Rollup,
    /// The ranges to read and sum.
    pub scans: Vec<Scan>,
}

/// The days of `from..=to` as whole months and the days at either end:
/// (head days, months, tail days), each inclusive; a month bound of `None`
/// is open.
type Split = (
    Option<(NaiveDate, NaiveDate)>,
    Option<(Option<i32>, Option<i32>)>,
    Option<(NaiveDate, NaiveDate)>,
);

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

fn last_of_month(d: NaiveDate) -> NaiveDate {
    first_of_month(d)
        .checked_add_months(chrono::Months::new(1))
        .and_then(|n| n.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

fn split_months(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Split {
    let month = |d: NaiveDate| Grain::Month.bucket(d);
    if let (Some(f), Some(t)) = (from, to) {
        if month(f) == month(t) && (f.day() != 1 || t != last_of_month(t)) {
            // Part of one month: days only.
            return (Some((f, t)), None, None);
        }
    }
    let mut head = None;
    let mut first = from.map(month);
    if let Some(f) = from.filter(|f| f.day() != 1) {
        head = Some((f, last_of_month(f)));
        first = Some(month(f) + 1);
    }
    let mut tail = None;
    let mut last = to.map(month);
    if let Some(t) = to.filter(|t| *t != last_of_month(*t)) {
        tail = Some((first_of_month(t), t));
        last = Some(month(t) - 1);
    }
    let months = match (first, last) {
        (Some(a), Some(b)) if a > b => None,
        bounds => Some(bounds),
    };
    (head, months, tail)
}

/// The roll-up scans that answer `query` (whose plan is `plan`), or `None`
/// when no roll-up keeps every column it needs at a grain that fits: then
/// the cube answers.
pub fn route(query: &Query, plan: &Plan) -> Option<Route> {
    let needed = plan
        .columns
        .iter()
        .chain(plan.conditions.iter().map(|(c, _)| c));
    let needed: Vec<Column> = needed.copied().collect();
    let day_bucket = |d: NaiveDate| Grain::Day.bucket(d);
    for rollup in ROLLUPS.iter() {
        if !needed.iter().all(|c| rollup.keeps(*c)) {
            continue;
        }
        let has = |g: Grain| rollup.grains.contains(&g);
        let table = |grain: Grain| Table { rollup, grain };
        let days = |(a, b): (NaiveDate, NaiveDate)| Scan {
            table: table(Grain::Day),
            from: Some(day_bucket(a)),
            to: Some(day_bucket(b)),
        };
        if !query.needs_day() && has(Grain::Month) {
            let (head, months, tail) = split_months(plan.from, plan.to);
            if has(Grain::Day) || (head.is_none() && tail.is_none()) {
                let mut scans: Vec<Scan> = head.map(days).into_iter().collect();
                scans.extend(months.map(|(from, to)| Scan {
                    table: table(Grain::Month),
                    from,
                    to,
                }));
                scans.extend(tail.map(days));
                return Some(Route { rollup, scans });
            }
        }
        if !query.needs_date() && has(Grain::MonthWeekday) {
            if let (None, months, None) = split_months(plan.from, plan.to) {
                let week = |m: i32| m * 7;
                let scans = months.map(|(from, to)| Scan {
                    table: table(Grain::MonthWeekday),
                    from: from.map(week),
                    to: to.map(|m| week(m) + 6),
                });
                return Some(Route {
                    rollup,
                    scans: scans.into_iter().collect(),
                });
            }
        }
        if has(Grain::Day) {
            let scan = Scan {
                table: table(Grain::Day),
                from: plan.from.map(day_bucket),
                to: plan.to.map(day_bucket),
            };
            return Some(Route {
                rollup,
                scans: vec![scan],
            });
        }
    }
    None
}

/// Every roll-up table held in memory: the reference a store's tables are
/// compared with, and a query engine over it for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupSet {
    tables: Vec<HashMap<(i32, [Value; MAX_COLUMNS]), Tally>>,
}

impl RollupSet {
    /// The roll-ups of a cube, summed from scratch.
    pub fn of_cube(cube: &Cube) -> RollupSet {
        let mut deltas = RollupDeltas::new();
        for (key, tally) in cube.iter() {
            deltas.add(&KeyView::of_key(key), tally);
        }
        let mut set = RollupSet::default();
        set.apply(deltas);
        set
    }

    /// Applies a batch's changes, as a store does; rows whose tally reaches
    /// zero are removed.
    pub fn apply(&mut self, deltas: RollupDeltas<'_>) {
        if self.tables.is_empty() {
            self.tables = Table::all().iter().map(|_| HashMap::new()).collect();
        }
        for (map, (_, rows)) in self.tables.iter_mut().zip(deltas.into_tables()) {
            for r in rows {
                let key = (r.bucket, r.parts.map(Part::to_value));
                let t = map.entry(key.clone()).or_default();
                *t += r.tally;
                if t.is_zero() {
                    map.remove(&key);
                }
            }
        }
    }

    /// The rows of one table with a non-zero tally: (bucket, kept values
    /// padded with `Value::Int(0)`, tally).
    pub fn rows(&self, table: Table) -> impl Iterator<Item = (i32, &[Value; MAX_COLUMNS], Tally)> {
        let i = Table::all()
            .iter()
            .position(|t| *t == table)
            .expect("a table");
        self.tables
            .get(i)
            .into_iter()
            .flatten()
            .map(|((b, v), t)| (*b, v, *t))
    }

    /// Answers a query from the roll-ups as a store does: `None` when no
    /// roll-up covers it. The rows are those [`Query::fold`] takes.
    pub fn query(&self, query: &Query) -> Option<Vec<(Vec<Value>, Tally)>> {
        let plan = query.plan();
        let route = route(query, &plan)?;
        let mut out = Vec::new();
        for scan in &route.scans {
            let grain = scan.table.grain;
            for (bucket, values, tally) in self.rows(scan.table) {
                if scan.from.is_some_and(|f| bucket < f) || scan.to.is_some_and(|t| bucket > t) {
                    continue;
                }
                let value = |c: Column| -> Value {
                    if c == Column::Day {
                        let day = grain.start(bucket).expect("a stored bucket");
                        return Value::Text(day.format("%Y-%m-%d").to_string());
                    }
                    let i = route.rollup.columns.iter().position(|x| *x == c);
                    values[i.expect("routed to a roll-up keeping it")].clone()
                };
                let keep = plan
                    .conditions
                    .iter()
                    .all(|(c, allowed)| allowed.contains(&value(*c)));
                if keep {
                    out.push((plan.columns.iter().map(|c| value(*c)).collect(), tally));
                }
            }
        }
        Some(out)
    }
}
