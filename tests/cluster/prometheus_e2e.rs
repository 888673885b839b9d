//! A real Prometheus scrapes itself every second and remote-writes into the cluster; then
//! Cairn must answer PromQL as Prometheus answers from its own TSDB.
//!
//! Phase 1: Prometheus scrapes and remote-writes for 90 s, then stops cleanly (which
//! flushes its remote-write queue). Phase 2: the same Prometheus TSDB is opened again with
//! no scraping, so both systems hold exactly the same samples, and each query is asked of
//! both at the same evaluation times.
//!
//! The reference is Debian's Prometheus 2.42; Cairn follows Prometheus 3. Two differences
//! between them are kept out of the comparison, because they are version changes, not
//! Cairn's: evaluation times are shifted by half a scrape interval against the sample
//! timestamps, so no sample sits on a range boundary (2.x windows are closed, 3.x
//! left-open); and they start 62 s after the first scrape, so every `[1m]` window lies
//! after the start of every series (2.x and 3.x extrapolate `rate` differently towards a
//! series start inside the window: 2.x clamps to the counter's zero point before the
//! 110% threshold test, 3.x after).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// The PromQL queries compared, instant and range.
const QUERIES: &[&str] = &[
    "up",
    "rate(prometheus_http_requests_total[1m])",
    "sum by (job) (rate(prometheus_tsdb_head_samples_appended_total[1m]))",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[1m])))",
    "topk(3, prometheus_tsdb_head_series)",
    "increase(prometheus_http_requests_total[20s])",
    "avg_over_time(scrape_duration_seconds[15s])",
    "count by (handler) (prometheus_http_requests_total)",
    "irate(process_cpu_seconds_total[10s])",
    "max_over_time(go_goroutines[20s]) - min_over_time(go_goroutines[20s])",
    "sum(scrape_samples_scraped) / count(up)",
    "go_memstats_alloc_bytes > 1000",
    "quantile(0.5, rate(prometheus_http_requests_total[30s]))",
    "delta(go_goroutines[20s])",
    "up * on (instance) group_left (version) prometheus_build_info",
    "sum without (instance) (rate(prometheus_tsdb_head_samples_appended_total[30s] offset 5s))",
    "count_values(\"value\", up)",
    "bottomk(2, rate(prometheus_http_requests_total[30s]))",
];

