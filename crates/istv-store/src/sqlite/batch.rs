//! A batch on SQLite: one `BEGIN IMMEDIATE` transaction, run under the
//! store's write lock (taken by `Store::apply_batch`), in these steps:
//!
//! 1. check that the upload is open ([`check_upload_open`]);
//! 2. try the keys sent once as new records ([`try_new`]);
//! 3. prefetch the stored records the rest touches ([`prefetch`]): their
//!    hashes ([`stored_hashes`]), then the full rows of those the batch
//!    changes ([`fetch_changed`]);
//! 4. plan the rest ([`plan_rest`]);
//! 5. on the connection's own handle ([`write_rows`]): write the records
//!    ([`write_records`]), append the cube rows ([`append_cube`]) and
//!    upsert the roll-up rows ([`upsert_rollups`]);
//! 6. extend the cube's spans over the appended rows
//!    ([`extend_spans`]);
//! 7. add the counts to the upload and commit.
//!
//! Records, cube rows and roll-up rows are written one row at a time by a
//! statement prepared once per batch on the connection's own handle (see
//! [`super::rows`]), inside the same sqlx transaction.

use super::rows::Statement;
use super::spans::{extend_spans, last_cube_seq};
use crate::batch::{check_open, finish_batch, ids_by_site, Stored};
use crate::codec::{
    cube_columns, event_from_row, record_params, records_upsert_tail, write_day, CubeRow,
    Placeholders, RECORD_COLUMNS,
};
use crate::rollups;
use crate::{Backend, Result, UploadId};
use chrono::NaiveDate;
use istv_aggregate::{
    plan_batch_in_upload, BatchOutcome, BatchPlan, CubeKey, Event, KeyView, RollupDeltas, Tally,
};
use sqlx::sqlite::{LockedSqliteHandle, SqlitePool};
use sqlx::{Sqlite, Transaction};

/// After this many keys of a batch turn out to be stored already, the rest
/// of the batch is looked up instead of tried as new: a re-sent file then
/// pays for a lookup, not for a failed insert and a lookup.
const STORED_BEFORE_LOOKUP: usize = 64;

/// The content hash of a stored record and whether the upload `?1` last
/// wrote it: one point lookup of (`?2`, `?3`).
const RECORD_HASH: &str = include_str!("../sql/sqlite/record_hash.sql");

/// Applies a batch on SQLite (see [`crate::Store::apply_batch`]); the
/// caller holds the write lock.
pub(crate) async fn apply_batch(
    pool: &SqlitePool,
    upload: &UploadId,
    events: &[Event],
    mut stored: Stored<'_>,
) -> Result<BatchOutcome> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    check_upload_open(&mut tx, upload).await?;
    try_new(&mut tx, upload, events, &mut stored).await?;
    prefetch(&mut tx, upload, events, &mut stored).await?;
    let (new, plan) = plan_rest(events, &stored);
    let mut outcome = plan.outcome;
    outcome.accepted += new.len() as u64;
    let appended = write_rows(&mut tx, upload, &new, &plan).await?;
    if let Some((first, last)) = day_range(&new, &plan) {
        extend_spans(&mut tx, appended, first, last).await?;
    }
    finish_batch!(tx, outcome, upload)
}

