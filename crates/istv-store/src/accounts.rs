//! Organisations, users and their credentials: API tokens and browser
//! sessions, on both databases (the SQL is the same). Secrets are stored
//! hashed only: passwords as argon2id strings made by the caller
//! ([`istv_access::password`]), tokens, session ids and CSRF tokens as
//! SHA-256 of 256 random bits (nothing to guess, so no slow hash).
//!
//! Times are stored as fixed-width UTC text (`2024-01-02T03:04:05.000000Z`),
//! so comparing the text compares the times.

use crate::ids;
use crate::{Db, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use istv_access::{AreaLevel, Principal, Profile, Role, Scope, User};
use std::time::Duration;

/// How often at most a token's `last_used_at` or a session's idle expiry is
/// written: a write per request would queue token checks behind uploads.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Short code, e.g. `VRU`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// The user name (sign-in name).
    pub name: &'a str,
    /// The organisation's code.
    pub org: &'a str,
    /// The role.
    pub role: Role,
    /// The argon2id hash of the password.
    pub password_hash: &'a str,
    /// Geography of the user's figures.
    pub scope: &'a Scope,
    /// Detail of the user's figures.
    pub profile: &'a Profile,
    /// ED sites, for an uploader (at least one); empty for other roles.
    pub sites: &'a [String],
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Who the user is and may see.
    pub user: User,
    /// True once disabled: no credential of the user authenticates.
    pub disabled: bool,
    /// The argon2id hash of the password.
    pub password_hash: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// An API token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The user it belongs to.
    pub user: String,
    /// Its name, unique among the user's live tokens.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// True once revoked.
    pub revoked: bool,
    /// When it last authenticated (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A signed-in browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user.
    pub user: User,
    csrf_hash: String,
}

impl Session {
    /// True when `token` is this session's CSRF token.
    pub fn csrf_matches(&self, token: &str) -> bool {
        ids::token_hash(token) == self.csrf_hash
    }
}

/// A new session's secrets, shown once: the cookie value and the CSRF
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session id, the cookie's value.
    pub id: String,
    /// The token to send back in `X-CSRF-Token`.
    pub csrf: String,
}

/// The fixed-width text of a time.
fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_time(text: &str, column: &'static str) -> Result<DateTime<Utc>> {
    crate::codec::parse_time(text, column)
}

fn corrupt(column: &'static str, value: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.into(),
    }
}

/// A users row: name, org, role, hash, boroughs, max resolution, finest
/// area, dimensions, disabled, created.
type UserRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    i64,
    String,
);

const USER_COLUMNS: &str = "name, org_code, role, password_hash, boroughs, max_resolution, \
                            finest_area, dimensions, disabled, created_at";

fn account(row: UserRow, sites: Vec<String>) -> Result<Account> {
    let (name, org, role, hash, boroughs, max_res, finest, dims, disabled, created) = row;
    let role = Role::parse(&role).ok_or_else(|| corrupt("users.role", role))?;
    let scope = match boroughs {
        None => Scope::London,
        Some(b) => Scope::parse(&b).map_err(|_| corrupt("users.boroughs", b))?,
    };
    let dimensions = match dims {
        None => None,
        Some(d) => Some(Profile::parse_dimensions(&d).map_err(|_| corrupt("users.dimensions", d))?),
    };
    let profile = Profile {
        max_resolution: u8::try_from(max_res)
            .map_err(|_| corrupt("users.max_resolution", max_res.to_string()))?,
        finest_area: AreaLevel::parse(&finest)
            .ok_or_else(|| corrupt("users.finest_area", finest))?,
        dimensions,
    };
    Ok(Account {
        user: User {
            name,
            org,
            role,
            scope,
            profile,
            sites,
        },
        disabled: disabled != 0,
        password_hash: hash,
        created_at: parse_time(&created, "users.created_at")?,
    })
}

impl Store {
    // ----- organisations -----

    /// Adds an organisation.
    pub async fn add_org(&self, code: &str, name: &str) -> Result<()> {
        let now = crate::codec::now_text();
        let _guard = self.write_guard().await;
        on_db!(&self.db, pool => {
            let done = sqlx::query(
                "INSERT INTO orgs (code, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
            )
            .bind(code)
            .bind(name)
            .bind(&now)
            .execute(pool)
            .await?
            .rows_affected();
            if done == 0 {
                return Err(StoreError::OrgExists(code.to_owned()));
            }
        });
        Ok(())
    }

