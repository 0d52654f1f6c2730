//! The audit log: an append-only, hash-chained record of who asked for
//! what (queries, downloads, sign-ins, uploads, administrative actions),
//! on both databases.
//!
//! # The chain
//!
//! Entry `n`'s hash is `SHA-256(prev || enc(seq) || enc(at) || enc(actor)
//! || enc(organisation) || enc(action) || enc(route) || enc(parameters) ||
//! enc(figures) || enc(status))`, stored as 64 lowercase hex digits, where
//! `prev` is the previous entry's hash as 32 raw bytes (32 zero bytes for
//! entry 1), `enc(None)` is the byte `0x00` and `enc(Some(text))` is the
//! byte `0x01`, the text's UTF-8 length as 4 bytes big-endian, then the
//! text. Numbers (`seq`, `figures`) are their decimal text, `at` the stored
//! text (`2024-01-02T03:04:05.000000Z`). Entries are numbered from 1 with
//! no gap, so a deleted entry shows as a gap, and a changed or inserted one
//! as a hash that does not follow from its fields and its predecessor.
//!
//! Appends are serialised so the chain is linear: on SQLite by the write
//! lock (and `BEGIN IMMEDIATE` across processes), on PostgreSQL by a
//! transaction-scoped advisory lock.

use crate::codec::{now_text, parse_time};
use crate::ids::hex;
use crate::{Db, Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

/// What an entry records, as given to [`Store::append_audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who: a user name, `site:CODE`, `anonymous`, or `cli` (`cli:OSUSER`).
    pub actor: String,
    /// The actor's organisation, when it has one.
    pub organisation: Option<String>,
    /// What: `query`, `download`, `sign_in`, `sign_in_failed`, `sign_out`,
    /// `upload`, or an administrative command such as `users add`.
    pub action: String,
    /// The HTTP route, for requests.
    pub route: Option<String>,
    /// The query string, or a JSON object of the command's arguments: never
    /// a password, a token or a record's content.
    pub parameters: Option<String>,
    /// How many figures the answer carried, for queries and downloads.
    pub figures: Option<u64>,
    /// The HTTP status (`200`, `403`...), or `ok` / `error` for a command.
    pub status: String,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its number, from 1.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// What it records.
    pub entry: AuditEntry,
    /// Its hash in the chain (hex).
    pub hash: String,
}

/// Which entries [`Store::list_audit`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's entries.
    pub user: Option<String>,
    /// Only entries from this day (UTC) on.
    pub since: Option<NaiveDate>,
    /// At most this many: the latest ones.
    pub limit: Option<u64>,
}

/// How the chain is broken at [`Broken::seq`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The entry's hash does not follow from its fields and the entry
    /// before it: it was changed, or inserted (or the one before it was
    /// changed with its hash recomputed).
    Mismatch,
    /// Entries `from` up to this one (exclusive) are missing: deleted.
    Missing {
        /// The first missing seq.
        from: u64,
    },
}

/// The first entry at which the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The entry's seq.
    pub seq: u64,
    /// How.
    pub kind: BreakKind,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            BreakKind::Mismatch => write!(
                f,
                "entry {}: its hash does not follow from its fields and the entry before it (changed or inserted)",
                self.seq
            ),
            BreakKind::Missing { from } if from + 1 == self.seq => write!(
                f,
                "entry {}: entry {from} before it is missing (deleted)",
                self.seq
            ),
            BreakKind::Missing { from } => write!(
                f,
                "entry {}: entries {from} to {} before it are missing (deleted)",
                self.seq,
                self.seq - 1
            ),
        }
    }
}

/// The outcome of [`Store::verify_audit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries read.
    pub entries: u64,
    /// The last entry's seq and hash: export it elsewhere to detect a later
    /// truncation or a rewritten chain.
    pub last: Option<(u64, String)>,
    /// The first break, if any.
    pub broken: Option<Broken>,
}

impl VerifyReport {
    /// True when the chain is intact.
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// The fields of an entry as stored, in chain order.
struct Fields<'a> {
    seq: u64,
    at: &'a str,
    entry: &'a AuditEntry,
}

fn encode(out: &mut Sha256, field: Option<&str>) {
    match field {
        None => out.update([0u8]),
        Some(text) => {
            out.update([1u8]);
            out.update((text.len() as u32).to_be_bytes());
            out.update(text.as_bytes());
        }
    }
}

/// The chain hash of an entry after `prev` (see the module documentation).
fn chain_hash(prev: &[u8; 32], f: &Fields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    let e = f.entry;
    encode(&mut h, Some(&f.seq.to_string()));
    encode(&mut h, Some(f.at));
    encode(&mut h, Some(&e.actor));
    encode(&mut h, e.organisation.as_deref());
    encode(&mut h, Some(&e.action));
    encode(&mut h, e.route.as_deref());
    encode(&mut h, e.parameters.as_deref());
    encode(&mut h, e.figures.map(|n| n.to_string()).as_deref());
    encode(&mut h, Some(&e.status));
    h.finalize().into()
}

