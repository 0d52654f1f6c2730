//! Storage of ISTV records and their exact aggregates, in SQLite (the
//! default) or PostgreSQL (a URL starting with `postgres://`).
//!
//! # Guarantees
//!
//! * **Exact aggregates.** Each [`Store::apply_batch`] writes its records,
//!   its changes to every roll-up table and the upload's running counts in
//!   one transaction, so at every commit each roll-up table equals a
//!   recount of the records table ([`Store::recount_check`] verifies it).
//!   A record's row holds its current version (a correction updates it in
//!   place), so a query no roll-up covers counts the records themselves.
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
//!   keyed by site, so batches of different sites never touch the same
//!   records.
//! * **Fast SQLite batches.** Records and roll-up rows are written by one
//!   prepared statement per batch on the connection's own handle (see
//!   `sqlite::rows`), inside the same sqlx transaction.
//!
//! No patient identifier and no free text is stored: records hold the
//! [`Event`] fields only.
//!
//! # Layout
//!
//! This file holds the public types and the [`Store`] methods that are the
//! same on both databases. What differs lives in `sqlite` and `postgres`:
//! how the pools are opened and how a batch is applied (`sqlite::batch`,
//! `postgres::batch`), plus SQLite's record spans, WAL checkpointer and
//! many-row writes on the raw handle. Shared by both: `batch` (what a
//! batch sends and finds stored), `codec` (values in statements, rows read
//! back), `connect` (opening a store), `query`, `check` (the recount),
//! `audit` (the hash-chained audit log), `public` (the public tier's
//! monthly releases, stored once),
//! `rollups` (the roll-up tables' SQL). Fixed statements are in `src/sql`.
#![warn(missing_docs)]

/// Runs `$body` with `$pool` bound to the concrete pool: the SQL is the same
/// for both databases (`$n` placeholders work in both), only types differ.
/// Defined before the modules, which use it.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

mod accounts;
mod audit;
mod batch;
mod check;
mod codec;
mod connect;
mod deadline;
mod ids;
mod offsets;
mod portal;
mod postgres;
mod public;
mod query;
mod registry;
mod rollups;
mod sqlite;

pub use accounts::{Account, ApiToken, NewSession, NewUser, Org, Session};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, BreakKind, Broken, VerifyReport};
pub use deadline::with_deadline;
pub use ids::UploadId;
pub use istv_aggregate::{BatchOutcome, Disclosure, Event, Query, Row};
pub use offsets::{OffsetMove, PartitionOffset, StreamBatch};
pub use portal::{MonthCounts, SavedQuery, SiteTallies, QUALITY_FIELDS};
pub use public::{PublicRelease, PublicReleaseInfo};
pub use registry::SubjectVersion;

use batch::{check_open, Stored};
use codec::{insert_sql, now_text, parse_time, Placeholders, MAX_PARAMS};

use chrono::{DateTime, Utc};
use istv_aggregate::DisclosureKeys;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::sync::Arc;

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
    /// An organisation code already registered.
    #[error("organisation `{0}` already exists")]
    OrgExists(String),
    /// An organisation code not registered.
    #[error("no organisation `{0}`")]
    NoSuchOrg(String),
    /// A user name already taken.
    #[error("user `{0}` already exists")]
    UserExists(String),
    /// A user name not known.
    #[error("no user `{0}`")]
    NoSuchUser(String),
    /// A token name already used by one of the user's live tokens.
    #[error("user `{user}` already has a live token named `{name}`")]
    TokenNameTaken {
        /// The user.
        user: String,
        /// The token name.
        name: String,
    },
    /// No live token of that name.
    #[error("user `{user}` has no live token named `{name}`")]
    NoSuchToken {
        /// The user.
        user: String,
        /// The token name.
        name: String,
    },
    /// An account that breaks a rule (e.g. an uploader without a site).
    #[error("{0}")]
    InvalidAccount(String),
    /// Another version of the subject was registered since the one a new
    /// schema was checked against.
    #[error("subject `{0}` has a new version since the compatibility check")]
    RegistryMoved(String),
    /// A stream batch starts a partition from a position the store no
    /// longer holds: another consumer took the partition and committed
    /// since. Nothing of the batch is stored.
    #[error("consumer group `{group}` topic `{topic}` partition {partition}: the batch starts at {} but the store holds {}; another consumer committed since", show_offset(*.from), show_offset(*.stored))]
    OffsetFenced {
        /// The consumer group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The position the batch started from.
        from: Option<i64>,
        /// The position stored.
        stored: Option<i64>,
    },
    /// A stream batch whose moves make no sense (a partition twice, a move
    /// backwards).
    #[error("invalid offset move: {0}")]
    InvalidOffsetMove(String),
}

/// A stored position in an error message.
fn show_offset(offset: Option<i64>) -> String {
    offset.map_or_else(|| "no position".to_owned(), |o| format!("offset {o}"))
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
    /// Days within which it is expected to upload again (default 35).
    pub expected_interval_days: u32,
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

/// The outcome of [`Store::recount_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records in the records table.
    pub records: u64,
    /// Records outside every span that could hold their day, which a
    /// date-range query would miss (SQLite; always 0 on PostgreSQL).
    pub unspanned_records: u64,
    /// Spans that overlap the next one, whose rows a date-range query would
    /// count twice (SQLite; always 0 on PostgreSQL).
    pub overlapping_spans: u64,
    /// Every roll-up table by name, with the number of its rows that differ
    /// from a recount of the records (counts or key sums; a missing or
    /// extra row counts).
    pub rollups: Vec<(String, u64)>,
}

