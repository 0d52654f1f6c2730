//! A batch on SQLite: one `BEGIN IMMEDIATE` transaction, run under the
//! store's write lock (taken by `Store::apply_batch`), in these steps:
//!
//! 1. check that the upload is open, or move the stream's positions
//!    (fenced: see [`crate::offsets`]);
//! 2. look every key the batch sends up by fingerprint ([`look_up`]):
//!    a key sent once and not stored is appended as a new record there and
//!    then; for stored keys, their content hashes, then the full rows of
//!    those the batch changes ([`fetch_changed`]);
//! 3. plan the rest ([`plan_rest`]);
//! 4. on the connection's own handle ([`write_rows`]): write the planned
//!    records ([`write_records`]; a corrected record's new day goes into
//!    the span that holds it), upsert the roll-up rows
//!    ([`upsert_rollups`]) and merge the recent fingerprints if there are
//!    enough ([`RecordIds::merge_if_full`]);
//! 5. extend the records' spans over the appended records
//!    ([`extend_spans`]);
//! 6. add the batch's changes to the quality tallies
//!    ([`quality_deltas`]) and its counts to the upload, and commit.
//!
//! Records are a heap in arrival order, found by (site, record id) through
//! their fingerprints (see [`super::identity`]). Records and roll-up rows
//! are written one row at a time by a statement prepared once per batch on
//! the connection's own handle (see [`super::rows`]), inside the same sqlx
//! transaction.

use super::identity::{RecordIds, RECORD_LOOKUP};
use super::rows::{Param, Statement};
use super::spans::{extend_spans, SPAN_TAKE_DAY};
use crate::batch::{begin_batch, finish_batch, stamp_id, Source, Stored, StoredHash};
use crate::codec::{
    day_number, event_from_row, record_params, record_select, HASH_KEYED, RECORD_COLUMNS,
};
use crate::portal::quality_deltas;
use crate::rollups;
use crate::Result;
use chrono::NaiveDate;
use istv_aggregate::{
    plan_batch_in_upload, BatchOutcome, BatchPlan, Event, KeyView, RollupDeltas, Tally,
};
use sqlx::sqlite::{LockedSqliteHandle, SqlitePool};
use sqlx::{Sqlite, Transaction};
use std::collections::{BTreeMap, HashMap};

/// The rowid of each stored record a batch may write, by (site, record id).
type Rids<'a> = HashMap<(&'a str, &'a str), i64, foldhash::fast::RandomState>;

/// Applies a batch on SQLite (see [`crate::Store::apply_batch`]); the
/// caller holds the write lock.
pub(crate) async fn apply_batch(
    pool: &SqlitePool,
    ids: &RecordIds,
    source: Source<'_>,
    events: &[Event],
    mut stored: Stored<'_>,
) -> Result<BatchOutcome> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    begin_batch!(tx, source);
    let stamp = stamp_id!(tx, source.stamp());
    let mut next_rid: (i64,) = sqlx::query_as("SELECT COALESCE(MAX(rid), 0) + 1 FROM records")
        .fetch_one(&mut *tx)
        .await?;
    let first_rid = next_rid.0;
    let (mut rids, changed) = look_up(&mut tx, ids, stamp, &mut stored, &mut next_rid.0).await?;
    fetch_changed(&mut tx, &changed, &mut stored).await?;
    let (new, plan) = plan_rest(events, &stored);
    let mut outcome = plan.outcome;
    outcome.accepted += new.len() as u64;
    let (last_rid, inserted_days) =
        write_rows(&mut tx, ids, stamp, &new, &plan, &mut rids, next_rid.0).await?;
    let days = new
        .iter()
        .fold(inserted_days, |r, e| take_in(r, e.assault_date));
    if let Some((from, to)) = days {
        extend_spans(&mut tx, (first_rid, last_rid), from, to).await?;
    }
    let tallies = quality_deltas(&new, &plan.upserts, &stored.existing);
    finish_batch!(tx, outcome, source, tallies)
}

/// `INSERT` of a record with its rowid: the record's columns as `?1`..,
/// the rowid last.
fn insert_record_sql() -> String {
    let values: Vec<String> = (1..=RECORD_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO records (rid, {}) VALUES (?{}, {})",
        RECORD_COLUMNS.join(", "),
        RECORD_COLUMNS.len() + 1,
        values.join(", "),
    )
}

/// `UPDATE` of a stored record by rowid: the record's columns as `?1`..
/// (site and record id only checked), the rowid last.
fn update_record_sql() -> String {
    let set: Vec<String> = RECORD_COLUMNS[2..]
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 3))
        .collect();
    format!(
        "UPDATE records SET {} WHERE rid = ?{} AND site_code = ?1 AND record_id = ?2",
        set.join(", "),
        RECORD_COLUMNS.len() + 1,
    )
}

/// A record's row and its rowid, in the order of [`insert_record_sql`] and
/// [`update_record_sql`].
fn with_rid<'p>(row: [Param<'p>; 18], rid: i64) -> [Param<'p>; 19] {
    std::array::from_fn(|i| if i < 18 { row[i] } else { rid.into() })
}

