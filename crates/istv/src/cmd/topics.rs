//! `istv topics create`: the Kafka topics of the scaled-out services.

use crate::config::FileConfig;
use anyhow::Context;
use istv_wire::topics::{self, Cleanup};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::process::ExitCode;
use std::time::Duration;

/// `istv topics` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create the topics (istv.attendances.v1, istv.rejections.v1,
    /// istv.geocoded.v1, istv.aggregates.v1 compacted, istv.dead-letters.v1);
    /// a topic that exists is left as it is.
    Create(CreateArgs),
}

/// Arguments of `istv topics create`.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Kafka bootstrap brokers, HOST:PORT,...
    #[arg(long, env = "ISTV_BROKERS")]
    brokers: Option<String>,
    /// Put before every topic name (e.g. `test.`: `test.istv.attendances.v1`).
    #[arg(long, env = "ISTV_TOPIC_PREFIX", default_value = "")]
    prefix: String,
    /// Partitions of each topic: the most instances of one service that
    /// share its work. Records keep their order within a partition (keys
    /// are site_code/record_id); more partitions cannot be taken back.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Copies of each partition; 3 survives a broker lost while one is
    /// down for maintenance. With 3 or more, min.insync.replicas is 2, so
    /// an acknowledged write (acks=all) is on two brokers.
    #[arg(long, default_value_t = 3)]
    replication_factor: i32,
    /// How long attendances, rejections and geocoded events are kept: long
    /// enough for a stopped service to catch up; the store keeps the
    /// records, and attendances hold free text and exact points, so not
    /// longer than needed.
    #[arg(long, default_value_t = 168)]
    retention_hours: i64,
    /// How long dead letters are kept, for someone to look at them.
    #[arg(long, default_value_t = 720)]
    dead_letter_retention_hours: i64,
}

/// Runs a `topics` subcommand.
pub fn run(command: Command, file: &FileConfig) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create(args) => create(args, file),
    }
}

fn create(args: CreateArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let brokers = args
        .brokers
        .clone()
        .or(file.brokers.clone())
        .context("--brokers (or ISTV_BROKERS) is required")?;
    anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
    anyhow::ensure!(
        args.replication_factor >= 1,
        "--replication-factor must be at least 1"
    );
    let specs = topics::all(&args.prefix);
    let retention = |t: &topics::Topic| {
        let hours = if t.name.ends_with(topics::DEAD_LETTERS) {
            args.dead_letter_retention_hours
        } else {
            args.retention_hours
        };
        (hours * 3_600_000).to_string()
    };
    let retentions: Vec<String> = specs.iter().map(retention).collect();
    let new: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&retentions)
        .map(|(t, retention)| {
            let mut topic = NewTopic::new(
                &t.name,
                args.partitions,
                TopicReplication::Fixed(args.replication_factor),
            );
            topic = match t.cleanup {
                Cleanup::Compact => topic.set("cleanup.policy", "compact"),
                Cleanup::Delete => topic
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", retention),
            };
            if args.replication_factor >= 3 {
                topic = topic.set("min.insync.replicas", "2");
            }
            topic
        })
        .collect();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("broker.address.family", "v4")
        .create()
        .context("cannot make a Kafka admin client")?;
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let runtime = super::runtime()?;
    let results = runtime
        .block_on(admin.create_topics(&new, &options))
        .with_context(|| format!("cannot create topics on {brokers}"))?;
    let mut failed = 0;
    for (result, spec) in results.into_iter().zip(&specs) {
        let what = match spec.cleanup {
            Cleanup::Compact => "compacted".to_owned(),
            Cleanup::Delete => format!(
                "kept {} h",
                if spec.name.ends_with(topics::DEAD_LETTERS) {
                    args.dead_letter_retention_hours
                } else {
                    args.retention_hours
                }
            ),
        };
        match result {
            Ok(name) => println!(
                "created {name}: {} partitions, replication {}, {what}",
                args.partitions, args.replication_factor
            ),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                println!("exists {name}: left as it is")
            }
            Err((name, code)) => {
                eprintln!("error: cannot create {name}: {code}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
