//! The insert's label cache: label sets sent again are routed from the cache, and what
//! is stored is what the full decoding stores, tenant by tenant.

use crate::support::*;

/// `count_over_time(label_cache_test[5m])` and `sum(label_cache_test)` of `tenant` at
/// `at_ms`: (series, total count, sum of the latest values).
async fn read_back(cluster: &Cluster, client: &reqwest::Client, tenant: &str, at_ms: i64) -> (usize, f64, f64) {
    let url = format!("{}/query", cluster.select_api(tenant));
    let time = format!("{}", at_ms as f64 / 1000.0);
    let counts = get_json(
        client,
        &url,
        &[
            ("query", "count_over_time(label_cache_test[5m])".to_string()),
            ("time", time.clone()),
        ],
    )
    .await;
    assert_eq!(counts["status"], "success", "{counts}");
    let result = counts["data"]["result"].as_array().expect("vector");
    let total: f64 = result
        .iter()
        .map(|r| r["value"][1].as_str().expect("value").parse::<f64>().expect("number"))
        .sum();
    let sum = get_json(
        client,
        &url,
        &[("query", "sum(label_cache_test)".to_string()), ("time", time)],
    )
    .await;
    let latest = sum["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0.0, |v| v.parse().expect("number"));
    (result.len(), total, latest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_sets_sent_again_are_stored_as_the_first_time() {
    let cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let t0 = now_ms() - 60_000;
    // Labels out of order and one empty value (dropped), as senders may write them.
    let batch = |t: i64, base: f64| -> Vec<u8> {
        remote_write_body(
            (0..200)
                .map(|i| {
                    let id = format!("{i:03}");
                    series(
                        &[
                            ("job", "cache"),
                            ("__name__", "label_cache_test"),
                            ("id", &id),
                            ("empty", ""),
                        ],
                        &[(t, base + i as f64)],
                    )
                })
                .collect(),
        )
    };
    // Tenant 0 twice (the second time from the cache), then tenant 7 with the same label
    // bytes: its series must not land in tenant 0.
    for (tenant, t, base) in [("0", t0, 0.0), ("0", t0 + 15_000, 1000.0), ("7", t0 + 15_000, 5000.0)] {
        let (status, text) = post_remote_write(
            &client,
            &format!("{}/api/v1/write", cluster.insert_url(tenant)),
            batch(t, base),
        )
        .await;
        assert_eq!(status, 204, "{text}");
    }
    let page = metrics_page(&client, cluster.insert.addr("http")).await;
    let hits = series_value(&page, r#"cairn_insert_label_cache_requests_total{outcome="hit"}"#);
    assert_eq!(hits, 200.0, "the second write of tenant 0 is served from the cache");

    let at = t0 + 15_000;
    let sum = |base: f64| (0..200).map(|i| base + i as f64).sum::<f64>();
    assert_eq!(read_back(&cluster, &client, "0", at).await, (200, 400.0, sum(1000.0)));
    assert_eq!(read_back(&cluster, &client, "7", at).await, (200, 200.0, sum(5000.0)));

    // The dropped empty label is not part of the stored series.
    let doc = get_json(
        &client,
        &format!("{}/series", cluster.select_api("0")),
        &[("match[]", "label_cache_test".to_string())],
    )
    .await;
    let first = &doc["data"][0];
    assert_eq!(first["job"], "cache", "{doc}");
    assert!(first.get("empty").is_none(), "{first}");
}
