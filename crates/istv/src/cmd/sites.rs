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
            Command::Add { code, name } => Some(("sites add", json!({"code": code, "name": name}))),
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
            Command::Add { code, name } => {
                let token = store.add_site(&code, &name).await?;
                eprintln!(
                    "site {} added; its upload token (keep it secret, it is not shown again):",
                    code.to_ascii_uppercase()
                );
                println!("{token}");
            }
            Command::Token { code } => {
                let token = store.issue_token(&code).await?;
                eprintln!("new token for site {}:", code.to_ascii_uppercase());
                println!("{token}");
            }
            Command::List => {
                println!("code\tname\tcreated_at\trevoked");
                for s in store.list_sites().await? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.code,
                        s.name,
                        s.created_at.to_rfc3339(),
                        s.revoked
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
        println!(
            "records: {}; aggregate total: {}; aggregate keys: {}",
            report.records, report.cube_total, report.cube_keys
        );
        if report.is_ok() {
            println!("ok: the aggregates equal a recount of the records");
            Ok(ExitCode::SUCCESS)
        } else {
            println!(
                "MISMATCH: {} aggregate keys differ from a recount",
                report.mismatches.len()
            );
            if report.unspanned_rows + report.overlapping_spans > 0 {
                println!(
                    "date ranges miss {} aggregate rows outside their spans; {} spans overlap",
                    report.unspanned_rows, report.overlapping_spans
                );
            }
            for m in report.mismatches.iter().take(20) {
                println!(
                    "  {:?}: stored {} recounted {}",
                    m.key, m.stored, m.recounted
                );
            }
            Ok(ExitCode::from(1))
        }
    })
}