/// Fails unless the upload exists and is not finished.
async fn check_upload_open(tx: &mut Transaction<'_, Sqlite>, upload: &UploadId) -> Result<()> {
    let state: Option<(i64,)> = sqlx::query_as("SELECT completed FROM uploads WHERE id = ?1")
        .bind(upload.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    check_open(upload, state)
}

/// Keys sent once are first tried as new records: the insert finds a
/// stored one as a lookup would, and most keys of most uploads are new.
/// Keys it finds stored, and keys sent more than once, go through the
/// prefetch and the plan. Marks in `stored` the keys it inserts.
async fn try_new(
    tx: &mut Transaction<'_, Sqlite>,
    upload: &UploadId,
    events: &[Event],
    stored: &mut Stored<'_>,
) -> Result<()> {
    let mut handle = tx.lock_handle().await?;
    let mut try_new = Statement::prepare(
        &mut handle,
        &format!(
            "INSERT INTO records ({}) VALUES ({}) \
             ON CONFLICT (site_code, record_id) DO NOTHING",
            RECORD_COLUMNS.join(", "),
            Placeholders::new(Backend::Sqlite).list(RECORD_COLUMNS.len()),
        ),
    )?;
    let mut day = String::new();
    let mut found = 0;
    for (e, &at) in events.iter().zip(&stored.slot) {
        if found == STORED_BEFORE_LOOKUP {
            break;
        }
        let sent = &mut stored.sents[at as usize];
        if !sent.once {
            continue;
        }
        write_day(&mut day, e.assault_date);
        if try_new.execute_changes(&record_params(e, upload, &day))? == 1 {
            sent.inserted = true;
        } else {
            found += 1;
        }
    }
    Ok(())
}

/// Prefetches the stored records the batch touches (those not inserted
/// by [`try_new`]) into `stored`, in two steps per site: hashes of all
/// (point lookups on the raw handle), then full rows of those the batch
/// changes.
async fn prefetch(
    tx: &mut Transaction<'_, Sqlite>,
    upload: &UploadId,
    events: &[Event],
    stored: &mut Stored<'_>,
) -> Result<()> {
    let not_inserted = events
        .iter()
        .enumerate()
        .filter(|&(i, _)| !stored.inserted(i))
        .map(|(_, e)| e);
    let by_site = ids_by_site(not_inserted);
    for (site, ids) in &by_site {
        let rows = stored_hashes(tx, upload, site, ids).await?;
        let changed = stored.hashes(site, rows);
        if changed.is_empty() {
            continue;
        }
        fetch_changed(tx, site, &changed, stored).await?;
    }
    Ok(())
}

/// The stored (record id, content hash, written by this upload) of the
/// site's `ids` that are stored, by point lookups on the raw handle.
async fn stored_hashes(
    tx: &mut Transaction<'_, Sqlite>,
    upload: &UploadId,
    site: &str,
    ids: &[&str],
) -> Result<Vec<(String, i64, bool)>> {
    let mut rows = Vec::new();
    let mut handle = tx.lock_handle().await?;
    let mut lookup = Statement::prepare(&mut handle, RECORD_HASH)?;
    for id in ids {
        let params = [upload.as_str().into(), site.into(), (*id).into()];
        if let Some([hash, same]) = lookup.first_row(&params)? {
            rows.push((id.to_string(), hash, same != 0));
        }
    }
    Ok(rows)
}

/// Reads the full stored rows of the site's records the batch changes into
/// `stored`.
async fn fetch_changed(
    tx: &mut Transaction<'_, Sqlite>,
    site: &str,
    changed: &[String],
    stored: &mut Stored<'_>,
) -> Result<()> {
    let sql = format!(
        "SELECT {} FROM records WHERE site_code = ?1 \
         AND record_id IN (SELECT value FROM json_each(?2))",
        RECORD_COLUMNS.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(site)
        .bind(json_strings(changed.iter().map(String::as_str)))
        .fetch_all(&mut **tx)
        .await?;
    for row in rows {
        stored.full(event_from_row(&row)?);
    }
    Ok(())
}

/// The events inserted as new, and the plan of the rest. Keys inserted as
/// new are sent once: the plan of the rest is the plan of the whole batch
/// without them.
fn plan_rest<'a>(events: &'a [Event], stored: &Stored<'_>) -> (Vec<&'a Event>, BatchPlan<'a>) {
    let mut new: Vec<&Event> = Vec::with_capacity(events.len());
    let mut rest: Vec<&Event> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if stored.inserted(i) {
            new.push(e);
        } else {
            rest.push(e);
        }
    }
    let plan = plan_batch_in_upload(&stored.existing, &stored.same_upload, rest.iter().copied());
    (new, plan)
}

