//! Queries: a routed query reads the roll-up tables, any other the cube
//! (on SQLite through the spans that can hold its days).

use crate::codec::day_text;
use crate::rollups;
use crate::{Backend, Db, Result, Store, StoreError};
use chrono::NaiveDate;
use istv_aggregate::{route, Column, Disclosure, Query, Row, Tally, Value};
use sqlx::Row as _;

impl Store {
    /// Runs a query: sums of the cube grouped and filtered as asked, folded
    /// into published rows under `disclosure`. A query that a roll-up
    /// covers reads the roll-up's rows in its range (see
    /// [`istv_aggregate::route`]); any other reads the cube.
    pub async fn aggregate(&self, query: &Query, disclosure: Disclosure) -> Result<Vec<Row>> {
        let plan = query.plan();
        let rows = match route(query, &plan) {
            Some(r) => self.read_rollups(&r, &plan).await?,
            None => self.read_cube(&plan).await?,
        };
        Ok(query.fold(rows, disclosure))
    }

    /// The rows of a routed query's scans, as [`Query::fold`] takes them.
    async fn read_rollups(
        &self,
        route: &istv_aggregate::Route,
        plan: &istv_aggregate::Plan,
    ) -> Result<Vec<(Vec<Value>, Tally)>> {
        let mut out = Vec::new();
        for scan in &route.scans {
            let mut ph = self.placeholders();
            let (sql, binds) = rollups::scan_sql(scan, plan, || ph.next());
            let grain = scan.table.grain;
            on_db!(&self.read, pool => {
                let mut q = sqlx::query(&sql);
                for b in &binds {
                    q = match b {
                        rollups::Bind::Text(t) => q.bind(t.as_str()),
                        rollups::Bind::Int(i) => q.bind(*i),
                    };
                }
                for row in q.fetch_all(pool).await? {
                    let mut values = Vec::with_capacity(plan.columns.len());
                    for (i, c) in plan.columns.iter().enumerate() {
                        values.push(if *c == Column::Day {
                            let bucket = row.try_get::<i64, _>(i)?;
                            let day = i32::try_from(bucket).ok().and_then(|b| grain.start(b));
                            let day = day.ok_or_else(|| StoreError::Corrupt {
                                column: "rollup bucket",
                                value: bucket.to_string(),
                            })?;
                            Value::Text(day_text(day))
                        } else if c.codes().is_some() {
                            Value::Text(rollups::decode(*c, row.try_get::<i64, _>(i)?)?)
                        } else if c.is_int() {
                            Value::Int(row.try_get::<i64, _>(i)?)
                        } else {
                            Value::Text(row.try_get::<String, _>(i)?)
                        });
                    }
                    let n = plan.columns.len();
                    let count: Option<i64> = row.try_get(n)?;
                    let keysum: Option<i64> = row.try_get(n + 1)?;
                    out.push((values, Tally { count: count.unwrap_or(0), keysum: keysum.unwrap_or(0) }));
                }
            });
        }
        Ok(out)
    }

    /// The rows of a query read from the cube, as [`Query::fold`] takes
    /// them.
    async fn read_cube(&self, plan: &istv_aggregate::Plan) -> Result<Vec<(Vec<Value>, Tally)>> {
        let mut sql = String::from("SELECT ");
        for c in &plan.columns {
            sql.push_str(c.name());
            sql.push_str(", ");
        }
        sql.push_str("CAST(SUM(count) AS BIGINT), CAST(SUM(keysum) AS BIGINT) FROM ");
        let mut ph = self.placeholders();
        let mut binds: Vec<Value> = Vec::new();
        // A day bound, when there is one, as a condition on `column`.
        let mut bound = |sql: &mut String, column: &str, op: &str, day: Option<NaiveDate>| {
            if let Some(day) = day {
                sql.push_str(&format!(" AND {column} {op} {}", ph.next()));
                binds.push(Value::Text(day_text(day)));
            }
        };
        if self.backend() == Backend::Sqlite && (plan.from.is_some() || plan.to.is_some()) {
            // Only the spans that can hold a day in range are read; CROSS
            // JOIN keeps SQLite from reordering the loops.
            sql.push_str(
                "cube_spans CROSS JOIN cube \
                 ON cube.seq BETWEEN cube_spans.first_seq AND cube_spans.last_seq WHERE 1 = 1",
            );
            bound(&mut sql, "cube_spans.last_day", ">=", plan.from);
            bound(&mut sql, "cube_spans.first_day", "<=", plan.to);
        } else {
            sql.push_str("cube WHERE 1 = 1");
        }
        bound(&mut sql, "day", ">=", plan.from);
        bound(&mut sql, "day", "<=", plan.to);
        for (column, values) in &plan.conditions {
            sql.push_str(&format!(
                " AND {} IN ({})",
                column.name(),
                ph.list(values.len())
            ));
            binds.extend(values.iter().cloned());
        }
        if !plan.columns.is_empty() {
            let names: Vec<&str> = plan.columns.iter().map(|c| c.name()).collect();
            sql.push_str(" GROUP BY ");
            sql.push_str(&names.join(", "));
            // The cube is a log of changes: a key every record of which
            // was corrected away sums to zero and is not a figure.
            sql.push_str(" HAVING SUM(count) <> 0");
        }
        let width = plan.columns.len();
        let rows: Vec<(Vec<Value>, Tally)> = on_db!(&self.read, pool => {
            let mut q = sqlx::query(&sql);
            for b in &binds {
                q = match b {
                    Value::Text(t) => q.bind(t.as_str()),
                    Value::Int(i) => q.bind(*i),
                };
            }
            let mut out = Vec::new();
            for row in q.fetch_all(pool).await? {
                let mut values = Vec::with_capacity(width);
                for (i, c) in plan.columns.iter().enumerate() {
                    values.push(if c.is_int() {
                        Value::Int(row.try_get::<i64, _>(i)?)
                    } else {
                        Value::Text(row.try_get::<String, _>(i)?)
                    });
                }
                let count: Option<i64> = row.try_get(width)?;
                let keysum: Option<i64> = row.try_get(width + 1)?;
                out.push((values, Tally { count: count.unwrap_or(0), keysum: keysum.unwrap_or(0) }));
            }
            out
        });
        Ok(rows)
    }
}
