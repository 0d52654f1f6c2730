//! Who may see what, end to end: every endpoint tried with every role and
//! with no, an expired, a revoked and a forged credential; the figures a
//! borough analyst gets are its borough's only, against hand-counted
//! records of a small feed.

use istv_e2e::*;
use serde_json::{json, Value};

const WESTMINSTER: &str = "E09000033";
const LAMBETH: &str = "E09000022";
const SOUTHWARK: &str = "E09000028";

/// 4 records in Westminster (Trafalgar Square), 3 in Lambeth (Brixton), 2 in
/// Southwark (Peckham Rye), 1 without a location.
fn feed() -> String {
    let mut s = "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude\n".to_string();
    let places = [
        ("51.5080", "-0.1281", 4),
        ("51.4627", "-0.1145", 3),
        ("51.4700", "-0.0694", 2),
        ("", "", 1),
    ];
    let mut n = 0;
    for (lat, lon, count) in places {
        for _ in 0..count {
            n += 1;
            s += &format!("RJ122,R{n},2024-03-{n:02}T21:00,body_part,street,{lat},{lon}\n");
        }
    }
    s
}

fn post(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http()
        .post(&format!("{base}/api/v1/uploads"))
        .header("Content-Type", "text/csv");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.send(feed().as_bytes()).expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn json_get(base: &str, path: &str, token: &str) -> (u16, Value) {
    let (status, body) = get_with(&format!("{base}{path}"), Some(token));
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// `{"rows":[...]}` as (borough, count) pairs.
fn by_borough(body: &Value) -> Vec<(String, u64)> {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["borough"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_endpoint_with_every_role_and_credential() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    import_boroughs(d);
    let site = add_site(d, None, "RJ122");
    let server = Server::start(
        d,
        None,
        &["--suppress-below", "1", "--max-perturbation", "0"],
    );
    let base = server.base.clone();
    let london = server.token.clone();
    istv_ok(
        d,
        None,
        &["orgs", "add", "VRU", "--name", "Violence Reduction Unit"],
    );
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec!["users", "add", name, "--org", "VRU"];
        args.extend_from_slice(extra);
        istv_ok(d, None, &args)
    };
    let password = add(
        "west",
        &[
            "--role",
            "analyst",
            "--boroughs",
            WESTMINSTER,
            "--max-resolution",
            "8",
            "--dimensions",
            "month,borough,cell,assault_method",
        ],
    )
    .trim()
    .to_string();
    assert_eq!(password.len(), 20);
    add("oa", &["--role", "org_admin", "--boroughs", LAMBETH]);
    add("root", &["--role", "admin"]);
    add("up", &["--role", "uploader", "--sites", "RJ122"]);
    let token = |user: &str, name: &str, extra: &[&str]| {
        let mut args = vec!["users", "token", user, "--name", name];
        args.extend_from_slice(extra);
        istv_ok(d, None, &args).trim().to_string()
    };
    let west = token("west", "main", &[]);
    let org_admin = token("oa", "main", &[]);
    let admin = token("root", "main", &[]);
    let uploader = token("up", "main", &[]);
    let expired = token("west", "old", &["--expires-days", "0"]);
    let revoked = token("west", "lost", &[]);
    istv_ok(
        d,
        None,
        &["users", "revoke-token", "west", "--name", "lost"],
    );
    let forged = "0".repeat(64);

    // Only uploaders and site tokens upload.
    let (status, receipt) = post(&base, Some(&site));
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 10);
    let id = receipt["upload_id"].as_str().unwrap().to_string();
    let (status, again) = post(&base, Some(&uploader));
    assert_eq!((status, again["duplicates"].as_u64()), (200, Some(10)));
    for t in [&west, &london, &org_admin, &admin] {
        assert_eq!(post(&base, Some(t)).0, 403);
    }
    for t in [None, Some(&expired), Some(&revoked), Some(&forged)] {
        assert_eq!(post(&base, t.map(|t| t.as_str())).0, 401);
    }

    let receipt_path = format!("/api/v1/uploads/{id}");
    let errors_path = format!("/api/v1/uploads/{id}/errors");
    let endpoints = [
        "/api/v1/aggregates?group_by=borough",
        "/api/v1/cells?resolution=8",
        "/api/v1/areas?level=borough",
        "/api/v1/me",
        &receipt_path,
        &errors_path,
        "/metrics",
        "/api/v1/saved-queries",
        "/api/v1/quality",
        "/api/v1/uploads?site=RJ122",
        "/api/v1/users",
        "/api/v1/openapi.json",
    ];
    // Expected status per endpoint, in the order above: analysts read
    // figures, their saved queries and data quality, not receipts, users or
    // metrics; an org_admin also lists its organisation's users; uploaders
    // and site tokens read their own site's receipts and data quality; a
    // site token has no saved queries.
    let analyst = [200, 200, 200, 200, 403, 403, 403, 200, 200, 403, 403, 200];
    let org_admin_statuses = [200, 200, 200, 200, 403, 403, 403, 200, 200, 403, 200, 200];
    let cases: [(&str, &str, [u16; 12]); 6] = [
        ("borough analyst", &west, analyst),
        ("london analyst", &london, analyst),
        ("org admin", &org_admin, org_admin_statuses),
        ("admin", &admin, [200; 12]),
        (
            "uploader",
            &uploader,
            [403, 403, 403, 200, 200, 200, 403, 200, 200, 200, 403, 200],
        ),
        (
            "site token",
            &site,
            [403, 403, 403, 200, 200, 200, 403, 403, 200, 200, 403, 200],
        ),
    ];
    for (who, t, statuses) in cases {
        for (path, expected) in endpoints.iter().zip(statuses) {
            let (status, body) = get_with(&format!("{base}{path}"), Some(t));
            assert_eq!(status, expected, "{who} {path}: {body}");
        }
    }
    // Requests that change something, without a valid credential.
    let writes: [(&str, &str, Value); 4] = [
        (
            "POST",
            "/api/v1/saved-queries",
            json!({"name": "n", "query": "group_by=month"}),
        ),
        (
            "POST",
            "/api/v1/users",
            json!({"name": "x", "role": "analyst", "boroughs": [LAMBETH]}),
        ),
        ("POST", "/api/v1/users/west/disable", json!({})),
        ("POST", "/api/v1/users/west/password", json!({})),
    ];
    for (who, t) in [
        ("none", None),
        ("expired", Some(&expired)),
        ("revoked", Some(&revoked)),
        ("forged", Some(&forged)),
    ] {
        for (method, path, body) in &writes {
            let mut req = http().post(&format!("{base}{path}"));
            if let Some(t) = t {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let status = req.send_json(body).expect("request").status().as_u16();
            assert_eq!(status, 401, "{who} {method} {path}");
        }
    }
    // The public tier is off by default: its routes do not exist.
    assert_eq!(
        get_with(&format!("{base}/api/v1/public/releases"), None).0,
        404
    );
    for (who, t) in [
        ("none", None),
        ("expired", Some(&expired)),
        ("revoked", Some(&revoked)),
        ("forged", Some(&forged)),
    ] {
        for path in endpoints {
            let (status, body) = get_with(&format!("{base}{path}"), t.map(|t| t.as_str()));
            assert_eq!(status, 401, "{who} {path}: {body}");
        }
    }
    assert_eq!(get_with(&format!("{base}/healthz"), None).0, 200);
    assert_eq!(
        get_with(&format!("{base}/metrics"), Some(METRICS_TOKEN)).0,
        200
    );

    // The figures: each caller's scope only, counted by hand above.
    let q = "/api/v1/aggregates?group_by=borough";
    let (_, all) = json_get(&base, q, &london);
    assert_eq!(
        all,
        json!({"rows": [
            {"borough": LAMBETH, "count": 3},
            {"borough": SOUTHWARK, "count": 2},
            {"borough": WESTMINSTER, "count": 4},
            {"borough": "unknown", "count": 1},
        ]})
    );
    assert_eq!(json_get(&base, q, &admin).1, all);
    assert_eq!(
        by_borough(&json_get(&base, q, &west).1),
        vec![(WESTMINSTER.to_string(), 4)]
    );
    assert_eq!(
        by_borough(&json_get(&base, q, &org_admin).1),
        vec![(LAMBETH.to_string(), 3)]
    );
    let (_, total) = json_get(&base, "/api/v1/aggregates?group_by=month", &west);
    assert_eq!(total, json!({"rows": [{"month": "2024-03", "count": 4}]}));
    // Cells: Westminster's 4 records, none without a place.
    let (_, cells) = json_get(&base, "/api/v1/cells?resolution=8", &west);
    let in_cells: u64 = cells["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (in_cells, cells["location_unknown"]["count"].as_u64()),
        (4, Some(0))
    );
    // Areas: only Westminster is listed.
    let (_, areas) = json_get(&base, "/api/v1/areas?level=borough", &west);
    let listed: Vec<(&str, u64)> = areas["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["code"].as_str().unwrap(),
                f["properties"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(WESTMINSTER, 4)]);
    let (_, areas) = json_get(&base, "/api/v1/areas?level=borough", &london);
    assert_eq!(areas["features"].as_array().unwrap().len(), 33);
    // Outside the scope or the profile: 403 naming the limit.
    for (path, error) in [
        (
            "/api/v1/aggregates?borough=E09000022",
            "borough E09000022 is outside your scope (E09000033)",
        ),
        (
            "/api/v1/cells?resolution=9",
            "resolution 9 is finer than your profile allows (8)",
        ),
        (
            "/api/v1/aggregates?group_by=sex",
            "dimension sex is not in your profile",
        ),
    ] {
        let (status, body) = json_get(&base, path, &west);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some(error)),
            "{path}"
        );
    }
    let (_, me) = json_get(&base, "/api/v1/me", &west);
    assert_eq!(me["scope"], json!([WESTMINSTER]));
    assert_eq!(me["role"], "analyst");

    // A browser session: sign in, read, sign out with the CSRF token.
    let mut r = http()
        .post(&format!("{base}/api/v1/session"))
        .header("Content-Type", "application/json")
        .send(
            json!({"user": "west", "password": password})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap()
        ["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut r = http()
        .get(&format!("{base}{q}"))
        .header("Cookie", &pair)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(by_borough(&body), vec![(WESTMINSTER.to_string(), 4)]);
    let out = |csrf: Option<&str>| {
        let mut req = http()
            .delete(&format!("{base}/api/v1/session"))
            .header("Cookie", &pair);
        if let Some(c) = csrf {
            req = req.header("X-CSRF-Token", c);
        }
        req.call().unwrap().status().as_u16()
    };
    assert_eq!(out(None), 403);
    assert_eq!(out(Some(&csrf)), 204);
    let r = http()
        .get(&format!("{base}{q}"))
        .header("Cookie", &pair)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A wrong password and an unknown user get the same answer.
    let sign_in = |user: &str, pw: &str| {
        let mut r = http()
            .post(&format!("{base}/api/v1/session"))
            .header("Content-Type", "application/json")
            .send(json!({"user": user, "password": pw}).to_string().as_bytes())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    assert_eq!(
        sign_in("west", "wrong password!"),
        sign_in("nobody", "wrong password!")
    );
    assert_eq!(sign_in("west", "wrong password!").0, 401);

    // Disabled: the user's tokens stop working.
    istv_ok(d, None, &["users", "disable", "west"]);
    assert_eq!(get_with(&format!("{base}{q}"), Some(&west)).0, 401);
    let list = istv_ok(d, None, &["users", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with(
            "west\tVRU\tanalyst\tE09000033\t8\tlsoa\tmonth,cell,borough,assault_method\t\ttrue"
        )),
        "{list}"
    );
}
