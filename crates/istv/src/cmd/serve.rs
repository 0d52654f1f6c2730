//! `istv serve`: the whole pipeline in one process.

use crate::config::{redact, Common, FileConfig};
use anyhow::Context;
use istv_geo::{AreaKind, Geocoder};
use istv_server::{AppState, ServerConfig};
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `istv serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, env = "ISTV_LISTEN")]
    listen: Option<String>,
    /// Largest upload body in bytes [default: 536870912, 512 MiB].
    #[arg(long, env = "ISTV_MAX_BODY_BYTES")]
    max_body_bytes: Option<u64>,
    /// Uploads one site's token may run at once; more get HTTP 429 [default: 2].
    #[arg(long, env = "ISTV_PER_TOKEN_CONCURRENCY")]
    per_token_concurrency: Option<usize>,
    /// k of disclosure control: no published count from 1 to this minus
    /// one [default: 5].
    #[arg(long, env = "ISTV_SUPPRESS_BELOW")]
    suppress_below: Option<u64>,
    /// D: the largest perturbation of a published count (cell key method);
    /// 0 turns perturbation off, leaving plain suppression, for trusted use
    /// only [default: 3].
    #[arg(long, env = "ISTV_MAX_PERTURBATION")]
    max_perturbation: Option<u32>,
    /// V: the variance of the perturbation [default: 1].
    #[arg(long, env = "ISTV_PERTURBATION_VARIANCE")]
    perturbation_variance: Option<f64>,
    /// Rows per store transaction [default: 50000].
    #[arg(long, env = "ISTV_BATCH_ROWS")]
    batch_rows: Option<usize>,
    /// Queries answered at once; more wait their turn [default: 4].
    #[arg(long, env = "ISTV_QUERY_CONCURRENCY")]
    query_concurrency: Option<usize>,
    /// Queries that may wait for a turn; more get 503 with Retry-After [default: 64].
    #[arg(long, env = "ISTV_QUERY_QUEUE")]
    query_queue: Option<usize>,
    /// Longest a query may take, waiting included, before it gets 503 with
    /// Retry-After, in milliseconds [default: 10000].
    #[arg(long, env = "ISTV_QUERY_TIMEOUT_MS")]
    query_timeout_ms: Option<u64>,
    /// Longest wait for a request's header, from a new connection's start
    /// and from a request's first byte, in milliseconds; then the
    /// connection is closed [default: 10000].
    #[arg(long, env = "ISTV_HEADER_READ_TIMEOUT_MS")]
    header_read_timeout_ms: Option<u64>,
    /// A kept-alive connection with no new request for this many
    /// milliseconds is closed [default: 60000].
    #[arg(long, env = "ISTV_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: Option<u64>,
    /// A request body (an upload) that sends no byte for this many
    /// milliseconds is cut off and its upload ends failed [default: 30000].
    #[arg(long, env = "ISTV_BODY_STALL_MS")]
    body_stall_ms: Option<u64>,
    /// A request body slower than this many bytes a second, on average over
    /// --body-rate-window-ms, is cut off; 0 checks no rate [default: 1024].
    #[arg(long, env = "ISTV_MIN_BODY_BYTES_PER_S")]
    min_body_bytes_per_s: Option<u64>,
    /// The span --min-body-bytes-per-s is averaged over, in milliseconds
    /// [default: 30000].
    #[arg(long, env = "ISTV_BODY_RATE_WINDOW_MS")]
    body_rate_window_ms: Option<u64>,
    /// Connections open at once; one more is closed as soon as it is
    /// accepted [default: 1024].
    #[arg(long, env = "ISTV_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// The bearer token a Prometheus scrape sends for /metrics (else an
    /// admin's credential is needed there).
    #[arg(long, env = "ISTV_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// Serve /metrics without a credential on this address only (e.g. one
    /// only the scraper reaches), and not on --listen.
    #[arg(long, env = "ISTV_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Queries each user may make a minute; more get 429 with Retry-After
    /// [default: 120].
    #[arg(long, env = "ISTV_QUERY_RATE_PER_MINUTE")]
    query_rate_per_minute: Option<u32>,
    /// Queries all the users of one organisation may make a minute
    /// together; more get 429 with Retry-After [default: 600].
    #[arg(long, env = "ISTV_QUERY_RATE_PER_ORG_PER_MINUTE")]
    query_rate_per_org_per_minute: Option<u32>,
    /// The file of the secret key of records' content hashes, created
    /// (mode 0600) on first start; back it up with the store; istv query
    /// needs none [default: content-hash.key in the data directory].
    #[arg(long, env = "ISTV_CONTENT_KEY_FILE")]
    content_key_file: Option<std::path::PathBuf>,
    /// A browser session ends after this many minutes without a request
    /// [default: 30].
    #[arg(long, env = "ISTV_SESSION_IDLE_MINUTES")]
    session_idle_minutes: Option<u64>,
    /// A browser session ends this many hours after sign-in [default: 12].
    #[arg(long, env = "ISTV_SESSION_HOURS")]
    session_hours: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Answers then carry HSTS and session cookies are Secure.
    #[arg(long, env = "ISTV_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ISTV_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Mark the session cookie Secure (set it when a TLS proxy is in front;
    /// implied by --tls-cert).
    #[arg(long, env = "ISTV_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Turn on the public tier: monthly releases of borough x assault method
    /// counts with differential privacy noise, served without a credential
    /// under /api/v1/public/releases [default: off].
    #[arg(long, env = "ISTV_PUBLIC_TIER")]
    public_tier: bool,
    /// Epsilon of each month's public release [default: 1].
    #[arg(long, env = "ISTV_PUBLIC_EPSILON")]
    public_epsilon: Option<f64>,
    /// Days into a month before the previous month is released, so that
    /// late uploads are counted [default: 7].
    #[arg(long, env = "ISTV_PUBLIC_LAG_DAYS")]
    public_lag_days: Option<u32>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "ISTV_LOG_FORMAT")]
    log_format: Option<String>,
    /// Do not build the geocoder's tables at start; the first rows of each
    /// place build them instead, as they arrive.
    #[arg(long, env = "ISTV_NO_WARM_GEOCODER")]
    no_warm_geocoder: bool,
    /// Register a demo site and load a generated feed through the upload API
    /// once the service is up.
    #[arg(long)]
    demo: bool,
    /// Rows in the demo feed.
    #[arg(long, default_value_t = 50_000)]
    demo_records: u64,
}

impl Args {
    /// The first flag given that only `istv serve` takes (not `istv
    /// ingest`, which shares the others).
    pub(crate) fn serve_only(&self) -> Option<&'static str> {
        if self.demo {
            Some("--demo")
        } else if self.public_tier {
            Some("--public-tier")
        } else {
            None
        }
    }

    /// `--log-format`.
    pub(crate) fn log_format(&self) -> Option<&str> {
        self.log_format.as_deref()
    }
}

