//! Storage of ISTV records and their exact aggregate cube, in SQLite (the
//! default) or PostgreSQL (a URL starting with `postgres://`).
//!
//! # Guarantees
//!
//! * **Exact aggregates.** Each [`Store::apply_batch`] writes its records,
//!   its cube changes and the upload's running counts in one transaction, so
//!   at every commit the cube equals a recount of the records table
//!   ([`Store::recount_check`] verifies it). The cube table is a log of
//!   count changes: a batch appends one row per key it changes (a
//!   correction -1 under the old key and +1 under the new), and a key's
//!   count is the sum of its rows. Almost every record has a key of its
//!   own (day, hour, four cells, three areas...), so an append costs far
//!   less than updating a row found in a wide primary key. Queries sum, and
//!   leave out keys that sum to zero.
//! * **Idempotent re-sending.** A record is identified by (site, record id);
//!   re-sending the same content is a duplicate and changes nothing, so if
//!   the process dies between two batches of an upload, re-sending the whole
//!   file counts nothing twice: the batches already committed come back as
//!   duplicates (the new receipt reports them as such), the rest is applied.
//! * **Durable receipts.** An upload is acknowledged only after
//!   [`Store::finish_upload`] commits. SQLite runs in WAL mode with
//!   `synchronous=FULL`: each commit syncs the WAL, so a commit survives a
//!   power cut, not only a process crash (`NORMAL` in WAL mode may lose the
//!   last commits on power loss). PostgreSQL commits are durable with its
//!   default `synchronous_commit=on`.
//! * **Concurrency.** SQLite write transactions are serialised in-process
//!   and start with `BEGIN IMMEDIATE` (no lock upgrade, so no busy error in
//!   mid-transaction); PostgreSQL batches take a transaction-scoped advisory
//!   lock per site (in site order, so they cannot deadlock): records are
//!   keyed by site and the cube is only appended to, so batches of
//!   different sites never touch the same rows.
//! * **Fast SQLite batches.** Records and cube rows are written by one
//!   prepared statement per batch on the connection's own handle (see
//!   `sqlite_rows`), inside the same sqlx transaction.
//!
//! No patient identifier and no free text is stored: records hold the
//! [`Event`] fields only.
#![warn(missing_docs)]

mod ids;
mod rollups;
mod sqlite_rows;

use sqlite_rows::{Param, Statement};

pub use ids::UploadId;
pub use istv_aggregate::{BatchOutcome, Disclosure, Event, Query, Row};

use chrono::{DateTime, NaiveDate, Utc};
use istv_aggregate::{
    cell_from_int, cell_to_int, plan_batch_in_upload, route, CellResolution, Column, CubeKey,
    DisclosureKeys, GeocodeMethod, KeyView, LocationStatus, RecordKey, RollupDeltas, Table, Tally,
    Value,
};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed at connect.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL is neither SQLite nor PostgreSQL.
    #[error("unsupported database url scheme `{0}`: expected sqlite: or postgres://")]
    UnsupportedUrl(String),
    /// A site code already registered.
    #[error("site `{0}` already exists")]
    SiteExists(String),
    /// A site code not registered.
    #[error("no site `{0}`")]
    NoSuchSite(String),
    /// An upload id not known.
    #[error("no upload `{0}`")]
    NoSuchUpload(String),
    /// A batch or finish for an upload already finished.
    #[error("upload `{0}` is already finished")]
    UploadFinished(String),
    /// A stored value that cannot be read back.
    #[error("unreadable stored value in `{column}`: `{value}`")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// SQLite refused a statement run on the connection's own handle.
    #[error("sqlite error {code}: {message}")]
    Sqlite {
        /// SQLite's result code.
        code: i32,
        /// SQLite's message, with what was being done.
        message: String,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// ODS site code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// True once revoked: its tokens no longer authenticate.
    pub revoked: bool,
}

/// A problem with one row of an upload, as kept for the uploader. It must
/// not quote the row's values (they may hold identifiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based row number in the file.
    pub row: u64,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// Stable error code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// How an upload ended, given to [`Store::finish_upload`].
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// Rows read from the file.
    pub rows: u64,
    /// Rows rejected by validation.
    pub rejected: u64,
    /// The receipt returned to the uploader.
    pub receipt: &'a serde_json::Value,
    /// The row errors not yet given to [`Store::add_errors`], in row order.
    pub errors: &'a [RowError],
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// Its id.
    pub id: UploadId,
    /// The uploading site.
    pub site_code: String,
    /// When it began.
    pub received_at: DateTime<Utc>,
    /// Feed format name (e.g. `csv`).
    pub format: String,
    /// Rows read (set at finish).
    pub rows: u64,
    /// New records (running total over committed batches).
    pub accepted: u64,
    /// Rows rejected (set at finish).
    pub rejected: u64,
    /// Unchanged re-sent records (running total).
    pub duplicates: u64,
    /// Changed re-sent records (running total).
    pub corrections: u64,
    /// The receipt, once finished.
    pub receipt: Option<serde_json::Value>,
    /// True once finished.
    pub completed: bool,
    /// When it finished.
    pub completed_at: Option<DateTime<Utc>>,
}

/// One cube key whose stored count differs from a recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The key.
    pub key: CubeKey,
    /// The sum of the key's rows in the cube table (0 when absent).
    pub stored: i64,
    /// The count recomputed from the records table.
    pub recounted: i64,
    /// The sum of the key's record keys in the cube table.
    pub stored_keysum: i64,
    /// The sum of record keys recomputed from the records table.
    pub recounted_keysum: i64,
}

/// The outcome of [`Store::recount_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records in the records table.
    pub records: u64,
    /// Sum of the cube's counts.
    pub cube_total: i64,
    /// Cube keys whose rows sum to a non-zero count.
    pub cube_keys: u64,
    /// Every key that differs (empty when the cube is exact).
    pub mismatches: Vec<Mismatch>,
    /// Cube rows outside every span that could hold their day, which a
    /// date-range query would miss (SQLite; always 0 on PostgreSQL).
    pub unspanned_rows: u64,
    /// Spans that overlap the next one, whose rows a date-range query would
    /// count twice (SQLite; always 0 on PostgreSQL).
    pub overlapping_spans: u64,
    /// Every roll-up table by name, with the number of its rows that differ
    /// from a recount of the records (counts or key sums; a missing or
    /// extra row counts).
    pub rollups: Vec<(String, u64)>,
}

