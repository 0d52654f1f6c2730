//! Storage of ISTV records and their exact aggregate cube, in SQLite (the
//! default) or PostgreSQL (a URL starting with `postgres://`).
//!
//! # Guarantees
//!
//! * **Exact aggregates.** Each [`Store::apply_batch`] writes its records,
//!   its cube changes and the upload's running counts in one transaction, so
//!   at every commit the cube equals a recount of the records table
//!   ([`Store::recount_check`] verifies it).
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
//!   lock per site (in site order, so they cannot deadlock): records and
//!   cube keys both include the site, so batches of different sites never
//!   touch the same rows.
//!
//! No patient identifier and no free text is stored: records hold the
//! [`Event`] fields only.
#![warn(missing_docs)]

mod ids;

pub use ids::UploadId;
pub use istv_aggregate::{BatchOutcome, Disclosure, Event, Query, Row};

use chrono::{DateTime, NaiveDate, Utc};
use istv_aggregate::{
    cell_from_int, cell_to_int, plan_batch, CellResolution, Column, Cube, CubeKey, GeocodeMethod,
    LocationStatus, RecordKey, Value,
};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row as _;
use std::collections::{BTreeSet, HashMap};
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
    /// Every row error, in row order.
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
    /// The count in the cube table (0 when absent).
    pub stored: i64,
    /// The count recomputed from the records table.
    pub recounted: i64,
}

/// The outcome of [`Store::recount_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records in the records table.
    pub records: u64,
    /// Sum of the cube's counts.
    pub cube_total: i64,
    /// Cube rows with a non-zero count.
    pub cube_keys: u64,
    /// Every key that differs (empty when the cube is exact).
    pub mismatches: Vec<Mismatch>,
}