impl CheckReport {
    /// True when every roll-up table equals the recount and the spans
    /// cover every record once.
    pub fn is_ok(&self) -> bool {
        self.unspanned_records == 0
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
    /// SQLite: how records are found by (site, record id).
    record_ids: Option<sqlite::identity::RecordIds>,
}

/// Connections of the query pool.
const READ_CONNECTIONS: u32 = 4;

impl Store {
    /// The record keys this store's records get (see
    /// [`Event::disclosure_key`]): set them on events before
    /// [`Store::apply_batch`].
    pub fn disclosure_keys(&self) -> &DisclosureKeys {
        &self.keys
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
        Placeholders::new(self.backend())
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
        self.site_token(code, Some(name)).await
    }

    /// Issues another token for a site (e.g. to rotate); earlier tokens keep
    /// working until the site is revoked. Issued after a revoke, it is the
    /// site's only working token: the site is active again, the tokens it
    /// had before the revoke stay revoked.
    pub async fn issue_token(&self, code: &str) -> Result<String> {
        self.site_token(code, None).await
    }

    /// A new token for site `code`, in one transaction: with `new_name` the
    /// site is registered under that name and must not exist yet ([`Self::add_site`]),
    /// without it the site must exist and becomes active again ([`Self::issue_token`]).
    async fn site_token(&self, code: &str, new_name: Option<&str>) -> Result<String> {
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
            match (new_name, exists.is_some()) {
                (Some(_), true) => return Err(StoreError::SiteExists(code.to_owned())),
                (None, false) => return Err(StoreError::NoSuchSite(code.to_owned())),
                _ => {}
            }
            if let Some(name) = new_name {
                sqlx::query("INSERT INTO sites (code, name, created_at, revoked) VALUES ($1, $2, $3, 0)")
                    .bind(code)
                    .bind(name)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("INSERT INTO site_tokens (token_hash, site_code, created_at) VALUES ($1, $2, $3)")
                .bind(&hash)
                .bind(code)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            if new_name.is_none() {
                sqlx::query("UPDATE sites SET revoked = 0 WHERE code = $1")
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(token)
    }

    /// Every registered site, by code.
    pub async fn list_sites(&self) -> Result<Vec<Site>> {
        let rows: Vec<(String, String, String, i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT code, name, created_at, revoked, expected_interval_days FROM sites ORDER BY code",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(code, name, created_at, revoked, interval)| {
                Ok(Site {
                    code,
                    name,
                    created_at: parse_time(&created_at, "sites.created_at")?,
                    revoked: revoked != 0,
                    expected_interval_days: u32::try_from(interval).map_err(|_| {
                        StoreError::Corrupt {
                            column: "sites.expected_interval_days",
                            value: interval.to_string(),
                        }
                    })?,
                })
            })
            .collect()
    }

    /// Revokes a site: none of its tokens authenticates any more (a token
    /// issued later does). Its records stay.
    pub async fn revoke_site(&self, code: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let done = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let done = sqlx::query("UPDATE sites SET revoked = 1 WHERE code = $1")
                .bind(code)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE site_tokens SET revoked = 1 WHERE site_code = $1")
                .bind(code)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done
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
            sqlx::query_as(include_str!("sql/authenticate.sql"))
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
    /// On SQLite each statement is prepared once per batch and stepped per
    /// row on the connection's own handle; on PostgreSQL each takes the
    /// batch as one array per column.
    pub async fn apply_batch(&self, upload: &UploadId, events: &[Event]) -> Result<BatchOutcome> {
        let _guard = self.write_guard().await;
        self.apply(batch::Source::Upload(upload), events).await
    }

    /// Applies a batch from `source` on the store's database; the caller
    /// holds the write guard.
    async fn apply(&self, source: batch::Source<'_>, events: &[Event]) -> Result<BatchOutcome> {
        let stored = Stored::new(events);
        match &self.db {
            Db::Sqlite(pool) => {
                let ids = self
                    .record_ids
                    .as_ref()
                    .expect("set when a SQLite store connects");
                sqlite::apply_batch(pool, ids, source, events, stored).await
            }
            Db::Postgres(pool) => postgres::apply_batch(pool, source, events, stored).await,
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
            let (site,): (String,) = sqlx::query_as("SELECT site_code FROM uploads WHERE id = $1")
                .bind(upload.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let mut by_code: std::collections::BTreeMap<&str, i64> = Default::default();
            for e in errors {
                *by_code.entry(e.code.as_str()).or_default() += 1;
            }
            portal::add_tallies!(
                tx,
                by_code.into_iter().map(|(code, n)| (site.as_str(), "rejection", code, n))
            );
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
            sqlx::query(include_str!("sql/finish_upload.sql"))
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
            sqlx::query_as(include_str!("sql/upload.sql"))
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
            sqlx::query_as(include_str!("sql/upload_errors.sql"))
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
            sqlx::query_as(include_str!("sql/last_upload_per_site.sql"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .filter_map(|(site, t)| t.map(|t| (site, t)))
            .map(|(site, t)| Ok((site, parse_time(&t, "uploads.completed_at")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
