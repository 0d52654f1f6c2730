//! Audit entries of requests: queries, downloads, sign-ins, sign-outs,
//! uploads and saved queries saved or deleted, appended to the store's hash-chained log.
//!
//! An entry is appended, and durable, before its answer leaves: an answer
//! whose entry cannot be stored is replaced by a 500, so no figure is ever
//! published unaudited. That puts one write on every audited request (on
//! SQLite it waits for the write lock, behind an upload's batch); doing it
//! later, in the background, would mean answers whose entry could still be
//! lost. Requests refused before a handler runs (no or a bad credential)
//! are not entries; a sign-in that fails is.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::Uri;
use axum::response::Response;
use istv_access::Principal;
use istv_store::AuditEntry;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `/aggregates` as JSON, `/cells`, `/areas`.
    Query,
    /// `/aggregates?format=csv`.
    Download,
    /// `POST /api/v1/session` that signed in.
    SignIn,
    /// `POST /api/v1/session` refused.
    SignInFailed,
    /// `DELETE /api/v1/session`.
    SignOut,
    /// `POST /api/v1/uploads`.
    Upload,
    /// `POST /api/v1/saved-queries`.
    SavedQueryAdd,
    /// `DELETE /api/v1/saved-queries/{id}`.
    SavedQueryDelete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Query => "query",
            Action::Download => "download",
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignOut => "sign_out",
            Action::Upload => "upload",
            Action::SavedQueryAdd => "saved_query_add",
            Action::SavedQueryDelete => "saved_query_delete",
        }
    }
}

/// The actor and organisation an entry names for a principal.
pub(crate) fn who(principal: &Principal) -> (String, Option<String>) {
    match principal {
        Principal::User(u) => (u.name.clone(), Some(u.org.clone())),
        Principal::Site(code) => (format!("site:{code}"), None),
    }
}

/// The entry of `caller`'s request to `route`, answered with `status`,
/// without parameters or figures (each record below adds its own).
fn request_entry(caller: &Caller, action: &str, route: &str, status: String) -> AuditEntry {
    let (actor, organisation) = who(&caller.principal);
    AuditEntry {
        actor,
        organisation,
        action: action.into(),
        route: Some(route.into()),
        parameters: None,
        figures: None,
        status,
    }
}

/// The status an entry records for an answer.
fn status_of<T>(result: &Result<T, ApiError>, ok: impl Fn(&T) -> u16) -> String {
    match result {
        Ok(t) => ok(t).to_string(),
        Err(e) => e.status().as_u16().to_string(),
    }
}

/// Appends `entry`; when it cannot be stored the answer becomes a 500.
pub(crate) async fn append<T>(
    state: &AppState,
    entry: AuditEntry,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match state.store().append_audit(&entry).await {
        Ok(_) => result,
        Err(e) => Err(ApiError::Internal(format!(
            "the audit log cannot be written, so the answer is withheld: {e}"
        ))),
    }
}

/// Records a query, or a download (CSV), by `caller` with the number of
/// figures its answer carries, and passes the answer on.
pub(crate) async fn query(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    download: bool,
    result: Result<(Response, u64), ApiError>,
) -> Result<Response, ApiError> {
    let action = if download {
        Action::Download
    } else {
        Action::Query
    };
    let status = status_of(&result, |(r, _)| r.status().as_u16());
    let entry = AuditEntry {
        parameters: uri.query().map(str::to_owned),
        figures: result.as_ref().ok().map(|(_, n)| *n),
        ..request_entry(caller, action.as_str(), uri.path(), status)
    };
    append(state, entry, result.map(|(r, _)| r)).await
}

/// Records a sign-in: the user name tried (never the password) and the
/// client address; on success the user and their organisation.
pub(crate) async fn sign_in(
    state: &AppState,
    user: &str,
    client: &str,
    result: Result<(Response, String), ApiError>,
) -> Result<Response, ApiError> {
    let (action, actor, organisation) = match &result {
        Ok((_, org)) => (Action::SignIn, user.to_owned(), Some(org.clone())),
        Err(_) => (Action::SignInFailed, "anonymous".to_owned(), None),
    };
    let entry = AuditEntry {
        actor,
        organisation,
        action: action.as_str().into(),
        route: Some("/api/v1/session".into()),
        parameters: Some(serde_json::json!({"user": user, "client": client}).to_string()),
        figures: None,
        status: status_of(&result, |(r, _)| r.status().as_u16()),
    };
    append(state, entry, result.map(|(r, _)| r)).await
}

/// Records a sign-out.
pub(crate) async fn sign_out(
    state: &AppState,
    caller: &Caller,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let status = status_of(&result, |r| r.status().as_u16());
    let entry = request_entry(caller, Action::SignOut.as_str(), "/api/v1/session", status);
    append(state, entry, result).await
}

/// Records an administrative action over the API (`users add`, ...): the
/// caller, the route, `parameters` (never a password or a token) and, for
/// a listing, how many entries it gave.
pub(crate) async fn manage(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    action: &'static str,
    parameters: serde_json::Value,
    result: Result<(Response, u64), ApiError>,
) -> Result<Response, ApiError> {
    let listed = action.ends_with(" list");
    let status = status_of(&result, |(r, _)| r.status().as_u16());
    let entry = AuditEntry {
        parameters: Some(parameters.to_string()),
        figures: result.as_ref().ok().filter(|_| listed).map(|(_, n)| *n),
        ..request_entry(caller, action, uri.path(), status)
    };
    append(state, entry, result.map(|(r, _)| r)).await
}

/// Records an upload: the query string, and the receipt's id, site and
/// row counts when it was received (never a row's content).
pub(crate) async fn upload(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    result: Result<axum::Json<istv_pipeline::Receipt>, ApiError>,
) -> Result<axum::Json<istv_pipeline::Receipt>, ApiError> {
    let mut parameters = serde_json::json!({"query": uri.query()});
    if let Ok(r) = &result {
        parameters["receipt"] = r.upload_id.clone().into();
        parameters["site"] = r.site_code.clone().into();
        parameters["rows"] = r.rows.into();
        parameters["accepted"] = r.accepted.into();
        parameters["rejected"] = r.rejected.into();
    }
    let status = status_of(&result, |_| 200);
    let entry = AuditEntry {
        parameters: Some(parameters.to_string()),
        ..request_entry(caller, Action::Upload.as_str(), uri.path(), status)
    };
    append(state, entry, result).await
}

/// Records the saving or deleting of a saved query: its id and name (and
/// whether shared), never the query string.
pub(crate) async fn saved_query(
    state: &AppState,
    caller: &Caller,
    action: Action,
    uri: &Uri,
    parameters: serde_json::Value,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let status = status_of(&result, |r| r.status().as_u16());
    let entry = AuditEntry {
        parameters: Some(parameters.to_string()),
        ..request_entry(caller, action.as_str(), uri.path(), status)
    };
    append(state, entry, result).await
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