    /// Every organisation, by code.
    pub async fn list_orgs(&self) -> Result<Vec<Org>> {
        let rows: Vec<(String, String, String)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT code, name, created_at FROM orgs ORDER BY code")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(code, name, created)| {
                Ok(Org {
                    code,
                    name,
                    created_at: parse_time(&created, "orgs.created_at")?,
                })
            })
            .collect()
    }

    // ----- users -----

    /// Adds a user. An uploader needs at least one registered site; other
    /// roles have none.
    pub async fn add_user(&self, new: &NewUser<'_>) -> Result<()> {
        let uploader = new.role == Role::Uploader;
        if uploader && new.sites.is_empty() {
            return Err(StoreError::InvalidAccount(
                "an uploader needs at least one site (--sites)".into(),
            ));
        }
        if !uploader && !new.sites.is_empty() {
            return Err(StoreError::InvalidAccount(format!(
                "only uploaders have sites; the {} role has none",
                new.role
            )));
        }
        let boroughs = match new.scope {
            Scope::London => None,
            scope => Some(scope.to_string()),
        };
        let dimensions = new
            .profile
            .dimensions
            .as_ref()
            .map(|set| set.iter().map(|d| d.name()).collect::<Vec<_>>().join(","));
        let now = crate::codec::now_text();
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let org: Option<(String,)> = sqlx::query_as("SELECT code FROM orgs WHERE code = $1")
                .bind(new.org)
                .fetch_optional(&mut *tx)
                .await?;
            if org.is_none() {
                return Err(StoreError::NoSuchOrg(new.org.to_owned()));
            }
            let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM users WHERE name = $1")
                .bind(new.name)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::UserExists(new.name.to_owned()));
            }
            sqlx::query(&format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)"
            ))
            .bind(new.name)
            .bind(new.org)
            .bind(new.role.as_str())
            .bind(new.password_hash)
            .bind(&boroughs)
            .bind(i64::from(new.profile.max_resolution))
            .bind(new.profile.finest_area.as_str())
            .bind(&dimensions)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            for site in new.sites {
                let found: Option<(String,)> = sqlx::query_as("SELECT code FROM sites WHERE code = $1")
                    .bind(site)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(StoreError::NoSuchSite(site.clone()));
                }
                sqlx::query("INSERT INTO user_sites (user_name, site_code) VALUES ($1, $2)")
                    .bind(new.name)
                    .bind(site)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn user_sites(&self, name: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT site_code FROM user_sites WHERE user_name = $1 ORDER BY site_code")
                .bind(name)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A user by name, disabled or not.
    pub async fn account(&self, name: &str) -> Result<Option<Account>> {
        let row: Option<UserRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => Ok(Some(account(row, self.user_sites(name).await?)?)),
            None => Ok(None),
        }
    }

    /// Every user, by name.
    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows: Vec<UserRow> = on_db!(&self.db, pool => {
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(pool)
                .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let sites = self.user_sites(&row.0).await?;
            out.push(account(row, sites)?);
        }
        Ok(out)
    }

    /// Disables a user: none of their tokens or sessions authenticates any
    /// more, and their sessions are ended.
    pub async fn disable_user(&self, name: &str) -> Result<()> {
        self.update_user(name, "UPDATE users SET disabled = 1 WHERE name = $1", None)
            .await
    }

    /// Sets a user's password hash and ends their sessions.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<()> {
        self.update_user(
            name,
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            Some(password_hash),
        )
        .await
    }

    async fn update_user(&self, name: &str, sql: &str, value: Option<&str>) -> Result<()> {
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let mut q = sqlx::query(sql).bind(name);
            if let Some(v) = value {
                q = q.bind(v);
            }
            if q.execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(StoreError::NoSuchUser(name.to_owned()));
            }
            sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    // ----- API tokens -----

    /// Issues a named API token for a user, valid until `expires_at` (or
    /// until revoked). The token is shown once: only its hash is stored.
    pub async fn issue_api_token(
        &self,
        user: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<String> {
        let token = ids::new_token()?;
        let hash = ids::token_hash(&token);
        let now = crate::codec::now_text();
        let expires = expires_at.map(time_text);
        let _guard = self.write_guard().await;
        let begin = self.begin_sql();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT name FROM users WHERE name = $1")
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NoSuchUser(user.to_owned()));
            }
            let taken: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM api_tokens WHERE user_name = $1 AND name = $2 AND revoked = 0",
            )
            .bind(user)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(StoreError::TokenNameTaken {
                    user: user.to_owned(),
                    name: name.to_owned(),
                });
            }
            sqlx::query(
                "INSERT INTO api_tokens (token_hash, user_name, name, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&hash)
            .bind(user)
            .bind(name)
            .bind(&now)
            .bind(&expires)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(token)
    }

    /// Revokes one live token of a user, by name; the user's other tokens
    /// keep working.
    pub async fn revoke_api_token(&self, user: &str, name: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        let done = on_db!(&self.db, pool => {
            sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE user_name = $1 AND name = $2 AND revoked = 0")
                .bind(user)
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NoSuchToken {
                user: user.to_owned(),
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// A user's tokens, live and revoked, by name.
    pub async fn list_api_tokens(&self, user: &str) -> Result<Vec<ApiToken>> {
        type TokenRow = (String, String, Option<String>, i64, Option<String>);
        let rows: Vec<TokenRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT name, created_at, expires_at, revoked, last_used_at FROM api_tokens \
                 WHERE user_name = $1 ORDER BY name, created_at",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(name, created, expires, revoked, used)| {
                Ok(ApiToken {
                    user: user.to_owned(),
                    name,
                    created_at: parse_time(&created, "api_tokens.created_at")?,
                    expires_at: expires
                        .as_deref()
                        .map(|t| parse_time(t, "api_tokens.expires_at"))
                        .transpose()?,
                    revoked: revoked != 0,
                    last_used_at: used
                        .as_deref()
                        .map(|t| parse_time(t, "api_tokens.last_used_at"))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Who a bearer token belongs to at `now`: a user's live API token
    /// (not revoked, not expired, the user not disabled), else a site's
    /// upload token (see [`Store::authenticate`]), else `None`.
    pub async fn authenticate_bearer(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let hash = ids::token_hash(token);
        let now_t = time_text(now);
        let row: Option<(String, Option<String>)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT t.user_name, t.last_used_at FROM api_tokens t JOIN users u ON u.name = t.user_name \
                 WHERE t.token_hash = $1 AND t.revoked = 0 AND u.disabled = 0 \
                 AND (t.expires_at IS NULL OR t.expires_at > $2)",
            )
            .bind(&hash)
            .bind(&now_t)
            .fetch_optional(pool)
            .await?
        });
        if let Some((user, last_used)) = row {
            let stale = last_used
                .as_deref()
                .and_then(|t| parse_time(t, "api_tokens.last_used_at").ok())
                .is_none_or(|t| now - t >= TOUCH_EVERY);
            if stale {
                self.touch_later(
                    "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1",
                    hash,
                    now_t,
                );
            }
            return Ok(self
                .account(&user)
                .await?
                .filter(|a| !a.disabled)
                .map(|a| Principal::User(a.user)));
        }
        Ok(self.authenticate(token).await?.map(Principal::Site))
    }

    /// Runs `sql` with a key and a time in the background: the request
    /// need not wait behind the writes of uploads.
    fn touch_later(&self, sql: &'static str, key: String, time: String) {
        let store = self.clone();
        tokio::spawn(async move {
            let _guard = store.write_guard().await;
            let done = on_db!(&store.db, pool => {
                sqlx::query(sql).bind(&key).bind(&time).execute(pool).await.map(|_| ())
            });
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot record the use of a credential");
            }
        });
    }

    // ----- sessions -----

    /// Starts a session for a user: it ends after `idle` without use, and
    /// at the latest `absolute` after `now`.
    pub async fn create_session(
        &self,
        user: &str,
        now: DateTime<Utc>,
        idle: Duration,
        absolute: Duration,
    ) -> Result<NewSession> {
        let session = NewSession {
            id: ids::new_token()?,
            csrf: ids::new_token()?,
        };
        let expires = now + chrono::TimeDelta::from_std(absolute).unwrap_or(chrono::TimeDelta::MAX);
        let idle_expires = (now
            + chrono::TimeDelta::from_std(idle).unwrap_or(chrono::TimeDelta::MAX))
        .min(expires);
        let _guard = self.write_guard().await;
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO sessions (id_hash, user_name, csrf_hash, created_at, idle_expires_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(ids::token_hash(&session.id))
            .bind(user)
            .bind(ids::token_hash(&session.csrf))
            .bind(time_text(now))
            .bind(time_text(idle_expires))
            .bind(time_text(expires))
            .execute(pool)
            .await?;
        });
        Ok(session)
    }

    /// The live session of this id at `now` (neither idle for `idle` nor past
    /// its absolute expiry, its user not disabled); its idle expiry moves
    /// on.
    pub async fn session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<Session>> {
        let hash = ids::token_hash(id);
        let now_t = time_text(now);
        let row: Option<(String, String, String, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT s.user_name, s.csrf_hash, s.idle_expires_at, s.expires_at FROM sessions s \
                 JOIN users u ON u.name = s.user_name \
                 WHERE s.id_hash = $1 AND u.disabled = 0 AND s.idle_expires_at > $2 AND s.expires_at > $2",
            )
            .bind(&hash)
            .bind(&now_t)
            .fetch_optional(pool)
            .await?
        });
        let Some((user, csrf_hash, idle_expires, expires)) = row else {
            return Ok(None);
        };
        let idle = chrono::TimeDelta::from_std(idle).unwrap_or(chrono::TimeDelta::MAX);
        let expires = parse_time(&expires, "sessions.expires_at")?;
        let next = (now + idle).min(expires);
        if next - parse_time(&idle_expires, "sessions.idle_expires_at")? >= TOUCH_EVERY {
            self.touch_later(
                "UPDATE sessions SET idle_expires_at = $2 WHERE id_hash = $1",
                hash,
                time_text(next),
            );
        }
        Ok(self
            .account(&user)
            .await?
            .filter(|a| !a.disabled)
            .map(|a| Session {
                user: a.user,
                csrf_hash,
            }))
    }

    /// Ends a session (signing out); an unknown id is not an error.
    pub async fn end_session(&self, id: &str) -> Result<()> {
        let _guard = self.write_guard().await;
        on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(ids::token_hash(id))
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