/// Looks up by fingerprint every key the batch sends. A key sent once and
/// not stored is appended as a new record at once (most keys of most
/// uploads are new, and its row is at hand) and marked inserted in
/// `stored`; a stored key's content hash goes to `stored`. Returns the
/// rowids of the stored keys and those of the changed ones, whose full
/// rows the plan needs.
async fn look_up<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &RecordIds,
    stamp: i64,
    stored: &mut Stored<'a>,
    next_rid: &mut i64,
) -> Result<(Rids<'a>, Vec<i64>)> {
    let mut rids = Rids::default();
    let mut hashes: BTreeMap<&'a str, Vec<StoredHash>> = BTreeMap::new();
    {
        let mut handle = tx.lock_handle().await?;
        let [mut lookup, mut insert, mut add] = Statement::prepare_all(
            &mut handle,
            [RECORD_LOOKUP, &insert_record_sql(), RecordIds::ADD_RECENT],
        )?;
        for sent in stored.sents.iter_mut() {
            let e = sent.first;
            let (site, id) = (e.site_code.as_str(), e.record_id.as_str());
            let fp = ids.fingerprint(site, id);
            let params = [stamp.into(), fp.into(), site.into(), id.into()];
            if let Some([rid, hash, kind, same]) = lookup.first_row::<4>(&params)? {
                rids.insert((site, id), rid);
                hashes.entry(site).or_default().push(StoredHash {
                    id: id.to_owned(),
                    hash,
                    keyed: kind == HASH_KEYED,
                    same_upload: same != 0,
                });
            } else if sent.once {
                insert.execute(&with_rid(record_params(e, stamp), *next_rid))?;
                add.execute(&[fp.into(), (*next_rid).into()])?;
                *next_rid += 1;
                sent.inserted = true;
            }
        }
    }
    let mut changed = Vec::new();
    for (site, rows) in hashes {
        for id in stored.hashes(site, rows) {
            changed.push(rids[&(site, id.as_str())]);
        }
    }
    Ok((rids, changed))
}

/// Reads the full stored rows of the records the batch changes into
/// `stored`.
async fn fetch_changed(
    tx: &mut Transaction<'_, Sqlite>,
    changed: &[i64],
    stored: &mut Stored<'_>,
) -> Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT {} FROM records WHERE rid IN (SELECT value FROM json_each(?1))",
        record_select()
    );
    let list = serde_json::to_string(changed).expect("integers serialise");
    let rows = sqlx::query(&sql).bind(list).fetch_all(&mut **tx).await?;
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
/// the roll-up rows, then merges the recent fingerprints if due. Returns
/// the rowid of the last record stored and the days of the records the
/// plan appended (see [`write_records`]).
async fn write_rows<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &RecordIds,
    stamp: i64,
    new: &[&Event],
    plan: &BatchPlan<'a>,
    rids: &mut Rids<'a>,
    next_rid: i64,
) -> Result<(i64, Option<(NaiveDate, NaiveDate)>)> {
    let mut handle = tx.lock_handle().await?;
    let written = write_records(&mut handle, ids, stamp, &plan.upserts, rids, next_rid)?;
    let mut rollup_deltas = RollupDeltas::new();
    for &e in new {
        rollup_deltas.add(&KeyView::of_event(e), Tally::of(e));
    }
    for (k, d) in &plan.deltas {
        rollup_deltas.add(&KeyView::of_key(k), *d);
    }
    upsert_rollups(&mut handle, rollup_deltas)?;
    ids.merge_if_full(&mut handle)?;
    Ok(written)
}

/// Writes the plan's records: a stored one in place, its day taken into
/// the span that holds it; a new one appended with its fingerprint.
/// Returns the rowid of the last record stored (`next_rid - 1` when none is
/// appended) and the first and last day of those appended, if any.
fn write_records<'a>(
    handle: &mut LockedSqliteHandle<'_>,
    ids: &RecordIds,
    stamp: i64,
    upserts: &[&'a Event],
    rids: &mut Rids<'a>,
    mut next_rid: i64,
) -> Result<(i64, Option<(NaiveDate, NaiveDate)>)> {
    let mut days: Option<(NaiveDate, NaiveDate)> = None;
    if upserts.is_empty() {
        return Ok((next_rid - 1, days));
    }
    let [mut insert, mut update, mut add, mut take_day] = Statement::prepare_all(
        handle,
        [
            &insert_record_sql(),
            &update_record_sql(),
            RecordIds::ADD_RECENT,
            SPAN_TAKE_DAY,
        ],
    )?;
    for e in upserts {
        let row = record_params(e, stamp);
        let key = (e.site_code.as_str(), e.record_id.as_str());
        if let Some(&rid) = rids.get(&key) {
            update.execute(&with_rid(row, rid))?;
            take_day.execute(&[rid.into(), day_number(e.assault_date).into()])?;
        } else {
            insert.execute(&with_rid(row, next_rid))?;
            add.execute(&[ids.fingerprint(key.0, key.1).into(), next_rid.into()])?;
            rids.insert(key, next_rid);
            next_rid += 1;
            days = take_in(days, e.assault_date);
        }
    }
    Ok((next_rid - 1, days))
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

/// A range of days widened to take in `day`.
fn take_in(days: Option<(NaiveDate, NaiveDate)>, day: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    Some(days.map_or((day, day), |(a, b)| (a.min(day), b.max(day))))
}
