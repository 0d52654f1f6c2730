//! The schema registry's tables on both databases: schemas by global id,
//! subjects' versions and compatibility levels. The store knows nothing of
//! Avro: the registry checks compatibility against the versions it reads,
//! then registers saying which latest version it checked against, and
//! [`StoreError::RegistryMoved`] tells it to check again when another
//! registration came first.

use crate::codec::now_text;
use crate::{Db, Result, Store, StoreError};

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject (`istv.attendances.v1-value`...).
    pub subject: String,
    /// The version within the subject, from 1.
    pub version: u32,
    /// The schema's global id, from 1.
    pub id: u32,
    /// The schema's text.
    pub schema: String,
}

type VersionRow = (String, i64, i64, String);

fn version_of(row: VersionRow) -> SubjectVersion {
    SubjectVersion {
        subject: row.0,
        version: row.1 as u32,
        id: row.2 as u32,
        schema: row.3,
    }
}

const VERSIONS_SQL: &str = "SELECT v.subject, v.version, v.schema_id, s.schema \
     FROM registry_versions v JOIN registry_schemas s ON s.id = v.schema_id \
     WHERE v.subject = $1";

/// The config row of a subject, `''` for the global level.
fn config_key(subject: Option<&str>) -> &str {
    subject.unwrap_or("")
}

impl Store {
    /// The text of the schema with global id `id`.
    pub async fn registry_schema(&self, id: u32) -> Result<Option<String>> {
        let row: Option<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT schema FROM registry_schemas WHERE id = $1")
                .bind(i64::from(id))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Every subject with a version, in name order.
    pub async fn registry_subjects(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT DISTINCT subject FROM registry_versions ORDER BY subject")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Every version of a subject, oldest first; empty for a subject never
    /// registered.
    pub async fn registry_history(&self, subject: &str) -> Result<Vec<SubjectVersion>> {
        let sql = format!("{VERSIONS_SQL} ORDER BY v.version");
        let rows: Vec<VersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(subject).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(version_of).collect())
    }

    /// A version of a subject, or its latest with `None`.
    pub async fn registry_version(
        &self,
        subject: &str,
        version: Option<u32>,
    ) -> Result<Option<SubjectVersion>> {
        let (sql, number) = match version {
            Some(n) => (format!("{VERSIONS_SQL} AND v.version = $2"), i64::from(n)),
            None => (
                format!("{VERSIONS_SQL} AND v.version >= $2 ORDER BY v.version DESC LIMIT 1"),
                0,
            ),
        };
        let row: Option<VersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(subject)
                .bind(number)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(version_of))
    }

    /// The version of a subject whose schema has this fingerprint, if any.
    pub async fn registry_lookup(
        &self,
        subject: &str,
        fingerprint: &str,
    ) -> Result<Option<SubjectVersion>> {
        let sql = format!("{VERSIONS_SQL} AND s.fingerprint = $2");
        let row: Option<VersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(subject)
                .bind(fingerprint)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(version_of))
    }

    /// Registers a schema as the next version of a subject, having checked
    /// it against the subject's version `after` (`None`: the subject has no
    /// version). A schema the subject already has returns that version
    /// unchanged; a schema another subject has keeps its id. Fails with
    /// [`StoreError::RegistryMoved`] when the subject's latest version is
    /// no longer `after`.
    pub async fn registry_register(
        &self,
        subject: &str,
        fingerprint: &str,
        schema: &str,
        after: Option<u32>,
    ) -> Result<SubjectVersion> {
        let now = now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        let postgres = matches!(self.db, Db::Postgres(_));
        let lookup = format!("{VERSIONS_SQL} AND s.fingerprint = $2");
        let registered = on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            if postgres {
                // One registration at a time across processes: ids are max + 1.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(crate::postgres::site_lock_key("istv-schema-registry"))
                    .execute(&mut *tx)
                    .await?;
            }
            let existing: Option<VersionRow> = sqlx::query_as(&lookup)
                .bind(subject)
                .bind(fingerprint)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                return Ok(version_of(row));
            }
            let (latest,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(version) FROM registry_versions WHERE subject = $1")
                    .bind(subject)
                    .fetch_one(&mut *tx)
                    .await?;
            if latest != after.map(i64::from) {
                return Err(StoreError::RegistryMoved(subject.to_owned()));
            }
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM registry_schemas WHERE fingerprint = $1")
                    .bind(fingerprint)
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = match known {
                Some((id,)) => id,
                None => {
                    let (max,): (Option<i64>,) =
                        sqlx::query_as("SELECT MAX(id) FROM registry_schemas")
                            .fetch_one(&mut *tx)
                            .await?;
                    let id = max.unwrap_or(0) + 1;
                    sqlx::query(
                        "INSERT INTO registry_schemas (id, fingerprint, schema, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(fingerprint)
                    .bind(schema)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            let version = latest.unwrap_or(0) + 1;
            sqlx::query(
                "INSERT INTO registry_versions (subject, version, schema_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(subject)
            .bind(version)
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            let stored: (String,) = sqlx::query_as("SELECT schema FROM registry_schemas WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            SubjectVersion {
                subject: subject.to_owned(),
                version: version as u32,
                id: id as u32,
                schema: stored.0,
            }
        });
        Ok(registered)
    }

    /// The compatibility level set for a subject, or the global one with
    /// `None`; `None` when none was set.
    pub async fn registry_level(&self, subject: Option<&str>) -> Result<Option<String>> {
        let row: Option<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT compatibility FROM registry_config WHERE subject = $1")
                .bind(config_key(subject))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Sets the compatibility level of a subject, or the global one with
    /// `None`.
    pub async fn set_registry_level(&self, subject: Option<&str>, level: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2) \
                 ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility",
            )
            .bind(config_key(subject))
            .bind(level)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
