//! The public tier's releases (migration 0010): one per month, stored once
//! and read back byte for byte. The table refuses updates and deletes, so a
//! month's release is never replaced by a second draw of noise.

use crate::{Db, Result, Store};

/// A month's release as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicRelease {
    /// `YYYY-MM`.
    pub month: String,
    /// The epsilon of the mechanism.
    pub epsilon: f64,
    /// The mechanism's name, e.g. `discrete_laplace`.
    pub mechanism: String,
    /// The mechanism's parameters, a JSON object.
    pub parameters: String,
    /// When it was computed (`YYYY-MM-DDTHH:MM:SSZ`).
    pub created_at: String,
    /// The JSON answer, served as is.
    pub json: String,
    /// The CSV answer, served as is.
    pub csv: String,
}

/// What the list of releases says of each.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicReleaseInfo {
    /// `YYYY-MM`.
    pub month: String,
    /// The epsilon of the mechanism.
    pub epsilon: f64,
    /// The mechanism's name.
    pub mechanism: String,
    /// When it was computed.
    pub created_at: String,
}

impl Store {
    /// Stores a month's release unless the month has one: true when this
    /// one was stored, false when the month already had a release (which
    /// is left as it was).
    pub async fn insert_public_release(&self, release: &PublicRelease) -> Result<bool> {
        let _guard = self.write_guard().await;
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO public_releases \
                 (month, epsilon, mechanism, parameters, created_at, rows_json, rows_csv) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (month) DO NOTHING",
            )
            .bind(&release.month)
            .bind(release.epsilon)
            .bind(&release.mechanism)
            .bind(&release.parameters)
            .bind(&release.created_at)
            .bind(&release.json)
            .bind(&release.csv)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// The release of `month` (`YYYY-MM`), if there is one.
    pub async fn public_release(&self, month: &str) -> Result<Option<PublicRelease>> {
        type Row = (String, f64, String, String, String, String, String);
        let row: Option<Row> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT month, epsilon, mechanism, parameters, created_at, rows_json, rows_csv \
                 FROM public_releases WHERE month = $1",
            )
            .bind(month)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(month, epsilon, mechanism, parameters, created_at, json, csv)| PublicRelease {
                month,
                epsilon,
                mechanism,
                parameters,
                created_at,
                json,
                csv,
            },
        ))
    }

    /// Every release, by month.
    pub async fn public_releases(&self) -> Result<Vec<PublicReleaseInfo>> {
        let rows: Vec<(String, f64, String, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT month, epsilon, mechanism, created_at FROM public_releases ORDER BY month",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(month, epsilon, mechanism, created_at)| PublicReleaseInfo {
                    month,
                    epsilon,
                    mechanism,
                    created_at,
                },
            )
            .collect())
    }
}
