//! A running `istv` process of a test: started, waited for until it
//! announces itself on stderr, its stderr kept for failure messages, and
//! killed (SIGKILL) when dropped. Every service launcher of the tests
//! (`Server`, `Registry`, `Aggregator`, the Kafka services) is one of these.

use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// librdkafka settings the Kafka services take in the tests (through
/// `--kafka-option`): a short session and heartbeat, because a new
/// consumer group's first message takes about 23 s on tansu with the
/// defaults and 3 s with these, and fetches answered at once, because the
/// default 500 ms wait shows as latency.
pub const KAFKA_TEST_OPTIONS: [&str; 6] = [
    "--kafka-option",
    "session.timeout.ms=6000",
    "--kafka-option",
    "heartbeat.interval.ms=500",
    "--kafka-option",
    "fetch.wait.max.ms=10",
];

/// How long a process may take to announce itself or get ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running process, killed when dropped.
pub struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
    what: String,
}

impl Process {
    /// Spawns `cmd` (stdin and stdout closed, stderr kept) and waits for a
    /// stderr line starting `ready`: the process and the rest of that
    /// line, trimmed. `what` names it in failure messages.
    pub fn spawn(mut cmd: Command, ready: &str, what: &str) -> (Process, String) {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let ready = ready.to_owned();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(&ready) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let process = Process {
            child,
            log,
            what: what.to_owned(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(announced) => (process, announced),
            Err(_) => panic!("{what} did not start: {}", process.log()),
        }
    }

    /// Waits until `GET {base}/readyz` answers 200, for at most `timeout`.
    pub fn wait_ready(&self, base: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while super::get_with(&format!("{base}/readyz"), None).0 != 200 {
            assert!(
                Instant::now() < deadline,
                "{} did not get ready: {}",
                self.what,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGKILL and waits.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child
            .wait()
            .unwrap_or_else(|e| panic!("{} does not exit: {e}", self.what))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `istv` Kafka service (ingest, geocode, ...), started with the
/// test options of tansu and the scrape token of the test servers.
pub struct Service {
    /// What it printed after the line prefix it was waited for (its
    /// address).
    pub announced: String,
    process: Process,
}

impl Service {
    /// Starts `istv ARGS KAFKA_TEST_OPTIONS` on `data_dir` and waits for a
    /// stderr line starting `ready`.
    pub fn start(data_dir: &std::path::Path, args: &[&str], ready: &str) -> Service {
        let mut cmd = super::istv(data_dir);
        cmd.args(args)
            .args(KAFKA_TEST_OPTIONS)
            .env("RUST_LOG", "info,sqlx=error,librdkafka=error")
            .env("ISTV_METRICS_TOKEN", super::METRICS_TOKEN);
        let (process, announced) = Process::spawn(cmd, ready, &format!("istv {args:?}"));
        Service { announced, process }
    }

    /// `istv ingest` on `data_dir` over `brokers` and the registry at
    /// `registry_url`, with `extra` arguments: the service and the base URL
    /// of its upload API.
    pub fn ingest(
        data_dir: &std::path::Path,
        brokers: &str,
        registry_url: &str,
        extra: &[&str],
    ) -> (Service, String) {
        let args = [&["ingest"][..], &kafka_args(brokers, registry_url), extra].concat();
        let ingest = Service::start(data_dir, &args, "istv ingest listening on ");
        let base = ingest.announced.split(',').next().unwrap().to_owned();
        (ingest, base)
    }

    /// `istv geocode` on `data_dir` over `brokers` and the registry at
    /// `registry_url`, with `extra` arguments.
    pub fn geocode(
        data_dir: &std::path::Path,
        brokers: &str,
        registry_url: &str,
        extra: &[&str],
    ) -> Service {
        let args = [&["geocode"][..], &kafka_args(brokers, registry_url), extra].concat();
        Service::start(data_dir, &args, "istv geocode on ")
    }
}

/// The arguments every Kafka service of the tests takes: its own listener
/// on any free port, the brokers and the schema registry.
fn kafka_args<'a>(brokers: &'a str, registry_url: &'a str) -> [&'a str; 6] {
    [
        "--listen",
        "127.0.0.1:0",
        "--brokers",
        brokers,
        "--schema-registry-url",
        registry_url,
    ]
}

/// `log`, `kill9` and `terminate` of a test's launcher type, which holds
/// its [`Process`] in a field named `process`.
#[macro_export]
macro_rules! process_handle {
    ($launcher:ty) => {
        impl $launcher {
            /// Everything it wrote to stderr so far.
            pub fn log(&self) -> String {
                self.process.log()
            }

            /// Sends SIGKILL and waits.
            pub fn kill9(self) {
                self.process.kill9();
            }

            /// Sends SIGTERM and waits for the exit.
            pub fn terminate(self) -> std::process::ExitStatus {
                self.process.terminate()
            }
        }
    };
}

crate::process_handle!(Service);
