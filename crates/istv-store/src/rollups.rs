//! Roll-up tables in SQL (see `istv_aggregate::rollup`): their definitions,
//! how they are built from the records table, how a batch's changes are
//! upserted, how a routed query reads them, and how `istv check` recounts
//! them. The statements are generated from the declared roll-ups, so adding
//! one is a line in `istv_aggregate::ROLLUPS`: a store builds a declared
//! table it lacks from its records when it connects.

use crate::codec::record_expr;
use crate::sqlite::rows::Param;
use crate::Backend;
use istv_aggregate::rollup::{Part, RollupRow, Scan, MAX_COLUMNS};
use istv_aggregate::{Column, Grain, Plan, Table, Value};

/// What a built table was built as; a table recorded with another
/// definition (its key changed) is rebuilt. Version 2 stores the columns
/// with [`Column::codes`] as their codes.
pub(crate) fn definition(table: &Table) -> String {
    format!("v2 {}", table.key_columns().join(","))
}

/// True when a roll-up table stores the column as an integer: an integer
/// column, or a text one with a fixed set of values, by its code.
pub(crate) fn stored_int(c: Column) -> bool {
    c.is_int() || c.codes().is_some()
}

/// A key part as a roll-up table stores it, for a column [`stored_int`]
/// holds (0 when absent).
pub(crate) fn int_part(c: Column, p: Part<'_>) -> i64 {
    match p {
        Part::Absent => 0,
        Part::Int(i) => i,
        Part::Text(t) => c
            .code_of(t)
            .expect("a key part of a coded column is its enumeration's text"),
    }
}

/// A stored code read back as its text.
pub(crate) fn decode(c: Column, code: i64) -> Result<String, crate::StoreError> {
    let text = c
        .codes()
        .and_then(|texts| texts.get(usize::try_from(code).ok()?));
    text.map(|t| (*t).to_owned())
        .ok_or_else(|| crate::StoreError::Corrupt {
            column: c.name(),
            value: code.to_string(),
        })
}

fn column_type(c: Column, backend: Backend) -> &'static str {
    match (stored_int(c), backend) {
        (true, Backend::Sqlite) => "INTEGER",
        (true, Backend::Postgres) => "BIGINT",
        (false, _) => "TEXT",
    }
}

/// `CREATE TABLE` for a roll-up table: the bucket, the kept columns, the
/// tally; keyed in [`Table::key_columns`] order.
pub(crate) fn create_sql(table: &Table, backend: Backend) -> String {
    let int = column_type(Column::Hour, backend);
    let mut cols = vec![format!("bucket {int} NOT NULL")];
    for c in table.rollup.columns {
        cols.push(format!(
            "{} {} NOT NULL",
            c.name(),
            column_type(*c, backend)
        ));
    }
    cols.push(format!("count {int} NOT NULL"));
    cols.push(format!("keysum {int} NOT NULL"));
    cols.push(format!("PRIMARY KEY ({})", table.key_columns().join(", ")));
    let tail = match backend {
        // Rows are read by key range: kept in key order, no second b-tree.
        Backend::Sqlite => " WITHOUT ROWID",
        // Room on each page for the updated row, so that an upsert can be
        // a heap-only update that touches no index page.
        Backend::Postgres => " WITH (fillfactor = 50)",
    };
    format!("CREATE TABLE {} ({}){tail}", table.name(), cols.join(", "))
}

/// The month bucket of a records row's day number, in SQL.
fn month_bucket(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "(CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) * 12 \
             + CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) - 1)"
        }
        Backend::Postgres => {
            "CAST(EXTRACT(YEAR FROM DATE '1970-01-01' + day) * 12 \
             + EXTRACT(MONTH FROM DATE '1970-01-01' + day) - 1 AS BIGINT)"
        }
    }
}

