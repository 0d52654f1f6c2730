//! Every roll-up table in memory: the model a store's tables are checked
//! against.

use super::{route, KeyView, Part, RollupDeltas, Table, MAX_COLUMNS};
use crate::cube::{Column, Cube, Tally, Value};
use crate::query::Query;
use std::collections::HashMap;

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
