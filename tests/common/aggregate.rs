//! A running `istv aggregate` on a loopback port for its metrics, killed
//! when dropped.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running aggregate instance.
pub struct Aggregator {
    /// `http://127.0.0.1:PORT` of /metrics, /healthz and /readyz.
    pub base: String,
    child: Child,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Aggregator {
    /// Starts `istv aggregate ARGS` on the store `database_url`, with the
    /// test broker settings of tansu (short session and heartbeat, fetches
    /// answered at once), and waits until it is ready.
    pub fn start(data_dir: &Path, database_url: &str, args: &[&str]) -> Aggregator {
        let mut child = super::istv_on(data_dir, Some(database_url))
            .args(["aggregate", "--listen", "127.0.0.1:0"])
            .args([
                "--kafka-option",
                "session.timeout.ms=6000",
                "--kafka-option",
                "heartbeat.interval.ms=500",
                "--kafka-option",
                "fetch.wait.max.ms=10",
            ])
            .args(args)
            .env("RUST_LOG", "info,sqlx=error,istv_kafka=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("istv aggregate starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("istv aggregate listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("istv aggregate did not start: {}", log.lock().unwrap());
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while super::get_with(&format!("{base}/readyz"), None).0 != 200 {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("istv aggregate did not get ready: {}", log.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Aggregator { base, child, log }
    }

    /// Its /metrics text.
    pub fn metrics(&self) -> String {
        super::get_with(&format!("{}/metrics", self.base), None).1
    }

    /// Sends SIGKILL and waits.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().expect("aggregate exits")
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
