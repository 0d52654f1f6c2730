//! The SQLite records' spans (see the SQLite migration 0014): each records
//! that a run of records, by rowid, holds days in a range, so that a
//! date-range query reads only the spans that can hold its days. A batch
//! widens the latest span over its new records or starts one, and takes a
//! corrected record's new day into the span that holds it; the check finds
//! records no span covers and spans that overlap.

use crate::codec::day_number;
use crate::Result;
use chrono::NaiveDate;

/// A span is widened by the next batch while it holds fewer records than
/// this; after that a batch starts a new one.
const SPAN_ROWS: i64 = 10_000;

/// Records no span covers with their day, and spans reaching into the next
/// one. A record's only candidate is the span starting last at or before
/// it, found through the spans' primary key.
pub(crate) const SPAN_CHECK: &str = include_str!("../sql/sqlite/span_check.sql");

/// Widens the latest span to end at record `?1` and to take in days
/// `?2..=?3`, when it ends just before record `?4` and holds fewer than
/// `?5` records.
const SPAN_WIDEN: &str = include_str!("../sql/sqlite/span_widen.sql");

/// A new span: records `?1..=?2`, days `?3..=?4`.
const SPAN_INSERT: &str = include_str!("../sql/sqlite/span_insert.sql");

/// Widens the span holding record `?1` to take in day `?2` (the record's
/// day after a correction).
pub(crate) const SPAN_TAKE_DAY: &str = include_str!("../sql/sqlite/span_take_day.sql");

/// Records on SQLite that records `first..=last` (rowids, appended by this
/// batch) hold days `from..=to`: widens the latest span when they follow
/// it and it is small, else starts a span. Spans never overlap.
pub(crate) async fn extend_spans(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    (first, last): (i64, i64),
    from: NaiveDate,
    to: NaiveDate,
) -> Result<()> {
    if last < first {
        return Ok(());
    }
    let (from, to) = (day_number(from), day_number(to));
    let widened = sqlx::query(SPAN_WIDEN)
        .bind(last)
        .bind(from)
        .bind(to)
        .bind(first)
        .bind(SPAN_ROWS)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if widened == 0 {
        sqlx::query(SPAN_INSERT)
            .bind(first)
            .bind(last)
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
