//! `istv aggregate`: geocoded events from Kafka into the store, the
//! consumed offsets in the same transaction as the counts, and the changed
//! aggregates published to the compacted aggregates topic.

use crate::config::{redact, Common, FileConfig};
use anyhow::Context;
use istv_kafka::aggregate::{self, AggregateMetrics, AggregateOptions};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `istv aggregate`.
#[derive(clap::Args)]
pub struct Args {
    /// Kafka bootstrap brokers, HOST:PORT,...
    #[arg(long, env = "ISTV_BROKERS")]
    brokers: Option<String>,
    /// The schema registry's URL [default: http://127.0.0.1:8081].
    #[arg(long, env = "ISTV_SCHEMA_REGISTRY_URL")]
    schema_registry_url: Option<String>,
    /// Address of /metrics, /healthz and /readyz; port 0 picks a free port
    /// [default: 127.0.0.1:8082].
    #[arg(long, env = "ISTV_LISTEN")]
    listen: Option<String>,
    /// The consumer group every instance shares [default: istv-aggregate].
    #[arg(long, env = "ISTV_AGGREGATE_GROUP")]
    group: Option<String>,
    /// Prefix of the topic names (as given to `istv topics create`).
    #[arg(long, env = "ISTV_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Messages per store transaction at most [default: 5000].
    #[arg(long, env = "ISTV_AGGREGATE_BATCH_MESSAGES")]
    batch_messages: Option<usize>,
    /// How long a batch gathers after its first message, in milliseconds
    /// [default: 200].
    #[arg(long, env = "ISTV_AGGREGATE_BATCH_WAIT_MS")]
    batch_wait_ms: Option<u64>,
    /// Dimensions the published aggregates are grouped by, comma-separated
    /// as the query API's group_by; empty publishes nothing [default:
    /// month,borough].
    #[arg(long, env = "ISTV_PUBLISH_GROUP_BY")]
    publish_group_by: Option<String>,
    /// How often the published aggregates are compared with the store when
    /// no batch of this instance changed them, in milliseconds [default:
    /// 5000].
    #[arg(long, env = "ISTV_PUBLISH_EVERY_MS")]
    publish_every_ms: Option<u64>,
    /// k of disclosure control of the published aggregates [default: 5].
    #[arg(long, env = "ISTV_SUPPRESS_BELOW")]
    suppress_below: Option<u64>,
    /// D: the largest perturbation of a published count; 0 turns it off
    /// [default: 3].
    #[arg(long, env = "ISTV_MAX_PERTURBATION")]
    max_perturbation: Option<u32>,
    /// V: the variance of the perturbation [default: 1].
    #[arg(long, env = "ISTV_PERTURBATION_VARIANCE")]
    perturbation_variance: Option<f64>,
    /// A librdkafka setting KEY=VALUE for the consumer and producers
    /// (e.g. session.timeout.ms=6000); repeat for more.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "ISTV_LOG_FORMAT")]
    log_format: Option<String>,
}

/// Runs the command.
pub fn run(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    super::start_logging(args.log_format.as_deref(), file)?;
    let brokers = args
        .brokers
        .clone()
        .or(file.brokers.clone())
        .context("--brokers (or ISTV_BROKERS) is required")?;
    let disclosure = super::serve::disclosure_settings(
        args.suppress_below,
        args.max_perturbation,
        args.perturbation_variance,
        file,
    )
    .disclosure()
    .context("invalid disclosure control settings")?;
    let mut client = Vec::new();
    for kv in &args.kafka_options {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--kafka-option {kv:?} is not KEY=VALUE"))?;
        client.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let options = AggregateOptions {
        brokers,
        group: args.group.unwrap_or_else(|| "istv-aggregate".into()),
        topic_prefix: args.topic_prefix,
        registry_url: args
            .schema_registry_url
            .unwrap_or_else(|| "http://127.0.0.1:8081".into()),
        max_batch: args.batch_messages.unwrap_or(5000).max(1),
        max_wait: Duration::from_millis(args.batch_wait_ms.unwrap_or(200)),
        publish_group_by: args
            .publish_group_by
            .unwrap_or_else(|| "month,borough".into())
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        disclosure,
        publish_every: Duration::from_millis(args.publish_every_ms.unwrap_or(5000).max(1)),
        client,
    };
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8082".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = common.store().await?;
        tracing::info!(store = %redact(&common.database_url), "store open");
        let metrics = AggregateMetrics::new();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let running = aggregate::start(
            store.clone(),
            options,
            metrics.clone(),
            tokio::runtime::Handle::current(),
        )?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(aggregate::http::serve(
            listener,
            metrics,
            running.ready(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        eprintln!("istv aggregate listening on http://{addr}");
        // Until a signal, or the consumer ends on its own (an error).
        let mut signal = std::pin::pin!(super::shutdown_signal());
        loop {
            tokio::select! {
                _ = &mut signal => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if running.is_finished() {
                        break;
                    }
                }
            }
        }
        let result = tokio::task::spawn_blocking(move || running.stop()).await?;
        let _ = stop_tx.send(());
        let _ = http.await;
        store.close().await;
        result.context("the consumer stopped")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
