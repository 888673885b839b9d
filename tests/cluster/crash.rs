//! Durability: a storage node killed with SIGKILL right after acknowledging writes loses
//! none of them.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_samples_survive_kill_9() {
    let mut cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/write", cluster.insert_url("0"));
    let t0 = now_ms() - 120_000;
    let mut acknowledged = 0usize;
    // 20 requests of 50 series × 10 samples; each acknowledged before the next.
    for batch in 0..20 {
        let body: Vec<_> = (0..50)
            .map(|s| {
                let id = format!("{batch}-{s}");
                let samples: Vec<(i64, f64)> = (0..10)
                    .map(|k| (t0 + k * 1000, (batch * 1000 + s * 10 + k) as f64))
                    .collect();
                series(&[("__name__", "crash_test"), ("id", id.as_str())], &samples)
            })
            .collect();
        let (status, text) = post_remote_write(&client, &url, remote_write_body(body)).await;
        assert_eq!(status, 204, "{text}");
        acknowledged += 500;
    }
    // No flush: the samples are only in the WAL and the head.
    cluster.kill9_and_restart_storage(0);
    cluster.kill9_and_restart_storage(1);

    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", "count_over_time(crash_test[1m])".to_string()),
            ("time", format!("{}", (t0 + 9_500) as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(doc["isPartial"], false);
    let result = doc["data"]["result"].as_array().expect("vector");
    assert_eq!(result.len(), 1000, "every series is back");
    let total: f64 = result
        .iter()
        .map(|r| {
            r["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(total as usize, acknowledged, "every acknowledged sample is back");

    // The exact values too, for one series.
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", r#"crash_test{id="19-49"}[1m]"#.to_string()),
            ("time", format!("{}", (t0 + 9_500) as f64 / 1000.0)),
        ],
    )
    .await;
    let values: Vec<&str> = doc["data"]["result"][0]["values"]
        .as_array()
        .expect("matrix")
        .iter()
        .map(|p| p[1].as_str().unwrap_or(""))
        .collect();
    let want: Vec<String> = (0..10).map(|k| format!("{}", 19 * 1000 + 49 * 10 + k)).collect();
    assert_eq!(values, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_dead_node_get_503_and_succeed_after_restart() {
    let mut cluster = Cluster::start(1, &["--storage-write-timeout", "1s"]);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/write", cluster.insert_url("0"));
    let t = now_ms() - 5_000;
    cluster.storage[0].kill9();
    let body = remote_write_body(vec![series(&[("__name__", "retry_test")], &[(t, 42.0)])]);
    let (status, text) = post_remote_write(&client, &url, body.clone()).await;
    assert_eq!(status, 503, "the sender must keep the data and retry: {text}");
    cluster.kill9_and_restart_storage(0);
    let (status, text) = post_remote_write(&client, &url, body).await;
    assert_eq!(status, 204, "{text}");
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", "retry_test".into()),
            ("time", format!("{}", t as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["value"][1], "42");
}
