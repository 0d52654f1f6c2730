//! The HTTP edge against the real binary: a client that never finishes its
//! request header is cut off, and connections past the cap are closed at
//! once while the ones open stay served.

use istv_e2e::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection that has sent half a request header.
fn half_header(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s
}

/// A kept-alive connection the server has answered, so it is known to
/// hold one of the server's places. Connections from the start-up's
/// readiness checks may still hold places for a moment: a connection that is
/// closed before its answer is tried again (at most 200 times).
fn served_connection(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b"ok\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        if got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"ok\n") {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no connection was served");
}

/// Waits up to `wait` for the server to close `s`: true when it did (end
/// of stream or reset), false when the read timed out with it still open.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar answer before the close is fine too.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_header_that_never_ends_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &["--header-read-timeout-ms", "500"]);
    let mut slow: Vec<TcpStream> = (0..20).map(|_| half_header(&server.base)).collect();
    // And connections that send nothing at all.
    let addr = server.base.trim_start_matches("http://").to_owned();
    slow.extend((0..20).map(|_| TcpStream::connect(&addr).unwrap()));
    for s in &mut slow {
        // Closed after about half a second; 20 s would mean no timeout.
        assert!(closed_within(s, Duration::from_secs(20)), "still open");
    }
    // The server still answers.
    assert_eq!(get(&format!("{}/healthz", server.base)).0, 200);
}

#[test]
fn connections_past_the_cap_are_closed_and_the_open_ones_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[
            "--max-connections",
            "3",
            "--header-read-timeout-ms",
            "60000",
        ],
    );
    let mut held: Vec<TcpStream> = (0..3).map(|_| served_connection(&server.base)).collect();
    let mut extra = half_header(&server.base);
    assert!(
        closed_within(&mut extra, Duration::from_secs(20)),
        "the fourth stayed open"
    );
    for s in &mut held {
        assert!(
            !closed_within(s, Duration::from_millis(200)),
            "a held connection was closed"
        );
    }
    // A held connection sends another request and gets its answer.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    held[0]
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = [0u8; 64];
    let n = held[0].read(&mut answer).unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    // Closing them frees their places.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&format!("{}/healthz", server.base)).0, 200);
}

#[test]
fn a_kept_alive_connection_left_idle_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[
            "--idle-timeout-ms",
            "1000",
            "--header-read-timeout-ms",
            "60000",
        ],
    );
    let mut idle = served_connection(&server.base);
    // Kept alive after its answer...
    assert!(
        !closed_within(&mut idle, Duration::from_millis(200)),
        "closed at once"
    );
    // ...and closed once idle for the limit (20 s would mean no timeout).
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)),
        "still open"
    );
    // A connection that keeps asking stays open past the limit.
    let mut busy = served_connection(&server.base);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        busy.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 256];
        while !answer.ends_with(b"ok\n") {
            let n = busy.read(&mut buf).unwrap();
            assert!(n > 0, "closed while in use");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }
}

const FEED_HEADER: &str = "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude,patient_age,patient_sex\n";

fn feed_row(id: &str) -> String {
    format!("RJ122,{id},2024-03-01T22:00,body_part,street,51.5080,-0.1281,30,male\n")
}

#[test]
fn a_stalled_upload_is_cut_off_and_frees_its_sites_slot() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_site(dir.path(), None, "RJ122");
    let server = Server::start(
        dir.path(),
        None,
        &[
            "--per-token-concurrency",
            "1",
            "--body-stall-ms",
            "500",
            "--header-read-timeout-ms",
            "60000",
        ],
    );
    let addr = server.base.trim_start_matches("http://");
    let mut slow = TcpStream::connect(addr).unwrap();
    let part = format!("{FEED_HEADER}{}{}", feed_row("S1"), feed_row("S2"));
    slow.write_all(
        format!(
            "POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\n{part}"
        )
        .as_bytes(),
    )
    .unwrap();
    // The rest of the 100,000 bytes never comes.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the stalled upload was not closed: {answer:?}")
            }
            Err(_) => break,
        }
    }
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let receipt: serde_json::Value =
        serde_json::from_str(&answer[answer.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let error = "reading stopped after row 2: the upload was interrupted: no body bytes arrived for 500 ms; the request was cut off";
    assert_eq!(receipt["error"], error, "{receipt}");
    // The two whole rows sent before the stall are kept, as after a crash.
    assert_eq!(
        (receipt["rows"].as_u64(), receipt["accepted"].as_u64()),
        (Some(2), Some(2))
    );
    // The receipt is stored as it was answered.
    let id = receipt["upload_id"].as_str().unwrap();
    let (status, stored) = get_with(
        &format!("{}/api/v1/uploads/{id}", server.base),
        Some(&token),
    );
    assert_eq!(status, 200);
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["error"], error);
    // The site's one slot is free: the next upload is taken, not 429.
    let whole = format!(
        "{FEED_HEADER}{}{}{}",
        feed_row("S1"),
        feed_row("S2"),
        feed_row("S3")
    );
    let (status, receipt) = post_upload(&server.base, &token, "text/csv", whole.as_bytes());
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        (
            receipt["rows"].as_u64(),
            receipt["accepted"].as_u64(),
            receipt["duplicates"].as_u64()
        ),
        (Some(3), Some(3), Some(2))
    );
    assert!(receipt["error"].is_null(), "{receipt}");
}
