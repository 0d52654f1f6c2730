//! Roll-ups: the cube summed over all but a few of its dimensions, per day,
//! per month or per month and weekday, kept exact at ingest so that a query
//! reads a number of rows that grows with its answer, not with the history.
//!
//! Each [`Rollup`] names the cube columns it keeps and the time grains it is
//! kept at; every (roll-up, grain) pair is one [`Table`] keyed by a time
//! bucket and those columns. A batch's cube changes become changes of every
//! table ([`RollupDeltas`]), applied in the batch's transaction. A query is
//! [`route`]d to the smallest roll-up that keeps every column it groups or
//! filters by: whole months come from the month table, the days at either
//! end from the day table; a weekday over whole months from the month and
//! weekday table. A query no roll-up covers reads the cube.

mod deltas;
mod route;
mod set;

pub use deltas::{KeyView, Part, RollupDeltas, RollupRow};
pub use route::{route, Route, Scan};
pub use set::RollupSet;

use crate::cube::{CellResolution, Column};
use chrono::{Datelike, NaiveDate};
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