/// The 32 bytes of a stored hex hash; `None` when it is not one.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A stored row: seq, at, actor, organisation, action, route, parameters,
/// figures, status, hash.
pub(crate) type AuditRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    String,
);

/// The entry a stored row records.
pub(crate) fn entry_of(row: &AuditRow) -> AuditEntry {
    AuditEntry {
        actor: row.2.clone(),
        organisation: row.3.clone(),
        action: row.4.clone(),
        route: row.5.clone(),
        parameters: row.6.clone(),
        figures: row.7.map(|n| n.max(0) as u64),
        status: row.8.clone(),
    }
}

/// Entries read per page while verifying.
const VERIFY_PAGE: i64 = 10_000;

impl Store {
    /// Appends an entry at the end of the chain and returns its seq. It is
    /// durable when this returns.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<u64> {
        let figures = entry.figures.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let postgres = matches!(self.db, Db::Postgres(_));
        let seq = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            if postgres {
                // Appends from every process, one at a time: the chain is linear.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(crate::postgres::site_lock_key("istv-audit-log"))
                    .execute(&mut *tx)
                    .await?;
            }
            let last: Option<(i64, String)> = sqlx::query_as(include_str!("sql/audit/last.sql"))
                .fetch_optional(&mut *tx)
                .await?;
            let (seq, prev) = match last {
                None => (1u64, [0u8; 32]),
                Some((seq, hash)) => {
                    let prev = unhex(&hash).ok_or_else(|| StoreError::Corrupt {
                        column: "audit_log.hash",
                        value: hash.clone(),
                    })?;
                    (seq as u64 + 1, prev)
                }
            };
            // Taken under the lock, so times never go backwards along the chain.
            let at = now_text();
            let hash = hex(&chain_hash(&prev, &Fields { seq, at: &at, entry }));
            sqlx::query(include_str!("sql/audit/insert.sql"))
                .bind(seq as i64)
                .bind(&at)
                .bind(&entry.actor)
                .bind(&entry.organisation)
                .bind(&entry.action)
                .bind(&entry.route)
                .bind(&entry.parameters)
                .bind(figures)
                .bind(&entry.status)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            seq
        });
        Ok(seq)
    }

    /// The latest entries matching `filter` (all of them without a limit),
    /// oldest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let since = filter
            .since
            .map(|d| format!("{}T00:00:00.000000Z", d.format("%Y-%m-%d")));
        let limit = filter
            .limit
            .map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows: Vec<AuditRow> = on_db!(&self.db, pool => {
            sqlx::query_as(include_str!("sql/audit/list.sql"))
                .bind(&filter.user)
                .bind(&since)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .rev()
            .map(|row| {
                Ok(AuditRecord {
                    seq: row.0 as u64,
                    at: parse_time(&row.1, "audit_log.at")?,
                    entry: entry_of(&row),
                    hash: row.9.clone(),
                })
            })
            .collect()
    }

    /// Recomputes the chain from entry 1 and names the first entry at which
    /// it breaks. It cannot see entries deleted from the end, nor a chain
    /// rewritten from some entry on: compare [`VerifyReport::last`] with a
    /// copy kept elsewhere for that.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut prev = [0u8; 32];
        let mut expected: u64 = 1;
        let mut after = i64::MIN;
        loop {
            let rows: Vec<AuditRow> = on_db!(&self.db, pool => {
                sqlx::query_as(include_str!("sql/audit/page.sql"))
                    .bind(after)
                    .bind(VERIFY_PAGE)
                    .fetch_all(pool)
                    .await?
            });
            let Some(last) = rows.last() else { break };
            after = last.0;
            for row in &rows {
                report.entries += 1;
                let seq = row.0 as u64;
                if report.broken.is_none() {
                    if seq > expected {
                        report.broken = Some(Broken {
                            seq,
                            kind: BreakKind::Missing { from: expected },
                        });
                    } else {
                        let entry = entry_of(row);
                        let computed = chain_hash(
                            &prev,
                            &Fields {
                                seq,
                                at: &row.1,
                                entry: &entry,
                            },
                        );
                        if seq < expected || unhex(&row.9) != Some(computed) {
                            report.broken = Some(Broken {
                                seq,
                                kind: BreakKind::Mismatch,
                            });
                        }
                    }
                }
                // Chained on the stored hash: only the first break is named.
                prev = unhex(&row.9).unwrap_or([0u8; 32]);
                expected = seq + 1;
                report.last = Some((seq, row.9.clone()));
            }
        }
        Ok(report)
    }
}
