//! The public tier (off by default): a release per month of the counts by
//! borough x assault method with OpenDP's discrete Laplace noise, computed
//! once ([`release_month`]), stored, and served as stored without a
//! credential. Nothing here computes a figure per request.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use istv_core::AssaultMethod;
use istv_public::{DiscreteLaplace, Month, NoiseSource, ReleaseError};
use istv_store::{AuditEntry, Disclosure, PublicRelease, Query, Store, StoreError};
use serde_json::json;
use std::collections::HashMap;

/// Settings of the public tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublicTier {
    /// The epsilon of each month's release.
    pub epsilon: f64,
    /// Days into a month before the previous month is released, so that
    /// late uploads of its records are counted.
    pub lag_days: u32,
    /// How often the service looks for a month due.
    pub check_interval: std::time::Duration,
}

impl Default for PublicTier {
    fn default() -> Self {
        PublicTier {
            epsilon: istv_public::DEFAULT_EPSILON,
            lag_days: 7,
            check_interval: std::time::Duration::from_secs(3600),
        }
    }
}

/// Why a release was not made.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    /// The month has not ended.
    #[error("month {month} is not complete yet: it ends on {last_day}")]
    Incomplete {
        /// The month.
        month: Month,
        /// Its last day.
        last_day: chrono::NaiveDate,
    },
    /// The release cannot be computed.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of [`release_month`].
#[derive(Debug, Clone, PartialEq)]
pub enum Released {
    /// Computed and stored now.
    New(PublicRelease),
    /// The month already had this release: nothing was computed (or what
    /// was computed at the same time by another process was dropped
    /// unpublished).
    Existing(PublicRelease),
}

impl Released {
    /// The release stored for the month.
    pub fn release(&self) -> &PublicRelease {
        match self {
            Released::New(r) | Released::Existing(r) => r,
        }
    }
}

/// Releases `month` once: when the store has its release, returns it
/// untouched; otherwise (the month being complete on `now`'s UTC day)
/// counts the stored records of the month by borough x method, exactly as
/// they are now, adds one draw of `source`'s noise per cell of `boroughs` x
/// every method and stores the result.
pub async fn release_month(
    store: &Store,
    boroughs: &[String],
    month: Month,
    mechanism: &DiscreteLaplace,
    source: &mut (dyn NoiseSource + Send),
    now: DateTime<Utc>,
) -> Result<Released, PublicError> {
    let key = month.to_string();
    if let Some(stored) = store.public_release(&key).await? {
        return Ok(Released::Existing(stored));
    }
    if !month.is_complete(now.date_naive()) {
        return Err(PublicError::Incomplete {
            month,
            last_day: month.last_day(),
        });
    }
    let query = Query::from_pairs([
        ("group_by", "borough,assault_method"),
        ("month", key.as_str()),
    ])
    .expect("a valid query");
    let mut exact = HashMap::new();
    for row in store.aggregate(&query, Disclosure::NONE).await? {
        let method = AssaultMethod::parse(&row.values[1]);
        if let (Some(method), Some(count)) = (method, row.count) {
            exact.insert((row.values[0].clone(), method), count);
        }
    }
    let release = istv_public::compute(month, boroughs, &exact, mechanism, source, now)?;
    let stored = PublicRelease {
        month: key.clone(),
        epsilon: release.epsilon,
        mechanism: release.mechanism.to_string(),
        parameters: release.parameters.to_string(),
        created_at: release.created_at.clone(),
        json: release.json(),
        csv: release.csv(),
    };
    if store.insert_public_release(&stored).await? {
        return Ok(Released::New(stored));
    }
    // Another process stored the month first: its release stands.
    let existing = store
        .public_release(&key)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            column: "public_releases.month",
            value: key,
        })?;
    Ok(Released::Existing(existing))
}

/// The boroughs of the service's geography, by code.
pub fn boroughs(state: &AppState) -> Vec<String> {
    state
        .geocoder()
        .areas(istv_geo::AreaKind::Borough)
        .map(|layer| layer.areas().iter().map(|a| a.code.to_string()).collect())
        .unwrap_or_default()
}

/// Releases the month due on `now` (see [`Month::due`]) if it has no
/// release yet, and records a new one in the audit log. Returns the month
/// released now, if any.
pub async fn release_due(
    state: &AppState,
    tier: &PublicTier,
    now: DateTime<Utc>,
) -> Result<Option<Month>, PublicError> {
    let Some(month) = Month::due(now.date_naive(), tier.lag_days) else {
        return Ok(None);
    };
    let mechanism = DiscreteLaplace::new(tier.epsilon)?;
    let released = release_month(
        state.store(),
        &boroughs(state),
        month,
        &mechanism,
        &mut istv_public::OpenDp,
        now,
    )
    .await?;
    let Released::New(release) = released else {
        return Ok(None);
    };
    let figures = serde_json::from_str::<serde_json::Value>(&release.json)
        .ok()
        .and_then(|v| v["rows"].as_array().map(|r| r.len() as u64));
    state
        .store()
        .append_audit(&AuditEntry {
            actor: "system:serve".into(),
            organisation: None,
            action: "public release".into(),
            route: None,
            parameters: Some(
                json!({"month": release.month, "epsilon": release.epsilon}).to_string(),
            ),
            figures,
            status: "ok".into(),
        })
        .await?;
    Ok(Some(month))
}

/// Looks for a month due at start and then every `check_interval`, for as
/// long as the runtime runs. Failures are logged and tried again next time.
pub fn spawn_releases(state: AppState, tier: PublicTier) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(tier.check_interval.max(std::time::Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match release_due(&state, &tier, Utc::now()).await {
                Ok(Some(month)) => {
                    tracing::info!(%month, epsilon = tier.epsilon, "public release made")
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "public release failed; trying again later"),
            }
        }
    })
}

/// `GET /api/v1/public/releases`: every release's month, epsilon,
/// mechanism and time of computation.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let releases: Vec<serde_json::Value> = state
        .store()
        .public_releases()
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "month": r.month,
                "epsilon": r.epsilon,
                "mechanism": r.mechanism,
                "created_at": r.created_at,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "releases": releases })).into_response())
}

/// `GET /api/v1/public/releases/{month}?format=json|csv`: the month's
/// release, byte for byte as stored.
pub(crate) async fn month(
    State(state): State<AppState>,
    Path(month): Path<String>,
    params: Result<QueryString<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let QueryString(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut format = "json";
    for (k, v) in &params {
        match (k.as_str(), v.as_str()) {
            ("format", f @ ("json" | "csv")) => format = f,
            ("format", other) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid value `{other}` for `format`: expected json or csv"
                )))
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter `{other}`: expected format"
                )))
            }
        }
    }
    let month = Month::parse(&month).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let release = state
        .store()
        .public_release(&month.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no public release of {month}")))?;
    Ok(if format == "csv" {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            release.csv,
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], release.json).into_response()
    })
}

#[cfg(test)]
#[path = "public_tests.rs"]
mod tests;
