//! `cairn`: one binary, one role per subcommand.

// Dev-dependencies serve the whole-cluster tests in tests/, not this binary's unit tests.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod bench;
mod local;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Cairn: a shared-nothing clustered metrics database. Prometheus remote write in,
/// PromQL over the Prometheus HTTP API out.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or a tracing filter such as
    /// `info,cairn_storage=debug`. RUST_LOG overrides it.
    #[arg(long, env = "CAIRN_LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// A storage node: keeps the series hashed to it (index, WAL, compressed partitions).
    Storage(cairn_storage::StorageConfig),
    /// An insert node: takes remote write and imports, routes series to storage nodes.
    Insert(cairn_insert::InsertConfig),
    /// A select node: answers PromQL over the Prometheus HTTP API from all storage nodes.
    Select(cairn_select::SelectConfig),
    /// A whole small cluster in one process: one insert, N storage nodes, one select.
    Local(local::LocalConfig),
    /// Load generators: replay a corpus or generate churn as remote write to any URL.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cairn_common::telemetry::init_tracing(&cli.log_level);
    let _ = cairn_common::telemetry::metrics_handle();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        cairn_common::shutdown::cancel_on_signal(shutdown.clone());
        match cli.role {
            Role::Storage(cfg) => cairn_storage::run(cfg, shutdown).await?,
            Role::Insert(cfg) => cairn_insert::run(cfg, shutdown).await?,
            Role::Select(cfg) => cairn_select::run(cfg, shutdown).await?,
            Role::Local(cfg) => local::run(cfg, shutdown).await?,
            Role::Bench(cmd) => bench::run(cmd, shutdown).await?,
        }
        Ok(())
    })
}