impl CheckReport {
    /// True when the cube equals the recount.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty() && self.cube_total == self.records as i64
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
    db: Db,
    /// Serialises SQLite write transactions within the process.
    write_lock: Arc<tokio::sync::Mutex<()>>,
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

/// SQLite allows 32766 bound parameters per statement, PostgreSQL 65535.
const MAX_PARAMS: usize = 32_000;

const RECORD_COLUMNS: [&str; 16] = [
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
    use chrono::Datelike;
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
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

/// A stable lock key of a site for PostgreSQL advisory locks.
fn site_lock_key(site: &str) -> i64 {
    istv_aggregate::content_hash(&["istv-site-lock", site]) as i64
}

impl Store {
    /// Connects and runs the migrations. `url` is a SQLite URL
    /// (`sqlite://path/istv.db?mode=rwc`, `sqlite::memory:`) or a PostgreSQL
    /// URL (`postgres://user@host/db`). A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedUrl(scheme.to_owned()));
        };
        Ok(Store {
            db,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
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
    pub async fn apply_batch(&self, upload: &UploadId, events: &[Event]) -> Result<BatchOutcome> {
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let is_pg = self.backend() == Backend::Postgres;
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let state: Option<(i64,)> = sqlx::query_as("SELECT completed FROM uploads WHERE id = $1")
                .bind(upload.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            match state {
                None => return Err(StoreError::NoSuchUpload(upload.to_string())),
                Some((c,)) if c != 0 => return Err(StoreError::UploadFinished(upload.to_string())),
                Some(_) => {}
            }
            // Group the batch's record ids by site for the prefetch.
            let mut by_site: HashMap<&str, BTreeSet<&str>> = HashMap::new();
            for e in events {
                by_site.entry(e.site_code.as_str()).or_default().insert(e.record_id.as_str());
            }
            let mut sites: Vec<&str> = by_site.keys().copied().collect();
            sites.sort_unstable();
            if is_pg {
                for site in &sites {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(site_lock_key(site))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // Prefetch the stored records the batch touches, in two steps:
            // hashes of all, then full rows of those the batch changes. Same
            // hash means same content, so for a key the batch only re-sends
            // unchanged, the batch's own event stands for the stored one.
            let mut batch_events: HashMap<(&str, &str), Vec<&Event>> = HashMap::new();
            for e in events {
                batch_events.entry((e.site_code.as_str(), e.record_id.as_str())).or_default().push(e);
            }
            let mut existing: HashMap<RecordKey, Event> = HashMap::new();
            const IDS_PER_QUERY: usize = 4000;
            for site in &sites {
                let ids: Vec<&str> = by_site[site].iter().copied().collect();
                let mut changed: Vec<&str> = Vec::new();
                for chunk in ids.chunks(IDS_PER_QUERY) {
                    let mut ph = self.placeholders();
                    let sql = format!(
                        "SELECT record_id, content_hash FROM records WHERE site_code = {} AND record_id IN ({})",
                        ph.next(),
                        ph.list(chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(*site);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for (id, hash) in q.fetch_all(&mut *tx).await? {
                        let sent = &batch_events[&(*site, id.as_str())];
                        if sent.iter().all(|e| e.content_hash == hash as u64) {
                            existing.insert(sent[0].record_key(), sent[0].clone());
                        } else {
                            changed.push(by_site[site].get(id.as_str()).copied().unwrap_or_default());
                        }
                    }
                }
                for chunk in changed.chunks(IDS_PER_QUERY) {
                    let mut ph = self.placeholders();
                    let sql = format!(
                        "SELECT {} FROM records WHERE site_code = {} AND record_id IN ({})",
                        RECORD_COLUMNS.join(", "),
                        ph.next(),
                        ph.list(chunk.len())
                    );
                    let mut q = sqlx::query(&sql).bind(*site);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        let e = event_from_row(&row)?;
                        existing.insert(e.record_key(), e);
                    }
                }
            }
            let plan = plan_batch(&existing, events);

            // Records: one multi-row upsert per chunk.
            let per_chunk = MAX_PARAMS / RECORD_COLUMNS.len();
            let days: Vec<String> = plan.upserts.iter().map(|e| day_text(e.assault_date)).collect();
            let tail = format!(
                "ON CONFLICT (site_code, record_id) DO UPDATE SET {}",
                RECORD_COLUMNS[2..]
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (chunk, days) in plan.upserts.chunks(per_chunk).zip(days.chunks(per_chunk)) {
                let sql = insert_sql(self.placeholders(), "records", &RECORD_COLUMNS, chunk.len(), &tail);
                let mut q = sqlx::query(&sql);
                for (e, day) in chunk.iter().zip(days) {
                    q = q
                        .bind(e.site_code.as_str())
                        .bind(e.record_id.as_str())
                        .bind(e.content_hash as i64)
                        .bind(upload.as_str())
                        .bind(day.as_str())
                        .bind(e.assault_hour.map(i64::from))
                        .bind(e.method.as_str())
                        .bind(e.location_type.as_str())
                        .bind(e.age_band.as_str())
                        .bind(e.sex.as_str())
                        .bind(e.geocode_method.as_str())
                        .bind(e.precision_m.map(i64::from))
                        .bind(e.cell.map(|c| cell_to_int(Some(c))))
                        .bind(e.borough.as_deref())
                        .bind(e.ward.as_deref())
                        .bind(e.lsoa.as_deref());
                }
                q.execute(&mut *tx).await?;
            }

            // Cube: the batch's net change per key, one upsert per chunk.
            let mut cube_columns: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            let key_list = cube_columns.join(", ");
            cube_columns.push("count");
            let tail = format!("ON CONFLICT ({key_list}) DO UPDATE SET count = cube.count + excluded.count");
            let per_chunk = MAX_PARAMS / cube_columns.len();
            let days: Vec<String> = plan.deltas.iter().map(|(k, _)| day_text(k.day)).collect();
            for (chunk, days) in plan.deltas.chunks(per_chunk).zip(days.chunks(per_chunk)) {
                let sql = insert_sql(self.placeholders(), "cube", &cube_columns, chunk.len(), &tail);
                let mut q = sqlx::query(&sql);
                for ((k, delta), day) in chunk.iter().zip(days) {
                    q = q
                        .bind(day.as_str())
                        .bind(k.hour.map_or(-1, i64::from))
                        .bind(k.method.as_str())
                        .bind(k.location_type.as_str())
                        .bind(k.age_band.as_str())
                        .bind(k.sex.as_str())
                        .bind(k.site.as_str())
                        .bind(k.location_status.as_str());
                    for r in CellResolution::ALL {
                        q = q.bind(cell_to_int(k.cell(r)));
                    }
                    q = q
                        .bind(k.borough.as_deref().unwrap_or(""))
                        .bind(k.ward.as_deref().unwrap_or(""))
                        .bind(k.lsoa.as_deref().unwrap_or(""))
                        .bind(*delta);
                }
                q.execute(&mut *tx).await?;
            }
            if plan.deltas.iter().any(|(_, d)| *d < 0) {
                // Only a decrement can empty a key.
                sqlx::query("DELETE FROM cube WHERE count = 0").execute(&mut *tx).await?;
            }
            let o = plan.outcome;
            sqlx::query(
                "UPDATE uploads SET accepted = accepted + $1, duplicates = duplicates + $2, \
                 corrections = corrections + $3 WHERE id = $4",
            )
            .bind(o.accepted as i64)
            .bind(o.duplicates as i64)
            .bind(o.corrections as i64)
            .bind(upload.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(o)
        })
    }

    /// Finishes an upload: stores the counts, the receipt and every row
    /// error, and marks it complete, in one transaction. Once this returns
    /// the receipt may be given to the uploader.
    pub async fn finish_upload(&self, upload: &UploadId, done: Completion<'_>) -> Result<()> {
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
            match state {
                None => return Err(StoreError::NoSuchUpload(upload.to_string())),
                Some((c,)) if c != 0 => return Err(StoreError::UploadFinished(upload.to_string())),
                Some(_) => {}
            }
            const COLS: [&str; 6] = ["upload_id", "seq", "row_number", "field", "code", "message"];
            for (n, chunk) in done.errors.chunks(MAX_PARAMS / COLS.len()).enumerate() {
                let sql = insert_sql(self.placeholders(), "upload_errors", &COLS, chunk.len(), "");
                let mut q = sqlx::query(&sql);
                let base = n * (MAX_PARAMS / COLS.len());
                for (i, e) in chunk.iter().enumerate() {
                    q = q
                        .bind(upload.as_str())
                        .bind((base + i) as i64)
                        .bind(e.row as i64)
                        .bind(e.field.as_deref())
                        .bind(e.code.as_str())
                        .bind(e.message.as_str());
                }
                q.execute(&mut *tx).await?;
            }
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
    /// into published rows under `disclosure`.
    pub async fn aggregate(&self, query: &Query, disclosure: Disclosure) -> Result<Vec<Row>> {
        let plan = query.plan();
        let mut sql = String::from("SELECT ");
        for c in &plan.columns {
            sql.push_str(c.name());
            sql.push_str(", ");
        }
        sql.push_str("CAST(SUM(count) AS BIGINT) FROM cube WHERE 1 = 1");
        let mut ph = self.placeholders();
        let mut binds: Vec<Value> = Vec::new();
        if let Some(from) = plan.from {
            sql.push_str(&format!(" AND day >= {}", ph.next()));
            binds.push(Value::Text(day_text(from)));
        }
        if let Some(to) = plan.to {
            sql.push_str(&format!(" AND day <= {}", ph.next()));
            binds.push(Value::Text(day_text(to)));
        }
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
        }
        let width = plan.columns.len();
        let rows: Vec<(Vec<Value>, i64)> = on_db!(&self.db, pool => {
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
                out.push((values, count.unwrap_or(0)));
            }
            out
        });
        Ok(query.fold(rows, disclosure))
    }

    /// Compares the cube with a recount from the records table.
    pub async fn recount_check(&self) -> Result<CheckReport> {
        let (records, stored) = on_db!(&self.db, pool => {
            let mut records: Vec<Event> = Vec::new();
            let sql = format!("SELECT {} FROM records", RECORD_COLUMNS.join(", "));
            for row in sqlx::query(&sql).fetch_all(pool).await? {
                records.push(event_from_row(&row)?);
            }
            let mut cube: Vec<(CubeKey, i64)> = Vec::new();
            let cols: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            let sql = format!("SELECT {}, count FROM cube", cols.join(", "));
            for row in sqlx::query(&sql).fetch_all(pool).await? {
                let text = |i: usize| row.try_get::<String, _>(i);
                let int = |i: usize| row.try_get::<i64, _>(i);
                let opt = |s: String| (!s.is_empty()).then_some(s);
                let day = text(0)?;
                let hour = int(1)?;
                let key = CubeKey {
                    day: parse_day(&day, "cube.day")?,
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
                    borough: opt(text(12)?),
                    ward: opt(text(13)?),
                    lsoa: opt(text(14)?),
                };
                cube.push((key, int(15)?));
            }
            (records, cube)
        });
        let recount = Cube::recount(&records);
        let mut report = CheckReport {
            records: records.len() as u64,
            ..CheckReport::default()
        };
        let mut seen: HashMap<&CubeKey, i64> = HashMap::with_capacity(stored.len());
        for (key, count) in &stored {
            report.cube_total += count;
            if *count != 0 {
                report.cube_keys += 1;
            }
            *seen.entry(key).or_default() += count;
        }
        for (key, stored) in &seen {
            let recounted = recount.get(key);
            if *stored != recounted {
                report.mismatches.push(Mismatch {
                    key: (*key).clone(),
                    stored: *stored,
                    recounted,
                });
            }
        }
        for (key, recounted) in recount.iter() {
            if !seen.contains_key(key) {
                report.mismatches.push(Mismatch {
                    key: key.clone(),
                    stored: 0,
                    recounted,
                });
            }
        }
        report.mismatches.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(report)
    }
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
        geocode_method: parse_coded(&text(10)?, "records.geocode_method", GeocodeMethod::parse)?,
        precision_m: opt_int(11)?.map(|p| p as u32),
        cell,
        borough: opt_text(13)?,
        ward: opt_text(14)?,
        lsoa: opt_text(15)?,
    })
}

#[cfg(test)]
mod tests;
