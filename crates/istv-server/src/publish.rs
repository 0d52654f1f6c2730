//! The query API: counts by any grouping, as JSON, CSV or GeoJSON, under
//! disclosure control (the cell key method; see `istv_aggregate::disclosure`).

use crate::auth::{scoped, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query as QueryString, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use istv_aggregate::disclosure::merge_cells;
use istv_aggregate::{Dimension, Disclosure, Published, Query, Row, Tally};
use serde_json::{json, Map, Value};

type Pairs = Result<QueryString<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn pairs(p: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    p.map(|QueryString(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// Takes a single-valued control parameter out of the pairs.
fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    let mut i = 0;
    while i < pairs.len() {
        if pairs[i].0 == name {
            if found.is_some() {
                return Err(ApiError::BadRequest(format!(
                    "parameter `{name}` given more than once"
                )));
            }
            found = Some(pairs.remove(i).1);
        } else {
            i += 1;
        }
    }
    Ok(found)
}

/// A query from its parameters; fine places only for whole periods.
fn parse(pairs: &[(String, String)]) -> Result<Query, ApiError> {
    let query = Query::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    query
        .check_whole_periods()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(query)
}

/// Analysts' disclosure control (validated when the server starts).
fn disclosure(state: &AppState) -> Result<Disclosure, ApiError> {
    state
        .config()
        .disclosure()
        .map_err(|e| ApiError::Internal(format!("disclosure settings: {e}")))
}

fn count_fields(obj: &mut Map<String, Value>, row: &Row) {
    obj.insert(
        "count".into(),
        row.count.map(Value::from).unwrap_or(Value::Null),
    );
    if row.suppressed {
        obj.insert("suppressed".into(), Value::Bool(true));
    }
}

/// `GET /api/v1/aggregates?group_by=..&from=..&to=..&<dimension>=..&format=json|csv`.
pub(crate) async fn aggregates(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    p: Pairs,
) -> Result<Response, ApiError> {
    // CSV is a download, however the parameter is spelt.
    let download =
        matches!(&p, Ok(QueryString(v)) if v.iter().any(|(k, v)| k == "format" && v == "csv"));
    let answer = aggregates_answer(&state, &caller, p).await;
    crate::audit::query(&state, &caller, &uri, download, answer).await
}

/// The answer to `/aggregates` and the number of figures in it.
async fn aggregates_answer(
    state: &AppState,
    caller: &Caller,
    p: Pairs,
) -> Result<(Response, u64), ApiError> {
    let mut pairs = pairs(p)?;
    let format = take(&mut pairs, "format")?.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::BadRequest(format!(
            "invalid value `{format}` for `format`: expected json or csv"
        )));
    }
    let query = scoped(state, caller, parse(&pairs)?)?;
    let rows = state
        .query(async { Ok(state.store().aggregate(&query, disclosure(state)?).await?) })
        .await?;
    let dims: Vec<&str> = query.group_by().iter().map(|d| d.name()).collect();
    if format == "csv" {
        let mut out = String::new();
        for d in &dims {
            out.push_str(d);
            out.push(',');
        }
        out.push_str("count,suppressed\n");
        for row in &rows {
            for v in &row.values {
                // Labels are codes and dates: no commas or quotes to escape.
                out.push_str(v);
                out.push(',');
            }
            if let Some(c) = row.count {
                out.push_str(&c.to_string());
            }
            out.push_str(if row.suppressed {
                ",true\n"
            } else {
                ",false\n"
            });
        }
        let csv = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
        return Ok((csv, rows.len() as u64));
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut obj = Map::new();
            for (d, v) in dims.iter().zip(&row.values) {
                obj.insert((*d).to_string(), Value::String(v.clone()));
            }
            count_fields(&mut obj, row);
            Value::Object(obj)
        })
        .collect();
    let figures = rows.len() as u64;
    Ok((axum::Json(json!({ "rows": rows })).into_response(), figures))
}

/// `GET /api/v1/cells?resolution=7..10&...`: H3 hexagons with counts, as a
/// GeoJSON FeatureCollection; records without a cell at that resolution are
/// counted in the collection's `location_unknown`. A cell whose published
/// count is below k is merged into its parent (up to resolution 7, see
/// [`istv_aggregate::disclosure::merge_cells`]); each feature names the
/// cell published and its resolution.
pub(crate) async fn cells(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    p: Pairs,
) -> Result<Response, ApiError> {
    let answer = cells_answer(&state, &caller, p).await;
    crate::audit::query(&state, &caller, &uri, false, answer).await
}

