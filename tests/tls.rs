//! TLS against the real binary, with a CA and a server certificate made in
//! the test: HTTPS answers carry HSTS, `istv upload https://...` trusts the
//! CA given by `--ca-cert`, and plain HTTP to the TLS port gets no answer.

use istv_e2e::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A private CA and a certificate it signed for 127.0.0.1 and localhost:
/// the paths of (CA certificate, server certificate, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "istv test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (
        file(dir, "ca.pem", ca.pem()),
        file(dir, "server.pem", leaf.pem()),
        file(dir, "server-key.pem", key.serialize_pem()),
    )
}

/// `istv serve` with TLS; its base URL (https://...), read from its log.
fn start_tls(dir: &Path, cert: &Path, key: &Path) -> (std::process::Child, String) {
    let mut child = istv(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-warm-geocoder"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("istv listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("istv serve starts");
    (child, base)
}

/// A client that trusts only the test CA.
fn client(ca: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i.unwrap() {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .into()
}

#[test]
fn the_service_serves_https_with_hsts_and_uploads_go_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let token = add_site(dir.path(), None, "RJ122");
    let (mut child, base) = start_tls(dir.path(), &cert, &key);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let https = client(&ca);
    // Ready within a minute.
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(r) = https.get(&format!("{base}/readyz")).call() {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ready, "the TLS server did not get ready");
    let r = https.get(&format!("{base}/healthz")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000")
    );
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    // A client without the CA refuses the certificate.
    assert!(http().get(&format!("{base}/healthz")).call().is_err());

    // istv upload over HTTPS, trusting the test CA.
    let feed = file(
        dir.path(),
        "feed.csv",
        "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude,patient_age,patient_sex\n\
         RJ122,T1,2024-03-01T22:00,body_part,street,51.5080,-0.1281,30,male\n\
         RJ122,T2,2024-03-02T01:30,sharp_object,street,51.5080,-0.1281,19,female\n",
    );
    let o = istv(dir.path())
        .arg("upload")
        .arg(&feed)
        .args(["--url", &base, "--token", &token])
        .arg("--ca-cert")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let receipt: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (receipt["rows"].as_u64(), receipt["accepted"].as_u64()),
        (Some(2), Some(2))
    );
    // Without --ca-cert the private CA is not trusted: exit 2 (failed).
    let o = istv(dir.path())
        .arg("upload")
        .arg(&feed)
        .args(["--url", &base, "--token", &token])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // Plain HTTP to the TLS port gets no HTTP answer, and the port still
    // serves HTTPS afterwards.
    let plain = base.replace("https://", "http://");
    assert!(http().get(&format!("{plain}/healthz")).call().is_err());
    let addr = base.trim_start_matches("https://");
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        https
            .get(&format!("{base}/healthz"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let _ = child.kill();
    let _ = child.wait();
}
