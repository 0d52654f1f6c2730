//! Who is asking: the [`Caller`] extractor (a bearer token, a user's or a
//! site's, or the session cookie with its CSRF token on state-changing
//! requests), sign-in and sign-out, `GET /api/v1/me`, and the checks the
//! query handlers call first ([`scoped`]).

use crate::error::ApiError;
use crate::state::AppState;
use crate::throttle::retry_seconds;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use istv_access::{Principal, Role, Scope};
use istv_aggregate::Query;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Instant;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "istv_session";

/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The one answer to a failed sign-in, whether the user is unknown,
/// disabled or the password wrong.
const SIGN_IN_FAILED: &str = "wrong user name or password";

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Via {
    /// `Authorization: Bearer`.
    Token,
    /// The session cookie, with this session id.
    Session(String),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) via: Via,
}

impl Caller {
    /// True when the caller's figures are limited to some boroughs.
    pub(crate) fn borough_limited(&self) -> bool {
        matches!(&self.principal, Principal::User(u)
            if u.role != Role::Admin && matches!(u.scope, Scope::Boroughs(_)))
    }
}

/// The token of an `Authorization` header, the scheme matched in any case.
fn bearer(value: &HeaderValue) -> Result<&str, ApiError> {
    let bad = || ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into());
    let text = value.to_str().map_err(|_| bad())?.trim();
    let (scheme, token) = text.split_once(' ').ok_or_else(bad)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(bad());
    }
    Ok(token)
}

/// The session cookie's value, if sent.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let now = chrono::Utc::now();
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = bearer(value)?;
            let principal = state
                .store()
                .authenticate_bearer(token, now)
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthorized("the token is unknown, expired or revoked".into())
                })?;
            return Ok(Caller {
                principal,
                via: Via::Token,
            });
        }
        if let Some(id) = session_cookie(&parts.headers) {
            let session = state
                .store()
                .session(id, now, state.config().session_idle)
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthorized("the session has ended; sign in again".into())
                })?;
            if changes_state(&parts.method) {
                let given = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !session.csrf_matches(given) {
                    return Err(ApiError::Forbidden(
                        "missing or wrong X-CSRF-Token: a request that changes something, made with the session cookie, must carry the CSRF token given at sign-in".into(),
                    ));
                }
            }
            return Ok(Caller {
                principal: Principal::User(session.user),
                via: Via::Session(id.to_owned()),
            });
        }
        Err(ApiError::Unauthorized(
            "missing credential: send `Authorization: Bearer <token>` or sign in with POST /api/v1/session".into(),
        ))
    }
}

/// The query to run for this caller: within their query rate and their
/// organisation's, then checked against their role, profile and scope (403
/// naming the limit) and limited to their boroughs.
pub(crate) fn scoped(state: &AppState, caller: &Caller, query: Query) -> Result<Query, ApiError> {
    let query = istv_access::scope_query(&caller.principal, query)?;
    let now = Instant::now();
    let user = caller.principal.key();
    state
        .query_rate()
        .take(&user, now)
        .map_err(|wait| ApiError::RateLimited {
            message: format!(
                "more than {} queries a minute; wait before the next",
                state.config().query_rate_per_minute
            ),
            retry_after: retry_seconds(wait),
        })?;
    if let Principal::User(u) = &caller.principal {
        if let Err(wait) = state.org_query_rate().take(&u.org, now) {
            // Refused, so the query does not count against the user.
            state.query_rate().give_back(&user);
            return Err(ApiError::RateLimited {
                message: format!(
                    "more than {} queries a minute by organisation {} together; wait before the next",
                    state.config().query_rate_per_org_per_minute,
                    u.org
                ),
                retry_after: retry_seconds(wait),
            });
        }
    }
    Ok(query)
}

/// `{"user","password"}` of a sign-in.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user: String,
    password: String,
}

/// `POST /api/v1/session`: signs in. Throttled per user name and per
/// client address; an unknown user, a disabled one and a wrong password get
/// the same 401 after the same argon2 work.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let Json(SignIn { user, password }) = Json::<SignIn>::from_request(req, &state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let answer = check_sign_in(&state, &user, password, &addr).await;
    crate::audit::sign_in(&state, &user, &addr, answer).await
}

