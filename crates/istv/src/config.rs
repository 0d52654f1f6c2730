//! Layered settings: built-in defaults, then a TOML file (`--config` or
//! `ISTV_CONFIG`), then `ISTV_*` environment variables, then flags. clap
//! reads flags and environment together; the file fills what both left out.

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The TOML file. Every key is optional; names match the long flags with
/// underscores, e.g. `database_url`, `max_body_bytes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--database-url`.
    pub database_url: Option<String>,
    /// See `istv serve --listen`.
    pub listen: Option<String>,
    /// See `istv serve --max-body-bytes`.
    pub max_body_bytes: Option<u64>,
    /// See `istv serve --per-token-concurrency`.
    pub per_token_concurrency: Option<usize>,
    /// See `istv serve --suppress-below`.
    pub suppress_below: Option<u64>,
    /// See `istv serve --batch-rows`.
    pub batch_rows: Option<usize>,
    /// See `istv serve --log-format`.
    pub log_format: Option<String>,
}

impl FileConfig {
    /// Reads the file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Store URL.
    pub database_url: String,
}

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./istv-data";

impl Common {
    /// Resolves flags/env over the file over the defaults.
    pub fn resolve(
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
        file: &FileConfig,
    ) -> Common {
        let data_dir = data_dir
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = database_url
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("istv.db").display()));
        Common {
            data_dir,
            database_url,
        }
    }

    /// Where imported geography lives.
    pub fn geo_dir(&self) -> PathBuf {
        self.data_dir.join("geo")
    }

    /// Opens the store, creating the data directory for the embedded one.
    pub async fn store(&self) -> anyhow::Result<istv_store::Store> {
        if self.database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&self.data_dir).with_context(|| {
                format!("cannot create data directory {}", self.data_dir.display())
            })?;
        }
        istv_store::Store::connect(&self.database_url)
            .await
            .with_context(|| format!("cannot open the store at {}", redact(&self.database_url)))
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let file: FileConfig =
            toml::from_str("data_dir = \"/srv/istv\"\nmax_body_bytes = 10").unwrap();
        let c = Common::resolve(None, None, &file);
        assert_eq!(c.data_dir, PathBuf::from("/srv/istv"));
        assert_eq!(c.database_url, "sqlite:///srv/istv/istv.db?mode=rwc");
        let c = Common::resolve(
            Some("/srv/other".into()),
            Some("postgres://h/db".into()),
            &file,
        );
        assert_eq!(c.data_dir, PathBuf::from("/srv/other"));
        assert_eq!(c.database_url, "postgres://h/db");
        let c = Common::resolve(None, None, &FileConfig::default());
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn the_example_deployment_config_is_valid() {
        let file: FileConfig = toml::from_str(include_str!("../../../deploy/istv.toml")).unwrap();
        assert_eq!(file.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(file.max_body_bytes, Some(512 << 20));
        assert_eq!(file.suppress_below, Some(5));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
