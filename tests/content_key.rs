//! The content hash key end to end: `istv serve` makes it once in the data
//! directory (mode 0600) and uses it again after a restart, so a re-sent
//! feed is a duplicate; a server under another key file sees the same rows
//! as changed.

use istv_e2e::*;

const FEED: &str = "site_code,record_id,assault_datetime,assault_method,assault_location_type,patient_age,patient_sex\n\
RJ122,K1,2024-01-05T22:00,sharp_object,street,19,male\n\
RJ122,K2,2024-01-06T23:30,body_part,street,30,female\n\
RJ122,K3,2024-01-07T01:15,body_part,home,41,male\n";

/// (accepted, duplicates, corrections): accepted counts every valid row,
/// duplicates and corrections those of them already stored.
fn counts(receipt: &serde_json::Value) -> (u64, u64, u64) {
    let n = |k: &str| receipt[k].as_u64().unwrap();
    (n("accepted"), n("duplicates"), n("corrections"))
}

#[test]
fn the_key_is_made_once_and_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let site = add_site(data, None, "RJ122");
    let key_file = data.join("content-hash.key");
    let server = Server::start(data, None, &["--no-warm-geocoder"]);
    let text = std::fs::read_to_string(&key_file).expect("made at the first start");
    assert_eq!(text.trim().len(), 64);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (status, receipt) = post_upload(&server.base, &site, "text/csv", FEED.as_bytes());
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(counts(&receipt), (3, 0, 0));
    assert!(server.terminate().success());

    // Restarted: the same key, so the same rows are duplicates and one
    // changed row is a correction.
    let server = Server::start(data, None, &["--no-warm-geocoder"]);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), text);
    let (_, receipt) = post_upload(&server.base, &site, "text/csv", FEED.as_bytes());
    assert_eq!(counts(&receipt), (3, 3, 0));
    let changed = FEED.replace(
        "K3,2024-01-07T01:15,body_part",
        "K3,2024-01-07T01:15,blunt_object",
    );
    let (_, receipt) = post_upload(&server.base, &site, "text/csv", changed.as_bytes());
    assert_eq!(counts(&receipt), (3, 2, 1));
    assert!(server.terminate().success());

    // Under another key file the stored hashes are not this key's: every
    // row looks changed. (Why the key must be backed up with the store.)
    let other = dir.path().join("elsewhere").join("other.key");
    let other_arg = other.to_str().unwrap();
    let server = Server::start(
        data,
        None,
        &["--no-warm-geocoder", "--content-key-file", other_arg],
    );
    assert!(other.exists());
    let (_, receipt) = post_upload(&server.base, &site, "text/csv", changed.as_bytes());
    assert_eq!(counts(&receipt), (3, 0, 3));
    assert!(server.terminate().success());

    // A key file that cannot be read stops the start with the reason.
    std::fs::write(&key_file, "damaged\n").unwrap();
    let o = istv(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("content hash key") && err.contains("is damaged"),
        "{err}"
    );
}

/// `istv query` keys no record (it takes no upload), so it neither makes
/// the key nor reads it, and answers as `istv serve` over the same store.
#[test]
fn istv_query_neither_makes_nor_reads_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let site = add_site(data, None, "RJ122");
    let key_file = data.join("content-hash.key");
    let elsewhere = data.join("keys").join("serve.key");
    let feed: String = FEED.lines().next().unwrap().to_string()
        + "\n"
        + &(0..12)
            .map(|i| format!("RJ122,Q{i},2024-01-05T22:00,sharp_object,street,19,male\n"))
            .collect::<String>();
    let server = Server::start(
        data,
        None,
        &[
            "--no-warm-geocoder",
            "--max-perturbation",
            "0",
            "--content-key-file",
            elsewhere.to_str().unwrap(),
        ],
    );
    let (status, receipt) = post_upload(&server.base, &site, "text/csv", feed.as_bytes());
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(counts(&receipt), (12, 0, 0));
    let answer = |base: &str| {
        let (status, body) = get(&format!("{base}/api/v1/aggregates?group_by=assault_method"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["rows"].clone()
    };
    let served = answer(&server.base);
    // Twelve rows, all sharp_object: one row, far above k.
    assert_eq!(served.as_array().map(Vec::len), Some(1), "{served}");
    assert_eq!(served[0]["assault_method"], "sharp_object");
    assert_eq!(served[0]["count"], 12);
    assert!(server.terminate().success());
    assert!(!key_file.exists());

    let query = Server::start_query(data, None, &["--max-perturbation", "0"]);
    assert!(!key_file.exists(), "istv query made a key");
    assert_eq!(answer(&query.base), served);
    assert!(query.terminate().success());

    // A key it would fail to read does not stop it.
    std::fs::write(&key_file, "damaged\n").unwrap();
    let query = Server::start_query(data, None, &["--max-perturbation", "0"]);
    assert_eq!(answer(&query.base), served);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), "damaged\n");
}