/// A sign-in's answer, with the signed-in user's organisation.
async fn check_sign_in(
    state: &AppState,
    user: &str,
    password: String,
    addr: &str,
) -> Result<(Response, String), ApiError> {
    let throttle = state.sign_in_throttle();
    let (user_key, addr_key) = (format!("user:{user}"), format!("addr:{addr}"));
    let now = Instant::now();
    for key in [&user_key, &addr_key] {
        throttle
            .check(key, now)
            .map_err(|wait| ApiError::RateLimited {
                message: "too many failed sign-ins; wait before trying again".into(),
                retry_after: retry_seconds(wait),
            })?;
    }
    let account = state.store().account(user).await?.filter(|a| !a.disabled);
    let hash = match &account {
        Some(a) => a.password_hash.clone(),
        None => state.decoy_hash().await?,
    };
    let verified =
        tokio::task::spawn_blocking(move || istv_access::password::verify(&hash, &password))
            .await
            .map_err(|e| ApiError::Internal(format!("password check failed: {e}")))?;
    let Some(account) = account.filter(|_| verified) else {
        throttle.fail(&user_key, now);
        throttle.fail(&addr_key, now);
        tracing::info!(client = %addr, "sign-in failed");
        return Err(ApiError::Unauthorized(SIGN_IN_FAILED.into()));
    };
    throttle.clear(&user_key);
    let config = state.config();
    let session = state
        .store()
        .create_session(
            &account.user.name,
            chrono::Utc::now(),
            config.session_idle,
            config.session_absolute,
        )
        .await?;
    tracing::info!(user = %account.user.name, "signed in");
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.id,
        config.session_absolute.as_secs(),
        if config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let org = account.user.org.clone();
    let mut body = me_json(&Caller {
        principal: Principal::User(account.user),
        via: Via::Session(String::new()),
    });
    body["csrf_token"] = Value::String(session.csrf);
    Ok((
        ([(header::SET_COOKIE, cookie)], Json(body)).into_response(),
        org,
    ))
}

/// `DELETE /api/v1/session`: signs out (the CSRF token is required, as for
/// every state-changing request made with the cookie).
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let answer = end_session(&state, &caller).await;
    crate::audit::sign_out(&state, &caller, answer).await
}

async fn end_session(state: &AppState, caller: &Caller) -> Result<Response, ApiError> {
    let Via::Session(id) = &caller.via else {
        return Err(ApiError::BadRequest(
            "no session to end: this request carries a token; tokens are revoked with `istv users revoke-token`".into(),
        ));
    };
    state.store().end_session(id).await?;
    let expired = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if state.config().secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, expired)]).into_response())
}

/// `GET /api/v1/me`: who the caller is and what they may see.
pub(crate) async fn me(caller: Caller) -> Json<Value> {
    Json(me_json(&caller))
}

fn me_json(caller: &Caller) -> Value {
    let credential = match caller.via {
        Via::Token => "token",
        Via::Session(_) => "session",
    };
    match &caller.principal {
        Principal::Site(code) => json!({"kind": "site", "site": code, "credential": credential}),
        Principal::User(u) => {
            let admin = u.role == Role::Admin;
            let scope = match (&u.scope, admin) {
                (Scope::London, _) | (_, true) => json!("all"),
                (Scope::Boroughs(codes), false) => json!(codes),
            };
            let profile = if admin {
                &istv_access::Profile::FULL
            } else {
                &u.profile
            };
            let dimensions = profile
                .dimensions
                .as_ref()
                .map(|set| json!(set.iter().map(|d| d.name()).collect::<Vec<_>>()));
            json!({
                "kind": "user",
                "user": u.name,
                "org": u.org,
                "role": u.role.as_str(),
                "scope": scope,
                "profile": {
                    "max_resolution": profile.max_resolution,
                    "finest_area": profile.finest_area.as_str(),
                    "dimensions": dimensions,
                },
                "sites": u.sites,
                "credential": credential,
            })
        }
    }
}

/// `GET /metrics` on the main address: the scrape token (`metrics_token`)
/// or an admin's credential.
pub(crate) async fn metrics_allowed(state: &AppState, parts: &mut Parts) -> Result<(), ApiError> {
    if let (Some(expected), Some(value)) = (
        state.config().metrics_token.as_deref(),
        parts.headers.get(header::AUTHORIZATION),
    ) {
        if let Ok(token) = bearer(value) {
            use sha2::{Digest, Sha256};
            // Compared as digests, so the time taken says nothing of the token.
            if Sha256::digest(token.as_bytes()) == Sha256::digest(expected.as_bytes()) {
                return Ok(());
            }
        }
    }
    let caller = Caller::from_request_parts(parts, state).await?;
    match &caller.principal {
        Principal::User(u) if u.role == Role::Admin => Ok(()),
        _ => Err(ApiError::Forbidden(
            "metrics need the scrape token or an admin's credential".into(),
        )),
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
pub(crate) mod tests;
