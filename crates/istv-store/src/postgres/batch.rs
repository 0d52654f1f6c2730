//! A batch on PostgreSQL: one transaction, in these steps:
//!
//! 1. check that the upload is open, or move the stream's positions
//!    (fenced: see [`crate::offsets`]; their row locks come before the
//!    site locks, in partition order);
//! 2. take a transaction-scoped advisory lock per site the batch sends, in
//!    site order, so that batches cannot deadlock ([`lock_sites`]): records
//!    are keyed by site, so batches of different sites never touch the
//!    same records;
//! 3. prefetch the stored records the batch touches: their hashes, then the
//!    full rows of those the batch changes ([`prefetch`]);
//! 4. plan the batch;
//! 5. write the records ([`write_records`]) and upsert the roll-up rows
//!    ([`upsert_rollups`]), each a single statement taking one array per
//!    column (`unnest`);
//! 6. add the batch's changes to the quality tallies
//!    ([`quality_deltas`]) and its counts to the upload, and commit.

use super::site_lock_key;
use crate::batch::{begin_batch, finish_batch, ids_by_site, stamp_id, Source, Stored, StoredHash};
use crate::codec::{
    code, day_number, event_from_row, record_select, records_upsert_tail, HASH_KEYED,
    RECORD_COLUMNS,
};
use crate::portal::quality_deltas;
use crate::rollups;
use crate::Result;
use istv_aggregate::rollup::Part;
use istv_aggregate::{
    cell_to_int, plan_batch_in_upload, BatchOutcome, CubeKey, Event, GeocodeMethod, KeyView,
    RollupDeltas, Tally,
};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;

/// The stored (record id, content hash, keyed or not, written under the
/// stamp `$1`) of the records of site `$2` among the ids `$3`.
const RECORD_HASHES: &str = include_str!("../sql/postgres/record_hashes.sql");

/// Applies a batch on PostgreSQL (see [`crate::Store::apply_batch`]).
pub(crate) async fn apply_batch(
    pool: &PgPool,
    source: Source<'_>,
    events: &[Event],
    mut stored: Stored<'_>,
) -> Result<BatchOutcome> {
    let mut tx = pool.begin().await?;
    begin_batch!(tx, source);
    let stamp = stamp_id!(tx, source.stamp());
    let by_site = ids_by_site(events);
    lock_sites(&mut tx, &by_site).await?;
    prefetch(&mut tx, stamp, &by_site, &mut stored).await?;
    let plan = plan_batch_in_upload(&stored.existing, &stored.same_upload, events);
    write_records(&mut tx, stamp, &plan.upserts).await?;
    upsert_rollups(&mut tx, &plan.deltas).await?;
    let tallies = quality_deltas(&[], &plan.upserts, &stored.existing);
    finish_batch!(tx, plan.outcome, source, tallies)
}

/// Takes the advisory lock of every site of `by_site`, in its (site) order.
async fn lock_sites(
    tx: &mut Transaction<'_, Postgres>,
    by_site: &BTreeMap<&str, Vec<&str>>,
) -> Result<()> {
    for site in by_site.keys() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(site_lock_key(site))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Gathers into `stored` the stored records the batch touches, per site:
/// the hashes of all, then the full rows of those the batch changes.
async fn prefetch(
    tx: &mut Transaction<'_, Postgres>,
    stamp: i64,
    by_site: &BTreeMap<&str, Vec<&str>>,
    stored: &mut Stored<'_>,
) -> Result<()> {
    for (site, ids) in by_site {
        let rows: Vec<(String, i64, bool, bool)> = sqlx::query_as(RECORD_HASHES)
            .bind(stamp)
            .bind(*site)
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
        let rows = rows
            .into_iter()
            .map(|(id, hash, keyed, same_upload)| StoredHash {
                id,
                hash,
                keyed,
                same_upload,
            });
        let changed = stored.hashes(site, rows);
        if changed.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT {} FROM records WHERE site_code = $1 AND record_id = ANY($2)",
            record_select()
        );
        let rows = sqlx::query(&sql)
            .bind(*site)
            .bind(&changed)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            stored.full(event_from_row(&row)?);
        }
    }
    Ok(())
}

