//! The range query result cache seen from a client: a repeated range query is answered
//! from kept steps plus the later ones, with the same answer as a full evaluation, and a
//! sample that arrives late inside the kept steps shows in the next answer.

use crate::support::*;

/// The `outcome` count of `cairn_select_result_cache_requests_total` on the select's
/// `/metrics`.
async fn cache_requests(client: &reqwest::Client, cluster: &Cluster, outcome: &str) -> f64 {
    let page = metrics_page(client, cluster.select.addr("http")).await;
    series_value(
        &page,
        &format!("cairn_select_result_cache_requests_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_range_queries_reuse_kept_steps_and_see_late_samples() {
    let cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let now = now_ms();
    let t0 = (now - 30 * 60_000) / 60_000 * 60_000;
    let end = (now - 60_000) / 60_000 * 60_000;
    let mut series_list = Vec::new();
    for job in ["a", "b", "c", "d"] {
        let samples: Vec<(i64, f64)> = (0..)
            .map(|i| (t0 + i * 15_000, i as f64))
            .take_while(|&(t, _)| t <= end)
            .collect();
        series_list.push(series(&[("__name__", "m_total"), ("job", job)], &samples));
    }
    let url = format!("{}/api/v1/write", cluster.insert_url("0"));
    let (status, text) = post_remote_write(&client, &url, remote_write_body(series_list)).await;
    assert_eq!(status, 204, "{text}");

    let api = cluster.select_api("0");
    let range = |query: &str, nocache: bool| {
        let mut q = vec![
            ("query", query.to_string()),
            ("start", (t0 as f64 / 1000.0).to_string()),
            ("end", (end as f64 / 1000.0).to_string()),
            ("step", "60s".to_string()),
        ];
        if nocache {
            q.push(("nocache", "1".to_string()));
        }
        q
    };
    let query = "sum(rate(m_total[2m])) + sum(m_total)";
    let full = get_json(&client, &format!("{api}/query_range"), &range(query, true)).await;
    let first = get_json(&client, &format!("{api}/query_range"), &range(query, false)).await;
    let second = get_json(&client, &format!("{api}/query_range"), &range(query, false)).await;
    assert_eq!(first["data"], full["data"]);
    assert_eq!(
        second["data"], full["data"],
        "an answer from kept steps equals a full evaluation"
    );
    assert!(cache_requests(&client, &cluster, "hit").await >= 1.0);
    let points = full["data"]["result"][0]["values"].as_array().map_or(0, Vec::len);
    // Every step but the first, whose rate window holds one sample only.
    assert_eq!(points as i64, (end - t0) / 60_000);

    // A late sample of a new series, 20 minutes back: inside the kept steps.
    let late_t = t0 + 10 * 60_000;
    let late = series(&[("__name__", "m_total"), ("job", "late")], &[(late_t, 1000.0)]);
    let (status, text) = post_remote_write(&client, &url, remote_write_body(vec![late])).await;
    assert_eq!(status, 204, "{text}");
    let after = get_json(&client, &format!("{api}/query_range"), &range(query, false)).await;
    let full_after = get_json(&client, &format!("{api}/query_range"), &range(query, true)).await;
    assert_eq!(
        after["data"], full_after["data"],
        "the late sample shows in the next answer"
    );
    assert_ne!(after["data"], full["data"]);
    assert!(cache_requests(&client, &cluster, "stale").await >= 1.0);
    // And the answer kept after it is exact again.
    let again = get_json(&client, &format!("{api}/query_range"), &range(query, false)).await;
    assert_eq!(again["data"], full_after["data"]);
}
