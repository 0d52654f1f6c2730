//! The store over TLS to a real PostgreSQL: a throwaway server with
//! `ssl=on` and a certificate from a CA made here, started in a temporary
//! directory on a free loopback port (the shared server on 5432 has no TLS
//! and is left alone). `verify-full` with the CA connects, migrates, writes
//! and reads back exact counts; a wrong CA fails, and so does `require`
//! once the same server is restarted without TLS.

use chrono::NaiveDate;
use istv_aggregate::{Disclosure, Event, GeocodeMethod, Query};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use istv_store::Store;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL server of the test's own, stopped when dropped.
struct Throwaway {
    /// Runs a command as the `postgres` user (or as is, when the test
    /// already runs as that user).
    as_postgres: Vec<String>,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The temporary directory: certificates, data, log, socket.
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Throwaway {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = match self.as_postgres.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.env_remove("PGDATA");
        cmd
    }

    /// `pg_ctl start` or `restart`, with TLS on or off; waits until the
    /// server accepts connections.
    fn pg_ctl(&self, action: &str, ssl: bool) {
        let options = format!(
            "-p {port} -k {root} -c listen_addresses=127.0.0.1 -c ssl={ssl} \
             -c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key -c fsync=off",
            port = self.port,
            root = self.root.display(),
            ssl = if ssl { "on" } else { "off" },
        );
        output_ok(
            self.command("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.root.join("log"))
                .args(["-m", "fast", "-w", "-t", "60", "-o", &options, action]),
            &format!("pg_ctl {action}"),
        );
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn output_ok(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The newest PostgreSQL server binaries installed.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// How to run as the `postgres` user: `runuser` when root, nothing when
/// already that user; `None` when neither.
fn as_postgres() -> Option<Vec<String>> {
    let id = |flag: &str| {
        let o = Command::new("id").arg(flag).output().ok()?;
        Some(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match (id("-u")?.as_str(), id("-un")?.as_str()) {
        (_, "postgres") => Some(Vec::new()),
        ("0", _)
            if Command::new("id")
                .arg("postgres")
                .output()
                .ok()?
                .status
                .success() =>
        {
            Some(
                ["runuser", "-u", "postgres", "--"]
                    .map(String::from)
                    .to_vec(),
            )
        }
        _ => None,
    }
}

/// A CA named `name` that signed a certificate for 127.0.0.1 and
/// localhost: (CA PEM, certificate PEM, key PEM).
fn certificates(name: &str) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Starts a PostgreSQL with TLS; its server and the CA's PEM file.
fn start() -> Option<(Throwaway, PathBuf)> {
    let Some(bin) = server_bin() else {
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return None;
    };
    let Some(as_postgres) = as_postgres() else {
        eprintln!("skipped: a throwaway PostgreSQL needs root (to run it as the postgres user) or the postgres user");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (ca, cert, key) = certificates("istv test CA");
    let ca_file = root.join("ca.pem");
    write(&ca_file, &ca, 0o644);
    write(&root.join("server.crt"), &cert, 0o644);
    write(&root.join("server.key"), &key, 0o600);
    if !as_postgres.is_empty() {
        output_ok(
            Command::new("chown").arg("-R").arg("postgres:").arg(&root),
            "chown",
        );
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = Throwaway {
        as_postgres,
        bin,
        data: root.join("data"),
        port,
        root,
        _dir: dir,
    };
    output_ok(
        server
            .command("initdb")
            .arg("-D")
            .arg(&server.data)
            .args(["-A", "trust", "-U", "postgres", "-N"]),
        "initdb",
    );
    server.pg_ctl("start", true);
    Some((server, ca_file))
}

fn event(id: &str, day: u32) -> Event {
    Event {
        site_code: "RJ1".into(),
        record_id: id.into(),
        content_hash: u64::from(day),
        legacy_hash: 0,
        assault_date: NaiveDate::from_ymd_opt(2024, 3, day).unwrap(),
        assault_hour: Some(22),
        method: AssaultMethod::SharpObject,
        location_type: LocationType::Street,
        age_band: AgeBand::Age18To24,
        sex: Sex::Male,
        geocode_method: GeocodeMethod::PostcodeUnit,
        precision_m: Some(40),
        cell: None,
        borough: Some("E09000028".into()),
        ward: None,
        lsoa: None,
        disclosure_key: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_over_verified_tls_and_refuses_what_it_cannot_verify() {
    let Some((server, ca)) = start() else { return };
    let url = |query: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{query}",
            server.port
        )
    };
    let verified = url(&format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let store = Store::connect(&verified)
        .await
        .expect("verify-full with the CA");
    store.add_site("RJ1", "A test site").await.unwrap();
    let upload = store.begin_upload("RJ1", "csv").await.unwrap();
    let out = store
        .apply_batch(
            &upload,
            &[event("a", 1), event("b", 2), event("c", 3), event("a", 1)],
        )
        .await
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (3, 1));
    let query = Query::from_pairs([("group_by", "day")]).unwrap();
    let rows = store.aggregate(&query, Disclosure::NONE).await.unwrap();
    let counts: Vec<(String, Option<u64>)> =
        rows.iter().map(|r| (r.values.join(","), r.count)).collect();
    assert_eq!(
        counts,
        [
            ("2024-03-01".to_string(), Some(1)),
            ("2024-03-02".to_string(), Some(1)),
            ("2024-03-03".to_string(), Some(1)),
        ]
    );
    store.close().await;
    // The connections were encrypted.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&verified).await.unwrap();
        let (ssl,): (bool,) =
            sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(ssl);
    }

    // Another CA: the server's certificate does not verify.
    let (other_ca, _, _) = certificates("another CA");
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), other_ca).unwrap();
    let wrong = url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other.path().display()
    ));
    let e = Store::connect(&wrong)
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");

    // The same server without TLS: `require` refuses to go on in plain
    // (`disable` still connects, so it is the TLS that is missing).
    server.pg_ctl("restart", false);
    let e = Store::connect(&url("sslmode=require"))
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("server does not support TLS"), "{e}");
    let plain = Store::connect(&url("sslmode=disable")).await.unwrap();
    plain.close().await;
    drop(server);
}
