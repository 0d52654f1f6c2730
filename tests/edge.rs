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
