//! The recount check: the roll-up tables and (on SQLite) the records'
//! spans against a recount of the records table.

use crate::rollups;
use crate::sqlite::spans::SPAN_CHECK;
use crate::{Backend, CheckReport, Db, Result, Store};
use istv_aggregate::Table;

impl Store {
    /// Compares every roll-up table with a recount from the records table
    /// and, on SQLite, checks that the spans cover every record. The
    /// comparison runs in the database, in one snapshot: per table the
    /// records are counted into its rows with a GROUP BY, next to the
    /// stored ones, and only the number of rows that differ comes back.
    pub async fn recount_check(&self) -> Result<CheckReport> {
        let begin = match self.db {
            Db::Sqlite(_) => "BEGIN",
            Db::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let report = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let (records,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM records").fetch_one(&mut *tx).await?;
            let mut report = CheckReport {
                records: records as u64,
                ..CheckReport::default()
            };
            for table in Table::all() {
                let (differ,): (i64,) = sqlx::query_as(&rollups::check_sql(table, self.backend()))
                    .fetch_one(&mut *tx)
                    .await?;
                report.rollups.push((table.name(), differ as u64));
            }
            if self.backend() == Backend::Sqlite {
                let (unspanned, overlapping): (i64, i64) =
                    sqlx::query_as(SPAN_CHECK).fetch_one(&mut *tx).await?;
                report.unspanned_records = unspanned as u64;
                report.overlapping_spans = overlapping as u64;
            }
            tx.commit().await?;
            report
        });
        Ok(report)
    }
}
