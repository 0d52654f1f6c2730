//! Data quality per ED site (`GET /api/v1/quality`) and the list of a
//! site's receipts (`GET /api/v1/uploads?site=&limit=`).
//!
//! Definitions (the README has them for users):
//! - `months`: per month (UTC) in which uploads arrived, `rows_received`
//!   the rows of the site's finished uploads, `rows_rejected` those that
//!   failed validation, `rows_accepted` the records they stored that were
//!   new (a re-sent unchanged or corrected record is not new). A re-sent
//!   file is received again; its records are accepted once. So the
//!   months' `rows_accepted` add up to the site's stored records.
//! - `geocoding`: the site's stored records by how they were placed, the
//!   methods grouped as `latlon`, `bng` (easting/northing), `postcode`
//!   (unit, sector, district, or a postcode in the description),
//!   `gazetteer`, and `unknown` (unresolved or outside the service area:
//!   "location unknown" in every figure); `share` of the stored records.
//! - `completeness`: stored records with a value in each optional field
//!   kept after ingest: `assault_time` (a time of day, not only a date),
//!   `age_band` (an age), `sex` (a sex other than `not_known`).
//! - `rejections`: row errors of the site's uploads by code, most first; a
//!   row rejected for two reasons counts under each.
//! - `late`: more than `expected_interval_days` since the last upload
//!   finished (or, before any, since the site was registered); never for
//!   a revoked site.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use istv_access::{Principal, Role};
use istv_store::{Site, SiteTallies, QUALITY_FIELDS};
use serde_json::{json, Value};

/// The geocoding groups, in the order answered, with the stored methods
/// each holds.
pub(crate) const GEOCODING_GROUPS: [(&str, &[&str]); 5] = [
    ("latlon", &["latlon"]),
    ("bng", &["grid"]),
    (
        "postcode",
        &[
            "postcode_unit",
            "postcode_sector",
            "postcode_district",
            "text_postcode",
        ],
    ),
    ("gazetteer", &["gazetteer"]),
    ("unknown", &["unresolved", "out_of_area"]),
];

/// The sites whose quality and receipts the caller sees: `None` for every
/// site.
fn visible_sites(caller: &Caller) -> Option<Vec<String>> {
    match &caller.principal {
        Principal::Site(code) => Some(vec![code.clone()]),
        Principal::User(u) if u.role == Role::Uploader => Some(u.sites.clone()),
        Principal::User(_) => None,
    }
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// True when the site is later than its interval at `now`.
pub(crate) fn is_late(site: &Site, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let since = last.unwrap_or(site.created_at);
    !site.revoked && now - since > TimeDelta::days(i64::from(site.expected_interval_days))
}

/// One site's quality as answered, and how many figures it carries.
pub(crate) fn site_json(site: &Site, t: &SiteTallies, now: DateTime<Utc>) -> (Value, u64) {
    let months: Vec<Value> = t
        .months
        .iter()
        .map(|(month, c)| {
            json!({
                "month": month,
                "rows_received": c.received,
                "rows_accepted": c.accepted,
                "rows_rejected": c.rejected,
            })
        })
        .collect();
    let records: u64 = t.methods.values().sum();
    let geocoding: Vec<Value> = GEOCODING_GROUPS
        .iter()
        .map(|(group, methods)| {
            let n: u64 = methods
                .iter()
                .map(|m| t.methods.get(*m).copied().unwrap_or(0))
                .sum();
            json!({"method": group, "records": n, "share": share(n, records)})
        })
        .collect();
    let completeness: Vec<Value> = QUALITY_FIELDS
        .iter()
        .map(|field| {
            let n = t.fields.get(*field).copied().unwrap_or(0);
            json!({"field": field, "records_with_value": n, "share": share(n, records)})
        })
        .collect();
    let mut rejections: Vec<(&String, u64)> = t.rejections.iter().map(|(r, n)| (r, *n)).collect();
    rejections.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let figures = 3 * months.len() + geocoding.len() + completeness.len() + rejections.len();
    let body = json!({
        "site": site.code,
        "name": site.name,
        "expected_interval_days": site.expected_interval_days,
        "last_upload_at": t.last_upload_at.map(time_text),
        "late": is_late(site, t.last_upload_at, now),
        "months": months,
        "geocoding": geocoding,
        "completeness": completeness,
        "rejections": rejections
            .iter()
            .map(|(reason, count)| json!({"reason": reason, "count": count}))
            .collect::<Vec<_>>(),
    });
    (body, figures as u64)
}

/// `GET /api/v1/quality`: every site the caller sees, by code.
pub(crate) async fn quality(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    let answer = site_quality(&state, &caller, &uri).await;
    crate::audit::query(&state, &caller, &uri, false, answer).await
}

async fn site_quality(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
) -> Result<(Response, u64), ApiError> {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(ApiError::BadRequest(
            "GET /api/v1/quality takes no parameters".into(),
        ));
    }
    let visible = visible_sites(caller);
    let sites = state.store().list_sites().await?;
    let tallies = state.store().site_tallies().await?;
    let now = Utc::now();
    let empty = SiteTallies::default();
    let mut figures = 0;
    let answer: Vec<Value> = sites
        .iter()
        .filter(|s| visible.as_ref().is_none_or(|v| v.contains(&s.code)))
        .map(|s| {
            let (body, n) = site_json(s, tallies.get(&s.code).unwrap_or(&empty), now);
            figures += n;
            body
        })
        .collect();
    Ok((Json(json!({ "sites": answer })).into_response(), figures))
}

/// `?site=&limit=` of the receipts list.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    site: Option<String>,
    #[serde(default = "default_limit")]
    limit: u64,
}

fn default_limit() -> u64 {
    50
}

/// The most receipts one list answers.
pub(crate) const MAX_LIST: u64 = 1000;

/// `GET /api/v1/uploads?site=&limit=`: receipts of the caller's sites (an
/// admin's: every site), newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // A role without receipts is refused whatever it asks.
    istv_access::may_read_receipt(&caller.principal, "")?;
    if !(1..=MAX_LIST).contains(&params.limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1-{MAX_LIST}, not {}",
            params.limit
        )));
    }
    let sites = match (visible_sites(&caller), params.site) {
        (Some(mine), Some(site)) if !mine.contains(&site) => {
            return Err(ApiError::Forbidden(format!(
                "site {site} is not one of yours ({})",
                mine.join(",")
            )))
        }
        (Some(_), Some(site)) => vec![site],
        (Some(mine), None) => mine,
        (None, site) => {
            let all: Vec<String> = state
                .store()
                .list_sites()
                .await?
                .into_iter()
                .map(|s| s.code)
                .collect();
            match site {
                Some(s) if !all.contains(&s) => {
                    return Err(ApiError::NotFound(format!("no site {s:?}")))
                }
                Some(s) => vec![s],
                None => all,
            }
        }
    };
    let uploads = state.store().receipts(&sites, params.limit).await?;
    Ok(Json(json!({ "uploads": uploads })))
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
