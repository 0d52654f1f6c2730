//! What the portal reads and keeps, on both databases (the SQL is the
//! same): saved queries, each site's expected upload interval, the
//! data-quality figures of each site and the list of an upload's receipts.
//!
//! The quality tallies (`quality_tallies`, migration 0011) are kept by the
//! writes themselves: each batch adds its net change of stored records per
//! geocoding method and per optional field with a value (see
//! [`quality_deltas`]), and each call that stores row errors adds their
//! count per code, in the same transaction. So they stay exact across
//! re-sends (an unchanged record changes nothing) and corrections (the old
//! version leaves, the new one comes in).

use crate::codec::{now_text, parse_time};
use crate::ids;
use crate::{Db, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use istv_aggregate::{Event, RecordKey};
use istv_core::{AgeBand, Sex};
use std::collections::{BTreeMap, HashMap};

/// A saved portal query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    /// Its id (a ULID: ids sort by creation time).
    pub id: String,
    /// The user who saved it.
    pub owner: String,
    /// The owner's organisation when it was saved.
    pub org: String,
    /// Its name.
    pub name: String,
    /// The portal page's query string, without `?`.
    pub query: String,
    /// True when every user of `org` sees it.
    pub shared: bool,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

/// The optional fields whose completeness is tallied, in the order they are
/// reported: the assault's time of day, the patient's age and sex.
pub const QUALITY_FIELDS: [&str; 3] = ["assault_time", "age_band", "sex"];

/// Row counts of a site's uploads received in one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthCounts {
    /// Rows read from the finished uploads.
    pub received: u64,
    /// New records stored (a re-sent or corrected record is not new).
    pub accepted: u64,
    /// Rows rejected by validation.
    pub rejected: u64,
}

/// What the store keeps about one site's data quality.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteTallies {
    /// Counts per month (`YYYY-MM`, UTC) of the uploads' arrival.
    pub months: BTreeMap<String, MonthCounts>,
    /// Stored records per geocoding method (its stable name).
    pub methods: BTreeMap<String, u64>,
    /// Stored records with a value, per field of [`QUALITY_FIELDS`].
    pub fields: BTreeMap<String, u64>,
    /// Row errors of the site's uploads, per error code.
    pub rejections: BTreeMap<String, u64>,
    /// When the site's last upload finished, if it ever did.
    pub last_upload_at: Option<DateTime<Utc>>,
}

/// The tallies (kind, name) one stored record counts under.
fn contributions(e: &Event) -> impl Iterator<Item = (&'static str, &'static str)> {
    let fields = [
        e.assault_hour.is_some().then_some("assault_time"),
        (e.age_band != AgeBand::Unknown).then_some("age_band"),
        (e.sex != Sex::NotKnown).then_some("sex"),
    ];
    std::iter::once(("method", e.geocode_method.as_str()))
        .chain(fields.into_iter().flatten().map(|f| ("field", f)))
}