impl CheckReport {
    /// True when the cube equals the recount.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
            && self.cube_total == self.records as i64
            && self.unspanned_rows == 0
            && self.overlapping_spans == 0
            && self.rollups.iter().all(|(_, differ)| *differ == 0)
    }
}

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: a connection pool and the write discipline around it. Cheap to
/// clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    /// Writes, token checks and uploads.
    db: Db,
    /// Queries: connections of their own.
    read: Db,
    /// Serialises SQLite write transactions within the process.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// The store's record keys (its seed is kept in `store_meta`).
    keys: DisclosureKeys,
}

/// Runs `$body` with `$pool` bound to the concrete pool: the SQL is the same
/// for both databases (`$n` placeholders work in both), only types differ.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// The end of a batch's transaction on either database: add the batch's
/// counts to its upload, commit.
macro_rules! finish_batch {
    ($tx:ident, $outcome:expr, $upload:ident) => {{
        let o: BatchOutcome = $outcome;
        sqlx::query(UPDATE_UPLOAD_COUNTS)
            .bind(o.accepted as i64)
            .bind(o.duplicates as i64)
            .bind(o.corrections as i64)
            .bind($upload.as_str())
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
        Ok(o)
    }};
}

/// SQLite allows 32766 bound parameters per statement, PostgreSQL 65535.
const MAX_PARAMS: usize = 32_000;

const RECORD_COLUMNS: [&str; 17] = [
    "site_code",
    "record_id",
    "content_hash",
    "upload_id",
    "day",
    "hour",
    "assault_method",
    "location_type",
    "age_band",
    "sex",
    "geocode_method",
    "precision_m",
    "cell",
    "borough",
    "ward",
    "lsoa",
    "rkey",
];

/// Bind placeholders: `$1, $2, ...` for PostgreSQL, anonymous `?` for
/// SQLite, whose cost of binding a numbered parameter grows with the number
/// of parameters (a statement of 32,000 `$n` takes seconds to bind).
struct Placeholders {
    numbered: bool,
    next: usize,
}

impl Placeholders {
    fn next(&mut self) -> String {
        if self.numbered {
            let p = format!("${}", self.next);
            self.next += 1;
            p
        } else {
            "?".to_owned()
        }
    }

    /// `count` placeholders separated by commas.
    fn list(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| self.next())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `INSERT INTO table (cols) VALUES (...), ... tail` for `rows` rows.
fn insert_sql(
    mut ph: Placeholders,
    table: &str,
    columns: &[&str],
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&ph.list(columns.len()));
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

fn day_text(d: NaiveDate) -> String {
    let mut text = String::with_capacity(10);
    write_day(&mut text, d);
    text
}

/// Writes `d` as `YYYY-MM-DD` into `out`, replacing what it held. Batches
/// write a day per record and cube row into one buffer, where `format!`
/// cost more than binding the text.
fn write_day(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    out.clear();
    let Ok(year @ 0..=9999) = u32::try_from(d.year()) else {
        // Not from a validated record; kept exact all the same.
        out.push_str(&format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()));
        return;
    };
    for (n, width, then) in [(year, 4, "-"), (d.month(), 2, "-"), (d.day(), 2, "")] {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
        out.push_str(then);
    }
}

fn parse_day(text: &str, column: &'static str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
        column,
        value: text.to_owned(),
    })
}

fn now_text() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_time(text: &str, column: &'static str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            column,
            value: text.to_owned(),
        })
}

fn parse_coded<T>(
    text: &str,
    column: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt {
        column,
        value: text.to_owned(),
    })
}

const UPDATE_UPLOAD_COUNTS: &str = "UPDATE uploads SET accepted = accepted + $1, \
    duplicates = duplicates + $2, corrections = corrections + $3 WHERE id = $4";

/// Fails unless the upload exists and is not finished (`state` is its
/// `completed` column).
fn check_open(upload: &UploadId, state: Option<(i64,)>) -> Result<()> {
    match state {
        None => Err(StoreError::NoSuchUpload(upload.to_string())),
        Some((c,)) if c != 0 => Err(StoreError::UploadFinished(upload.to_string())),
        Some(_) => Ok(()),
    }
}

/// The record ids of `events` grouped by site, sites in order (the order
/// the PostgreSQL advisory locks are taken in), ids sorted and distinct.
fn ids_by_site<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut by_site: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in events {
        by_site
            .entry(e.site_code.as_str())
            .or_default()
            .push(e.record_id.as_str());
    }
    for ids in by_site.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    by_site
}

/// What a batch sends under one record key.
struct Sent<'a> {
    /// The first event with the key.
    first: &'a Event,
    /// The content hash every event with the key has; `None` when they
    /// differ.
    hash: Option<u64>,
    /// The batch sends the key once.
    once: bool,
    /// Inserted as a new record before the prefetch (SQLite).
    inserted: bool,
}

/// The stored records a batch touches, as gathered by the prefetch.
struct Stored<'a> {
    /// What the batch sends, by (site, record id): an index into `sents`.
    sent: HashMap<(&'a str, &'a str), u32, foldhash::fast::RandomState>,
    sents: Vec<Sent<'a>>,
    /// Per event of the batch, in order, its index into `sents`: each key
    /// is hashed once per batch.
    slot: Vec<u32>,
    /// The stored record of each key the batch touches and is stored.
    existing: HashMap<RecordKey, Event>,
    /// Keys of the stored records last written by the batch's upload.
    same_upload: HashSet<RecordKey>,
}