/// Writes the plan's records, replacing stored ones: one statement, one
/// array per column.
async fn write_records(tx: &mut Transaction<'_, Postgres>, stamp: i64, u: &[&Event]) -> Result<()> {
    if u.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO records ({}) SELECT s, r, h, $1, d, hr, m, lt, ab, sx, gm, p, c, b, w, l, k, \
         {HASH_KEYED} FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
         $13::int8[], $14::text[], $15::text[], $16::text[], $17::int8[]) \
         AS t(s, r, h, d, hr, m, lt, ab, sx, gm, p, c, b, w, l, k) {}",
        RECORD_COLUMNS.join(", "),
        records_upsert_tail()
    );
    sqlx::query(&sql)
        .bind(stamp)
        .bind(u.iter().map(|e| e.site_code.as_str()).collect::<Vec<_>>())
        .bind(u.iter().map(|e| e.record_id.as_str()).collect::<Vec<_>>())
        .bind(u.iter().map(|e| e.content_hash as i64).collect::<Vec<_>>())
        .bind(
            u.iter()
                .map(|e| day_number(e.assault_date))
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|e| e.assault_hour.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(codes(u, |e| code(AssaultMethod::ALL, &e.method)))
        .bind(codes(u, |e| code(LocationType::ALL, &e.location_type)))
        .bind(codes(u, |e| code(&AgeBand::ALL, &e.age_band)))
        .bind(codes(u, |e| code(Sex::ALL, &e.sex)))
        .bind(codes(u, |e| code(&GeocodeMethod::ALL, &e.geocode_method)))
        .bind(
            u.iter()
                .map(|e| e.precision_m.map(i64::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            u.iter()
                .map(|e| e.cell.map(|c| cell_to_int(Some(c))))
                .collect::<Vec<_>>(),
        )
        .bind(u.iter().map(|e| e.borough.as_deref()).collect::<Vec<_>>())
        .bind(u.iter().map(|e| e.ward.as_deref()).collect::<Vec<_>>())
        .bind(u.iter().map(|e| e.lsoa.as_deref()).collect::<Vec<_>>())
        .bind(
            u.iter()
                .map(|e| i64::from(e.disclosure_key))
                .collect::<Vec<_>>(),
        )
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One column of the records as an array of integers.
fn codes(u: &[&Event], f: impl Fn(&Event) -> i64) -> Vec<i64> {
    u.iter().map(|e| f(e)).collect()
}

/// Adds the plan's changes to every roll-up table: per table one statement,
/// one array per column, each row an upsert.
async fn upsert_rollups(
    tx: &mut Transaction<'_, Postgres>,
    deltas: &[(CubeKey, Tally)],
) -> Result<()> {
    let mut rollup_deltas = RollupDeltas::new();
    for (k, d) in deltas {
        rollup_deltas.add(&KeyView::of_key(k), *d);
    }
    for (table, rows) in rollup_deltas.into_tables() {
        if rows.is_empty() {
            continue;
        }
        let sql = rollups::postgres_upsert_sql(&table);
        let mut q =
            sqlx::query(&sql).bind(rows.iter().map(|r| i64::from(r.bucket)).collect::<Vec<_>>());
        for (i, c) in table.rollup.columns.iter().enumerate() {
            q = if rollups::stored_int(*c) {
                q.bind(
                    rows.iter()
                        .map(|r| rollups::int_part(*c, r.parts[i]))
                        .collect::<Vec<_>>(),
                )
            } else {
                q.bind(
                    rows.iter()
                        .map(|r| part_text(r.parts[i]))
                        .collect::<Vec<_>>(),
                )
            };
        }
        q.bind(rows.iter().map(|r| r.tally.count).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.tally.keysum).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A text key part as an array element (empty when not one).
fn part_text<'a>(p: Part<'a>) -> &'a str {
    match p {
        Part::Text(t) => t,
        _ => "",
    }
}
