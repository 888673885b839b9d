//! Real `cairn` processes for whole-cluster tests: each role starts as its own process on
//! 127.0.0.1 with port 0, announces its addresses through `--listen-addr-file`, and can be
//! killed (SIGKILL) and restarted on the same addresses and data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

/// Path of the binary cargo built for these tests.
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// One running role.
pub struct Proc {
    pub name: String,
    args: Vec<String>,
    child: Option<Child>,
    addr_file: PathBuf,
    log: PathBuf,
}

impl Proc {
    /// Starts `cairn <args> --listen-addr-file …` and waits until it has written its
    /// addresses (the role is serving then).
    pub fn start(dir: &Path, name: &str, args: Vec<String>) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            args,
            child: None,
            addr_file: dir.join(format!("{name}.addr")),
            log: dir.join(format!("{name}.log")),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log file");
        let child = Command::new(CAIRN)
            .args(&self.args)
            .arg("--listen-addr-file")
            .arg(&self.addr_file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start cairn");
        self.child = Some(child);
        let started = Instant::now();
        while cairn_common::listen_addr_file::read(&self.addr_file, "http").is_none() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("{} exited with {status} at start:\n{}", self.name, self.log_tail());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} did not start:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An address the role announced (`http` or `grpc`).
    pub fn addr(&self, name: &str) -> SocketAddr {
        cairn_common::listen_addr_file::read(&self.addr_file, name)
            .unwrap_or_else(|| panic!("{} has no {name} address", self.name))
    }

    /// SIGKILL: no flush, no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// Starts the same role again with `args` replacing its start arguments (use it to
    /// pin the ports it had).
    pub fn restart_with(&mut self, args: Vec<String>) {
        self.kill9();
        self.args = args;
        self.spawn();
    }

    /// The last lines of the role's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.name, self.log_tail());
        }
        self.kill9();
    }
}

/// A cluster of separate processes: storage nodes, one insert, one select.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub storage: Vec<Proc>,
    pub insert: Proc,
    pub select: Proc,
}

impl Cluster {
    /// Starts `storage_nodes` storage processes, then an insert (with `insert_args` added)
    /// and a select over them.
    pub fn start(storage_nodes: usize, insert_args: &[&str]) -> Cluster {
        Cluster::start_with(storage_nodes, insert_args, &[])
    }

    /// As [`Cluster::start`], with extra arguments for the select too.
    pub fn start_with(storage_nodes: usize, insert_args: &[&str], select_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage: Vec<Proc> = (0..storage_nodes)
            .map(|i| {
                let data = dir.path().join(format!("storage-{i}"));
                Proc::start(
                    dir.path(),
                    &format!("storage-{i}"),
                    storage_args(&data, "127.0.0.1:0", "127.0.0.1:0"),
                )
            })
            .collect();
        let nodes: Vec<String> = storage.iter().map(|s| s.addr("grpc").to_string()).collect();
        let mut args = vec![
            "insert".to_string(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--storage-node".into(),
            nodes.join(","),
        ];
        args.extend(insert_args.iter().map(|s| s.to_string()));
        let insert = Proc::start(dir.path(), "insert", args);
        let mut args: Vec<String> = vec![
            "select".into(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--storage-node".into(),
            nodes.join(","),
        ];
        args.extend(select_args.iter().map(|s| s.to_string()));
        let select = Proc::start(dir.path(), "select", args);
        Cluster {
            dir,
            storage,
            insert,
            select,
        }
    }

    /// Kills storage node `i` with SIGKILL and starts it again on the same addresses and
    /// data directory.
    pub fn kill9_and_restart_storage(&mut self, i: usize) {
        let grpc = self.storage[i].addr("grpc").to_string();
        let http = self.storage[i].addr("http").to_string();
        let data = self.dir.path().join(format!("storage-{i}"));
        self.storage[i].restart_with(storage_args(&data, &grpc, &http));
    }

    /// Base URL of the insert for tenant `tenant`, e.g. `http://127.0.0.1:4000/insert/0/prometheus`.
    pub fn insert_url(&self, tenant: &str) -> String {
        format!("http://{}/insert/{tenant}/prometheus", self.insert.addr("http"))
    }

    /// Base URL of the select API for `tenant`, ending in `/api/v1`.
    pub fn select_api(&self, tenant: &str) -> String {
        format!("http://{}/select/{tenant}/prometheus/api/v1", self.select.addr("http"))
    }

    /// Flushes every storage node's head to blocks.
    pub async fn flush(&self, client: &reqwest::Client) {
        for s in &self.storage {
            let url = format!("http://{}/internal/force_flush", s.addr("http"));
            let resp = client.post(&url).send().await.expect("force_flush");
            assert!(
                resp.status().is_success(),
                "force_flush on {}: {}",
                s.name,
                resp.status()
            );
        }
    }
}

/// Arguments of `cairn storage` for a data directory and two addresses.
pub fn storage_args(data: &Path, grpc: &str, http: &str) -> Vec<String> {
    vec![
        "storage".into(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
        "--grpc-listen".into(),
        grpc.into(),
        "--http-listen".into(),
        http.into(),
    ]
}

/// A series for a remote-write request.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
    }
}

/// A snappy-compressed remote-write body.
pub fn remote_write_body(series: Vec<TimeSeries>) -> Vec<u8> {
    let raw = WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).expect("snappy")
}

/// POSTs a remote-write body; returns status and response text.
pub async fn post_remote_write(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, String) {
    let resp = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("remote write request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// GETs a JSON document from the select API; panics on a non-success status.
pub async fn get_json(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> serde_json::Value {
    let resp = client.get(url).query(query).send().await.expect("select request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "GET {url} {query:?}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// The `/metrics` page of the process serving HTTP at `addr`.
pub async fn metrics_page(client: &reqwest::Client, addr: SocketAddr) -> String {
    client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of a counter or gauge (summed over its label sets) in a Prometheus text page.
pub fn metric_value(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ') | Some(b'{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of one series of a metric, written as in the page (e.g.
/// `requests_total{outcome="hit"}`), in a Prometheus text page; 0 when absent.
pub fn series_value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .sum()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