impl<'a> Stored<'a> {
    fn new(events: &'a [Event]) -> Stored<'a> {
        let mut sent: HashMap<_, u32, _> =
            HashMap::with_capacity_and_hasher(events.len(), Default::default());
        let mut sents: Vec<Sent> = Vec::with_capacity(events.len());
        let mut slot = Vec::with_capacity(events.len());
        for e in events {
            let next = sents.len() as u32;
            let at = *sent
                .entry((e.site_code.as_str(), e.record_id.as_str()))
                .or_insert(next);
            if at == next {
                sents.push(Sent {
                    first: e,
                    hash: Some(e.content_hash),
                    once: true,
                    inserted: false,
                });
            } else {
                let s = &mut sents[at as usize];
                s.once = false;
                if s.hash != Some(e.content_hash) {
                    s.hash = None;
                }
            }
            slot.push(at);
        }
        Stored {
            sent,
            sents,
            slot,
            existing: HashMap::new(),
            same_upload: HashSet::new(),
        }
    }

    /// Takes a site's stored (record id, content hash, written by this
    /// upload) rows and returns the ids whose full row is needed. Same hash
    /// means same content, so for a key the batch only re-sends unchanged,
    /// the batch's own event stands for the stored one.
    fn hashes(
        &mut self,
        site: &str,
        rows: impl IntoIterator<Item = (String, i64, bool)>,
    ) -> Vec<String> {
        let mut changed = Vec::new();
        for (id, hash, same_upload) in rows {
            let Some(&at) = self.sent.get(&(site, id.as_str())) else {
                continue;
            };
            let sent = &self.sents[at as usize];
            if same_upload {
                self.same_upload.insert(sent.first.record_key());
            }
            if sent.hash == Some(hash as u64) {
                self.existing
                    .insert(sent.first.record_key(), sent.first.clone());
            } else {
                changed.push(id);
            }
        }
        changed
    }

    /// Whether the record of the batch's `i`th event was inserted before
    /// the prefetch.
    fn inserted(&self, i: usize) -> bool {
        self.sents[self.slot[i] as usize].inserted
    }

    /// Takes a full stored row.
    fn full(&mut self, e: Event) {
        self.existing.insert(e.record_key(), e);
    }
}

/// A record's row in [`RECORD_COLUMNS`] order, `day` its assault day as text.
fn record_params<'p>(e: &'p Event, upload: &'p UploadId, day: &'p str) -> [Param<'p>; 17] {
    [
        e.site_code.as_str().into(),
        e.record_id.as_str().into(),
        (e.content_hash as i64).into(),
        upload.as_str().into(),
        day.into(),
        e.assault_hour.map(i64::from).into(),
        e.method.as_str().into(),
        e.location_type.as_str().into(),
        e.age_band.as_str().into(),
        e.sex.as_str().into(),
        e.geocode_method.as_str().into(),
        e.precision_m.map(i64::from).into(),
        e.cell.map(|c| cell_to_int(Some(c))).into(),
        e.borough.as_deref().into(),
        e.ward.as_deref().into(),
        e.lsoa.as_deref().into(),
        i64::from(e.disclosure_key).into(),
    ]
}

/// One row of the SQLite cube log, borrowed from a cube key or an event.
struct CubeRow<'p>(KeyView<'p>);

impl<'p> CubeRow<'p> {
    /// Values in [`cube_columns`] order; unknowns as the cube's sentinels.
    fn params(&self, day: &'p str, delta: Tally) -> [Param<'p>; 17] {
        let k = &self.0;
        let [c7, c8, c9, c10] = k.cells.map(cell_to_int);
        [
            day.into(),
            k.hour.map_or(-1, i64::from).into(),
            k.method.as_str().into(),
            k.location_type.as_str().into(),
            k.age_band.as_str().into(),
            k.sex.as_str().into(),
            k.site.into(),
            k.status.as_str().into(),
            c7.into(),
            c8.into(),
            c9.into(),
            c10.into(),
            k.borough.unwrap_or("").into(),
            k.ward.unwrap_or("").into(),
            k.lsoa.unwrap_or("").into(),
            delta.count.into(),
            delta.keysum.into(),
        ]
    }
}

/// Connections of the query pool.
const READ_CONNECTIONS: u32 = 4;

/// Page size of a new SQLite store, in bytes.
const SQLITE_PAGE_SIZE: u32 = 16_384;

/// After this many keys of a batch turn out to be stored already, the rest
/// of the batch is looked up instead of tried as new: a re-sent file then
/// pays for a lookup, not for a failed insert and a lookup.
const STORED_BEFORE_LOOKUP: usize = 64;

/// A span (see the SQLite migration 0003) is widened by the next batch
/// while it holds fewer rows than this; after that a batch starts a new one.
const SPAN_ROWS: i64 = 10_000;

/// Cube rows no span covers with their day, and spans reaching into the
/// next one. A row's only candidate is the span starting last at or before
/// it, found through the spans' primary key.
const SPAN_CHECK: &str = "SELECT \
    (SELECT COUNT(*) FROM cube WHERE NOT EXISTS (\
        SELECT 1 FROM (SELECT * FROM cube_spans WHERE first_seq <= cube.seq \
                       ORDER BY first_seq DESC LIMIT 1) AS s \
        WHERE cube.seq <= s.last_seq AND cube.day BETWEEN s.first_day AND s.last_day)), \
    (SELECT COUNT(*) FROM cube_spans AS a WHERE a.last_seq < a.first_seq OR a.last_seq >= \
        (SELECT MIN(b.first_seq) FROM cube_spans AS b WHERE b.first_seq > a.first_seq))";

/// The sequence number of the SQLite cube's last row (0 when empty).
fn last_cube_seq(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Result<i64> {
    let [seq] = Statement::prepare(handle, "SELECT MAX(seq) FROM cube")?
        .first_row(&[])?
        .expect("an aggregate returns a row");
    Ok(seq)
}

/// How often the SQLite checkpointer copies committed WAL pages into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages after which a committing connection checkpoints itself, as
/// SQLite does by default after 1,000: 40 MiB of 4 KiB pages (a store
/// created with them) or 160 MiB of 16 KiB pages.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Copies the WAL into the database file from a task of its own. Left to
/// SQLite, the commit that takes the WAL past 1,000 pages does it, and with
/// it a sync of the database file: a third of the commit time of a 1M-row
/// upload went there. A passive checkpoint neither waits for nor blocks
/// writers and readers; durability does not depend on it (each commit
/// syncs the WAL). Ends when the pool is closed.
fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "wal checkpoint failed; the next commit past the limit does it");
            }
        }
    });
}

