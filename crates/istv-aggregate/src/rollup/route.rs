//! Routing: the roll-up and bucket ranges that answer a query.

use super::{Grain, Rollup, Table, ROLLUPS};
use crate::cube::Column;
use crate::query::{Plan, Query};
use chrono::{Datelike, NaiveDate};

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
