use super::*;
use crate::{Profile, User};
use chrono::NaiveDate;
use istv_aggregate::{Disclosure, DisclosureKeys, Event, GeocodeMethod, Ledger};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::BTreeSet;

const CITY: &str = "E09000001";
const BARKING: &str = "E09000002";
const SOUTHWARK: &str = "E09000028";

fn user(role: Role, scope: &str, profile: Profile) -> Principal {
    Principal::User(User {
        name: "ana".into(),
        org: "VRU".into(),
        role,
        scope: Scope::parse(scope).unwrap(),
        profile,
        sites: vec![],
    })
}

fn uploader(sites: &[&str]) -> Principal {
    Principal::User(User {
        name: "up".into(),
        org: "KCH".into(),
        role: Role::Uploader,
        scope: Scope::London,
        profile: Profile::FULL,
        sites: sites.iter().map(|s| s.to_string()).collect(),
    })
}

fn q(pairs: &[(&str, &str)]) -> Query {
    Query::from_pairs(pairs.iter().copied()).unwrap()
}

fn denied(p: &Principal, pairs: &[(&str, &str)]) -> String {
    scope_query(p, q(pairs)).unwrap_err().to_string()
}

#[test]
fn a_borough_outside_the_scope_is_named() {
    let p = user(Role::Analyst, "e09000001", Profile::FULL);
    assert_eq!(
        denied(&p, &[("borough", BARKING)]),
        "borough E09000002 is outside your scope (E09000001)"
    );
    assert_eq!(
        denied(&p, &[("borough", "E09000001,E09000002")]),
        "borough E09000002 is outside your scope (E09000001)"
    );
    assert_eq!(
        denied(&p, &[("borough", "unknown")]),
        "borough unknown is outside your scope (E09000001)"
    );
    let two = user(Role::OrgAdmin, "E09000028,E09000001", Profile::FULL);
    assert_eq!(
        denied(&two, &[("group_by", "month"), ("borough", BARKING)]),
        "borough E09000002 is outside your scope (E09000001,E09000028)"
    );
    // In scope: the query runs as asked.
    let asked = q(&[("group_by", "ward"), ("borough", CITY)]);
    assert_eq!(scope_query(&p, asked.clone()).unwrap(), asked);
}

#[test]
fn without_a_borough_filter_the_scope_is_added() {
    let p = user(Role::Analyst, "E09000028,E09000001", Profile::FULL);
    let scoped = scope_query(&p, q(&[("group_by", "lsoa")])).unwrap();
    assert_eq!(
        scoped,
        q(&[("group_by", "lsoa"), ("borough", "E09000001,E09000028")])
    );
    assert_eq!(
        scoped.filter_labels(Dimension::Borough).unwrap(),
        vec![CITY.to_string(), SOUTHWARK.to_string()]
    );
    // All of London, and an admin, run as asked.
    for p in [
        user(Role::Analyst, "all", Profile::FULL),
        user(Role::Admin, "E09000001", Profile::FULL),
    ] {
        let asked = q(&[("group_by", "borough")]);
        assert_eq!(scope_query(&p, asked.clone()).unwrap(), asked);
    }
}

#[test]
fn the_profile_limits_resolution_area_level_and_dimensions() {
    let profile = Profile {
        max_resolution: 8,
        finest_area: AreaLevel::Ward,
        dimensions: Some(
            Profile::parse_dimensions("month,borough,ward,cell,assault_method").unwrap(),
        ),
    };
    let p = user(Role::Analyst, "all", profile);
    assert_eq!(
        denied(&p, &[("group_by", "cell"), ("resolution", "10")]),
        "resolution 10 is finer than your profile allows (8)"
    );
    // The default resolution (9) is finer too.
    assert_eq!(
        denied(&p, &[("group_by", "month"), ("cell", "unknown")]),
        "resolution 9 is finer than your profile allows (8)"
    );
    assert!(scope_query(&p, q(&[("group_by", "cell"), ("resolution", "8")])).is_ok());
    assert_eq!(
        denied(&p, &[("group_by", "month,age_band")]),
        "dimension age_band is not in your profile"
    );
    assert_eq!(
        denied(&p, &[("group_by", "month"), ("sex", "female")]),
        "dimension sex is not in your profile"
    );
    // LSOA is not listed, and finer than wards: the dimension is named first.
    assert_eq!(
        denied(&p, &[("group_by", "lsoa")]),
        "dimension lsoa is not in your profile"
    );
    let boroughs_only = Profile {
        finest_area: AreaLevel::Borough,
        ..Profile::FULL
    };
    let p = user(Role::Analyst, "all", boroughs_only);
    assert_eq!(
        denied(&p, &[("group_by", "ward")]),
        "ward figures are finer than your profile allows (borough)"
    );
    assert_eq!(
        denied(&p, &[("lsoa", "E01000001")]),
        "lsoa figures are finer than your profile allows (borough)"
    );
    assert!(scope_query(&p, q(&[("group_by", "borough,month")])).is_ok());
}

#[test]
fn uploaders_and_site_tokens_do_not_query() {
    assert_eq!(
        denied(&uploader(&["RJ122"]), &[("group_by", "month")]),
        "the uploader role cannot query figures"
    );
    assert_eq!(
        scope_query(&Principal::Site("RJ122".into()), Query::new()).unwrap_err(),
        Denied::SiteToken
    );
}

