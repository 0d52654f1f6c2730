//! The portal in a real browser: Debian's Chromium driven by playwright-core
//! (`web/tests/portal.mjs`) against `istv serve` with a generated feed and
//! London's default boundaries. The script checks the page against the
//! API's own answers (which it fetches itself), the keyboard, the
//! downloads, that no request leaves 127.0.0.1 and that the console stays
//! clean; it takes the screenshots of `docs/`, and writes them there only
//! with `ISTV_UPDATE_SCREENSHOTS=1` (else into its temporary directory).
//!
//! Needs `node`, `web/node_modules` (`npm ci` in `web/`) and
//! `/usr/bin/chromium` (or `CHROMIUM`); `scripts/test` installs them.

use istv_e2e::*;
use std::io::Write;
use std::process::{Command, Stdio};

const SITE: &str = "RJ122";
const USER: &str = "portal-analyst";
const PASSWORD: &str = "portal-test-password-1";
/// An analyst with a limited scope and profile (same password).
const LIMITED: &str = "portal-limited";
/// An uploader for the site (same password).
const UPLOADER: &str = "portal-uploader";

/// Runs `istv ARGS` with `input` on standard input; must succeed.
fn istv_stdin(dir: &std::path::Path, args: &[&str], input: &str) -> String {
    let mut child = istv(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "istv {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn the_portal_in_chromium() {
    let web = root().join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/ (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium fonts-dejavu-core (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    istv_ok(data, None, &["geo", "import-default"]);
    let feed = data.join("feed.csv");
    istv_ok(
        data,
        None,
        &[
            "generate",
            "--records",
            "6000",
            "--seed",
            "15",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--site",
            SITE,
            "-o",
            feed.to_str().unwrap(),
        ],
    );
    istv_ok(
        data,
        None,
        &["orgs", "add", "PORTAL", "--name", "Portal test"],
    );
    let site_token = add_site(data, None, SITE);
    istv_stdin(
        data,
        &[
            "users",
            "add",
            USER,
            "--org",
            "PORTAL",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    // Two boroughs, hexagons up to resolution 8, no finer area than a
    // borough, and no age band or hour of day.
    istv_stdin(
        data,
        &[
            "users",
            "add",
            LIMITED,
            "--org",
            "PORTAL",
            "--role",
            "analyst",
            "--boroughs",
            "E09000022,E09000033",
            "--max-resolution",
            "8",
            "--finest-area",
            "borough",
            "--dimensions",
            "month,weekday,borough,cell,assault_method,location_type,sex,site",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    istv_stdin(
        data,
        &[
            "users",
            "add",
            UPLOADER,
            "--org",
            "PORTAL",
            "--role",
            "uploader",
            "--sites",
            SITE,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let token = istv_ok(
        data,
        None,
        &["users", "token", USER, "--name", "browser-test"],
    )
    .trim()
    .to_string();
    let server = Server::start(data, None, &[]);
    let (status, receipt) = post_upload(
        &server.base,
        &site_token,
        "text/csv",
        &std::fs::read(&feed).unwrap(),
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["accepted"], 6000, "{receipt}");

    // The screenshots under docs/ are rewritten only when asked, so that a
    // test run leaves the tree clean; else they go to the test's directory.
    let docs = if std::env::var_os("ISTV_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        root().join("docs")
    } else {
        data.join("screenshots")
    };
    std::fs::create_dir_all(&docs).unwrap();
    let timings = data.join("timings.json");
    let out = Command::new("node")
        .arg(web.join("tests/portal.mjs"))
        .current_dir(&web)
        .env("ISTV_BASE", &server.base)
        .env("ISTV_USER", USER)
        .env("ISTV_PASSWORD", PASSWORD)
        .env("ISTV_TOKEN", &token)
        .env("ISTV_FROM", "2024-01")
        .env("ISTV_TO", "2024-12")
        .env("ISTV_SITE", SITE)
        .env("ISTV_LIMITED_USER", LIMITED)
        .env("ISTV_LIMITED_PASSWORD", PASSWORD)
        .env("ISTV_UPLOADER", UPLOADER)
        .env("ISTV_UPLOADER_PASSWORD", PASSWORD)
        .env("ISTV_UPLOAD_ID", receipt["upload_id"].as_str().unwrap())
        .env("ISTV_SHOTS", &docs)
        .env("ISTV_TIMINGS", &timings)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let text = stdout(&out);
    println!("{text}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{text}\n{}\nserver log:\n{}",
        stderr(&out),
        server.log()
    );
    assert!(text.contains(" passed, 0 failed"), "{text}");
}
