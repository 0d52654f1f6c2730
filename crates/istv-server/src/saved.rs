//! Saved portal queries: `GET` and `POST /api/v1/saved-queries`,
//! `DELETE /api/v1/saved-queries/{id}`. A user's own queries plus those
//! shared with their organisation; only the owner deletes. Saving and
//! deleting are audited.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use istv_access::{Principal, User};
use istv_store::SavedQuery;
use serde_json::{json, Value};

/// The longest name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 100;
/// The longest query string, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 2000;

/// The body of `POST /api/v1/saved-queries`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSaved {
    name: String,
    query: String,
    #[serde(default)]
    shared: bool,
}

/// The user behind the caller: a site token has no saved queries.
fn user(caller: &Caller) -> Result<&User, ApiError> {
    match &caller.principal {
        Principal::User(u) => Ok(u),
        Principal::Site(_) => Err(ApiError::Forbidden(
            "saved queries belong to users; a site upload token has none".into(),
        )),
    }
}

/// A saved query as answered.
pub(crate) fn saved_json(q: &SavedQuery) -> Value {
    json!({
        "id": q.id,
        "name": q.name,
        "query": q.query,
        "shared": q.shared,
        "owner": q.owner,
        "created_at": q.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// Checks one text field of a new saved query.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("{field} is empty")));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(ApiError::BadRequest(format!(
            "{field} is {chars} characters long; the limit is {max}"
        )));
    }
    Ok(())
}

/// `GET /api/v1/saved-queries`: the caller's own and their organisation's
/// shared queries, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let u = user(&caller)?;
    let queries = state.store().saved_queries_for(&u.name, &u.org).await?;
    Ok(Json(json!({
        "queries": queries.iter().map(saved_json).collect::<Vec<_>>()
    })))
}

/// `POST /api/v1/saved-queries`: saves one; 201 with it.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    body: Result<Json<NewSaved>, JsonRejection>,
) -> Result<Response, ApiError> {
    let mut parameters = json!({});
    let answer = save(&state, &caller, body, &mut parameters).await;
    crate::audit::saved_query(
        &state,
        &caller,
        crate::audit::Action::SavedQueryAdd,
        &uri,
        parameters,
        answer,
    )
    .await
}

async fn save(
    state: &AppState,
    caller: &Caller,
    body: Result<Json<NewSaved>, JsonRejection>,
    parameters: &mut Value,
) -> Result<Response, ApiError> {
    let u = user(caller)?;
    let Json(new) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    parameters["name"] = json!(new.name.trim());
    parameters["shared"] = json!(new.shared);
    check_text("name", &new.name, MAX_NAME_CHARS)?;
    check_text("query", &new.query, MAX_QUERY_CHARS)?;
    let name = new.name.trim();
    let q = state
        .store()
        .add_saved_query(&u.name, name, &new.query, new.shared)
        .await?;
    parameters["id"] = json!(q.id);
    Ok((StatusCode::CREATED, Json(saved_json(&q))).into_response())
}

/// `DELETE /api/v1/saved-queries/{id}`: the owner deletes one; 404 for
/// another's or an unknown id.
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut parameters = json!({ "id": id });
    let answer = remove(&state, &caller, &id, &mut parameters).await;
    crate::audit::saved_query(
        &state,
        &caller,
        crate::audit::Action::SavedQueryDelete,
        &uri,
        parameters,
        answer,
    )
    .await
}

async fn remove(
    state: &AppState,
    caller: &Caller,
    id: &str,
    parameters: &mut Value,
) -> Result<Response, ApiError> {
    let u = user(caller)?;
    match state.store().delete_saved_query(id, &u.name).await? {
        Some(q) => {
            parameters["name"] = json!(q.name);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::NotFound(format!(
            "no saved query {id:?} of yours"
        ))),
    }
}

#[cfg(test)]
#[path = "saved_tests.rs"]
mod tests;
