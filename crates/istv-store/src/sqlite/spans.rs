//! The SQLite cube's spans (see the SQLite migration 0003): each records
//! that a run of cube rows, by sequence number, holds days in a range, so
//! that a date-range query reads only the spans that can hold its days.
//! A batch widens the latest span or starts one; the check finds rows no
//! span covers and spans that overlap.

use super::rows::Statement;
use crate::codec::day_text;
use crate::Result;
use chrono::NaiveDate;

/// A span (see the SQLite migration 0003) is widened by the next batch
/// while it holds fewer rows than this; after that a batch starts a new one.
const SPAN_ROWS: i64 = 10_000;

/// Cube rows no span covers with their day, and spans reaching into the
/// next one. A row's only candidate is the span starting last at or before
/// it, found through the spans' primary key.
pub(crate) const SPAN_CHECK: &str = include_str!("../sql/sqlite/span_check.sql");

/// Widens the latest span to end at row `?1` and to take in days
/// `?2..=?3`, when it ends just before row `?4` and holds fewer than `?5`
/// rows.
const SPAN_WIDEN: &str = include_str!("../sql/sqlite/span_widen.sql");

/// A new span: rows `?1..=?2`, days `?3..=?4`.
const SPAN_INSERT: &str = include_str!("../sql/sqlite/span_insert.sql");

/// The sequence number of the SQLite cube's last row (0 when empty).
pub(crate) fn last_cube_seq(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Result<i64> {
    let [seq] = Statement::prepare(handle, "SELECT MAX(seq) FROM cube")?
        .first_row(&[])?
        .expect("an aggregate returns a row");
    Ok(seq)
}

/// Records on SQLite that cube rows `first..=last` (sequence numbers) hold
/// days `from..=to`: widens the latest span when the rows follow it and it
/// is small, else starts a span. Spans never overlap.
pub(crate) async fn extend_spans(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    (first, last): (i64, i64),
    from: NaiveDate,
    to: NaiveDate,
) -> Result<()> {
    if last < first {
        return Ok(());
    }
    let (from, to) = (day_text(from), day_text(to));
    let widened = sqlx::query(SPAN_WIDEN)
        .bind(last)
        .bind(&from)
        .bind(&to)
        .bind(first)
        .bind(SPAN_ROWS)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if widened == 0 {
        sqlx::query(SPAN_INSERT)
            .bind(first)
            .bind(last)
            .bind(&from)
            .bind(&to)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
