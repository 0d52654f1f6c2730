//! Users over the API: an organisation's `org_admin` manages its own
//! organisation's users, granting no more scope or detail than it has
//! itself; an admin manages every organisation's. Admin accounts are made
//! and changed with the CLI only. Every action, refused or not, is audited
//! (never a password or a token).
//!
//! - `GET /api/v1/users`: the users the caller manages.
//! - `POST /api/v1/users`: adds one; answers its generated password once.
//! - `POST /api/v1/users/{name}/disable`: disables one.
//! - `POST /api/v1/users/{name}/password`: sets a new generated password,
//!   answered once; the user's sessions end.
//! - `POST /api/v1/users/{name}/tokens`: issues a named API token, answered
//!   once; `DELETE /api/v1/users/{name}/tokens/{token}` revokes it.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use istv_access::{AreaLevel, Profile, Role, Scope, User};
use istv_store::{Account, NewUser, StoreError};
use serde_json::{json, Value};

/// The body of `POST /api/v1/users`. Absent scope and profile fields are
/// the caller's own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    /// The organisation: the caller's own when absent (an org_admin can
    /// name only its own).
    org: Option<String>,
    role: String,
    /// `all` or borough codes separated by commas.
    boroughs: Option<String>,
    max_resolution: Option<u8>,
    finest_area: Option<String>,
    dimensions: Option<Vec<String>>,
    sites: Option<Vec<String>>,
}

/// The body of `POST /api/v1/users/{name}/tokens`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    expires_days: Option<u32>,
}

/// A store failure as the answer to a user-management request.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::UserExists(_) | StoreError::TokenNameTaken { .. } => {
            ApiError::Conflict(e.to_string())
        }
        StoreError::NoSuchUser(_) | StoreError::NoSuchOrg(_) | StoreError::NoSuchToken { .. } => {
            ApiError::NotFound(e.to_string())
        }
        StoreError::NoSuchSite(_) | StoreError::InvalidAccount(_) => {
            ApiError::BadRequest(e.to_string())
        }
        e => ApiError::from(e),
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The manager behind the caller.
fn manager(caller: &Caller) -> Result<&User, ApiError> {
    Ok(istv_access::may_manage_users(&caller.principal)?)
}

/// A user name the API accepts: 1-64 letters, digits, `.`, `_`, `-`, `@`.
fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid {what} `{name}`: 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// The account the caller may change: not found when it is in another
/// organisation, refused when it sees more than the caller.
async fn target(state: &AppState, manager: &User, name: &str) -> Result<Account, ApiError> {
    let account = state
        .store()
        .account(name)
        .await?
        .filter(|a| istv_access::sees_org(manager, &a.user.org))
        .ok_or_else(|| ApiError::NotFound(format!("no user `{name}` in your organisation")))?;
    istv_access::may_change(manager, &account.user)?;
    Ok(account)
}

/// Applies `change` to the account `name`, which the caller must manage
/// (see [`target`]), and audits the request as `action` with `params`.
async fn change_user<Fut>(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    name: &str,
    action: &'static str,
    params: Value,
    change: impl FnOnce(Account) -> Fut,
) -> Result<Response, ApiError>
where
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let answer = async {
        let m = manager(caller)?;
        let account = target(state, m, name).await?;
        Ok((change(account).await?, 0))
    }
    .await;
    crate::audit::manage(state, caller, uri, action, params, answer).await
}

