//! Builders shared by the handler tests of several modules (the fixture
//! and request helpers are in `auth::tests`).

use crate::auth::tests::{send, sign_in, PASSWORD};
use axum::http::{header, StatusCode};
use axum::Router;
use chrono::NaiveDate;
use istv_aggregate::{Event, GeocodeMethod};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};

/// A record of site RJ122 on `day` (`YYYY-MM-DD`), geocoded to `borough`
/// only (no cell, ward or LSOA).
pub(crate) fn event(id: &str, day: &str, borough: Option<&str>, method: AssaultMethod) -> Event {
    Event {
        site_code: "RJ122".into(),
        record_id: id.into(),
        content_hash: 7,
        legacy_hash: 7,
        assault_date: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
        assault_hour: Some(21),
        method,
        location_type: LocationType::Street,
        age_band: AgeBand::Age25To34,
        sex: Sex::Female,
        geocode_method: GeocodeMethod::PostcodeUnit,
        precision_m: Some(50),
        cell: None,
        borough: borough.map(Into::into),
        ward: None,
        lsoa: None,
        disclosure_key: 0,
    }
}

/// The session cookie (`name=value`) and CSRF token of a fresh sign-in of
/// `user` with the fixture's password.
pub(crate) async fn session(app: &Router, user: &str) -> (String, String) {
    let (status, headers, body) = send(app, sign_in(user, PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}
