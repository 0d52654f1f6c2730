//! A running `istv registry` on a free loopback port, killed when dropped.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running registry.
pub struct Registry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Registry {
    /// Starts `istv registry ARGS` on the store of `data_dir` or
    /// `database_url` and waits until it listens.
    pub fn start(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Registry {
        let mut child = super::istv_on(data_dir, database_url)
            .args(["registry", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info,sqlx=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("istv registry starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("istv registry listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("istv registry did not start: {}", log.lock().unwrap());
            }
        };
        Registry { url, child, log }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().expect("registry exits")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