/// The net change of the quality tallies by (site, kind, name) that a batch
/// makes: `new` are records inserted as new, `upserts` the final state of
/// every other record the batch sends and `existing` the stored version of
/// those that were stored. Zero changes are left out.
pub(crate) fn quality_deltas<'a>(
    new: &[&'a Event],
    upserts: &[&'a Event],
    existing: &HashMap<RecordKey, Event>,
) -> Vec<(&'a str, &'static str, &'static str, i64)> {
    let mut deltas: BTreeMap<(&'a str, &'static str, &'static str), i64> = BTreeMap::new();
    for e in new.iter().chain(upserts) {
        let site = e.site_code.as_str();
        for (kind, name) in contributions(e) {
            *deltas.entry((site, kind, name)).or_default() += 1;
        }
    }
    for e in upserts {
        if let Some(old) = existing.get(&e.record_key()) {
            for (kind, name) in contributions(old) {
                *deltas
                    .entry((e.site_code.as_str(), kind, name))
                    .or_default() -= 1;
            }
        }
    }
    deltas
        .into_iter()
        .filter(|(_, d)| *d != 0)
        .map(|((s, k, n), d)| (s, k, n, d))
        .collect()
}

/// Adds to a tally (parameters: site, kind, name, change).
pub(crate) const ADD_TALLY: &str = "INSERT INTO quality_tallies (site_code, kind, name, count) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (site_code, kind, name) \
     DO UPDATE SET count = quality_tallies.count + excluded.count";

/// Adds the quality tallies' changes within a batch's transaction.
macro_rules! add_tallies {
    ($tx:ident, $deltas:expr) => {{
        for (site, kind, name, delta) in $deltas {
            sqlx::query($crate::portal::ADD_TALLY)
                .bind(site)
                .bind(kind)
                .bind(name)
                .bind(delta)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use add_tallies;

/// A saved_queries row: id, owner, org, name, query, shared, created.
type SavedRow = (String, String, String, String, String, i64, String);

const SAVED_COLUMNS: &str = "id, owner, org_code, name, query, shared, created_at";

fn saved(row: SavedRow) -> Result<SavedQuery> {
    let (id, owner, org, name, query, shared, created) = row;
    Ok(SavedQuery {
        id,
        owner,
        org,
        name,
        query,
        shared: shared != 0,
        created_at: parse_time(&created, "saved_queries.created_at")?,
    })
}

impl Store {
    // ----- saved queries -----

    /// Saves a query for `owner` (in the owner's organisation).
    pub async fn add_saved_query(
        &self,
        owner: &str,
        name: &str,
        query: &str,
        shared: bool,
    ) -> Result<SavedQuery> {
        let id = ids::UploadId::generate()?.to_string();
        let now = now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let row: SavedRow = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let org: Option<(String,)> = sqlx::query_as("SELECT org_code FROM users WHERE name = $1")
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((org,)) = org else {
                return Err(StoreError::NoSuchUser(owner.to_owned()));
            };
            sqlx::query(&format!(
                "INSERT INTO saved_queries ({SAVED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(&id)
            .bind(owner)
            .bind(&org)
            .bind(name)
            .bind(query)
            .bind(i64::from(shared))
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            (id, owner.to_owned(), org, name.to_owned(), query.to_owned(), i64::from(shared), now)
        });
        saved(row)
    }

    /// The queries `user` sees: their own and those shared in `org`,
    /// newest first.
    pub async fn saved_queries_for(&self, user: &str, org: &str) -> Result<Vec<SavedQuery>> {
        let rows: Vec<SavedRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&format!(
                "SELECT {SAVED_COLUMNS} FROM saved_queries \
                 WHERE owner = $1 OR (shared <> 0 AND org_code = $2) \
                 ORDER BY created_at DESC, id DESC"
            ))
            .bind(user)
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(saved).collect()
    }

    /// Deletes one of `owner`'s saved queries and returns it; `None` when
    /// there is no such query of theirs (unknown, or someone else's).
    pub async fn delete_saved_query(&self, id: &str, owner: &str) -> Result<Option<SavedQuery>> {
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let row: Option<SavedRow> = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let row: Option<SavedRow> = sqlx::query_as(&format!(
                "SELECT {SAVED_COLUMNS} FROM saved_queries WHERE id = $1 AND owner = $2"
            ))
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_some() {
                sqlx::query("DELETE FROM saved_queries WHERE id = $1 AND owner = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            row
        });
        row.map(saved).transpose()
    }

    // ----- sites' expected interval -----

    /// Sets the days within which a site is expected to upload again.
    pub async fn set_site_interval(&self, code: &str, days: u32) -> Result<()> {
        let _guard = self.write_guard().await;
        let done = on_db!(&self.db, pool => {
            sqlx::query("UPDATE sites SET expected_interval_days = $1 WHERE code = $2")
                .bind(i64::from(days))
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

    // ----- data quality -----

    /// The quality tallies of every site that has any, by site code.
    pub async fn site_tallies(&self) -> Result<BTreeMap<String, SiteTallies>> {
        let mut out: BTreeMap<String, SiteTallies> = BTreeMap::new();
        let months: Vec<(String, String, i64, i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT site_code, substr(received_at, 1, 7), \
                 CAST(SUM(CASE WHEN completed <> 0 THEN rows ELSE 0 END) AS BIGINT), \
                 CAST(SUM(accepted) AS BIGINT), \
                 CAST(SUM(CASE WHEN completed <> 0 THEN rejected ELSE 0 END) AS BIGINT) \
                 FROM uploads GROUP BY site_code, substr(received_at, 1, 7)",
            )
            .fetch_all(pool)
            .await?
        });
        for (site, month, received, accepted, rejected) in months {
            out.entry(site).or_default().months.insert(
                month,
                MonthCounts {
                    received: received.max(0) as u64,
                    accepted: accepted.max(0) as u64,
                    rejected: rejected.max(0) as u64,
                },
            );
        }
        let tallies: Vec<(String, String, String, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT site_code, kind, name, count FROM quality_tallies WHERE count <> 0")
                .fetch_all(pool)
                .await?
        });
        for (site, kind, name, count) in tallies {
            let t = out.entry(site).or_default();
            let map = match kind.as_str() {
                "method" => &mut t.methods,
                "field" => &mut t.fields,
                "rejection" => &mut t.rejections,
                _ => {
                    return Err(StoreError::Corrupt {
                        column: "quality_tallies.kind",
                        value: kind,
                    })
                }
            };
            map.insert(name, count.max(0) as u64);
        }
        for (site, at) in self.last_upload_per_site().await? {
            out.entry(site).or_default().last_upload_at = Some(at);
        }
        Ok(out)
    }

    /// The receipts of the finished uploads of `sites`, newest first (by
    /// when they finished), at most `limit`.
    pub async fn receipts(&self, sites: &[String], limit: u64) -> Result<Vec<serde_json::Value>> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let mut all: Vec<(String, String, String)> = Vec::new();
        for site in sites {
            let rows: Vec<(String, String, String)> = on_db!(&self.db, pool => {
                sqlx::query_as(
                    "SELECT completed_at, id, receipt FROM uploads \
                     WHERE site_code = $1 AND completed = 1 AND receipt IS NOT NULL \
                     ORDER BY completed_at DESC, id DESC LIMIT $2",
                )
                .bind(site)
                .bind(limit)
                .fetch_all(pool)
                .await?
            });
            all.extend(rows);
        }
        // Fixed-width UTC text: comparing the text compares the times.
        all.sort_unstable_by(|a, b| (&b.0, &b.1).cmp(&(&a.0, &a.1)));
        all.truncate(limit as usize);
        all.into_iter()
            .map(|(_, _, text)| {
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
                    column: "uploads.receipt",
                    value: text,
                })
            })
            .collect()
    }
}