/// Writes the batch on the connection's own handle: the plan's records,
/// the cube rows, the roll-up rows. Returns the sequence numbers of the
/// cube rows the batch appends.
async fn write_rows(
    tx: &mut Transaction<'_, Sqlite>,
    upload: &UploadId,
    new: &[&Event],
    plan: &BatchPlan<'_>,
) -> Result<(i64, i64)> {
    let mut handle = tx.lock_handle().await?;
    write_records(&mut handle, upload, &plan.upserts)?;
    let (appended, rollup_deltas) = append_cube(&mut handle, new, &plan.deltas)?;
    upsert_rollups(&mut handle, rollup_deltas)?;
    Ok(appended)
}

/// Writes the plan's records, replacing stored ones.
fn write_records(
    handle: &mut LockedSqliteHandle<'_>,
    upload: &UploadId,
    upserts: &[&Event],
) -> Result<()> {
    let records_sql = format!(
        "INSERT INTO records ({}) VALUES ({}) {}",
        RECORD_COLUMNS.join(", "),
        Placeholders::new(Backend::Sqlite).list(RECORD_COLUMNS.len()),
        records_upsert_tail()
    );
    let mut insert = Statement::prepare(handle, &records_sql)?;
    let mut day = String::new();
    for e in upserts {
        write_day(&mut day, e.assault_date);
        insert.execute(&record_params(e, upload, &day))?;
    }
    Ok(())
}

/// Appends a cube row per new record (+1 under its key) and per planned
/// change; returns the sequence numbers of the rows appended (first, last;
/// last < first when none) and the same changes summed per roll-up row.
fn append_cube<'k>(
    handle: &mut LockedSqliteHandle<'_>,
    new: &[&'k Event],
    deltas: &'k [(CubeKey, Tally)],
) -> Result<((i64, i64), RollupDeltas<'k>)> {
    let columns = cube_columns();
    let cube_sql = format!(
        "INSERT INTO cube ({}) VALUES ({})",
        columns.join(", "),
        Placeholders::new(Backend::Sqlite).list(columns.len())
    );
    let before = last_cube_seq(handle)?;
    let mut append = Statement::prepare(handle, &cube_sql)?;
    let mut day = String::new();
    let mut rollup_deltas = RollupDeltas::new();
    let rows = new.iter().map(|&e| (KeyView::of_event(e), Tally::of(e)));
    let rows = rows.chain(deltas.iter().map(|(k, d)| (KeyView::of_key(k), *d)));
    for (key, delta) in rows {
        write_day(&mut day, key.day);
        append.execute(&CubeRow(key).params(&day, delta))?;
        rollup_deltas.add(&key, delta);
    }
    drop(append);
    Ok(((before + 1, last_cube_seq(handle)?), rollup_deltas))
}

/// Adds the batch's changes to every roll-up table, one upsert per row.
fn upsert_rollups(
    handle: &mut LockedSqliteHandle<'_>,
    rollup_deltas: RollupDeltas<'_>,
) -> Result<()> {
    for (table, rows) in rollup_deltas.into_tables() {
        if rows.is_empty() {
            continue;
        }
        let mut upsert = Statement::prepare(handle, &rollups::sqlite_upsert_sql(&table))?;
        for row in &rows {
            upsert.execute(&rollups::upsert_params(&table, row))?;
        }
    }
    Ok(())
}

/// The first and last day of the cube rows the batch appends, if any.
fn day_range(new: &[&Event], plan: &BatchPlan<'_>) -> Option<(NaiveDate, NaiveDate)> {
    let days = new.iter().map(|e| (e.assault_date, e.assault_date));
    let days = days.chain(plan.day_range());
    days.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON array of strings.
fn json_strings<'s>(items: impl Iterator<Item = &'s str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, s);
    }
    out.push(']');
    out
}
