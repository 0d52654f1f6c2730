//! A running `istv registry` on a free loopback port, killed when dropped.

use super::process::Process;
use std::path::Path;

/// A running registry.
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    process: Process,
}

impl Registry {
    /// Starts `istv registry ARGS` on the store of `data_dir` or
    /// `database_url` and waits until it listens.
    pub fn start(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Registry {
        let mut cmd = super::istv_on(data_dir, database_url);
        cmd.args(["registry", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info,sqlx=error");
        let (process, url) = Process::spawn(cmd, "istv registry listening on ", "istv registry");
        Registry { url, process }
    }
}

crate::process_handle!(Registry);
