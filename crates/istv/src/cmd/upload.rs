//! `istv upload`: send a feed to a running service and print the receipt.

use crate::progress;
use anyhow::Context;
use istv_core::Format;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `istv upload`.
#[derive(clap::Args)]
pub struct Args {
    /// The feed (CSV, JSON Lines or Avro; gzip-compressed or not).
    file: PathBuf,
    /// The service, e.g. http://127.0.0.1:8080 or https://istv.example (the
    /// upload path is added).
    #[arg(long, env = "ISTV_URL")]
    url: String,
    /// The site's upload token.
    #[arg(long, env = "ISTV_TOKEN", hide_env_values = true)]
    token: String,
    /// The format, when the file name does not tell it.
    #[arg(long, value_parser = super::parse_format)]
    format: Option<Format>,
    /// Trust the CA certificates in this PEM file for an https:// URL (a
    /// private CA), instead of the public roots.
    #[arg(long, env = "ISTV_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = upload_url(&args.url);
    let receipt = send(
        &args.file,
        &url,
        &args.token,
        args.format,
        true,
        args.ca_cert.as_deref(),
    )?;
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    let rejected = receipt["rejected"].as_u64().unwrap_or(0);
    Ok(if receipt.get("error").is_some() {
        ExitCode::from(2)
    } else if rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn upload_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/api/v1/uploads") {
        base.to_string()
    } else {
        format!("{base}/api/v1/uploads")
    }
}

/// Counts bytes read into a progress bar.
struct Tracked<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The certificates of a PEM file: the CAs an https:// upload trusts.
fn ca_certs(path: &Path) -> anyhow::Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read CA certificates from {}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.with_context(|| format!("{} is not valid PEM", path.display()))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no CERTIFICATE block",
        path.display()
    );
    Ok(certs)
}

/// Streams `path` to the upload endpoint and returns the receipt.
pub fn send(
    path: &Path,
    url: &str,
    token: &str,
    format: Option<Format>,
    show_progress: bool,
    ca_cert: Option<&Path>,
) -> anyhow::Result<serde_json::Value> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file.metadata()?;
    let size = meta.len();
    // A file's length is known: sent as Content-Length with `Expect:
    // 100-continue`, so that a service that refuses it from its headers (a
    // body over its limit, a wrong token) answers before any byte of the
    // body is sent, and that answer is what the user sees, not the broken
    // pipe of a connection closed in the middle of the body. A pipe is
    // streamed chunked.
    let sized = meta.is_file().then_some(size);
    let format = format.or_else(|| Format::from_path(path));
    let content_type = match format {
        Some(Format::Csv) => "text/csv",
        Some(Format::Jsonl) => "application/x-ndjson",
        Some(Format::Avro) => "avro/binary",
        None => "application/octet-stream",
    };
    let bar = if show_progress {
        progress::bytes(Some(size), "uploading")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(None);
    if let Some(ca) = ca_cert {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&ca_certs(ca)?))
                .build(),
        );
    }
    let agent: ureq::Agent = config.build().into();
    let body = Tracked {
        // No more than the length announced, should the file grow.
        inner: file.take(sized.unwrap_or(u64::MAX)),
        bar: bar.clone(),
    };
    let mut request = agent
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", content_type);
    if let Some(len) = sized {
        request = request
            .header("Content-Length", &len.to_string())
            .header("Expect", "100-continue");
    }
    let mut response = request
        .send(ureq::SendBody::from_reader(&mut std::io::BufReader::new(
            body,
        )))
        .with_context(|| format!("cannot send to {url}"))?;
    bar.finish_and_clear();
    let status = response.status();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the service answered {status} with a body that is not JSON"))?;
    if !status.is_success() {
        let message = value["error"].as_str().unwrap_or(&text).to_string();
        anyhow::bail!("the service refused the upload ({status}): {message}");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn upload_url_adds_the_path_once() {
        assert_eq!(super::upload_url("http://h:1"), "http://h:1/api/v1/uploads");
        assert_eq!(
            super::upload_url("http://h:1/"),
            "http://h:1/api/v1/uploads"
        );
        assert_eq!(
            super::upload_url("http://h:1/api/v1/uploads"),
            "http://h:1/api/v1/uploads"
        );
    }
}