/// The bucket of a records row's day number, in SQL.
fn bucket_expr(grain: Grain, backend: Backend) -> String {
    match grain {
        Grain::Day => "CAST(day AS BIGINT)".into(),
        Grain::Month => month_bucket(backend).into(),
        // Day 0 (1970-01-01) was a Thursday, 3 days from Monday; `%` keeps
        // the sign of a day before it.
        Grain::MonthWeekday => format!("({} * 7 + (day % 7 + 10) % 7)", month_bucket(backend)),
    }
}

/// The table's key of a records row, as SQL expressions in the table's
/// column order (bucket first, then [`istv_aggregate::Rollup::columns`]):
/// [`record_expr`] gives the coded columns as their codes.
fn record_key_exprs(table: &Table, backend: Backend) -> Vec<String> {
    let mut exprs = vec![bucket_expr(table.grain, backend)];
    exprs.extend(table.rollup.columns.iter().map(|c| record_expr(*c)));
    exprs
}

fn column_names(table: &Table) -> Vec<&'static str> {
    let mut names = vec!["bucket"];
    names.extend(table.rollup.columns.iter().map(|c| c.name()));
    names
}

/// Fills an empty roll-up table from the records table.
pub(crate) fn backfill_sql(table: &Table, backend: Backend) -> String {
    let exprs = record_key_exprs(table, backend);
    let groups: Vec<String> = (1..=exprs.len()).map(|i| i.to_string()).collect();
    format!(
        "INSERT INTO {} ({}, count, keysum) SELECT {}, COUNT(*), SUM(rkey) FROM records GROUP BY {}",
        table.name(),
        column_names(table).join(", "),
        exprs.join(", "),
        groups.join(", ")
    )
}

/// The number of rows of a roll-up table that differ from a recount of the
/// records (a row missing on either side counts).
pub(crate) fn check_sql(table: &Table, backend: Backend) -> String {
    let names = column_names(table).join(", ");
    format!(
        "SELECT COUNT(*) FROM (SELECT {names} FROM (\
         SELECT {names}, count AS sc, keysum AS sk, 0 AS rc, 0 AS rk FROM {table} \
         UNION ALL SELECT {exprs}, 0, 0, 1, rkey FROM records) AS u \
         GROUP BY {names} HAVING SUM(sc) <> SUM(rc) OR SUM(sk) <> SUM(rk)) AS d",
        table = table.name(),
        exprs = record_key_exprs(table, backend).join(", "),
    )
}

/// Adds one row's change on SQLite (parameters: [`upsert_params`]).
pub(crate) fn sqlite_upsert_sql(table: &Table) -> String {
    let names = column_names(table);
    let marks = vec!["?"; names.len() + 2].join(", ");
    format!(
        "INSERT INTO {t} ({}, count, keysum) VALUES ({marks}) ON CONFLICT ({}) DO UPDATE SET \
         count = {t}.count + excluded.count, keysum = {t}.keysum + excluded.keysum",
        names.join(", "),
        table.key_columns().join(", "),
        t = table.name(),
    )
}

fn part_param(c: Column, p: Part<'_>) -> Param<'_> {
    match p {
        Part::Text(t) if !stored_int(c) => Param::Text(t),
        Part::Absent => Param::Null,
        _ => Param::Int(int_part(c, p)),
    }
}

/// The parameters of [`sqlite_upsert_sql`] for one row.
pub(crate) fn upsert_params<'r>(table: &Table, row: &RollupRow<'r>) -> Vec<Param<'r>> {
    let mut params = Vec::with_capacity(MAX_COLUMNS + 3);
    params.push(Param::Int(i64::from(row.bucket)));
    let columns = table.rollup.columns;
    params.extend(
        columns
            .iter()
            .zip(row.parts)
            .map(|(c, p)| part_param(*c, p)),
    );
    params.push(Param::Int(row.tally.count));
    params.push(Param::Int(row.tally.keysum));
    params
}

