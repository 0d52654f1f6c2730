//! A running `istv aggregate` on a loopback port for its metrics, killed
//! when dropped.

use super::process::{Process, KAFKA_TEST_OPTIONS};
use std::path::Path;
use std::time::Duration;

/// A running aggregate instance.
pub struct Aggregator {
    /// `http://127.0.0.1:PORT` of /metrics, /healthz and /readyz.
    pub base: String,
    process: Process,
}

impl Aggregator {
    /// Starts `istv aggregate ARGS` on the store `database_url`, with the
    /// test broker settings of tansu, and waits until it is ready.
    pub fn start(data_dir: &Path, database_url: &str, args: &[&str]) -> Aggregator {
        let mut cmd = super::istv_on(data_dir, Some(database_url));
        cmd.args(["aggregate", "--listen", "127.0.0.1:0"])
            .args(KAFKA_TEST_OPTIONS)
            .args(args)
            .env("RUST_LOG", "info,sqlx=error,istv_kafka=debug");
        let (process, base) = Process::spawn(cmd, "istv aggregate listening on ", "istv aggregate");
        process.wait_ready(&base, Duration::from_secs(60));
        Aggregator { base, process }
    }

    /// Its /metrics text.
    pub fn metrics(&self) -> String {
        super::get_with(&format!("{}/metrics", self.base), None).1
    }
}

crate::process_handle!(Aggregator);

/// The value of a counter or gauge line `name{labels} value` in metrics
/// text, summed over the lines whose labels contain every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next().is_some_and(|n| n == name))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
