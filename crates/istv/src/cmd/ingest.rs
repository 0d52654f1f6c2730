//! `istv ingest`: the upload API of `istv serve` (same credentials, limits
//! and receipts), with validated attendances forwarded to
//! `istv.attendances.v1` and row rejections to `istv.rejections.v1`; the
//! receipt only once the broker has acknowledged every message.

use super::kafka::{register, KafkaArgs};
use super::serve::{self, Settings};
use crate::config::{redact, Common, FileConfig};
use anyhow::Context;
use istv_geo::{Geocoder, GeocoderConfig};
use istv_kafka::{KafkaMetrics, Publisher, SchemaIds};
use istv_server::AppState;
use istv_wire::topics;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `istv ingest`: those of `istv serve` and the Kafka ones.
#[derive(clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    serve: Box<serve::Args>,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Runs the command.
pub fn run(args: IngestArgs, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    if let Some(flag) = args.serve.serve_only() {
        anyhow::bail!("{flag} is a flag of istv serve only, not of istv ingest");
    }
    super::start_logging(args.serve.log_format(), file)?;
    let Settings {
        config,
        tls,
        metrics_listen,
        listen,
    } = serve::settings(&args.serve, common, file, true)?;
    let kafka = args.kafka.settings(file)?;
    let registry = args.kafka.registry(file)?;
    let ids = SchemaIds {
        attendance: register(
            &registry,
            &kafka.topic(topics::ATTENDANCES),
            istv_core::schema::ATTENDANCE_V1,
        )?,
        rejection: register(
            &registry,
            &kafka.topic(topics::REJECTIONS),
            istv_core::schema::REJECTION_V1,
        )?,
    };
    tracing::info!(
        attendance = ids.attendance,
        rejection = ids.rejection,
        "writer schema ids"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = common.store().await?;
        tracing::info!(store = %redact(&common.database_url), "store open");
        // No geography: the geocode service places the records.
        let geocoder = Arc::new(Geocoder::new(GeocoderConfig::default()));
        let state = AppState::new(store.clone(), geocoder, config);
        let metrics = KafkaMetrics::new(state.metrics().registry())?;
        let publisher = Arc::new(Publisher::new(&kafka, ids, metrics)?);
        state
            .forward_to(publisher.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!(
            "istv ingest listening on {scheme}://{addr}, forwarding to {}",
            kafka.brokers
        );
        if let Some(metrics_addr) = &metrics_listen {
            let metrics = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
            eprintln!("istv metrics on http://{}/metrics", metrics.local_addr()?);
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    istv_server::serve_metrics(metrics, state, super::shutdown_signal()).await
                {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
        }
        istv_server::serve_with(listener, state, tls, super::shutdown_signal()).await?;
        // Running uploads have their acknowledgements: nothing is queued.
        let _ = tokio::task::spawn_blocking(move || {
            publisher.flush(std::time::Duration::from_secs(10))
        })
        .await;
        store.close().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
