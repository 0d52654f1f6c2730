//! `istv validate` and `istv generate` as an ED data manager runs them.

use istv_e2e::*;
use serde_json::{json, Value};

const HEADER: &str = "site_code,record_id,arrival_datetime,assault_datetime,assault_method,assault_method_other,assault_location_type,assault_postcode,patient_age";

#[test]
fn validate_exit_codes_and_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let good = file(
        dir.path(),
        "good.csv",
        format!("{HEADER}\nRJ122,1,2024-03-02T00:40,2024-03-01T23:15,sharp_object,,street,SE5 9RS,19\nRJ122,2,,01/03/2024,other,dog,home,,\n"),
    );
    let o = istv(dir.path())
        .args(["validate", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 rows, 2 valid, 0 invalid"),
        "{}",
        stdout(&o)
    );

    // Row 2: two problems; row 3: one; row 4 replaces row 1.
    let bad = file(
        dir.path(),
        "bad.csv",
        format!(
            "{HEADER}\nRJ122,1,2024-03-02T00:40,2024-03-01T23:15,sharp_object,,street,SE5 9RS,19\n\
             RJ122,2,2024-03-02T00:40,2024-03-03T23:15,knife,,street,,\n\
             RJ122,3,,2024-03-01,body_part,dog,street,,\n\
             RJ122,1,2024-03-02T00:40,2024-03-01T23:15,blunt_object,,street,SE5 9RS,19\n"
        ),
    );
    let o = istv(dir.path())
        .args(["validate", bad.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(report["rows"], 4);
    assert_eq!(report["valid"], 2);
    assert_eq!(report["invalid"], 2);
    assert_eq!(report["duplicates"], 1);
    let errors: Vec<(u64, String, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (2, "assault_datetime".into(), "assault_after_arrival".into()),
            (2, "assault_method".into(), "invalid_enum".into()),
            (
                3,
                "assault_method_other".into(),
                "method_other_not_allowed".into()
            ),
        ]
    );
    assert_eq!(report["notices"][0]["row"], 4);
    assert_eq!(report["notices"][0]["code"], "duplicate_record_id");
}

#[test]
fn unreadable_files_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let id_column = file(dir.path(), "ids.csv", format!("{HEADER},nhs_number\n"));
    let o = istv(dir.path())
        .args(["validate", id_column.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("\"nhs_number\""),
        "{report}"
    );

    let missing = dir.path().join("nope.csv");
    let o = istv(dir.path())
        .args(["validate", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: cannot read the file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..20_000)
        .map(|i| format!("RJ122,{i},,2024-03-01,body_part,,street,,\n"))
        .collect();
    let gz = gzip(format!("{HEADER}\n{rows}").as_bytes());
    let mut invalid_utf8 = format!("{HEADER}\nRJ122,1,,2024-03-01,body_part,,street,").into_bytes();
    invalid_utf8.extend_from_slice(b"\xc3\x28,\n");
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("truncated.csv.gz", gz[..gz.len() / 2].to_vec(), 2),
        ("quotes.csv", format!("{HEADER}\nRJ122,\"1,,2024-03-01,body_part,,street,,\nRJ122,2\"x,,2024-03-01,body_part,,street,,\n").into_bytes(), 1),
        ("big.csv", format!("{HEADER}\nRJ122,{},,2024-03-01,body_part,,street,,\n", "9".repeat(1 << 20)).into_bytes(), 1),
        ("utf8.csv", invalid_utf8, 1),
        ("magic.avro", b"Obj\x07not avro at all".to_vec(), 2),
        ("empty.jsonl", Vec::new(), 2),
        ("binary.csv", (0..=255u8).cycle().take(100_000).collect(), 2),
    ];
    for (name, bytes, want) in cases {
        let path = file(dir.path(), name, bytes);
        for json in [false, true] {
            let mut cmd = istv(dir.path());
            cmd.args(["validate", path.to_str().unwrap()]);
            if json {
                cmd.arg("--json");
            }
            let o = cmd.output().unwrap();
            assert!(!stderr(&o).contains("panicked"), "{name}: {}", stderr(&o));
            assert_eq!(
                o.status.code(),
                Some(want),
                "{name} json={json}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            if json {
                let v: Value = serde_json::from_slice(&o.stdout)
                    .unwrap_or_else(|e| panic!("{name}: {e}: {}", stdout(&o)));
                assert!(
                    v.get("error").is_some() || v.get("rows").is_some(),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn generate_is_deterministic_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl", "avro"] {
        let mut outputs = Vec::new();
        for name in ["a", "b"] {
            let out = dir.path().join(format!("{name}.{format}.gz"));
            let o = istv(dir.path())
                .args([
                    "generate",
                    "--records",
                    "3000",
                    "--seed",
                    "9",
                    "--from",
                    "2024-01-01",
                    "--to",
                    "2024-06-30",
                    "-o",
                ])
                .arg(&out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            outputs.push(out);
        }
        let same = if format == "avro" {
            // Avro headers hold a random sync marker: compare the rows.
            rows_of(&outputs[0]) == rows_of(&outputs[1])
        } else {
            std::fs::read(&outputs[0]).unwrap() == std::fs::read(&outputs[1]).unwrap()
        };
        assert!(same, "{format}: same seed, same rows");
        let o = istv(dir.path())
            .args(["validate", "--json"])
            .arg(&outputs[0])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{format}: {}",
            &stdout(&o)[..500.min(stdout(&o).len())]
        );
        assert_eq!(
            (v["rows"].clone(), v["invalid"].clone()),
            (json!(3000), json!(0)),
            "{format}"
        );
    }
    // With --invalid-rate some rows are wrong.
    let out = dir.path().join("bad.csv");
    let o = istv(dir.path())
        .args([
            "generate",
            "--records",
            "2000",
            "--invalid-rate",
            "0.1",
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = istv(dir.path())
        .args(["validate", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let invalid = v["invalid"].as_u64().unwrap();
    assert!(
        (120..=280).contains(&invalid),
        "about 10% of 2000 rows invalid, got {invalid}"
    );
}

/// Every row of a feed as text by field.
fn rows_of(path: &std::path::Path) -> Vec<Vec<Option<String>>> {
    let mut feed = istv_core::Feed::open_path(path, None).unwrap();
    let mut rows = Vec::new();
    while let Some(r) = feed.next() {
        let r = r.unwrap();
        rows.push(
            istv_core::Field::ALL
                .iter()
                .map(|f| r.get(*f).map(str::to_string))
                .collect(),
        );
    }
    assert!(!rows.is_empty());
    rows
}

#[test]
fn sites_take_an_expected_upload_interval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    istv_ok(d, None, &["sites", "add", "--code", "RJ1", "--name", "One"]);
    istv_ok(
        d,
        None,
        &[
            "sites",
            "add",
            "--code",
            "RJ2",
            "--name",
            "Two",
            "--expected-interval-days",
            "7",
        ],
    );
    let intervals = |d: &std::path::Path| -> Vec<(String, String)> {
        let list = istv_ok(d, None, &["sites", "list"]);
        let mut lines = list.lines();
        assert_eq!(
            lines.next(),
            Some("code\tname\tcreated_at\trevoked\texpected_interval_days")
        );
        lines
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols[0].to_owned(), cols[4].to_owned())
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(intervals(d), pairs(&[("RJ1", "35"), ("RJ2", "7")]));
    istv_ok(
        d,
        None,
        &[
            "sites",
            "update",
            "--code",
            "RJ1",
            "--expected-interval-days",
            "60",
        ],
    );
    assert_eq!(intervals(d), pairs(&[("RJ1", "60"), ("RJ2", "7")]));
    for args in [
        &[
            "sites",
            "update",
            "--code",
            "XX9",
            "--expected-interval-days",
            "3",
        ][..],
        &[
            "sites",
            "update",
            "--code",
            "RJ1",
            "--expected-interval-days",
            "0",
        ][..],
        &["sites", "update", "--code", "RJ1"][..],
    ] {
        let o = istv_on(d, None).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert!(stderr(
        &istv_on(d, None)
            .args([
                "sites",
                "update",
                "--code",
                "XX9",
                "--expected-interval-days",
                "3"
            ])
            .output()
            .unwrap()
    )
    .contains("no site `XX9`"));
    assert_eq!(intervals(d), pairs(&[("RJ1", "60"), ("RJ2", "7")]));
}