fn account_json(a: &Account) -> Value {
    let u = &a.user;
    let scope = match &u.scope {
        Scope::London => json!("all"),
        Scope::Boroughs(codes) => json!(codes),
    };
    let dimensions = u
        .profile
        .dimensions
        .as_ref()
        .map(|set| json!(set.iter().map(|d| d.name()).collect::<Vec<_>>()));
    json!({
        "user": u.name,
        "org": u.org,
        "role": u.role.as_str(),
        "scope": scope,
        "profile": {
            "max_resolution": u.profile.max_resolution,
            "finest_area": u.profile.finest_area.as_str(),
            "dimensions": dimensions,
        },
        "sites": u.sites,
        "disabled": a.disabled,
        "created_at": a.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A new password, hashed off the async threads: (password, hash).
async fn new_password() -> Result<(String, String), ApiError> {
    tokio::task::spawn_blocking(|| {
        let pw = istv_access::password::generate()?;
        let hash = istv_access::password::hash(&pw)?;
        Ok::<_, istv_access::password::PasswordError>((pw, hash))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /api/v1/users`.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    let answer = async {
        let m = manager(&caller)?;
        let accounts: Vec<Value> = state
            .store()
            .list_accounts()
            .await?
            .iter()
            .filter(|a| istv_access::sees_org(m, &a.user.org))
            .map(account_json)
            .collect();
        let n = accounts.len() as u64;
        Ok((Json(json!({ "users": accounts })).into_response(), n))
    }
    .await;
    crate::audit::manage(&state, &caller, &uri, "users list", json!({}), answer).await
}

/// `POST /api/v1/users`.
pub(crate) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let parsed = body::<NewUserBody>(&bytes);
    let params = match &parsed {
        Ok(b) => json!({
            "name": b.name, "org": b.org, "role": b.role, "boroughs": b.boroughs,
            "max_resolution": b.max_resolution, "finest_area": b.finest_area,
            "dimensions": b.dimensions, "sites": b.sites, "password": "generated",
        }),
        Err(_) => json!({}),
    };
    let answer = match parsed {
        Ok(b) => add_user(&state, &caller, b).await,
        Err(e) => Err(e),
    };
    let answer = answer.map(|r| (r, 0));
    crate::audit::manage(&state, &caller, &uri, "users add", params, answer).await
}

async fn add_user(state: &AppState, caller: &Caller, b: NewUserBody) -> Result<Response, ApiError> {
    let m = manager(caller)?;
    check_name(&b.name, "user name")?;
    let role = Role::parse(&b.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "invalid role `{}`: expected uploader, analyst or org_admin",
            b.role
        ))
    })?;
    let org = b.org.clone().unwrap_or_else(|| m.org.clone());
    if !istv_access::sees_org(m, &org) {
        return Err(ApiError::Forbidden(format!(
            "you manage the users of organisation {} only",
            m.org
        )));
    }
    let own = if m.role == Role::Admin {
        (Scope::London, Profile::FULL)
    } else {
        (m.scope.clone(), m.profile.clone())
    };
    let scope = match &b.boroughs {
        Some(text) => Scope::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => own.0,
    };
    let max_resolution = b.max_resolution.unwrap_or(own.1.max_resolution);
    if !(7..=10).contains(&max_resolution) {
        return Err(ApiError::BadRequest(format!(
            "max_resolution {max_resolution} is outside 7-10"
        )));
    }
    let finest_area = match &b.finest_area {
        Some(text) => AreaLevel::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid finest_area `{text}`: expected borough, ward or lsoa"
            ))
        })?,
        None => own.1.finest_area,
    };
    let dimensions = match &b.dimensions {
        Some(list) => Some(
            Profile::parse_dimensions(&list.join(","))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => own.1.dimensions,
    };
    let profile = Profile {
        max_resolution,
        finest_area,
        dimensions,
    };
    istv_access::may_grant(m, role, &scope, &profile)?;
    let sites: Vec<String> = b
        .sites
        .iter()
        .flatten()
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    if m.role != Role::Admin && !sites.is_empty() {
        // An org_admin gives only the sites its organisation's uploaders
        // already upload for (an admin gives the first with the CLI).
        let accounts = state.store().list_accounts().await?;
        let ours: std::collections::BTreeSet<&String> = accounts
            .iter()
            .filter(|a| a.user.org == m.org && a.user.role == Role::Uploader)
            .flat_map(|a| &a.user.sites)
            .collect();
        if let Some(s) = sites.iter().find(|s| !ours.contains(s)) {
            return Err(ApiError::Forbidden(format!(
                "site {s} is not one your organisation's uploaders upload for; an admin adds the first uploader of a site"
            )));
        }
    }
    let (password, hash) = new_password().await?;
    state
        .store()
        .add_user(&NewUser {
            name: &b.name,
            org: &org,
            role,
            password_hash: &hash,
            scope: &scope,
            profile: &profile,
            sites: &sites,
        })
        .await
        .map_err(store_error)?;
    let account = state
        .store()
        .account(&b.name)
        .await?
        .ok_or_else(|| ApiError::Internal("a user just added is missing".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": account_json(&account), "password": password })),
    )
        .into_response())
}

/// `POST /api/v1/users/{name}/disable`.
pub(crate) async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let params = json!({ "name": name });
    let change = |account: Account| async move {
        store
            .disable_user(&account.user.name)
            .await
            .map_err(store_error)?;
        let account = Account {
            disabled: true,
            ..account
        };
        Ok(Json(json!({ "user": account_json(&account) })).into_response())
    };
    change_user(
        &state,
        &caller,
        &uri,
        &name,
        "users disable",
        params,
        change,
    )
    .await
}

/// `POST /api/v1/users/{name}/password`.
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let params = json!({ "name": name, "password": "generated" });
    let change = |account: Account| async move {
        let (password, hash) = new_password().await?;
        store
            .set_password(&account.user.name, &hash)
            .await
            .map_err(store_error)?;
        let body = json!({ "user": account.user.name, "password": password });
        Ok(Json(body).into_response())
    };
    let action = "users reset-password";
    change_user(&state, &caller, &uri, &name, action, params, change).await
}

/// `POST /api/v1/users/{name}/tokens`.
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let parsed = body::<NewTokenBody>(&bytes);
    let params = match &parsed {
        Ok(b) => json!({ "user": name, "name": b.name, "expires_days": b.expires_days }),
        Err(_) => json!({ "user": name }),
    };
    let answer = async {
        let b = parsed?;
        let m = manager(&caller)?;
        check_name(&b.name, "token name")?;
        let account = target(&state, m, &name).await?;
        let expires = b
            .expires_days
            .map(|d| chrono::Utc::now() + chrono::TimeDelta::days(i64::from(d)));
        let token = state
            .store()
            .issue_api_token(&account.user.name, &b.name, expires)
            .await
            .map_err(store_error)?;
        let body = json!({
            "user": account.user.name,
            "name": b.name,
            "token": token,
            "expires_at": expires.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        });
        Ok(((StatusCode::CREATED, Json(body)).into_response(), 0))
    }
    .await;
    crate::audit::manage(&state, &caller, &uri, "users token", params, answer).await
}

/// `DELETE /api/v1/users/{name}/tokens/{token}`.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((name, token)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let params = json!({ "user": name, "name": token });
    let change = |account: Account| async move {
        store
            .revoke_api_token(&account.user.name, &token)
            .await
            .map_err(store_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    let action = "users revoke-token";
    change_user(&state, &caller, &uri, &name, action, params, change).await
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
