//! 1,000 series through remote write land on both storage nodes and all come back.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_series_are_sharded_and_all_read_back() {
    let cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let t0 = now_ms() - 60_000;
    let all: Vec<_> = (0..1000)
        .map(|i| {
            let id = format!("{i:04}");
            series(
                &[("__name__", "shard_test"), ("id", id.as_str()), ("job", "sharding")],
                &[(t0, i as f64), (t0 + 15_000, i as f64 + 0.5)],
            )
        })
        .collect();
    for chunk in all.chunks(250) {
        let (status, text) = post_remote_write(
            &client,
            &format!("{}/api/v1/write", cluster.insert_url("0")),
            remote_write_body(chunk.to_vec()),
        )
        .await;
        assert_eq!(status, 204, "{text}");
    }
    cluster.flush(&client).await;

    // Each node took a share, and the shares add up to every sample exactly once.
    let mut per_node = Vec::new();
    for s in &cluster.storage {
        let page = metrics_page(&client, s.addr("http")).await;
        per_node.push(metric_value(&page, "cairn_storage_rows_ingested_total"));
    }
    assert!(
        per_node.iter().all(|&n| n >= 500.0),
        "each node should hold a fair share: {per_node:?}"
    );
    assert_eq!(per_node.iter().sum::<f64>(), 2000.0, "{per_node:?}");

    let doc = get_json(
        &client,
        &format!("{}/series", cluster.select_api("0")),
        &[
            ("match[]", "shard_test".to_string()),
            ("start", ((t0 - 1000) / 1000).to_string()),
            ("end", ((t0 + 20_000) / 1000).to_string()),
        ],
    )
    .await;
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["isPartial"], false);
    let data = doc["data"].as_array().expect("series list");
    let mut ids: Vec<&str> = data.iter().map(|s| s["id"].as_str().expect("id label")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000);

    // And the values: the sum over all series at t0+15s is sum(i + 0.5).
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", "sum(shard_test)".to_string()),
            ("time", format!("{}", (t0 + 15_000) as f64 / 1000.0)),
        ],
    )
    .await;
    let want = (0..1000).map(|i| i as f64 + 0.5).sum::<f64>();
    assert_eq!(doc["data"]["result"][0]["value"][1], format!("{want}"));
    assert_eq!(doc["isPartial"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_see_each_other() {
    let cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let t = now_ms() - 10_000;
    let body = remote_write_body(vec![series(
        &[("__name__", "tenant_metric"), ("who", "a")],
        &[(t, 1.0)],
    )]);
    let (status, text) = post_remote_write(&client, &format!("{}/api/v1/write", cluster.insert_url("7:3")), body).await;
    assert_eq!(status, 204, "{text}");
    let time = format!("{}", t as f64 / 1000.0);
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("7:3")),
        &[("query", "tenant_metric".into()), ("time", time.clone())],
    )
    .await;
    assert_eq!(doc["data"]["result"].as_array().map(Vec::len), Some(1));
    for other in ["0", "7", "3:7"] {
        let doc = get_json(
            &client,
            &format!("{}/query", cluster.select_api(other)),
            &[("query", "tenant_metric".into()), ("time", time.clone())],
        )
        .await;
        assert_eq!(
            doc["data"]["result"].as_array().map(Vec::len),
            Some(0),
            "tenant {other}"
        );
    }
}
