//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every route,
//! kept by hand in `openapi.json` beside this crate's `Cargo.toml` and
//! embedded at build time. Tests check it against the router (the same
//! paths and methods), its examples against its schemas, and every status
//! it documents against a request that answers it (`openapi_tests.rs`).

use crate::auth::Caller;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document.
pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /api/v1/openapi.json` (a credential is needed, as everywhere).
pub(crate) async fn serve(_caller: Caller) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