/// Adds a batch's changes to one table on PostgreSQL: one array per column
/// (bucket, the kept columns, count, keysum), each row an upsert.
pub(crate) fn postgres_upsert_sql(table: &Table) -> String {
    let names = column_names(table);
    let mut arrays = vec!["$1::int8[]".to_owned()];
    for (i, c) in table.rollup.columns.iter().enumerate() {
        let ty = if stored_int(*c) { "int8" } else { "text" };
        arrays.push(format!("${}::{ty}[]", i + 2));
    }
    let n = names.len();
    arrays.push(format!("${}::int8[]", n + 1));
    arrays.push(format!("${}::int8[]", n + 2));
    format!(
        "INSERT INTO {t} ({}, count, keysum) SELECT * FROM unnest({}) \
         ON CONFLICT ({}) DO UPDATE SET \
         count = {t}.count + excluded.count, keysum = {t}.keysum + excluded.keysum",
        names.join(", "),
        arrays.join(", "),
        table.key_columns().join(", "),
        t = table.name(),
    )
}

/// A bound value of a scan.
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// The statement reading one scan of a routed query: sums of the tally
/// grouped by the plan's columns (the day read as the bucket), over the
/// scan's buckets and the plan's conditions. `placeholder` numbers or not.
pub(crate) fn scan_sql(
    scan: &Scan,
    plan: &Plan,
    mut placeholder: impl FnMut() -> String,
) -> (String, Vec<Bind>) {
    let name = |c: &Column| {
        if *c == Column::Day {
            "bucket"
        } else {
            c.name()
        }
    };
    let names: Vec<&str> = plan.columns.iter().map(name).collect();
    let mut sql = String::from("SELECT ");
    for n in &names {
        sql.push_str(n);
        sql.push_str(", ");
    }
    sql.push_str(&format!(
        "CAST(SUM(count) AS BIGINT), CAST(SUM(keysum) AS BIGINT) FROM {} WHERE 1 = 1",
        scan.table.name()
    ));
    let mut binds = Vec::new();
    for (op, bound) in [(">=", scan.from), ("<=", scan.to)] {
        if let Some(b) = bound {
            sql.push_str(&format!(" AND bucket {op} {}", placeholder()));
            binds.push(Bind::Int(i64::from(b)));
        }
    }
    for (column, values) in &plan.conditions {
        let marks: Vec<String> = values.iter().map(|_| placeholder()).collect();
        sql.push_str(&format!(" AND {} IN ({})", column.name(), marks.join(", ")));
        binds.extend(values.iter().map(|v| match v {
            Value::Int(i) => Bind::Int(*i),
            // A value no code stands for is in no row.
            Value::Text(t) if column.codes().is_some() => {
                Bind::Int(column.code_of(t).unwrap_or(-1))
            }
            Value::Text(t) => Bind::Text(t.clone()),
        }));
    }
    if !names.is_empty() {
        sql.push_str(" GROUP BY ");
        sql.push_str(&names.join(", "));
    }
    sql.push_str(" HAVING SUM(count) <> 0");
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use istv_aggregate::ROLLUPS;

    #[test]
    fn statements_name_every_key_column_once() {
        for table in Table::all() {
            let key = table.key_columns();
            assert_eq!(key.len(), table.rollup.columns.len() + 1);
            let create = create_sql(table, Backend::Sqlite);
            assert!(create.starts_with(&format!("CREATE TABLE {} (", table.name())));
            assert!(create.contains(&format!("PRIMARY KEY ({})", key.join(", "))));
            for c in table.rollup.columns {
                assert_eq!(
                    create.matches(&format!("{} ", c.name())).count(),
                    1,
                    "{create}"
                );
            }
        }
        // Names are unique.
        let mut names: Vec<String> = Table::all().iter().map(Table::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Table::all().len());
        assert!(ROLLUPS
            .iter()
            .all(|r| r.columns.len() <= MAX_COLUMNS && r.lead <= r.columns.len()));
    }
}
