//! Queries: a routed query reads the roll-up tables, any other counts the
//! records (on SQLite through the spans that can hold its days).

use crate::codec::{day_number, day_text, record_expr};
use crate::rollups;
use crate::{Backend, Db, Result, Store, StoreError};
use chrono::NaiveDate;
use istv_aggregate::{route, Column, Disclosure, Grain, Query, Row, Tally, Value};
use sqlx::Row as _;

impl Store {
    /// Runs a query: counts of the records grouped and filtered as asked,
    /// folded into published rows under `disclosure`. A query that a
    /// roll-up covers reads the roll-up's rows in its range (see
    /// [`istv_aggregate::route`]); any other counts the records table.
    pub async fn aggregate(&self, query: &Query, disclosure: Disclosure) -> Result<Vec<Row>> {
        let plan = query.plan();
        let rows = match route(query, &plan) {
            Some(r) => self.read_rollups(&r, &plan).await?,
            None => self.read_records(&plan).await?,
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
                    let values = answer_values(&row, &plan.columns, grain, "rollup bucket")?;
                    let n = plan.columns.len();
                    let count: Option<i64> = row.try_get(n)?;
                    let keysum: Option<i64> = row.try_get(n + 1)?;
                    out.push((values, Tally { count: count.unwrap_or(0), keysum: keysum.unwrap_or(0) }));
                }
            });
        }
        Ok(out)
    }

    /// The rows of a query counted from the records table, as
    /// [`Query::fold`] takes them: each cube column computed from the
    /// record's columns as the roll-ups' recount computes it.
    async fn read_records(&self, plan: &istv_aggregate::Plan) -> Result<Vec<(Vec<Value>, Tally)>> {
        let mut sql = String::from("SELECT ");
        for c in &plan.columns {
            sql.push_str(&record_expr(*c));
            sql.push_str(", ");
        }
        sql.push_str("COUNT(*), CAST(SUM(rkey) AS BIGINT) FROM ");
        let mut ph = self.placeholders();
        let mut binds: Vec<Value> = Vec::new();
        // A day bound, when there is one, as a condition on `column`.
        let mut bound = |sql: &mut String, column: &str, op: &str, day: Option<NaiveDate>| {
            if let Some(day) = day {
                sql.push_str(&format!(" AND {column} {op} {}", ph.next()));
                binds.push(Value::Int(day_number(day)));
            }
        };
        if self.backend() == Backend::Sqlite && (plan.from.is_some() || plan.to.is_some()) {
            // Only the spans that can hold a day in range are read; CROSS
            // JOIN keeps SQLite from reordering the loops.
            sql.push_str(
                "record_spans CROSS JOIN records \
                 ON records.rid BETWEEN record_spans.first_rid AND record_spans.last_rid \
                 WHERE 1 = 1",
            );
            bound(&mut sql, "record_spans.last_day", ">=", plan.from);
            bound(&mut sql, "record_spans.first_day", "<=", plan.to);
        } else {
            // PostgreSQL finds a date range through `records_day`.
            sql.push_str("records WHERE 1 = 1");
        }
        bound(&mut sql, "records.day", ">=", plan.from);
        bound(&mut sql, "records.day", "<=", plan.to);
        for (column, values) in &plan.conditions {
            sql.push_str(&format!(
                " AND {} IN ({})",
                record_expr(*column),
                ph.list(values.len())
            ));
            binds.extend(values.iter().map(|v| stored_value(*column, v)));
        }
        if !plan.columns.is_empty() {
            let positions: Vec<String> = (1..=plan.columns.len()).map(|i| i.to_string()).collect();
            sql.push_str(" GROUP BY ");
            sql.push_str(&positions.join(", "));
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
                // A records day number is the day grain's bucket.
                let values = answer_values(&row, &plan.columns, Grain::Day, "records.day")?;
                let count: i64 = row.try_get(width)?;
                let keysum: Option<i64> = row.try_get(width + 1)?;
                out.push((values, Tally { count, keysum: keysum.unwrap_or(0) }));
            }
            out
        });
        Ok(rows)
    }
}

/// The grouped columns' values of an answer row (a roll-up scan's or a
/// records count's), in `columns` order: the day read as its bucket at
/// `grain` (`day_column` names it in an error), a coded column's code as
/// its text, integers and texts as they are.
fn answer_values<R>(
    row: &R,
    columns: &[Column],
    grain: Grain,
    day_column: &'static str,
) -> Result<Vec<Value>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut values = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        values.push(if *c == Column::Day {
            let bucket = row.try_get::<i64, _>(i)?;
            let day = i32::try_from(bucket).ok().and_then(|b| grain.start(b));
            let day = day.ok_or_else(|| StoreError::Corrupt {
                column: day_column,
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
    Ok(values)
}

/// A condition's value as [`record_expr`] gives the column: a code, a day
/// number; a value that no code or day stands for matches no record.
fn stored_value(column: Column, v: &Value) -> Value {
    const NONE: i64 = i64::MIN;
    match v {
        Value::Text(t) if column.codes().is_some() => Value::Int(column.code_of(t).unwrap_or(NONE)),
        Value::Text(t) if column == Column::Day => {
            Value::Int(NaiveDate::parse_from_str(t, "%Y-%m-%d").map_or(NONE, day_number))
        }
        v => v.clone(),
    }
}