struct Prom {
    child: Child,
    url: String,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_prometheus(dir: &Path, config: &str, tsdb: &Path) -> Prom {
    let port = free_port();
    let cfg = dir.join(format!("prometheus-{port}.yml"));
    std::fs::write(&cfg, config.replace("PORT", &port.to_string())).expect("write config");
    let log = std::fs::File::create(dir.join(format!("prometheus-{port}.log"))).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start prometheus");
    Prom {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, prom: &Prom) {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{}/-/ready", prom.url)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `labels → values` of a vector or matrix answer (a scalar has empty labels).
fn by_series(doc: &serde_json::Value) -> BTreeMap<String, Vec<(f64, String)>> {
    let data = &doc["data"];
    let mut out = BTreeMap::new();
    let point = |p: &serde_json::Value| {
        (
            p[0].as_f64().unwrap_or(f64::NAN),
            p[1].as_str().unwrap_or("").to_string(),
        )
    };
    match data["resultType"].as_str() {
        Some("scalar") => {
            out.insert("{}".to_string(), vec![point(&data["result"])]);
        }
        _ => {
            for s in data["result"].as_array().into_iter().flatten() {
                let key = s["metric"].to_string();
                let points = match s.get("values") {
                    Some(vs) => vs.as_array().into_iter().flatten().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                out.insert(key, points);
            }
        }
    }
    out
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_nan() && y.is_nan() => true,
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

fn assert_same(what: &str, want: &serde_json::Value, got: &serde_json::Value) {
    assert_eq!(
        want["data"]["resultType"], got["data"]["resultType"],
        "{what}: result type"
    );
    let (want_s, got_s) = (by_series(want), by_series(got));
    assert_eq!(
        want_s.keys().collect::<Vec<_>>(),
        got_s.keys().collect::<Vec<_>>(),
        "{what}: series differ\nprometheus: {want}\ncairn: {got}"
    );
    for (key, want_points) in &want_s {
        let got_points = &got_s[key];
        assert_eq!(
            want_points.len(),
            got_points.len(),
            "{what} {key}: point count\nprometheus: {want_points:?}\ncairn: {got_points:?}"
        );
        for (w, g) in want_points.iter().zip(got_points) {
            assert_eq!(w.0, g.0, "{what} {key}: timestamps");
            assert!(
                same_value(&w.1, &g.1),
                "{what} {key} at {}: prometheus {} cairn {}",
                w.0,
                w.1,
                g.1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_answers_as_prometheus_does() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Debian's prometheus is not installed"
        );
        eprintln!("skipped: no `prometheus` binary on PATH (apt-get install prometheus)");
        return;
    }
    let cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let dir = cluster.dir.path().to_path_buf();
    let tsdb = dir.join("prometheus-data");

    // Phase 1: scrape itself every second, remote-write into Cairn.
    let write_url = format!("{}/api/v1/write", cluster.insert_url("0"));
    let scrape_config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:PORT']\nremote_write:\n  - url: {write_url}\n    queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 2000\n"
    );
    let mut prom = start_prometheus(&dir, &scrape_config, &tsdb);
    wait_ready(&client, &prom).await;
    tokio::time::sleep(Duration::from_secs(90)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(prom.child.id().to_string())
        .status();
    let stopped = Instant::now();
    while prom.child.try_wait().expect("wait").is_none() {
        assert!(stopped.elapsed() < Duration::from_secs(90), "prometheus did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(prom);

    // Phase 2: the same TSDB, nothing new written.
    let prom = start_prometheus(&dir, "global:\n  scrape_interval: 1h\n", &tsdb);
    wait_ready(&client, &prom).await;

    // The span of the data and the phase of the scrape timestamps.
    let now = now_ms() as f64 / 1000.0;
    let doc = get_json(
        &client,
        &format!("{}/api/v1/query", prom.url),
        &[("query", "up[10m]".into()), ("time", format!("{now}"))],
    )
    .await;
    let stamps: Vec<i64> = doc["data"]["result"][0]["values"]
        .as_array()
        .expect("up was scraped")
        .iter()
        .filter_map(|p| p[0].as_f64())
        .map(|t| (t * 1000.0).round() as i64)
        .collect();
    assert!(stamps.len() >= 80, "only {} scrapes", stamps.len());
    let (first, last) = (stamps[0], stamps[stamps.len() - 1]);
    let t_end = last - 1000 + 500;
    let t_start = first + 62_000 + 500;
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);

    let cairn_api = cluster.select_api("0");
    for query in QUERIES {
        for t in [t_end, t_end - 7_000, t_start] {
            let params = [("query", query.to_string()), ("time", secs(t))];
            let want = get_json(&client, &format!("{}/api/v1/query", prom.url), &params).await;
            let got = get_json(&client, &format!("{cairn_api}/query"), &params).await;
            assert_same(&format!("instant {query} at {}", secs(t)), &want, &got);
        }
        let params = [
            ("query", query.to_string()),
            ("start", secs(t_start)),
            ("end", secs(t_end)),
            ("step", "2".to_string()),
        ];
        let want = get_json(&client, &format!("{}/api/v1/query_range", prom.url), &params).await;
        let got = get_json(&client, &format!("{cairn_api}/query_range"), &params).await;
        assert_same(&format!("range {query}"), &want, &got);
    }

    let params = [("start", secs(first)), ("end", secs(last))];
    let want = get_json(&client, &format!("{}/api/v1/label/__name__/values", prom.url), &params).await;
    let got = get_json(&client, &format!("{cairn_api}/label/__name__/values"), &params).await;
    assert_eq!(want["data"], got["data"], "metric names");
    let params = [
        ("match[]", "prometheus_http_requests_total".to_string()),
        ("start", secs(first)),
        ("end", secs(last)),
    ];
    let want = get_json(&client, &format!("{}/api/v1/series", prom.url), &params).await;
    let got = get_json(&client, &format!("{cairn_api}/series"), &params).await;
    assert_eq!(want["data"], got["data"], "series of prometheus_http_requests_total");
}
