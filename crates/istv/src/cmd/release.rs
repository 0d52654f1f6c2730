//! `istv release`: computes and stores the public tier's release of one
//! month, once.

use crate::config::{Common, FileConfig};
use anyhow::Context;
use istv_geo::{AreaKind, Geocoder};
use istv_public::{DiscreteLaplace, Month, OpenDp};
use istv_server::public::{release_month, Released};
use serde_json::json;
use std::process::ExitCode;

/// Arguments of `istv release`.
#[derive(clap::Args)]
pub struct Args {
    /// The month to release, YYYY-MM; it must have ended.
    #[arg(long)]
    month: String,
    /// Epsilon of the release: smaller is more private and noisier
    /// [default: public_epsilon in the config file, else 1].
    #[arg(long)]
    epsilon: Option<f64>,
}

/// Runs the command. Exit status: 0 released, 1 the month has a release
/// already (never recomputed), 2 an error.
pub fn run(args: Args, common: &Common, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let month = Month::parse(&args.month)?;
    let epsilon = args
        .epsilon
        .or(file.public_epsilon)
        .unwrap_or(istv_public::DEFAULT_EPSILON);
    let mechanism = DiscreteLaplace::new(epsilon)?;
    super::runtime()?.block_on(async {
        let store = common.store().await?;
        let refuse = |r: &istv_store::PublicRelease| {
            eprintln!(
                "error: {} was released already (at {}, epsilon {}); a release is computed once \
                 and never recomputed: a second draw of noise would spend epsilon again",
                r.month, r.created_at, r.epsilon
            );
            ExitCode::from(1)
        };
        if let Some(existing) = store.public_release(&month.to_string()).await? {
            store.close().await;
            return Ok(refuse(&existing));
        }
        let geocoder = Geocoder::load(&common.geo_dir(), common.geocoder).with_context(|| {
            format!("cannot load geography from {}", common.geo_dir().display())
        })?;
        let boroughs: Vec<String> = geocoder
            .areas(AreaKind::Borough)
            .map(|l| l.areas().iter().map(|a| a.code.to_string()).collect())
            .unwrap_or_default();
        let done = release_month(
            &store,
            &boroughs,
            month,
            &mechanism,
            &mut OpenDp,
            chrono::Utc::now(),
        )
        .await;
        let code = match &done {
            Ok(Released::New(r)) => {
                let parameters = json!({"month": r.month, "epsilon": r.epsilon});
                super::audit::record(&store, "public release", parameters, true).await?;
                println!(
                    "released {}: {} boroughs x {} assault methods, discrete Laplace noise at epsilon {} (scale {})",
                    r.month,
                    boroughs.len(),
                    istv_core::AssaultMethod::ALL.len(),
                    r.epsilon,
                    mechanism.scale()
                );
                ExitCode::SUCCESS
            }
            Ok(Released::Existing(r)) => refuse(r),
            Err(_) => ExitCode::from(2),
        };
        store.close().await;
        done?;
        Ok(code)
    })
}
