//! Helpers for the end-to-end tests: find the `istv` binary and the shared
//! reference data, run commands, make temporary files.

pub mod aggregate;
pub mod events;
pub mod kafka;
pub mod process;
pub mod registry;
pub mod tansu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `istv` binary of the same build profile as this test. The tests
/// belong to the `istv` package, so cargo builds the binary before it
/// builds them, with the same features.
pub fn istv_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/istv
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = profile_dir.join(format!("istv{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "no istv binary at {}: run the end-to-end tests through cargo (cargo test -p istv)",
        bin.display()
    );
    bin
}

/// A command running `istv` with a private data directory.
pub fn istv(data_dir: &Path) -> Command {
    let mut c = Command::new(istv_bin());
    c.env("ISTV_DATA_DIR", data_dir).env_remove("ISTV_CONFIG");
    c
}

/// The shared reference data beside the repository; its absence is a
/// failure, not a skip.
pub fn reference() -> PathBuf {
    let dir = root().join("../shared/reference");
    assert!(
        dir.is_dir(),
        "the shared reference data is missing: expected it at {} (a checkout with shared/ beside it)",
        dir.display()
    );
    dir
}

/// `istv geo ARGS FILE` with `FILE` from the reference data; must succeed.
/// Its stderr (the import summary).
pub fn geo_import(data_dir: &Path, args: &[&str], file: &str) -> String {
    let o = istv(data_dir)
        .arg("geo")
        .args(args)
        .arg(reference().join(file))
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stderr(&o)
}

/// Imports the reference London boroughs; the import summary.
pub fn import_boroughs(data_dir: &Path) -> String {
    geo_import(
        data_dir,
        &[
            "import",
            "--level",
            "borough",
            "--code-property",
            "code",
            "--name-property",
            "name",
        ],
        "geo/london_boroughs_2013.geojson",
    )
}

/// Imports the reference London wards of 2013; the import summary.
pub fn import_wards(data_dir: &Path) -> String {
    geo_import(
        data_dir,
        &[
            "import",
            "--level",
            "ward",
            "--code-property",
            "WD13CD",
            "--name-property",
            "WD13NM",
        ],
        "geo/london_wards_2013.geojson",
    )
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `bytes` to a new file named `name` in `dir`.
pub fn file(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// Gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A running `istv serve` on a free loopback port, killed when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    process: process::Process,
    /// The API token of the test analyst (all of London, full detail).
    pub token: String,
}

/// The scrape token the test servers take for `/metrics`.
pub const METRICS_TOKEN: &str = "test-scrape-token";

/// The test analyst's token of each running server, by base URL.
static TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// `istv` with the store of `data_dir` or `database_url`.
pub fn istv_on(data_dir: &Path, database_url: Option<&str>) -> Command {
    let mut cmd = istv(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd
}

/// Runs `istv ARGS` on the store; must succeed. Its stdout.
pub fn istv_ok(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> String {
    let o = istv_on(data_dir, database_url).args(args).output().unwrap();
    assert!(o.status.success(), "istv {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Makes the test organisation and analyst (all of London, full detail) if
/// missing, and a new API token for it.
pub fn test_analyst(data_dir: &Path, database_url: Option<&str>) -> String {
    let orgs = istv_ok(data_dir, database_url, &["orgs", "list"]);
    if !orgs.lines().any(|l| l.starts_with("TEST\t")) {
        istv_ok(
            data_dir,
            database_url,
            &["orgs", "add", "TEST", "--name", "Test organisation"],
        );
        istv_ok(
            data_dir,
            database_url,
            &[
                "users",
                "add",
                "test-analyst",
                "--org",
                "TEST",
                "--role",
                "analyst",
            ],
        );
    }
    let name = format!(
        "t{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    istv_ok(
        data_dir,
        database_url,
        &["users", "token", "test-analyst", "--name", &name],
    )
    .trim()
    .to_string()
}

impl Server {
    /// Starts `istv serve` with `args` after `serve`, waits until it is ready.
    pub fn start(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Server {
        Server::start_as("serve", data_dir, database_url, args)
    }

    /// Starts `istv query` (the query API and portal, no upload) with
    /// `args`, waits until it is ready.
    pub fn start_query(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Server {
        Server::start_as("query", data_dir, database_url, args)
    }

    /// Starts `istv COMMAND --listen 127.0.0.1:0 ARGS` (serve or query),
    /// waits until it is ready.
    fn start_as(
        command: &str,
        data_dir: &Path,
        database_url: Option<&str>,
        args: &[&str],
    ) -> Server {
        let mut cmd = istv_on(data_dir, database_url);
        let token = test_analyst(data_dir, database_url);
        cmd.args([command, "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info,sqlx=error")
            .env("ISTV_METRICS_TOKEN", METRICS_TOKEN)
            // The journeys query more than a person would.
            .env("ISTV_QUERY_RATE_PER_MINUTE", "100000")
            .env("ISTV_QUERY_RATE_PER_ORG_PER_MINUTE", "100000");
        let (process, announced) =
            process::Process::spawn(cmd, "istv listening on ", &format!("istv {command}"));
        let base = announced
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        // As a load balancer would: a server builds its geocoding tables
        // before it reports ready.
        process.wait_ready(&base, std::time::Duration::from_secs(120));
        TOKENS
            .lock()
            .unwrap()
            .push((format!("{base}/"), token.clone()));
        Server {
            base,
            process,
            token,
        }
    }
}

crate::process_handle!(Server);

/// An HTTP client that reports every status instead of failing on 4xx/5xx.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url` as a test server's analyst (its `/metrics` with the scrape
/// token): (status, body).
pub fn get(url: &str) -> (u16, String) {
    let token = if url.contains("/metrics") {
        Some(METRICS_TOKEN.to_string())
    } else {
        TOKENS
            .lock()
            .unwrap()
            .iter()
            .find(|(base, _)| url.starts_with(base.as_str()))
            .map(|(_, t)| t.clone())
    };
    get_with(url, token.as_deref())
}

/// GET `url` with this bearer token, or none: (status, body).
pub fn get_with(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.call().expect("request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

/// POST an upload: (status, JSON body).
pub fn post_upload(
    base: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut r = http()
        .post(&format!("{base}/api/v1/uploads"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", content_type)
        .send(body)
        .expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// `istv sites add`: the new token.
pub fn add_site(data_dir: &Path, database_url: Option<&str>, code: &str) -> String {
    let mut cmd = istv(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let o = cmd
        .args(["sites", "add", "--code", code, "--name", "Test site"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

/// A fresh, empty PostgreSQL database on the local server; its URL.
/// `ISTV_TEST_PG_URL` names another server (its database part is replaced).
pub fn fresh_pg_database(prefix: &str) -> String {
    let server = std::env::var("ISTV_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let o = Command::new("psql")
        .args([
            &server,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql runs (PostgreSQL client tools are needed for the PostgreSQL tests)");
    assert!(
        o.status.success(),
        "cannot create a test database on {server}: is PostgreSQL running? {}",
        stderr(&o)
    );
    let base = server
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(server);
    format!("{base}/{name}")
}
