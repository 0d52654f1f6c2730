//! Durability: kill -9 the server while uploads are in flight, restart it,
//! and every acknowledged row is counted exactly once; unacknowledged
//! uploads can be sent again without double counting.

use istv_e2e::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};

const SMALL_ROWS: usize = 10;

/// Upload `n`: ten rows on its own day of 2023, so per-day counts show
/// exactly what of it is stored.
fn small_upload(n: usize) -> (String, String) {
    let day = chrono_day(n);
    let mut s =
        String::from("site_code,record_id,assault_datetime,assault_method,assault_location_type\n");
    for i in 0..SMALL_ROWS {
        s += &format!("RJ122,S{n}-{i},{day}T2{}:00,body_part,street\n", i % 4);
    }
    (day, s)
}

/// 2023-01-01 plus `n` days (n < 365).
fn chrono_day(n: usize) -> String {
    let days_in = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut m, mut d) = (0, n);
    while d >= days_in[m] {
        d -= days_in[m];
        m += 1;
    }
    format!("2023-{:02}-{:02}", m + 1, d + 1)
}

fn day_counts(base: &str) -> std::collections::HashMap<String, u64> {
    let (status, body) = get(&format!(
        "{base}/api/v1/aggregates?group_by=day&from=2023-01-01&to=2023-12-31"
    ));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn total(base: &str) -> u64 {
    let (_, body) = get(&format!("{base}/api/v1/aggregates"));
    let v: Value = serde_json::from_str(&body).unwrap();
    v["rows"][0]["count"].as_u64().unwrap_or(0)
}

#[test]
fn kill_9_loses_no_acknowledged_row_and_resending_never_double_counts() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_site(dir.path(), None, "RJ122");
    let big = dir.path().join("big.csv");
    let big_rows = 400_000u64;
    let o = istv(dir.path())
        .args([
            "generate",
            "--site",
            "RJ122",
            "--seed",
            "3",
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-30",
        ])
        .args(["--records", &big_rows.to_string(), "-o"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let big_bytes = Arc::new(std::fs::read(&big).unwrap());

    let server = Server::start(
        dir.path(),
        None,
        &[
            "--suppress-below",
            "1",
            "--max-perturbation",
            "0",
            "--batch-rows",
            "2000",
            "--per-token-concurrency",
            "4",
        ],
    );
    let base = server.base.clone();

    // The big upload, in flight when the server dies.
    let big_done: Arc<Mutex<Option<u16>>> = Arc::default();
    let big_thread = {
        let (base, token, bytes, done) = (
            base.clone(),
            token.clone(),
            big_bytes.clone(),
            big_done.clone(),
        );
        std::thread::spawn(move || {
            let r = http()
                .post(&format!("{base}/api/v1/uploads"))
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "text/csv")
                .send(&bytes[..]);
            *done.lock().unwrap() = r.ok().map(|r| r.status().as_u16());
        })
    };
    // Small uploads one after another; remember which were acknowledged.
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let sent: Arc<Mutex<usize>> = Arc::default();
    let small_thread = {
        let (base, token, acked, sent) = (base.clone(), token.clone(), acked.clone(), sent.clone());
        std::thread::spawn(move || {
            for n in 0..300 {
                *sent.lock().unwrap() = n + 1;
                let (_, body) = small_upload(n);
                let r = http()
                    .post(&format!("{base}/api/v1/uploads"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Content-Type", "text/csv")
                    .send(body.as_bytes());
                match r {
                    Ok(mut r) if r.status().as_u16() == 200 => {
                        let v: Value =
                            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                        assert_eq!(v["accepted"].as_u64(), Some(SMALL_ROWS as u64));
                        acked.lock().unwrap().push(n);
                    }
                    _ => break,
                }
            }
        })
    };
    // Kill once some small uploads are through and the big one is running.
    let start = std::time::Instant::now();
    while acked.lock().unwrap().len() < 20 && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill9();
    big_thread.join().unwrap();
    small_thread.join().unwrap();
    assert!(
        big_done.lock().unwrap().is_none(),
        "the big upload finished before the kill; make it bigger"
    );
    let acked = acked.lock().unwrap().clone();
    let sent = *sent.lock().unwrap();
    assert!(acked.len() >= 20);

    // Restart: every acknowledged upload is there exactly once.
    let server = Server::start(
        dir.path(),
        None,
        &["--suppress-below", "1", "--max-perturbation", "0"],
    );
    let base = server.base.clone();
    let counts = day_counts(&base);
    for n in &acked {
        let (day, _) = small_upload(*n);
        assert_eq!(
            counts.get(&day).copied(),
            Some(SMALL_ROWS as u64),
            "acknowledged upload {n} ({day})"
        );
    }
    // Unacknowledged ones are all there or not at all (one transaction each).
    for n in acked.len()..sent {
        let (day, _) = small_upload(n);
        let c = counts.get(&day).copied().unwrap_or(0);
        assert!(c == 0 || c == SMALL_ROWS as u64, "upload {n}: {c}");
    }
    let before = total(&base);
    assert!(before < big_rows + (sent * SMALL_ROWS) as u64);

    // Send everything unacknowledged again: exact totals, nothing twice.
    for n in acked.len()..sent {
        let (_, body) = small_upload(n);
        let (status, r) = post_upload(&base, &token, "text/csv", body.as_bytes());
        assert_eq!(status, 200, "{r}");
    }
    let (status, r) = post_upload(&base, &token, "text/csv", &big_bytes);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["corrections"], 0);
    let accepted_big = r["accepted"].as_u64().unwrap();
    assert_eq!(accepted_big, big_rows, "the generated feed is all valid");
    assert!(
        r["duplicates"].as_u64().unwrap() > 0,
        "part of the big upload was committed before the kill"
    );
    assert_eq!(total(&base), big_rows + (sent * SMALL_ROWS) as u64);
    let counts = day_counts(&base);
    for n in 0..sent {
        assert_eq!(
            counts.get(&small_upload(n).0).copied(),
            Some(SMALL_ROWS as u64)
        );
    }
    drop(server);
    let o = istv(dir.path()).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
}

/// SIGTERM while an upload is being read: the server stops taking new work
/// but lets the upload finish, sends its receipt, and exits cleanly; every
/// row of the receipt is in the store.
#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_site(dir.path(), None, "RJ122");
    let feed = dir.path().join("feed.csv");
    let rows = 100_000u64;
    let o = istv(dir.path())
        .args(["generate", "--site", "RJ122", "--seed", "5"])
        .args(["--from", "2024-01-01", "--to", "2024-06-30"])
        .args(["--records", &rows.to_string(), "-o"])
        .arg(&feed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&feed).unwrap();
    // Small batches, so the upload spans many store commits.
    let server = Server::start(dir.path(), None, &["--batch-rows", "500"]);
    let base = server.base.clone();
    let upload = {
        let base = base.clone();
        std::thread::spawn(move || post_upload(&base, &token, "text/csv", &bytes))
    };
    // Wait until the server has read some rows of it.
    let received = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("istv_records_received_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while received(&get(&format!("{base}/metrics")).1) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!upload.is_finished(), "the upload must still be in flight");
    let status = server.terminate();
    assert!(status.success(), "clean exit after draining: {status:?}");
    let (code, receipt) = upload.join().unwrap();
    assert_eq!(code, 200, "{receipt}");
    assert_eq!(receipt["rows"], rows);
    assert_eq!(receipt["accepted"], rows);
    // The store holds exactly the receipt's rows, and the aggregates agree.
    let o = istv(dir.path()).arg("check").output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("records: {rows};")),
        "{}",
        stdout(&o)
    );
}
