//! `istv geocode`: attendances from `istv.attendances.v1` geocoded into
//! `istv.geocoded.v1` (derived fields only), poison messages to the
//! dead-letter topic, each batch one Kafka transaction with its offsets.

use super::kafka::{hostname, register, KafkaArgs};
use crate::config::{Common, FileConfig};
use anyhow::Context;
use istv_geo::Geocoder;
use istv_kafka::{GeocodeConfig, GeocodeService, KafkaMetrics, Stage};
use istv_wire::topics;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `istv geocode`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Address of /metrics, /healthz and /readyz; port 0 picks a free port
    /// [default: 127.0.0.1:9464].
    #[arg(long, env = "ISTV_GEOCODE_LISTEN")]
    listen: Option<String>,
    /// The deployment's content hash key (the file istv serve or istv
    /// ingest made); it must exist [default: content-hash.key in the data
    /// directory].
    #[arg(long, env = "ISTV_CONTENT_KEY_FILE")]
    content_key_file: Option<std::path::PathBuf>,
    /// The consumer group every instance joins.
    #[arg(long, env = "ISTV_GEOCODE_GROUP", default_value = "istv-geocode")]
    group: String,
    /// This instance's transactional id: unique per instance and the same
    /// across its restarts (a restart then aborts what the last run left
    /// open at once, instead of waiting for the transaction timeout)
    /// [default: istv-geocode-HOSTNAME].
    #[arg(long, env = "ISTV_TRANSACTIONAL_ID")]
    transactional_id: Option<String>,
    /// Most messages per transaction.
    #[arg(long, default_value_t = istv_kafka::geocode::DEFAULT_BATCH_MAX)]
    batch_max: usize,
    /// Longest a batch waits to fill after its first message, in
    /// milliseconds.
    #[arg(long, default_value_t = 50)]
    batch_wait_ms: u64,
    /// Log format: text or json.
    #[arg(long, env = "ISTV_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

/// Runs the command.
pub fn run(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    super::init_logging(&args.log_format)?;
    let settings = args.kafka.settings(file)?;
    let registry = args.kafka.registry(file)?;
    let key_path = args
        .content_key_file
        .clone()
        .or(file.content_key_file.clone())
        .unwrap_or_else(|| common.data_dir.join(crate::content_key::FILE_NAME));
    let content_key = crate::content_key::load(&key_path)?;
    let geocoder = Geocoder::load(&common.geo_dir(), common.geocoder)
        .with_context(|| format!("cannot load geography from {}", common.geo_dir().display()))?;
    let geocoded_schema_id = register(
        &registry,
        &settings.topic(topics::GEOCODED),
        istv_core::schema::GEOCODED_EVENT_V1,
    )?;
    let config = GeocodeConfig {
        group: args.group.clone(),
        transactional_id: args
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("istv-geocode-{}", hostname())),
        batch_max: args.batch_max.max(1),
        batch_wait: Duration::from_millis(args.batch_wait_ms),
        ..GeocodeConfig::default()
    };
    let metrics_registry = prometheus::Registry::new();
    let metrics = KafkaMetrics::new(&metrics_registry)?;
    let stage = Stage {
        geocoder: Arc::new(geocoder),
        content_key,
        geocoded_schema_id,
    };
    let service = GeocodeService::new(&settings, config, registry, stage, metrics)?;
    let listen = args
        .listen
        .clone()
        .or(file.geocode_listen.clone())
        .unwrap_or_else(|| "127.0.0.1:9464".into());
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("istv geocode on http://{}/metrics", listener.local_addr()?);
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let health = runtime.spawn(istv_kafka::health::serve(
        listener,
        metrics_registry,
        ready.clone(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let signal_stop = stop.clone();
    runtime.spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("stopping after the batch in hand");
        signal_stop.store(true, Ordering::SeqCst);
    });
    let loop_stop = stop.clone();
    let loop_ready = ready.clone();
    let worker = std::thread::Builder::new()
        .name("istv-geocode".into())
        .spawn(move || service.run(&loop_stop, &loop_ready))?;
    let result = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the geocode loop panicked"))?;
    let _ = http_stop.send(());
    let _ = runtime.block_on(health);
    result?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
