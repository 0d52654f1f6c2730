//! `istv sites` and `istv check`: administration straight on the store.

use crate::config::Common;
use std::process::ExitCode;

/// `istv sites ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Register an ED site and print a new upload token for it (shown once).
    Add {
        /// ODS site code, e.g. RJ122.
        #[arg(long)]
        code: String,
        /// Site name.
        #[arg(long)]
        name: String,
        /// Days within which the site is expected to upload again; the
        /// data-quality page marks it late after that (1-3650).
        #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expected_interval_days: u32,
    },
    /// Change a site's settings.
    Update {
        /// ODS site code.
        #[arg(long)]
        code: String,
        /// Days within which the site is expected to upload again (1-3650).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expected_interval_days: u32,
    },
    /// Issue another token for an existing site (e.g. after a revoke).
    Token {
        /// ODS site code.
        #[arg(long)]
        code: String,
    },
    /// List sites.
    List,
    /// Revoke every token of a site; its data stays.
    Revoke {
        /// ODS site code.
        #[arg(long)]
        code: String,
    },
}

impl Command {
    /// The audit entry's action and arguments, for a command that changes
    /// something.
    fn audit(&self) -> Option<(&'static str, serde_json::Value)> {
        use serde_json::json;
        match self {
            Command::Add {
                code,
                name,
                expected_interval_days,
            } => Some((
                "sites add",
                json!({"code": code, "name": name, "expected_interval_days": expected_interval_days}),
            )),
            Command::Update {
                code,
                expected_interval_days,
            } => Some((
                "sites update",
                json!({"code": code, "expected_interval_days": expected_interval_days}),
            )),
            Command::Token { code } => Some(("sites token", json!({"code": code}))),
            Command::Revoke { code } => Some(("sites revoke", json!({"code": code}))),
            Command::List => None,
        }
    }
}

/// Runs `istv sites`.
pub fn run(command: Command, common: &Common) -> anyhow::Result<ExitCode> {
    let audit = command.audit();
    super::runtime()?.block_on(super::audit::audited(common, audit, |store| async move {
        match command {
            Command::Add {
                code,
                name,
                expected_interval_days,
            } => {
                let token = store.add_site(&code, &name).await?;
                if expected_interval_days != 35 {
                    store
                        .set_site_interval(&code, expected_interval_days)
                        .await?;
                }
                eprintln!(
                    "site {} added; its upload token (keep it secret, it is not shown again):",
                    code.to_ascii_uppercase()
                );
                println!("{token}");
            }
            Command::Update {
                code,
                expected_interval_days,
            } => {
                store
                    .set_site_interval(&code, expected_interval_days)
                    .await?;
                eprintln!(
                    "site {} is expected to upload every {expected_interval_days} days",
                    code.to_ascii_uppercase()
                );
            }
            Command::Token { code } => {
                let token = store.issue_token(&code).await?;
                eprintln!("new token for site {}:", code.to_ascii_uppercase());
                println!("{token}");
            }
            Command::List => {
                println!("code\tname\tcreated_at\trevoked\texpected_interval_days");
                for s in store.list_sites().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        s.code,
                        s.name,
                        s.created_at.to_rfc3339(),
                        s.revoked,
                        s.expected_interval_days
                    );
                }
            }
            Command::Revoke { code } => {
                store.revoke_site(&code).await?;
                eprintln!("tokens of site {} revoked", code.to_ascii_uppercase());
            }
        }
        Ok(())
    }))
}

/// Runs `istv check`.
pub fn check(common: &Common) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let store = common.store().await?;
        let report = store.recount_check().await?;
        store.close().await;
        let differ: u64 = report.rollups.iter().map(|(_, d)| d).sum();
        println!(
            "records: {}; roll-up tables: {}",
            report.records,
            report.rollups.len()
        );
        if report.is_ok() {
            println!("ok: the aggregates equal a recount of the records");
            Ok(ExitCode::SUCCESS)
        } else {
            println!("MISMATCH: {differ} roll-up rows differ from a recount");
            for (name, d) in report.rollups.iter().filter(|(_, d)| *d > 0).take(20) {
                println!("  {name}: {d} rows differ");
            }
            if report.unspanned_records + report.overlapping_spans > 0 {
                println!(
                    "date ranges miss {} records outside their spans; {} spans overlap",
                    report.unspanned_records, report.overlapping_spans
                );
            }
            Ok(ExitCode::from(1))
        }
    })
}