/// Records on SQLite that cube rows `first..=last` (sequence numbers) hold
/// days `from..=to`: widens the latest span when the rows follow it and it
/// is small, else starts a span. Spans never overlap.
async fn extend_spans(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    (first, last): (i64, i64),
    from: NaiveDate,
    to: NaiveDate,
) -> Result<()> {
    if last < first {
        return Ok(());
    }
    let (from, to) = (day_text(from), day_text(to));
    let widened = sqlx::query(
        "UPDATE cube_spans SET last_seq = ?1, \
         first_day = MIN(first_day, ?2), last_day = MAX(last_day, ?3) \
         WHERE first_seq = (SELECT MAX(first_seq) FROM cube_spans) \
         AND last_seq = ?4 - 1 AND last_seq - first_seq + 1 < ?5",
    )
    .bind(last)
    .bind(&from)
    .bind(&to)
    .bind(first)
    .bind(SPAN_ROWS)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if widened == 0 {
        sqlx::query(
            "INSERT INTO cube_spans (first_seq, last_seq, first_day, last_day) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(first)
        .bind(last)
        .bind(&from)
        .bind(&to)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// `ON CONFLICT` clause replacing a stored record.
fn records_upsert_tail() -> String {
    format!(
        "ON CONFLICT (site_code, record_id) DO UPDATE SET {}",
        RECORD_COLUMNS[2..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The cube's key columns, then `count` and `keysum`.
fn cube_columns() -> Vec<&'static str> {
    let mut columns: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    columns.push("count");
    columns.push("keysum");
    columns
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

fn part_int(p: istv_aggregate::rollup::Part<'_>) -> i64 {
    match p {
        istv_aggregate::rollup::Part::Int(i) => i,
        _ => 0,
    }
}

fn part_text<'a>(p: istv_aggregate::rollup::Part<'a>) -> &'a str {
    match p {
        istv_aggregate::rollup::Part::Text(t) => t,
        _ => "",
    }
}

/// A stable lock key of a site for PostgreSQL advisory locks.
fn site_lock_key(site: &str) -> i64 {
    istv_aggregate::content_hash(&["istv-site-lock", site]) as i64
}

impl Store {
    /// Connects and runs the migrations. `url` is a SQLite URL
    /// (`sqlite://path/istv.db?mode=rwc`, `sqlite::memory:`) or a PostgreSQL
    /// URL (`postgres://user@host/db`). A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        let (db, read) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            let read = PgPoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_lazy_with(options);
            (Db::Postgres(pool), Db::Postgres(read))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // Takes effect when the file is created; an existing store
                // keeps its pages. Rows are appended in bulk, and larger
                // pages mean fewer page splits and WAL frames per row: the
                // 1M-row upload ran faster than with 4 KiB in most runs
                // side by side (README).
                .page_size(SQLITE_PAGE_SIZE)
                .pragma("cache_size", "-16384")
                .pragma("temp_store", "memory")
                // A safety net: the checkpointer below keeps the WAL well
                // under this unless it falls behind.
                .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
            let in_memory = options.get_filename() == std::path::Path::new(":memory:");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            spawn_checkpointer(pool.clone());
            // Queries read through connections of their own (WAL readers
            // never block the writer), so a burst of queries cannot take
            // the connections that uploads and token checks need. An
            // in-memory database exists once per connection: it shares.
            let read = if in_memory {
                pool.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(READ_CONNECTIONS)
                    .connect_lazy_with(options)
            };
            (Db::Sqlite(pool), Db::Sqlite(read))
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedUrl(scheme.to_owned()));
        };
        let mut store = Store {
            db,
            read,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            keys: DisclosureKeys::new(0),
        };
        store.keys = DisclosureKeys::new(store.record_key_seed().await?);
        store.ensure_rollups().await?;
        Ok(store)
    }

    /// The record keys this store's records get (see
    /// [`Event::disclosure_key`]): set them on events before
    /// [`Store::apply_batch`].
    pub fn disclosure_keys(&self) -> &DisclosureKeys {
        &self.keys
    }

    /// The secret seed of the record keys, made at random the first time.
    async fn record_key_seed(&self) -> Result<u64> {
        const NAME: &str = "record_key_seed";
        let read = "SELECT value FROM store_meta WHERE name = $1";
        let stored: Option<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as(read).bind(NAME).fetch_optional(pool).await?
        });
        let text = match stored {
            Some((text,)) => text,
            None => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
                let _guard = self.write_guard().await;
                let text = u64::from_le_bytes(bytes).to_string();
                // Two processes starting at once: the first seed wins.
                let write = "INSERT INTO store_meta (name, value) VALUES ($1, $2) \
                             ON CONFLICT (name) DO NOTHING";
                on_db!(&self.db, pool => {
                    sqlx::query(write).bind(NAME).bind(&text).execute(pool).await?;
                    sqlx::query_as::<_, (String,)>(read).bind(NAME).fetch_one(pool).await?.0
                })
            }
        };
        text.parse().map_err(|_| StoreError::Corrupt {
            column: "store_meta.value",
            value: "record_key_seed".into(),
        })
    }

    /// Builds every declared roll-up table that the store lacks (or holds
    /// under another definition) from its records, each in a transaction of
    /// its own, and drops the ones no longer declared.
    async fn ensure_rollups(&self) -> Result<()> {
        let list = "SELECT name, definition FROM rollups_built ORDER BY name";
        let built: Vec<(String, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(list).fetch_all(pool).await?
        });
        let backend = self.backend();
        for table in Table::all() {
            let (name, def) = (table.name(), rollups::definition(table));
            if built.iter().any(|(n, d)| *n == name && *d == def) {
                continue;
            }
            let started = std::time::Instant::now();
            let _guard = self.write_guard().await;
            let begin = self.begin_sql();
            let create = rollups::create_sql(table, backend);
            let fill = rollups::backfill_sql(table, backend);
            on_db!(&self.db, pool => {
                let mut tx = pool.begin_with(begin).await?;
                if backend == Backend::Postgres {
                    // Instances starting together build each table once.
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(site_lock_key("istv-rollups"))
                        .execute(&mut *tx)
                        .await?;
                }
                let current: Option<(String,)> =
                    sqlx::query_as("SELECT definition FROM rollups_built WHERE name = $1")
                        .bind(&name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if current.is_none_or(|(d,)| d != def) {
                    sqlx::query(&format!("DROP TABLE IF EXISTS {name}")).execute(&mut *tx).await?;
                    sqlx::query(&create).execute(&mut *tx).await?;
                    let filled = sqlx::query(&fill).execute(&mut *tx).await?.rows_affected();
                    sqlx::query("DELETE FROM rollups_built WHERE name = $1")
                        .bind(&name)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO rollups_built (name, definition) VALUES ($1, $2)")
                        .bind(&name)
                        .bind(&def)
                        .execute(&mut *tx)
                        .await?;
                    tracing::info!(table = %name, rows = filled, seconds = started.elapsed().as_secs_f64(),
                        "built a roll-up from the stored records");
                }
                tx.commit().await?;
            });
        }
        let declared: Vec<String> = Table::all().iter().map(Table::name).collect();
        for (name, _) in built.iter().filter(|(n, _)| !declared.contains(n)) {
            // Only names this code made are dropped.
            let ours = name.strip_prefix("rollup_").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            if !ours {
                continue;
            }
            let _guard = self.write_guard().await;
            let begin = self.begin_sql();
            on_db!(&self.db, pool => {
                let mut tx = pool.begin_with(begin).await?;
                sqlx::query(&format!("DROP TABLE IF EXISTS {name}")).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM rollups_built WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            });
        }
        Ok(())
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        on_db!(&self.read, pool => pool.close().await);
        on_db!(&self.db, pool => pool.close().await)
    }

    /// Held for the whole of a write transaction on SQLite; PostgreSQL uses
    /// row locks and advisory locks instead.
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.db {
            Db::Sqlite(_) => Some(self.write_lock.lock().await),
            Db::Postgres(_) => None,
        }
    }

    /// Fresh placeholders for one statement.
    fn placeholders(&self) -> Placeholders {
        Placeholders {
            numbered: self.backend() == Backend::Postgres,
            next: 1,
        }
    }

    fn begin_sql(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        }
    }

    // ----- sites -----

    /// Registers a site and returns its first token. The token is shown
    /// once: only its hash is stored.
    pub async fn add_site(&self, code: &str, name: &str) -> Result<String> {
        let token = ids::new_token()?;
        let hash = ids::token_hash(&token);
        let now = now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT code FROM sites WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::SiteExists(code.to_owned()));
            }
            sqlx::query("INSERT INTO sites (code, name, created_at, revoked) VALUES ($1, $2, $3, 0)")
                .bind(code)
                .bind(name)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO site_tokens (token_hash, site_code, created_at) VALUES ($1, $2, $3)")
                .bind(&hash)
                .bind(code)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(token)
    }

    /// Issues another token for a site (e.g. to rotate); earlier tokens keep
    /// working until the site is revoked.
    pub async fn issue_token(&self, code: &str) -> Result<String> {
        let token = ids::new_token()?;
        let hash = ids::token_hash(&token);
        let now = now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT code FROM sites WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NoSuchSite(code.to_owned()));
            }
            sqlx::query("INSERT INTO site_tokens (token_hash, site_code, created_at) VALUES ($1, $2, $3)")
                .bind(&hash)
                .bind(code)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(token)
    }

    /// Every registered site, by code.
    pub async fn list_sites(&self) -> Result<Vec<Site>> {
        let rows: Vec<(String, String, String, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT code, name, created_at, revoked FROM sites ORDER BY code")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(code, name, created_at, revoked)| {
                Ok(Site {
                    code,
                    name,
                    created_at: parse_time(&created_at, "sites.created_at")?,
                    revoked: revoked != 0,
                })
            })
            .collect()
    }

    /// Revokes a site: none of its tokens authenticates any more. Its records
    /// stay.
    pub async fn revoke_site(&self, code: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        let done = on_db!(&self.db, pool => {
            sqlx::query("UPDATE sites SET revoked = 1 WHERE code = $1")
                .bind(code)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NoSuchSite(code.to_owned()));
        }
        Ok(())
    }

    /// The site a token belongs to, unless the token is unknown or the site
    /// revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<String>> {
        let hash = ids::token_hash(token);
        let row: Option<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT s.code FROM site_tokens t JOIN sites s ON s.code = t.site_code \
                 WHERE t.token_hash = $1 AND s.revoked = 0",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| r.0))
    }

    // ----- uploads -----

    /// Records the start of an upload and returns its id.
    pub async fn begin_upload(&self, site_code: &str, format: &str) -> Result<UploadId> {
        let id = UploadId::generate()?;
        let now = now_text();
        let _guard = self.write_guard().await;
        on_db!(&self.db, pool => {
            sqlx::query("INSERT INTO uploads (id, site_code, received_at, format) VALUES ($1, $2, $3, $4)")
                .bind(id.as_str())
                .bind(site_code)
                .bind(&now)
                .bind(format)
                .execute(pool)
                .await?;
        });
        Ok(id)
    }

    /// Applies a batch of events in one transaction: new records count +1,
    /// unchanged re-sent records nothing, changed ones -1 on the old key and
    /// +1 on the new (the record is replaced). The upload's running counts
    /// change in the same transaction. Events are taken in order, so a
    /// record repeated within the batch behaves as if sent in two batches.
    ///
    /// Each statement takes the batch as a few whole parameters (one JSON
    /// text on SQLite, one array per column on PostgreSQL) rather than one
    /// parameter per value.
    pub async fn apply_batch(&self, upload: &UploadId, events: &[Event]) -> Result<BatchOutcome> {
        let _guard = self.write_guard().await;
        let mut stored = Stored::new(events);
        match &self.db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let state: Option<(i64,)> =
                    sqlx::query_as("SELECT completed FROM uploads WHERE id = ?1")
                        .bind(upload.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                check_open(upload, state)?;
                // Keys sent once are first tried as new records: the insert
                // finds a stored one as a lookup would, and most keys of
                // most uploads are new. Keys it finds stored, and keys sent
                // more than once, go through the prefetch and the plan.
                {
                    let mut handle = tx.lock_handle().await?;
                    let mut try_new = Statement::prepare(
                        &mut handle,
                        &format!(
                            "INSERT INTO records ({}) VALUES ({}) \
                             ON CONFLICT (site_code, record_id) DO NOTHING",
                            RECORD_COLUMNS.join(", "),
                            self.placeholders().list(RECORD_COLUMNS.len()),
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
                }
                // Prefetch the stored records the batch touches, in two
                // steps: hashes of all (point lookups on the raw handle),
                // then full rows of those the batch changes.
                let not_inserted = events
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| !stored.inserted(i))
                    .map(|(_, e)| e);
                let by_site = ids_by_site(not_inserted);
                for (site, ids) in &by_site {
                    let mut rows = Vec::new();
                    {
                        let mut handle = tx.lock_handle().await?;
                        let mut lookup = Statement::prepare(
                            &mut handle,
                            "SELECT content_hash, upload_id = ?1 FROM records \
                             WHERE site_code = ?2 AND record_id = ?3",
                        )?;
                        for id in ids {
                            let params = [upload.as_str().into(), (*site).into(), (*id).into()];
                            if let Some([hash, same]) = lookup.first_row(&params)? {
                                rows.push((id.to_string(), hash, same != 0));
                            }
                        }
                    }
                    let changed = stored.hashes(site, rows);
                    if changed.is_empty() {
                        continue;
                    }
                    let sql = format!(
                        "SELECT {} FROM records WHERE site_code = ?1 \
                         AND record_id IN (SELECT value FROM json_each(?2))",
                        RECORD_COLUMNS.join(", ")
                    );
                    let rows = sqlx::query(&sql)
                        .bind(*site)
                        .bind(json_strings(changed.iter().map(String::as_str)))
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in rows {
                        stored.full(event_from_row(&row)?);
                    }
                }
                // Keys inserted as new are sent once: the plan of the rest is
                // the plan of the whole batch without them.
                let mut new: Vec<&Event> = Vec::with_capacity(events.len());
                let mut rest: Vec<&Event> = Vec::new();
                for (i, e) in events.iter().enumerate() {
                    if stored.inserted(i) {
                        new.push(e);
                    } else {
                        rest.push(e);
                    }
                }
                let plan = plan_batch_in_upload(
                    &stored.existing,
                    &stored.same_upload,
                    rest.iter().copied(),
                );
                let mut outcome = plan.outcome;
                outcome.accepted += new.len() as u64;
                let records_sql = format!(
                    "INSERT INTO records ({}) VALUES ({}) {}",
                    RECORD_COLUMNS.join(", "),
                    self.placeholders().list(RECORD_COLUMNS.len()),
                    records_upsert_tail()
                );
                let columns = cube_columns();
                let cube_sql = format!(
                    "INSERT INTO cube ({}) VALUES ({})",
                    columns.join(", "),
                    self.placeholders().list(columns.len())
                );
                // Sequence numbers of the cube rows the batch appends.
                let appended;
                {
                    let mut handle = tx.lock_handle().await?;
                    let mut insert = Statement::prepare(&mut handle, &records_sql)?;
                    let mut day = String::new();
                    for e in &plan.upserts {
                        write_day(&mut day, e.assault_date);
                        insert.execute(&record_params(e, upload, &day))?;
                    }
                    drop(insert);
                    let before = last_cube_seq(&mut handle)?;
                    let mut append = Statement::prepare(&mut handle, &cube_sql)?;
                    let mut rollup_deltas = RollupDeltas::new();
                    let rows = new.iter().map(|e| (KeyView::of_event(e), Tally::of(e)));
                    let rows =
                        rows.chain(plan.deltas.iter().map(|(k, d)| (KeyView::of_key(k), *d)));
                    for (key, delta) in rows {
                        write_day(&mut day, key.day);
                        append.execute(&CubeRow(key).params(&day, delta))?;
                        rollup_deltas.add(&key, delta);
                    }
                    drop(append);
                    appended = (before + 1, last_cube_seq(&mut handle)?);
                    for (table, rows) in rollup_deltas.into_tables() {
                        if rows.is_empty() {
                            continue;
                        }
                        let mut upsert =
                            Statement::prepare(&mut handle, &rollups::sqlite_upsert_sql(&table))?;
                        for row in &rows {
                            upsert.execute(&rollups::upsert_params(&table, row))?;
                        }
                    }
                }
                let days = new.iter().map(|e| (e.assault_date, e.assault_date));
                let days = days.chain(plan.day_range());
                if let Some((first, last)) = days.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))) {
                    extend_spans(&mut tx, appended, first, last).await?;
                }
                finish_batch!(tx, outcome, upload)
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let state: Option<(i64,)> =
                    sqlx::query_as("SELECT completed FROM uploads WHERE id = $1")
                        .bind(upload.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                check_open(upload, state)?;
                let by_site = ids_by_site(events);
                for site in by_site.keys() {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(site_lock_key(site))
                        .execute(&mut *tx)
                        .await?;
                }
                for (site, ids) in &by_site {
                    let rows: Vec<(String, i64, bool)> = sqlx::query_as(
                        "SELECT record_id, content_hash, upload_id = $1 FROM records \
                         WHERE site_code = $2 AND record_id = ANY($3)",
                    )
                    .bind(upload.as_str())
                    .bind(*site)
                    .bind(ids)
                    .fetch_all(&mut *tx)
                    .await?;
                    let changed = stored.hashes(site, rows);
                    if changed.is_empty() {
                        continue;
                    }
                    let sql = format!(
                        "SELECT {} FROM records WHERE site_code = $1 AND record_id = ANY($2)",
                        RECORD_COLUMNS.join(", ")
                    );
                    let rows = sqlx::query(&sql)
                        .bind(*site)
                        .bind(&changed)
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in rows {
                        stored.full(event_from_row(&row)?);
                    }
                }
                let plan = plan_batch_in_upload(&stored.existing, &stored.same_upload, events);
                if !plan.upserts.is_empty() {
                    let u = &plan.upserts;
                    let sql = format!(
                        "INSERT INTO records ({}) SELECT s, r, h, $1, d, hr, m, lt, ab, sx, gm, p, c, b, w, l, k \
                         FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[], \
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[], \
                         $13::int8[], $14::text[], $15::text[], $16::text[], $17::int8[]) \
                         AS t(s, r, h, d, hr, m, lt, ab, sx, gm, p, c, b, w, l, k) {}",
                        RECORD_COLUMNS.join(", "),
                        records_upsert_tail()
                    );
                    sqlx::query(&sql)
                        .bind(upload.as_str())
                        .bind(u.iter().map(|e| e.site_code.as_str()).collect::<Vec<_>>())
                        .bind(u.iter().map(|e| e.record_id.as_str()).collect::<Vec<_>>())
                        .bind(u.iter().map(|e| e.content_hash as i64).collect::<Vec<_>>())
                        .bind(
                            u.iter()
                                .map(|e| day_text(e.assault_date))
                                .collect::<Vec<_>>(),
                        )
                        .bind(
                            u.iter()
                                .map(|e| e.assault_hour.map(i64::from))
                                .collect::<Vec<_>>(),
                        )
                        .bind(u.iter().map(|e| e.method.as_str()).collect::<Vec<_>>())
                        .bind(
                            u.iter()
                                .map(|e| e.location_type.as_str())
                                .collect::<Vec<_>>(),
                        )
                        .bind(u.iter().map(|e| e.age_band.as_str()).collect::<Vec<_>>())
                        .bind(u.iter().map(|e| e.sex.as_str()).collect::<Vec<_>>())
                        .bind(
                            u.iter()
                                .map(|e| e.geocode_method.as_str())
                                .collect::<Vec<_>>(),
                        )
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
                        .execute(&mut *tx)
                        .await?;
                }
                if !plan.deltas.is_empty() {
                    let d = &plan.deltas;
                    let text = |f: fn(&CubeKey) -> &str| {
                        d.iter().map(|(k, _)| f(k)).collect::<Vec<&str>>()
                    };
                    let cell = |r: CellResolution| {
                        d.iter()
                            .map(|(k, _)| cell_to_int(k.cell(r)))
                            .collect::<Vec<i64>>()
                    };
                    let columns = cube_columns();
                    let sql = format!(
                        "INSERT INTO cube ({}) SELECT * FROM unnest($1::text[], $2::int8[], \
                         $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                         $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[], \
                         $14::text[], $15::text[], $16::int8[], $17::int8[])",
                        columns.join(", ")
                    );
                    let [r7, r8, r9, r10] = CellResolution::ALL;
                    sqlx::query(&sql)
                        .bind(d.iter().map(|(k, _)| day_text(k.day)).collect::<Vec<_>>())
                        .bind(
                            d.iter()
                                .map(|(k, _)| k.hour.map_or(-1, i64::from))
                                .collect::<Vec<_>>(),
                        )
                        .bind(text(|k| k.method.as_str()))
                        .bind(text(|k| k.location_type.as_str()))
                        .bind(text(|k| k.age_band.as_str()))
                        .bind(text(|k| k.sex.as_str()))
                        .bind(text(|k| k.site.as_str()))
                        .bind(text(|k| k.location_status.as_str()))
                        .bind(cell(r7))
                        .bind(cell(r8))
                        .bind(cell(r9))
                        .bind(cell(r10))
                        .bind(text(|k| k.borough.as_deref().unwrap_or("")))
                        .bind(text(|k| k.ward.as_deref().unwrap_or("")))
                        .bind(text(|k| k.lsoa.as_deref().unwrap_or("")))
                        .bind(d.iter().map(|(_, t)| t.count).collect::<Vec<i64>>())
                        .bind(d.iter().map(|(_, t)| t.keysum).collect::<Vec<i64>>())
                        .execute(&mut *tx)
                        .await?;
                }
                let mut rollup_deltas = RollupDeltas::new();
                for (k, d) in &plan.deltas {
                    rollup_deltas.add(&KeyView::of_key(k), *d);
                }
                for (table, rows) in rollup_deltas.into_tables() {
                    if rows.is_empty() {
                        continue;
                    }
                    let sql = rollups::postgres_upsert_sql(&table);
                    let mut q = sqlx::query(&sql)
                        .bind(rows.iter().map(|r| i64::from(r.bucket)).collect::<Vec<_>>());
                    for (i, c) in table.rollup.columns.iter().enumerate() {
                        q = if c.is_int() {
                            q.bind(
                                rows.iter()
                                    .map(|r| part_int(r.parts[i]))
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
                        .execute(&mut *tx)
                        .await?;
                }
                finish_batch!(tx, plan.outcome, upload)
            }
        }
    }

    /// Stores row errors of an open upload after those already stored, so
    /// an uploader's errors need not be held in memory until the end.
    pub async fn add_errors(&self, upload: &UploadId, errors: &[RowError]) -> Result<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let state: Option<(i64,)> = sqlx::query_as("SELECT completed FROM uploads WHERE id = $1")
                .bind(upload.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            check_open(upload, state)?;
            let (next,): (i64,) = sqlx::query_as(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM upload_errors WHERE upload_id = $1",
            )
            .bind(upload.as_str())
            .fetch_one(&mut *tx)
            .await?;
            const COLS: [&str; 6] = ["upload_id", "seq", "row_number", "field", "code", "message"];
            let per_chunk = MAX_PARAMS / COLS.len();
            for (n, chunk) in errors.chunks(per_chunk).enumerate() {
                let sql = insert_sql(self.placeholders(), "upload_errors", &COLS, chunk.len(), "");
                let mut q = sqlx::query(&sql);
                let base = next + (n * per_chunk) as i64;
                for (i, e) in chunk.iter().enumerate() {
                    q = q
                        .bind(upload.as_str())
                        .bind(base + i as i64)
                        .bind(e.row as i64)
                        .bind(e.field.as_deref())
                        .bind(e.code.as_str())
                        .bind(e.message.as_str());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Finishes an upload: stores the remaining row errors (after any given
    /// to [`Store::add_errors`]), then the counts and the receipt, and marks
    /// it complete. Once this returns the receipt may be given to the
    /// uploader.
    pub async fn finish_upload(&self, upload: &UploadId, done: Completion<'_>) -> Result<()> {
        self.add_errors(upload, done.errors).await?;
        let receipt = done.receipt.to_string();
        let now = now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let state: Option<(i64,)> = sqlx::query_as("SELECT completed FROM uploads WHERE id = $1")
                .bind(upload.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            check_open(upload, state)?;
            sqlx::query(
                "UPDATE uploads SET rows = $1, rejected = $2, receipt = $3, completed = 1, \
                 completed_at = $4 WHERE id = $5",
            )
            .bind(done.rows as i64)
            .bind(done.rejected as i64)
            .bind(&receipt)
            .bind(&now)
            .bind(upload.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// An upload by id.
    pub async fn upload(&self, id: &UploadId) -> Result<Option<Upload>> {
        type UploadRow = (
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
            i64,
            Option<String>,
        );
        let row: Option<UploadRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, site_code, received_at, format, rows, accepted, rejected, duplicates, \
                 corrections, receipt, completed, completed_at FROM uploads WHERE id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?
        });
        let Some(r) = row else { return Ok(None) };
        let receipt = match r.9 {
            Some(text) => Some(
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
                    column: "uploads.receipt",
                    value: text,
                })?,
            ),
            None => None,
        };
        Ok(Some(Upload {
            id: UploadId::parse(&r.0).ok_or_else(|| StoreError::Corrupt {
                column: "uploads.id",
                value: r.0.clone(),
            })?,
            site_code: r.1,
            received_at: parse_time(&r.2, "uploads.received_at")?,
            format: r.3,
            rows: r.4 as u64,
            accepted: r.5 as u64,
            rejected: r.6 as u64,
            duplicates: r.7 as u64,
            corrections: r.8 as u64,
            receipt,
            completed: r.10 != 0,
            completed_at: r
                .11
                .as_deref()
                .map(|t| parse_time(t, "uploads.completed_at"))
                .transpose()?,
        }))
    }

    /// A page of an upload's row errors, in the order given at finish.
    pub async fn upload_errors(
        &self,
        id: &UploadId,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<RowError>> {
        let rows: Vec<(i64, Option<String>, String, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT row_number, field, code, message FROM upload_errors WHERE upload_id = $1 \
                 ORDER BY seq LIMIT $2 OFFSET $3",
            )
            .bind(id.as_str())
            .bind(limit.min(i64::MAX as u64) as i64)
            .bind(offset.min(i64::MAX as u64) as i64)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(row, field, code, message)| RowError {
                row: row as u64,
                field,
                code,
                message,
            })
            .collect())
    }

    /// When each site's last finished upload finished, by site code.
    pub async fn last_upload_per_site(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, Option<String>)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT site_code, MAX(completed_at) FROM uploads WHERE completed = 1 \
                 GROUP BY site_code ORDER BY site_code",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .filter_map(|(site, t)| t.map(|t| (site, t)))
            .map(|(site, t)| Ok((site, parse_time(&t, "uploads.completed_at")?)))
            .collect()
    }

    // ----- queries -----

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

/// The cube key of a records row, as SQL expressions over the records
/// table, in [`Column::ALL`] order: what [`CubeKey::of`] computes.
fn recount_key_sql() -> String {
    let exprs: Vec<String> = Column::ALL.iter().map(|c| record_expr(*c)).collect();
    exprs.join(", ")
}

/// One cube column of a records row, as an SQL expression over the records
/// table. The cell at each resolution is the H3 parent, computed on the
/// index's bits: the resolution field (bits 52-55) set to the resolution
/// and every finer digit (3 bits each, the finest in the lowest bits) set
/// to 7; none (0) when the stored cell is coarser.
pub(crate) fn record_expr(column: Column) -> String {
    match column {
        Column::Day => "day".to_owned(),
        Column::Hour => "COALESCE(hour, -1)".to_owned(),
        Column::Method => "assault_method".to_owned(),
        Column::LocationType => "location_type".to_owned(),
        Column::AgeBand => "age_band".to_owned(),
        Column::Sex => "sex".to_owned(),
        Column::Site => "site_code".to_owned(),
        Column::LocationStatus => format!(
            "CASE WHEN geocode_method = '{}' THEN '{}' \
             WHEN cell IS NOT NULL OR borough IS NOT NULL OR ward IS NOT NULL OR lsoa IS NOT NULL \
             THEN '{}' ELSE '{}' END",
            GeocodeMethod::OutOfArea.as_str(),
            LocationStatus::OutOfArea.as_str(),
            LocationStatus::Resolved.as_str(),
            LocationStatus::Unresolved.as_str(),
        ),
        Column::Cell(r) => {
            let clear_resolution = !(0xF_i64 << 52);
            let r = i64::from(r.get());
            let set = (r << 52) | ((1_i64 << (3 * (15 - r))) - 1);
            format!(
                "CASE WHEN cell IS NULL OR ((cell >> 52) & 15) < {r} THEN 0 \
                 ELSE ((cell & ({clear_resolution})) | {set}) END"
            )
        }
        Column::Borough => "COALESCE(borough, '')".to_owned(),
        Column::Ward => "COALESCE(ward, '')".to_owned(),
        Column::Lsoa => "COALESCE(lsoa, '')".to_owned(),
    }
}

/// Reads a cube key from a row whose first columns are the key columns in
/// [`Column::ALL`] order. Works for both databases' rows.
fn cube_key_from_row<R>(row: &R) -> Result<CubeKey>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<String, _>(i);
    let int = |i: usize| row.try_get::<i64, _>(i);
    let opt = |s: String| (!s.is_empty()).then_some(s);
    let hour = int(1)?;
    Ok(CubeKey {
        day: parse_day(&text(0)?, "cube.day")?,
        hour: (hour >= 0).then_some(hour as u8),
        method: parse_coded(&text(2)?, "cube.assault_method", AssaultMethod::parse)?,
        location_type: parse_coded(&text(3)?, "cube.location_type", LocationType::parse)?,
        age_band: parse_coded(&text(4)?, "cube.age_band", AgeBand::parse)?,
        sex: parse_coded(&text(5)?, "cube.sex", Sex::parse)?,
        site: text(6)?,
        location_status: parse_coded(&text(7)?, "cube.location_status", LocationStatus::parse)?,
        cells: [
            cell_from_int(int(8)?),
            cell_from_int(int(9)?),
            cell_from_int(int(10)?),
            cell_from_int(int(11)?),
        ],
        borough: opt(text(12)?).map(Into::into),
        ward: opt(text(13)?).map(Into::into),
        lsoa: opt(text(14)?).map(Into::into),
    })
}

/// Reads a records row (columns in [`RECORD_COLUMNS`] order) back into an
/// event. Works for both databases' rows.
fn event_from_row<R>(row: &R) -> Result<Event>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<String, _>(i);
    let opt_text = |i: usize| row.try_get::<Option<String>, _>(i);
    let opt_int = |i: usize| row.try_get::<Option<i64>, _>(i);
    let cell = match opt_int(12)? {
        Some(v) => Some(cell_from_int(v).ok_or_else(|| StoreError::Corrupt {
            column: "records.cell",
            value: v.to_string(),
        })?),
        None => None,
    };
    Ok(Event {
        site_code: text(0)?,
        record_id: text(1)?,
        content_hash: row.try_get::<i64, _>(2)? as u64,
        assault_date: parse_day(&text(4)?, "records.day")?,
        assault_hour: opt_int(5)?.map(|h| h as u8),
        method: parse_coded(&text(6)?, "records.assault_method", AssaultMethod::parse)?,
        location_type: parse_coded(&text(7)?, "records.location_type", LocationType::parse)?,
        age_band: parse_coded(&text(8)?, "records.age_band", AgeBand::parse)?,
        sex: parse_coded(&text(9)?, "records.sex", Sex::parse)?,
        geocode_method: parse_coded(
            &text(10)?,
            "records.geocode_method",
            GeocodeMethod::from_name,
        )?,
        precision_m: opt_int(11)?.map(|p| p as u32),
        cell,
        borough: opt_text(13)?.map(Into::into),
        ward: opt_text(14)?.map(Into::into),
        lsoa: opt_text(15)?.map(Into::into),
        disclosure_key: {
            let k = row.try_get::<i64, _>(16)?;
            u16::try_from(k)
                .ok()
                .filter(|k| *k < istv_aggregate::RECORD_KEYS)
                .ok_or_else(|| StoreError::Corrupt {
                    column: "records.rkey",
                    value: k.to_string(),
                })?
        },
    })
}

#[cfg(test)]
mod tests;
