//! `istv audit`: list and verify the audit log; and the entry every
//! administrative command appends.

use crate::config::Common;
use anyhow::Context;
use chrono::NaiveDate;
use istv_store::{AuditEntry, AuditFilter, Store};
use serde_json::{json, Value};
use std::process::ExitCode;

/// `istv audit ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List entries, oldest first.
    List {
        /// Only this actor's entries (a user name, site:CODE, anonymous, cli:...).
        #[arg(long)]
        user: Option<String>,
        /// Only entries from this day (UTC) on, YYYY-MM-DD.
        #[arg(long, value_parser = parse_day)]
        since: Option<NaiveDate>,
        /// Only the latest N entries.
        #[arg(long)]
        limit: Option<u64>,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the hash chain from the first entry.
    ///
    /// Exit status: 0 intact, 1 broken (naming the first broken entry).
    Verify,
}

fn parse_day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))
}

/// The actor of the entries this process appends: `cli`, with the
/// operating system's user when the environment names one.
fn actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(user) if !user.is_empty() => format!("cli:{user}"),
        _ => "cli".into(),
    }
}

/// Appends the entry of an administrative command (`users add`...) with
/// its arguments (never a password or a token) and whether it succeeded.
pub async fn record(
    store: &Store,
    action: &str,
    parameters: Value,
    ok: bool,
) -> anyhow::Result<()> {
    let entry = AuditEntry {
        actor: actor(),
        organisation: None,
        action: action.into(),
        route: None,
        parameters: Some(parameters.to_string()),
        figures: None,
        status: if ok { "ok" } else { "error" }.into(),
    };
    store
        .append_audit(&entry)
        .await
        .with_context(|| format!("`{action}` ran but its audit entry cannot be written"))?;
    Ok(())
}

/// Runs `command` on the store, then appends its audit entry when it is
/// one that changes something (whether it succeeded or not).
pub async fn audited<F, Fut>(
    common: &Common,
    audit: Option<(&'static str, Value)>,
    run: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let store = common.store().await?;
    let done = run(store.clone()).await;
    if let Some((action, parameters)) = audit {
        super::audit::record(&store, action, parameters, done.is_ok()).await?;
    }
    store.close().await;
    done.map(|()| ExitCode::SUCCESS)
}

/// Runs `istv audit`.
pub fn run(command: Command, common: &Common) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let store = common.store().await?;
        let code = match command {
            Command::List {
                user,
                since,
                limit,
                json,
            } => {
                let filter = AuditFilter { user, since, limit };
                let records = store.list_audit(&filter).await?;
                if json {
                    let rows: Vec<Value> = records
                        .iter()
                        .map(|r| {
                            let e = &r.entry;
                            json!({
                                "seq": r.seq,
                                "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                                "actor": e.actor,
                                "organisation": e.organisation,
                                "action": e.action,
                                "route": e.route,
                                "parameters": e.parameters,
                                "figures": e.figures,
                                "status": e.status,
                                "hash": r.hash,
                            })
                        })
                        .collect();
                    println!("{}", Value::Array(rows));
                } else {
                    print_table(&records);
                }
                ExitCode::SUCCESS
            }
            Command::Verify => {
                let report = store.verify_audit().await?;
                let last = report.last.as_ref().map_or(String::new(), |(seq, hash)| {
                    format!("; last entry {seq}, hash {hash}")
                });
                match &report.broken {
                    None => {
                        println!("ok: {} entries, the chain is intact{last}", report.entries);
                        ExitCode::SUCCESS
                    }
                    Some(broken) => {
                        println!("BROKEN: {broken} ({} entries read{last})", report.entries);
                        ExitCode::from(1)
                    }
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}

/// Entries as a table with aligned columns.
fn print_table(records: &[istv_store::AuditRecord]) {
    let header = [
        "seq",
        "at",
        "actor",
        "org",
        "action",
        "route",
        "figures",
        "status",
        "parameters",
    ];
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            let e = &r.entry;
            let or_dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
            [
                r.seq.to_string(),
                r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.actor.clone(),
                or_dash(e.organisation.as_deref()),
                e.action.clone(),
                or_dash(e.route.as_deref()),
                e.figures.map_or("-".into(), |n| n.to_string()),
                e.status.clone(),
                or_dash(e.parameters.as_deref()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
