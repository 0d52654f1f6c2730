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
    /// See `istv serve --max-perturbation`.
    pub max_perturbation: Option<u32>,
    /// See `istv serve --perturbation-variance`.
    pub perturbation_variance: Option<f64>,
    /// See `istv serve --batch-rows`.
    pub batch_rows: Option<usize>,
    /// See `istv serve --query-concurrency`.
    pub query_concurrency: Option<usize>,
    /// See `istv serve --query-queue`.
    pub query_queue: Option<usize>,
    /// See `istv serve --query-timeout-ms`.
    pub query_timeout_ms: Option<u64>,
    /// See `istv serve --header-read-timeout-ms`.
    pub header_read_timeout_ms: Option<u64>,
    /// See `istv serve --idle-timeout-ms`.
    pub idle_timeout_ms: Option<u64>,
    /// See `istv serve --body-stall-ms`.
    pub body_stall_ms: Option<u64>,
    /// See `istv serve --min-body-bytes-per-s`.
    pub min_body_bytes_per_s: Option<u64>,
    /// See `istv serve --body-rate-window-ms`.
    pub body_rate_window_ms: Option<u64>,
    /// See `istv serve --max-connections`.
    pub max_connections: Option<usize>,
    /// See `istv serve --no-warm-geocoder`.
    pub no_warm_geocoder: Option<bool>,
    /// See `istv serve --metrics-token`.
    pub metrics_token: Option<String>,
    /// See `istv serve --metrics-listen`.
    pub metrics_listen: Option<String>,
    /// See `istv serve --query-rate-per-minute`.
    pub query_rate_per_minute: Option<u32>,
    /// See `istv serve --query-rate-per-org-per-minute`.
    pub query_rate_per_org_per_minute: Option<u32>,
    /// See `istv serve --content-key-file`.
    pub content_key_file: Option<std::path::PathBuf>,
    /// See `istv serve --session-idle-minutes`.
    pub session_idle_minutes: Option<u64>,
    /// See `istv serve --session-hours`.
    pub session_hours: Option<u64>,
    /// See `istv serve --tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// See `istv serve --tls-key`.
    pub tls_key: Option<PathBuf>,
    /// See `istv serve --secure-cookies`.
    pub secure_cookies: Option<bool>,
    /// See `istv registry --listen`.
    pub registry_listen: Option<String>,
    /// See `istv topics create --brokers`.
    pub brokers: Option<String>,
    /// See `istv ingest --schema-registry-url`.
    pub schema_registry_url: Option<String>,
    /// See `istv ingest --topic-prefix`.
    pub topic_prefix: Option<String>,
    /// See `istv ingest --kafka-option` (a list of `KEY=VALUE`).
    pub kafka_options: Option<Vec<String>>,
    /// See `istv geocode --listen`.
    pub geocode_listen: Option<String>,
    /// See `istv serve --log-format`.
    pub log_format: Option<String>,
    /// See `istv serve --public-tier`.
    pub public_tier: Option<bool>,
    /// See `istv serve --public-epsilon` (and `istv release --epsilon`).
    pub public_epsilon: Option<f64>,
    /// See `istv serve --public-lag-days`.
    pub public_lag_days: Option<u32>,
    /// See `--h3-resolution`.
    pub h3_resolution: Option<u8>,
    /// See `--service-area`.
    pub service_area: Option<String>,
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
    /// Geocoder settings.
    pub geocoder: istv_geo::GeocoderConfig,
}

/// Geography flags, shared by every command that geocodes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GeoFlags {
    /// Finest H3 resolution a record is placed in, 7-15 [default: 10].
    #[arg(long, global = true, env = "ISTV_H3_RESOLUTION")]
    pub h3_resolution: Option<u8>,
    /// Service area as min_lat,min_lon,max_lat,max_lon; locations outside
    /// are counted as out of area [default: Greater London plus about 5 km:
    /// 51.23,-0.60,51.75,0.38].
    #[arg(long, global = true, env = "ISTV_SERVICE_AREA")]
    pub service_area: Option<String>,
}

fn geocoder_config(
    flags: &GeoFlags,
    file: &FileConfig,
) -> anyhow::Result<istv_geo::GeocoderConfig> {
    let mut config = istv_geo::GeocoderConfig::default();
    if let Some(r) = flags.h3_resolution.or(file.h3_resolution) {
        anyhow::ensure!((7..=15).contains(&r), "h3 resolution {r} is outside 7-15");
        config.finest_resolution = istv_geo::Resolution::try_from(r).expect("checked range");
    }
    if let Some(area) = flags.service_area.as_ref().or(file.service_area.as_ref()) {
        let v: Vec<f64> = area
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("service area {area:?} is not four numbers"))?;
        anyhow::ensure!(
            v.len() == 4 && v[0] < v[2] && v[1] < v[3],
            "service area {area:?} must be min_lat,min_lon,max_lat,max_lon with min below max"
        );
        config.service_area = istv_geo::ServiceArea {
            min_lat: v[0],
            min_lon: v[1],
            max_lat: v[2],
            max_lon: v[3],
        };
    }
    Ok(config)
}

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./istv-data";

impl Common {
    /// Resolves flags/env over the file over the defaults.
    pub fn resolve(
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
        geo: &GeoFlags,
        file: &FileConfig,
    ) -> anyhow::Result<Common> {
        let data_dir = data_dir
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = database_url
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("istv.db").display()));
        Ok(Common {
            data_dir,
            database_url,
            geocoder: geocoder_config(geo, file)?,
        })
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
        let none = GeoFlags::default();
        let c = Common::resolve(None, None, &none, &file).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/istv"));
        assert_eq!(c.database_url, "sqlite:///srv/istv/istv.db?mode=rwc");
        let c = Common::resolve(
            Some("/srv/other".into()),
            Some("postgres://h/db".into()),
            &none,
            &file,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/other"));
        assert_eq!(c.database_url, "postgres://h/db");
        let c = Common::resolve(None, None, &none, &FileConfig::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn geography_settings_are_checked() {
        let flags = GeoFlags {
            h3_resolution: Some(9),
            service_area: Some("51.0, -1.0, 52.0, 1.0".into()),
        };
        let c = Common::resolve(None, None, &flags, &FileConfig::default()).unwrap();
        assert_eq!(u8::from(c.geocoder.finest_resolution), 9);
        assert_eq!(c.geocoder.service_area.max_lat, 52.0);
        for bad in [
            GeoFlags {
                h3_resolution: Some(6),
                service_area: None,
            },
            GeoFlags {
                h3_resolution: None,
                service_area: Some("1,2,3".into()),
            },
            GeoFlags {
                h3_resolution: None,
                service_area: Some("52,0,51,1".into()),
            },
        ] {
            assert!(Common::resolve(None, None, &bad, &FileConfig::default()).is_err());
        }
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
