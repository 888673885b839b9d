//! `cairn local`: a whole small cluster in one process, for a laptop: N storage nodes on
//! loopback ports chosen by the OS, one insert and one select on fixed ports. Ctrl-C stops
//! the insert and select first, then flushes and closes the storage nodes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Flags of `cairn local`.
#[derive(clap::Args, Debug)]
pub struct LocalConfig {
    /// Where the storage nodes keep their data (one subdirectory each).
    #[arg(long, env = "CAIRN_LOCAL_DATA_DIR", default_value = "./cairn-data")]
    data_dir: PathBuf,
    /// Number of storage nodes.
    #[arg(long, env = "CAIRN_LOCAL_STORAGE_NODES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    storage_nodes: u32,
    /// Address of the insert node (remote write goes here).
    #[arg(long, env = "CAIRN_LOCAL_INSERT_LISTEN", default_value = "127.0.0.1:8480")]
    insert_listen: String,
    /// Address of the select node (Grafana and PromQL queries go here).
    #[arg(long, env = "CAIRN_LOCAL_SELECT_LISTEN", default_value = "127.0.0.1:8481")]
    select_listen: String,
    /// How long samples are kept (Prometheus duration).
    #[arg(long, env = "CAIRN_RETENTION", default_value = "31d")]
    retention: String,
}

#[derive(Parser)]
struct StorageArgs {
    #[command(flatten)]
    cfg: cairn_storage::StorageConfig,
}

#[derive(Parser)]
struct InsertArgs {
    #[command(flatten)]
    cfg: cairn_insert::InsertConfig,
}

#[derive(Parser)]
struct SelectArgs {
    #[command(flatten)]
    cfg: cairn_select::SelectConfig,
}

/// Waits until a role has written its `--listen-addr-file`, or fails after `limit`.
async fn wait_for_addr(path: &Path, name: &str, limit: Duration) -> anyhow::Result<std::net::SocketAddr> {
    let started = Instant::now();
    loop {
        if let Some(addr) = cairn_common::listen_addr_file::read(path, name) {
            return Ok(addr);
        }
        if started.elapsed() > limit {
            bail!("{} did not start within {limit:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the cluster until `shutdown` fires. Errors: the data directory cannot be made, a
/// port is taken, or a role fails to start.
pub async fn run(cfg: LocalConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("--data-dir {}", cfg.data_dir.display()))?;
    let storage_shutdown = CancellationToken::new();
    let mut storage_tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut grpc_addrs = Vec::new();
    let mut http_addrs = Vec::new();
    for i in 0..cfg.storage_nodes {
        let dir = cfg.data_dir.join(format!("storage-{i}"));
        let addr_file = cfg.data_dir.join(format!("storage-{i}.addr"));
        let _ = std::fs::remove_file(&addr_file);
        let args = StorageArgs::try_parse_from([
            "storage".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
            "--grpc-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--http-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--retention".as_ref(),
            cfg.retention.as_ref(),
            "--listen-addr-file".as_ref(),
            addr_file.as_os_str(),
        ] as [&std::ffi::OsStr; 11])
        .context("--retention")?;
        let token = storage_shutdown.clone();
        storage_tasks.push(tokio::spawn(async move {
            if let Err(e) = cairn_storage::run(args.cfg, token).await {
                tracing::error!(node = i, error = %e, "storage node failed");
            }
        }));
        grpc_addrs.push(wait_for_addr(&addr_file, "grpc", Duration::from_secs(300)).await?);
        http_addrs.push(wait_for_addr(&addr_file, "http", Duration::from_secs(5)).await?);
    }
    let nodes = grpc_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");

    let insert_file = cfg.data_dir.join("insert.addr");
    let select_file = cfg.data_dir.join("select.addr");
    let _ = std::fs::remove_file(&insert_file);
    let _ = std::fs::remove_file(&select_file);
    let (insert_file_arg, select_file_arg) = (insert_file.to_string_lossy(), select_file.to_string_lossy());
    let insert = InsertArgs::try_parse_from([
        "insert",
        "--storage-node",
        &nodes,
        "--http-listen",
        &cfg.insert_listen,
        "--listen-addr-file",
        &insert_file_arg,
    ])?
    .cfg;
    let select = SelectArgs::try_parse_from([
        "select",
        "--storage-node",
        &nodes,
        "--http-listen",
        &cfg.select_listen,
        "--listen-addr-file",
        &select_file_arg,
    ])?
    .cfg;

    // If either front role stops (or fails to start), both stop.
    let front_shutdown = shutdown.child_token();
    let token = front_shutdown.clone();
    let insert_task = tokio::spawn(async move {
        let r = cairn_insert::run(insert, token.clone()).await;
        token.cancel();
        r
    });
    let token = front_shutdown.clone();
    let select_task = tokio::spawn(async move {
        let r = cairn_select::run(select, token.clone()).await;
        token.cancel();
        r
    });
    let ready = async {
        wait_for_addr(&insert_file, "http", Duration::from_secs(10)).await?;
        wait_for_addr(&select_file, "http", Duration::from_secs(10)).await
    };
    tokio::select! {
        r = ready => { r?; }
        _ = front_shutdown.cancelled() => {}
    }

    if !front_shutdown.is_cancelled() {
        print_urls(&cfg, &grpc_addrs, &http_addrs);
    }

    let (insert_result, select_result) = tokio::join!(insert_task, select_task);
    tracing::info!("insert and select stopped; stopping storage nodes");
    storage_shutdown.cancel();
    for t in storage_tasks {
        let _ = t.await;
    }
    insert_result?.context("insert")?;
    select_result?.context("select")?;
    tracing::info!("cairn local stopped");
    Ok(())
}

fn print_urls(cfg: &LocalConfig, grpc_addrs: &[std::net::SocketAddr], http_addrs: &[std::net::SocketAddr]) {
    println!(
        "Cairn is running: {} storage node(s) under {}",
        cfg.storage_nodes,
        cfg.data_dir.display()
    );
    for (i, (g, h)) in grpc_addrs.iter().zip(http_addrs).enumerate() {
        println!("  storage-{i}: gRPC {g}, HTTP http://{h} (POST /internal/force_flush)");
    }
    println!(
        "  remote write: http://{}/insert/0/prometheus/api/v1/write",
        cfg.insert_listen
    );
    println!(
        "  PromQL (Grafana data source URL): http://{}/select/0/prometheus",
        cfg.select_listen
    );
    println!("Press Ctrl-C to stop.");
}