/// The answer to `/cells` and the number of figures in it: one per
/// feature and `location_unknown`.
async fn cells_answer(
    state: &AppState,
    caller: &Caller,
    p: Pairs,
) -> Result<(Response, u64), ApiError> {
    let mut pairs = pairs(p)?;
    if take(&mut pairs, "group_by")?.is_some() {
        return Err(ApiError::BadRequest(
            "`group_by` is not accepted here: cells are grouped by cell".into(),
        ));
    }
    pairs.push(("group_by".into(), "cell".into()));
    let query = scoped(state, caller, parse(&pairs)?)?;
    let disclosure = disclosure(state)?;
    // Exact tallies: merging sums them before anything is perturbed; only
    // what merge_cells publishes leaves this function.
    let exact = state
        .query(async { Ok(state.store().aggregate(&query, Disclosure::NONE).await?) })
        .await?;
    let mut unknown = json!({"count": 0});
    let mut located = Vec::new();
    for row in &exact {
        let tally = Tally {
            count: row.count.unwrap_or(0) as i64,
            keysum: i64::from(row.cell_key),
        };
        match row.values[0].parse::<h3o::CellIndex>() {
            Ok(cell) => located.push((cell, tally)),
            Err(_) => {
                let published = disclosure.publish(tally.count as u64, tally.cell_key());
                if published.count != Some(0) {
                    let mut props = Map::new();
                    published_fields(&mut props, published);
                    unknown = Value::Object(props);
                }
            }
        }
    }
    let mut features = Vec::new();
    for cell in merge_cells(located, &disclosure) {
        let mut props = Map::new();
        published_fields(&mut props, cell.published);
        props.insert("cell".into(), Value::String(cell.cell.to_string()));
        props.insert("resolution".into(), Value::from(cell.resolution));
        let mut ring: Vec<Value> = cell
            .cell
            .boundary()
            .iter()
            .map(|ll| json!([round6(ll.lng()), round6(ll.lat())]))
            .collect();
        ring.push(ring[0].clone());
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": props,
        }));
    }
    let figures = features.len() as u64 + 1;
    let answer = geojson(json!({
        "type": "FeatureCollection",
        "resolution": query.resolution().get(),
        "features": features,
        "location_unknown": unknown,
    }));
    Ok((answer, figures))
}

fn published_fields(obj: &mut Map<String, Value>, p: Published) {
    obj.insert(
        "count".into(),
        p.count.map(Value::from).unwrap_or(Value::Null),
    );
    if p.suppressed {
        obj.insert("suppressed".into(), Value::Bool(true));
    }
}

/// `GET /api/v1/areas?level=borough|ward|lsoa&...`: every area of the level
/// with its count (0 where none), as GeoJSON; records without an area of
/// that level are counted in `location_unknown`.
pub(crate) async fn areas(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    p: Pairs,
) -> Result<Response, ApiError> {
    let answer = areas_answer(&state, &caller, p).await;
    crate::audit::query(&state, &caller, &uri, false, answer).await
}

/// The answer to `/areas` and the number of figures in it: one per
/// feature and `location_unknown`.
async fn areas_answer(
    state: &AppState,
    caller: &Caller,
    p: Pairs,
) -> Result<(Response, u64), ApiError> {
    let mut pairs = pairs(p)?;
    let level = take(&mut pairs, "level")?.ok_or_else(|| {
        ApiError::BadRequest("missing `level`: expected borough, ward or lsoa".into())
    })?;
    let (dimension, geo_level) = match level.as_str() {
        "borough" => (Dimension::Borough, istv_geo::AreaKind::Borough),
        "ward" => (Dimension::Ward, istv_geo::AreaKind::Ward),
        "lsoa" => (Dimension::Lsoa, istv_geo::AreaKind::Lsoa),
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid value `{other}` for `level`: expected borough, ward or lsoa"
            )))
        }
    };
    if take(&mut pairs, "group_by")?.is_some() {
        return Err(ApiError::BadRequest(
            "`group_by` is not accepted here: areas are grouped by `level`".into(),
        ));
    }
    pairs.push(("group_by".into(), dimension.name().into()));
    let query = scoped(state, caller, parse(&pairs)?)?;
    // Within a borough scope the query counts only the scope's boroughs:
    // areas outside it are not listed (with a 0 that is not theirs).
    let in_scope = caller
        .borough_limited()
        .then(|| query.filter_labels(Dimension::Borough))
        .flatten();
    let rows = state
        .query(async { Ok(state.store().aggregate(&query, disclosure(state)?).await?) })
        .await?;
    let mut counts: std::collections::HashMap<&str, &Row> =
        rows.iter().map(|r| (r.values[0].as_str(), r)).collect();
    let mut unknown = json!({"count": 0});
    if let Some(row) = counts.remove("unknown") {
        let mut props = Map::new();
        count_fields(&mut props, row);
        unknown = Value::Object(props);
    }
    let mut features = Vec::new();
    let layer = state.geocoder().areas(geo_level);
    for area in layer.map(|l| l.areas()).unwrap_or(&[]) {
        if let Some(boroughs) = &in_scope {
            let listed = match dimension {
                Dimension::Borough => boroughs.iter().any(|b| **b == *area.code),
                // A ward or LSOA is listed when records of the scope are in it.
                _ => counts.contains_key(area.code.as_ref()),
            };
            if !listed {
                continue;
            }
        }
        let mut props = Map::new();
        props.insert("code".into(), Value::String(area.code.to_string()));
        props.insert("name".into(), Value::String(area.name.to_string()));
        match counts.remove(area.code.as_ref()) {
            Some(row) => count_fields(&mut props, row),
            None => {
                props.insert("count".into(), Value::from(0));
            }
        }
        features.push(json!({
            "type": "Feature",
            "geometry": multipolygon(&area.geometry),
            "properties": props,
        }));
    }
    let figures = features.len() as u64 + 1;
    let answer = geojson(json!({
        "type": "FeatureCollection",
        "level": level,
        "features": features,
        "location_unknown": unknown,
    }));
    Ok((answer, figures))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn multipolygon(mp: &geo::MultiPolygon<f64>) -> Value {
    let ring = |ls: &geo::LineString<f64>| -> Value {
        Value::Array(
            ls.0.iter()
                .map(|c| json!([round6(c.x), round6(c.y)]))
                .collect(),
        )
    };
    let polys: Vec<Value> =
        mp.0.iter()
            .map(|p| {
                let mut rings = vec![ring(p.exterior())];
                rings.extend(p.interiors().iter().map(ring));
                Value::Array(rings)
            })
            .collect();
    json!({"type": "MultiPolygon", "coordinates": polys})
}

fn geojson(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/geo+json")],
        v.to_string(),
    )
        .into_response()
}
