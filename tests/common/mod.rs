//! Helpers for the end-to-end tests: find the `istv` binary and the shared
//! reference data, run commands, make temporary files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `istv` binary of the same build profile as this test. Test runs do
/// not always rebuild plain binaries, so it is built (a no-op when fresh)
/// once per test process.
pub fn istv_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>/istv
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target profile dir");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "-p", "istv", "--bin", "istv"])
                .current_dir(root());
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "cannot build the istv binary");
            let bin = profile_dir.join(format!("istv{}", std::env::consts::EXE_SUFFIX));
            assert!(bin.exists(), "no istv binary at {}", bin.display());
            bin
        })
        .clone()
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