/// Starts logging in the format of `flag` (`--log-format`) over the
/// file's, text by default.
pub(crate) fn start_logging(flag: Option<&str>, file: &FileConfig) -> anyhow::Result<()> {
    init_logging(flag.or(file.log_format.as_deref()).unwrap_or("text"))
}

pub(crate) fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        "text" => builder.init(),
        other => anyhow::bail!("unknown log format {other:?}; expected text or json"),
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    run_as(args, common, file, false)
}

/// Runs `istv query`: the query API and portal of `istv serve` over the
/// same store, taking no upload (another service, `istv aggregate`, fills
/// the store). It loads no geography and no content key: nothing is
/// geocoded or keyed.
pub fn run_query(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.demo,
        "istv query takes no upload, so it has no --demo"
    );
    run_as(args, common, file, true)
}

/// `istv serve`, or `istv query` when `query_only`.
fn run_as(
    args: Args,
    common: &Common,
    file: &FileConfig,
    query_only: bool,
) -> anyhow::Result<ExitCode> {
    start_logging(args.log_format(), file)?;
    let Settings {
        config,
        tls,
        metrics_listen,
        listen,
    } = settings(&args, common, file, !query_only)?;
    let demo_metrics_token = config.metrics_token.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let load = || {
            Geocoder::load(&common.geo_dir(), common.geocoder).with_context(|| {
                format!("cannot load geography from {}", common.geo_dir().display())
            })
        };
        let mut geocoder = if query_only {
            // Nothing is geocoded: no geography to load.
            Geocoder::new(common.geocoder)
        } else {
            load()?
        };
        let no_areas = AreaKind::ALL.iter().all(|k| geocoder.areas(*k).is_none());
        if args.demo && no_areas && !query_only {
            // A new user's first run: London's boroughs and wards, shipped.
            for (level, areas) in super::geo::import_default(&common.geo_dir())? {
                tracing::info!(level = level.as_str(), areas, "demo: imported the default London boundaries");
            }
            geocoder = load()?;
        }
        let layers: Vec<&str> = AreaKind::ALL
            .iter()
            .filter(|k| geocoder.areas(**k).is_some())
            .map(|k| k.as_str())
            .collect();
        if query_only {
            tracing::info!("query only: no upload is taken");
        } else {
            tracing::info!(
                postcodes = geocoder.postcodes().map(|p| p.unit_count()).unwrap_or(0),
                places = geocoder.gazetteer().map(|g| g.places().len()).unwrap_or(0),
                areas = %layers.join(","),
                "geography loaded"
            );
        }
        if layers.is_empty() && !query_only {
            tracing::warn!("no boundaries imported: records get H3 cells but no borough, ward or LSOA (see istv geo import)");
        }
        let store = common.store().await?;
        tracing::info!(store = %redact(&common.database_url), "store open");
        let state = AppState::new(store.clone(), Arc::new(geocoder), config);
        if let Some(tier) = state.config().public_tier {
            tracing::info!(
                epsilon = tier.epsilon,
                lag_days = tier.lag_days,
                "public tier on: /api/v1/public/releases without a credential"
            );
            istv_server::public::spawn_releases(state.clone(), tier);
        }
        if !(query_only || args.no_warm_geocoder || file.no_warm_geocoder == Some(true)) {
            state.warm_geocoder();
        }
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("istv listening on {scheme}://{addr} (started in {:.2}s)", started.elapsed().as_secs_f64());
        if let Some(metrics_addr) = &metrics_listen {
            let metrics = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
            eprintln!("istv metrics on http://{}/metrics", metrics.local_addr()?);
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = istv_server::serve_metrics(metrics, state, shutdown_signal()).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        if args.demo {
            let store = store.clone();
            let data_dir = common.data_dir.clone();
            tokio::spawn(async move {
                if let Err(e) = demo(store, data_dir, addr, args.demo_records, demo_metrics_token).await {
                    tracing::error!(error = %format!("{e:#}"), "demo load failed");
                }
            });
        }
        istv_server::serve_with(listener, state, tls, shutdown_signal()).await?;
        store.close().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// What `istv serve` (and `istv ingest`, which takes the same flags) runs
/// with, from flags, environment and the file.
pub(crate) struct Settings {
    /// The HTTP service's settings.
    pub(crate) config: ServerConfig,
    /// TLS of the main listener.
    pub(crate) tls: Option<istv_server::Tls>,
    /// The metrics listener's address, if any.
    pub(crate) metrics_listen: Option<String>,
    /// The main listener's address.
    pub(crate) listen: String,
}

/// Reads the settings of `args` over `file`, for a service that takes
/// uploads when `uploads`.
pub(crate) fn settings(
    args: &Args,
    common: &Common,
    file: &FileConfig,
    uploads: bool,
) -> anyhow::Result<Settings> {
    let defaults = disclosure_settings(
        args.suppress_below,
        args.max_perturbation,
        args.perturbation_variance,
        file,
    );
    let config = ServerConfig {
        max_body_bytes: args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        per_token_concurrency: args
            .per_token_concurrency
            .or(file.per_token_concurrency)
            .unwrap_or(defaults.per_token_concurrency)
            .max(1),
        batch_rows: args
            .batch_rows
            .or(file.batch_rows)
            .unwrap_or(defaults.batch_rows)
            .max(1),
        query_concurrency: args
            .query_concurrency
            .or(file.query_concurrency)
            .unwrap_or(defaults.query_concurrency)
            .max(1),
        query_queue: args
            .query_queue
            .or(file.query_queue)
            .unwrap_or(defaults.query_queue),
        query_timeout: args
            .query_timeout_ms
            .or(file.query_timeout_ms)
            .map_or(defaults.query_timeout, std::time::Duration::from_millis),
        header_read_timeout: args
            .header_read_timeout_ms
            .or(file.header_read_timeout_ms)
            .map_or(
                defaults.header_read_timeout,
                std::time::Duration::from_millis,
            ),
        idle_timeout: args
            .idle_timeout_ms
            .or(file.idle_timeout_ms)
            .map_or(defaults.idle_timeout, |ms| {
                std::time::Duration::from_millis(ms.max(1))
            }),
        body_stall: args
            .body_stall_ms
            .or(file.body_stall_ms)
            .map_or(defaults.body_stall, |ms| {
                std::time::Duration::from_millis(ms.max(1))
            }),
        min_body_bytes_per_s: args
            .min_body_bytes_per_s
            .or(file.min_body_bytes_per_s)
            .unwrap_or(defaults.min_body_bytes_per_s),
        body_rate_window: args
            .body_rate_window_ms
            .or(file.body_rate_window_ms)
            .map_or(defaults.body_rate_window, |ms| {
                std::time::Duration::from_millis(ms.max(1))
            }),
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections)
            .max(1),
        session_idle: args
            .session_idle_minutes
            .or(file.session_idle_minutes)
            .map_or(defaults.session_idle, |m| {
                std::time::Duration::from_secs(m.max(1) * 60)
            }),
        session_absolute: args
            .session_hours
            .or(file.session_hours)
            .map_or(defaults.session_absolute, |h| {
                std::time::Duration::from_secs(h.max(1) * 3600)
            }),
        secure_cookies: args.secure_cookies || file.secure_cookies == Some(true),
        query_rate_per_minute: args
            .query_rate_per_minute
            .or(file.query_rate_per_minute)
            .unwrap_or(defaults.query_rate_per_minute)
            .max(1),
        query_rate_per_org_per_minute: args
            .query_rate_per_org_per_minute
            .or(file.query_rate_per_org_per_minute)
            .unwrap_or(defaults.query_rate_per_org_per_minute)
            .max(1),
        metrics_token: args.metrics_token.clone().or(file.metrics_token.clone()),
        metrics_separate: false,
        public_tier: (args.public_tier || file.public_tier == Some(true)).then(|| {
            let tier = istv_server::PublicTier::default();
            istv_server::PublicTier {
                epsilon: args
                    .public_epsilon
                    .or(file.public_epsilon)
                    .unwrap_or(tier.epsilon),
                lag_days: args
                    .public_lag_days
                    .or(file.public_lag_days)
                    .unwrap_or(tier.lag_days),
                ..tier
            }
        }),
        ..defaults
    };
    // A bad epsilon stops the start, not the first release.
    if let Some(tier) = &config.public_tier {
        istv_public::DiscreteLaplace::new(tier.epsilon).context("invalid public tier settings")?;
    }
    let tls_files = match (
        args.tls_cert.clone().or(file.tls_cert.clone()),
        args.tls_key.clone().or(file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate (tls_cert) and its key (tls_key)"),
    };
    // Bad files stop the start, not the first connection.
    let tls = tls_files
        .map(|(cert, key)| istv_server::Tls::from_pem_files(&cert, &key))
        .transpose()?;
    let mut config = ServerConfig {
        tls: tls.is_some(),
        ingest: uploads,
        ..config
    };
    // Only uploads are keyed: a service without them reads or makes no key.
    if uploads {
        let key_path = args
            .content_key_file
            .clone()
            .or(file.content_key_file.clone())
            .unwrap_or_else(|| common.data_dir.join(crate::content_key::FILE_NAME));
        let (content_key, created) = crate::content_key::load_or_create(&key_path)?;
        if created {
            tracing::info!(path = %key_path.display(), "created the content hash key: back it up with the store; under another key every re-sent record counts as a correction");
        }
        config.content_key = content_key;
    }
    // Bad disclosure parameters stop the start, not a later query.
    config
        .disclosure()
        .context("invalid disclosure control settings")?;
    let metrics_listen = args.metrics_listen.clone().or(file.metrics_listen.clone());
    config.metrics_separate = metrics_listen.is_some();
    // The demo prints a scrape token to try /metrics with.
    if args.demo && config.metrics_token.is_none() && metrics_listen.is_none() {
        config.metrics_token = Some(istv_access::password::generate()?);
    }
    if config.metrics_token.is_none() && metrics_listen.is_none() {
        tracing::info!("/metrics needs an admin's credential: set --metrics-token or --metrics-listen for a scraper");
    }
    let listen = args
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    Ok(Settings {
        config,
        tls,
        metrics_listen,
        listen,
    })
}

/// The default settings with disclosure control (k, D and V) from the
/// flags over the file, as `istv serve` and `istv aggregate` take them.
pub(crate) fn disclosure_settings(
    suppress_below: Option<u64>,
    max_perturbation: Option<u32>,
    perturbation_variance: Option<f64>,
    file: &FileConfig,
) -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        suppress_below: suppress_below
            .or(file.suppress_below)
            .unwrap_or(defaults.suppress_below),
        max_perturbation: max_perturbation
            .or(file.max_perturbation)
            .unwrap_or(defaults.max_perturbation),
        perturbation_variance: perturbation_variance
            .or(file.perturbation_variance)
            .unwrap_or(defaults.perturbation_variance),
        ..defaults
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Demo site code: King's College Hospital's ED.
const DEMO_SITE: &str = "RJ122";

/// Registers the demo site and uploads a generated feed through the API.
async fn demo(
    store: istv_store::Store,
    data_dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
    records: u64,
    metrics_token: Option<String>,
) -> anyhow::Result<()> {
    let (user, password, api_token) = demo_analyst(&store).await?;
    // The portal first, so a new user can sign in while the feed loads.
    eprintln!("demo: portal http://{addr}/ user {user} password {password}");
    let token = match store
        .add_site(DEMO_SITE, "King's College Hospital (demo)")
        .await
    {
        Ok(t) => t,
        Err(_) => store.issue_token(DEMO_SITE).await?,
    };
    let path = data_dir.join("demo-feed.csv.gz");
    let base = format!("http://{addr}");
    let upload_token = token.clone();
    let base_for_upload = base.clone();
    let receipt = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        let base = base_for_upload;
        let to = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
        let mut g = istv_core::generate::Generator::new(istv_core::generate::Options {
            seed: 2024,
            from: to - chrono::Duration::days(364),
            to,
            invalid_rate: 0.01,
            site: Some(DEMO_SITE.into()),
        });
        let file = std::fs::File::create(&path)?;
        let mut w = istv_core::FeedWriter::new(
            istv_core::Format::Csv,
            flate2::write::GzEncoder::new(file, flate2::Compression::fast()),
        )?;
        for _ in 0..records {
            w.write(&g.row())?;
        }
        w.finish()?.finish()?;
        super::upload::send(
            &path,
            &format!("{base}/api/v1/uploads"),
            &upload_token,
            None,
            false,
            None,
        )
    })
    .await??;
    let auth = format!("-H 'Authorization: Bearer {api_token}'");
    let metrics = match metrics_token {
        Some(t) => format!("curl -H 'Authorization: Bearer {t}' '{base}/metrics'"),
        None => "curl <metrics address>/metrics".to_string(),
    };
    eprintln!(
        "demo: site {DEMO_SITE} loaded {} rows ({} accepted, {} rejected)\n\
         demo: upload token for {DEMO_SITE}: {token}\n\
         demo: analyst (all London) user {user}, password {password}, API token {api_token}\n\
         demo: portal http://{addr}/ (sign in as {user})\n\
         demo: try  curl {auth} '{base}/api/v1/aggregates?group_by=month'\n\
         demo:      curl {auth} '{base}/api/v1/aggregates?group_by=assault_method,age_band&format=csv'\n\
         demo:      curl {auth} '{base}/api/v1/cells?resolution=8' > cells.geojson\n\
         demo:      curl {auth} '{base}/api/v1/me'\n\
         demo:      {metrics}",
        receipt["rows"], receipt["accepted"], receipt["rejected"],
    );
    Ok(())
}

/// The demo analyst's name.
const DEMO_USER: &str = "demo-analyst";

/// Makes (or resets) the demo organisation and analyst (all London, full
/// detail) with a new password and a new API token, all printed once.
async fn demo_analyst(store: &istv_store::Store) -> anyhow::Result<(String, String, String)> {
    use istv_access::{password, Profile, Role, Scope};
    match store.add_org("DEMO", "Demo organisation").await {
        Ok(()) | Err(istv_store::StoreError::OrgExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let pw = password::generate()?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw).map(|h| (h, pw))).await??;
    let (hash, pw) = hash;
    if store.account(DEMO_USER).await?.is_some() {
        store.set_password(DEMO_USER, &hash).await?;
    } else {
        store
            .add_user(&istv_store::NewUser {
                name: DEMO_USER,
                org: "DEMO",
                role: Role::Analyst,
                password_hash: &hash,
                scope: &Scope::London,
                profile: &Profile::FULL,
                sites: &[],
            })
            .await?;
    }
    // One live token named demo: the last run's is revoked.
    let _ = store.revoke_api_token(DEMO_USER, "demo").await;
    let token = store.issue_api_token(DEMO_USER, "demo", None).await?;
    Ok((DEMO_USER.to_string(), pw, token))
}
