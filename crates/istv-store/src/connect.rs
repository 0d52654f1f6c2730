//! Opening a store: the pools of its database, the migrations, the secret
//! seed of the record keys and the roll-up tables.

use crate::rollups;
use crate::sqlite::identity::{self, RecordIds};
use crate::{postgres, sqlite};
use crate::{Backend, Db, Result, Store, StoreError};
use istv_aggregate::{DisclosureKeys, Table};
use std::sync::Arc;

impl Store {
    /// Connects and runs the migrations. `url` is a SQLite URL
    /// (`sqlite://path/istv.db?mode=rwc`, `sqlite::memory:`) or a PostgreSQL
    /// URL (`postgres://user@host/db`). A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        let (db, read) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (pool, read) = postgres::connect(url).await?;
            (Db::Postgres(pool), Db::Postgres(read))
        } else if url.starts_with("sqlite:") {
            let (pool, read) = sqlite::connect(url).await?;
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
            record_ids: None,
        };
        store.keys = DisclosureKeys::new(store.seed("record_key_seed").await?);
        if let Db::Sqlite(pool) = &store.db {
            let ids = RecordIds::new(store.seed(identity::SEED_NAME).await?);
            let _guard = store.write_guard().await;
            ids.ensure_built(pool).await?;
            drop(_guard);
            store.record_ids = Some(ids);
        }
        store.ensure_rollups().await?;
        Ok(store)
    }

    /// A secret seed kept in `store_meta` under `name` (the record keys',
    /// the record fingerprints'), made at random the first time.
    async fn seed(&self, name: &'static str) -> Result<u64> {
        let read = "SELECT value FROM store_meta WHERE name = $1";
        let stored: Option<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as(read).bind(name).fetch_optional(pool).await?
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
                    sqlx::query(write).bind(name).bind(&text).execute(pool).await?;
                    sqlx::query_as::<_, (String,)>(read).bind(name).fetch_one(pool).await?.0
                })
            }
        };
        text.parse().map_err(|_| StoreError::Corrupt {
            column: "store_meta.value",
            value: name.into(),
        })
    }

    /// Builds every declared roll-up table that the store lacks (or holds
    /// under another definition) from its records, each in a transaction of
    /// its own, and drops the ones no longer declared.
    pub(crate) async fn ensure_rollups(&self) -> Result<()> {
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
                        .bind(postgres::site_lock_key("istv-rollups"))
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
}