#[test]
fn uploads_go_to_the_callers_own_sites() {
    let site = Principal::Site("RJ122".into());
    assert_eq!(may_upload(&site, None).unwrap(), "RJ122");
    assert_eq!(may_upload(&site, Some("rj122")).unwrap(), "RJ122");
    assert_eq!(
        may_upload(&site, Some("RYJ01")).unwrap_err().to_string(),
        "site RYJ01 is not one of yours (RJ122)"
    );
    let one = uploader(&["RJ122"]);
    assert_eq!(may_upload(&one, None).unwrap(), "RJ122");
    let two = uploader(&["RJ122", "RYJ01"]);
    assert_eq!(
        may_upload(&two, None).unwrap_err().to_string(),
        "you upload for several sites (RJ122,RYJ01): name one with ?site=CODE"
    );
    assert_eq!(may_upload(&two, Some("ryj01")).unwrap(), "RYJ01");
    for role in [Role::Analyst, Role::OrgAdmin, Role::Admin] {
        assert_eq!(
            may_upload(&user(role, "all", Profile::FULL), None).unwrap_err(),
            Denied::CannotUpload(role)
        );
    }
}

#[test]
fn receipts_are_for_their_sites_and_admins() {
    assert_eq!(
        may_read_receipt(&Principal::Site("RJ122".into()), "RJ122"),
        Ok(true)
    );
    assert_eq!(
        may_read_receipt(&Principal::Site("RJ122".into()), "RYJ01"),
        Ok(false)
    );
    assert_eq!(may_read_receipt(&uploader(&["RJ122"]), "RJ122"), Ok(true));
    assert_eq!(may_read_receipt(&uploader(&["RJ122"]), "RYJ01"), Ok(false));
    assert_eq!(
        may_read_receipt(&user(Role::Admin, "all", Profile::FULL), "RYJ01"),
        Ok(true)
    );
    assert_eq!(
        may_read_receipt(&user(Role::Analyst, "all", Profile::FULL), "RJ122")
            .unwrap_err()
            .to_string(),
        "the analyst role cannot read upload receipts"
    );
}

#[test]
fn scopes_and_dimensions_are_parsed() {
    assert_eq!(Scope::parse("ALL").unwrap(), Scope::London);
    assert_eq!(
        Scope::parse(" e09000033 , E09000001").unwrap().to_string(),
        "E09000001,E09000033"
    );
    assert_eq!(
        Scope::parse("E09000001,E05000001").unwrap_err().to_string(),
        "invalid borough code `E05000001`: expected all or ONS borough codes such as E09000001"
    );
    assert!(Scope::parse("").is_err());
    assert_eq!(
        Profile::parse_dimensions("month, borough").unwrap(),
        BTreeSet::from([Dimension::Month, Dimension::Borough])
    );
    assert!(Profile::parse_dimensions("month,colour").is_err());
    assert_eq!(Role::parse("org_admin"), Some(Role::OrgAdmin));
    assert_eq!(Role::parse("root"), None);
}

fn event(id: &str, day: &str, borough: Option<&str>) -> Event {
    Event {
        site_code: "RJ1".into(),
        record_id: id.into(),
        content_hash: 1,
        legacy_hash: 1,
        assault_date: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
        assault_hour: Some(22),
        method: AssaultMethod::SharpObject,
        location_type: LocationType::Street,
        age_band: AgeBand::Age18To24,
        sex: Sex::Male,
        geocode_method: GeocodeMethod::PostcodeUnit,
        precision_m: Some(50),
        cell: None,
        borough: borough.map(Into::into),
        ward: borough.map(|b| format!("E05{}", &b[3..]).into()),
        lsoa: None,
        disclosure_key: DisclosureKeys::new(1).key("RJ1", id),
    }
}

#[test]
fn a_scoped_query_counts_only_the_scope() {
    // 3 in the City, 2 in Barking, 1 in Southwark, 1 without a borough.
    let events = vec![
        event("a", "2024-01-02", Some(CITY)),
        event("b", "2024-01-03", Some(CITY)),
        event("c", "2024-02-03", Some(CITY)),
        event("d", "2024-01-05", Some(BARKING)),
        event("e", "2024-02-05", Some(BARKING)),
        event("f", "2024-01-09", Some(SOUTHWARK)),
        event("g", "2024-01-09", None),
    ];
    let mut ledger = Ledger::new();
    ledger.apply(&events);
    let run = |p: &Principal, pairs: &[(&str, &str)]| -> Vec<(Vec<String>, u64)> {
        scope_query(p, q(pairs))
            .unwrap()
            .run(ledger.cube(), Disclosure::NONE)
            .into_iter()
            .map(|r| (r.values, r.count.unwrap()))
            .collect()
    };
    let p = user(Role::Analyst, "E09000001,E09000028", Profile::FULL);
    let s = |v: &str| v.to_string();
    assert_eq!(
        run(&p, &[("group_by", "borough")]),
        vec![(vec![s(CITY)], 3), (vec![s(SOUTHWARK)], 1)]
    );
    assert_eq!(
        run(&p, &[("group_by", "ward")]),
        vec![(vec![s("E05000001")], 3), (vec![s("E05000028")], 1)]
    );
    assert_eq!(
        run(&p, &[("group_by", "month")]),
        vec![(vec![s("2024-01")], 3), (vec![s("2024-02")], 1)]
    );
    assert_eq!(run(&p, &[]), vec![(vec![], 4)]);
    let london = user(Role::Analyst, "all", Profile::FULL);
    assert_eq!(run(&london, &[]), vec![(vec![], 7)]);
}
