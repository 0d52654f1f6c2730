//! The recount check: the cube, the roll-up tables and (on SQLite) the
//! spans against a recount of the records table.

use crate::codec::{cube_key_from_row, recount_key_sql};
use crate::rollups;
use crate::sqlite::spans::SPAN_CHECK;
use crate::{Backend, CheckReport, Db, Mismatch, Result, Store};
use istv_aggregate::{Column, Table};
use sqlx::Row as _;

impl Store {
    /// Compares the cube with a recount from the records table. The
    /// comparison runs in the database, in one snapshot: the records are
    /// counted into cube keys with a GROUP BY, next to the stored counts, and
    /// only the keys that differ come back.
    pub async fn recount_check(&self) -> Result<CheckReport> {
        let keys: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        let keys = keys.join(", ");
        let compare = format!(
            "SELECT {keys}, CAST(SUM(stored) AS BIGINT), CAST(SUM(recounted) AS BIGINT), \
             CAST(SUM(sk) AS BIGINT), CAST(SUM(rk) AS BIGINT) FROM (\
             SELECT {keys}, count AS stored, 0 AS recounted, keysum AS sk, 0 AS rk FROM cube \
             UNION ALL SELECT {}, 0, 1, 0, rkey FROM records) AS u \
             GROUP BY {keys} HAVING SUM(stored) <> SUM(recounted) OR SUM(sk) <> SUM(rk)",
            recount_key_sql()
        );
        let totals = format!(
            "SELECT (SELECT COUNT(*) FROM records), \
             (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM cube), \
             (SELECT COUNT(*) FROM (SELECT 1 FROM cube GROUP BY {keys} \
             HAVING SUM(count) <> 0) AS k)"
        );
        let begin = match self.db {
            Db::Sqlite(_) => "BEGIN",
            Db::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut report = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let (records, cube_total, cube_keys): (i64, i64, i64) =
                sqlx::query_as(&totals).fetch_one(&mut *tx).await?;
            let mut report = CheckReport {
                records: records as u64,
                cube_total,
                cube_keys: cube_keys as u64,
                ..CheckReport::default()
            };
            for row in sqlx::query(&compare).fetch_all(&mut *tx).await? {
                let width = Column::ALL.len();
                report.mismatches.push(Mismatch {
                    key: cube_key_from_row(&row)?,
                    stored: row.try_get(width)?,
                    recounted: row.try_get(width + 1)?,
                    stored_keysum: row.try_get(width + 2)?,
                    recounted_keysum: row.try_get(width + 3)?,
                });
            }
            for table in Table::all() {
                let (differ,): (i64,) = sqlx::query_as(&rollups::check_sql(table, self.backend()))
                    .fetch_one(&mut *tx)
                    .await?;
                report.rollups.push((table.name(), differ as u64));
            }
            if self.backend() == Backend::Sqlite {
                let (unspanned, overlapping): (i64, i64) =
                    sqlx::query_as(SPAN_CHECK).fetch_one(&mut *tx).await?;
                report.unspanned_rows = unspanned as u64;
                report.overlapping_spans = overlapping as u64;
            }
            tx.commit().await?;
            report
        });
        report.mismatches.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(report)
    }
}
