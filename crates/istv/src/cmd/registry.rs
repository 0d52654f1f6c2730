//! `istv registry`: the Confluent-compatible schema registry over the
//! store, for the scaled-out services (see `istv_server::registry`).

use crate::config::{Common, FileConfig};
use anyhow::Context;
use std::process::ExitCode;

/// Arguments of `istv registry`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. It asks for no
    /// credential (as Confluent's registry by default): listen where only
    /// the services reach [default: 127.0.0.1:8081].
    #[arg(long, env = "ISTV_REGISTRY_LISTEN")]
    listen: Option<String>,
    /// Register the schemas of `schemas/` under the istv topics' value
    /// subjects (`istv.attendances.v1-value`...) at start, with this topic
    /// prefix; an already registered schema keeps its id.
    #[arg(long)]
    register_schemas: bool,
    /// The topic prefix of --register-schemas.
    #[arg(long, default_value = "")]
    prefix: String,
}

/// Runs the command.
pub fn run(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    super::init_logging("text")?;
    let listen = args
        .listen
        .or(file.registry_listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = common.store().await?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let serving = tokio::spawn(istv_server::registry::serve_registry(
            listener,
            store.clone(),
            super::shutdown_signal(),
        ));
        if args.register_schemas {
            let url = format!("http://{addr}");
            let prefix = args.prefix.clone();
            let ids = tokio::task::spawn_blocking(move || register_all(&url, &prefix)).await??;
            for (subject, id) in ids {
                eprintln!("{subject}: schema id {id}");
            }
        }
        // Announced once the schemas are registered, so what reads this
        // line finds them.
        eprintln!("istv registry listening on http://{addr}");
        serving.await??;
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Registers every record schema under its topic's value subject.
fn register_all(url: &str, prefix: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let client =
        istv_server::registry_client::RegistryClient::new(url, std::time::Duration::from_secs(10));
    let mut ids = Vec::new();
    for topic in istv_wire::topics::all(prefix) {
        let Some(text) = topic.schema else { continue };
        let subject = istv_wire::topics::value_subject(&topic.name);
        let id = client
            .register(&subject, text)
            .with_context(|| format!("cannot register the schema of {subject}"))?;
        ids.push((subject, id));
    }
    Ok(ids)
}
