//! Query API behaviour clients rely on: limits fail a query with a clear error, special
//! values are written as Prometheus writes them, partial answers are flagged or refused.

use crate::support::*;

async fn get_raw(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> (u16, serde_json::Value) {
    let resp = client.get(url).query(query).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

async fn write(cluster: &Cluster, client: &reqwest::Client, series: Vec<cairn_proto::prometheus::TimeSeries>) {
    let url = format!("{}/api/v1/write", cluster.insert_url("0"));
    let (status, text) = post_remote_write(client, &url, remote_write_body(series)).await;
    assert_eq!(status, 204, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fail_the_query_with_a_clear_error() {
    let cluster = Cluster::start_with(
        1,
        &[],
        &["--search-max-series", "3", "--search-max-samples-per-query", "25"],
    );
    let client = reqwest::Client::new();
    let t0 = now_ms() - 60_000;
    let ids: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let series_list = ids
        .iter()
        .map(|i| {
            let samples: Vec<(i64, f64)> = (0..5).map(|k| (t0 + k * 1000, k as f64)).collect();
            series(&[("__name__", "limit_test"), ("i", i.as_str())], &samples)
        })
        .collect();
    write(&cluster, &client, series_list).await;
    let api = cluster.select_api("0");
    let at = format!("{}", (t0 + 4_000) as f64 / 1000.0);

    let (status, doc) = get_raw(
        &client,
        &format!("{api}/query"),
        &[("query", "limit_test".into()), ("time", at.clone())],
    )
    .await;
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errorType"], "execution");
    let error = doc["error"].as_str().unwrap_or("");
    assert!(
        error.contains("max_series=3") && error.contains("--search-max-series"),
        "{error}"
    );

    // Three series fit the series limit; 3 × 5 = 15 samples fit the sample limit.
    let (status, doc) = get_raw(
        &client,
        &format!("{api}/query"),
        &[("query", r#"limit_test{i=~"[0-2]"}[1m]"#.into()), ("time", at.clone())],
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["data"]["result"].as_array().map(Vec::len), Some(3));

    // Sixty seconds on, a 1 s subquery over those three series holds 3 × 60 points in
    // memory at once: more than 25.
    let later = format!("{}", (t0 + 64_000) as f64 / 1000.0);
    let (status, doc) = get_raw(
        &client,
        &format!("{api}/query"),
        &[
            ("query", r#"sum_over_time(limit_test{i=~"[0-2]"}[1m:1s])"#.into()),
            ("time", later),
        ],
    )
    .await;
    assert_eq!(status, 422, "{doc}");
    assert!(
        doc["error"].as_str().unwrap_or("").contains("too many samples"),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_values_are_written_as_prometheus_writes_them() {
    let cluster = Cluster::start(1, &[]);
    let client = reqwest::Client::new();
    let t = now_ms() - 30_000;
    let cases = [
        ("nan", f64::NAN, "NaN"),
        ("pinf", f64::INFINITY, "+Inf"),
        ("ninf", f64::NEG_INFINITY, "-Inf"),
        ("tiny", 1e-7, "1e-07"),
        ("big", 2.5e21, "2.5e+21"),
    ];
    write(
        &cluster,
        &client,
        cases
            .iter()
            .map(|(k, v, _)| series(&[("__name__", "special"), ("k", k)], &[(t, *v)]))
            .collect(),
    )
    .await;
    let api = cluster.select_api("0");
    for (k, _, want) in cases {
        let doc = get_json(
            &client,
            &format!("{api}/query"),
            &[
                ("query", format!(r#"special{{k="{k}"}}"#)),
                ("time", format!("{}", t as f64 / 1000.0)),
            ],
        )
        .await;
        assert_eq!(doc["data"]["result"][0]["value"][1], want, "{k}");
    }
    let doc = get_json(
        &client,
        &format!("{api}/query"),
        &[("query", "1 / 0".into()), ("time", "100".into())],
    )
    .await;
    assert_eq!(doc["data"]["result"], serde_json::json!([100, "+Inf"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_storage_node_makes_answers_partial_or_fails_them_on_request() {
    let mut cluster = Cluster::start(2, &[]);
    let client = reqwest::Client::new();
    let t = now_ms() - 30_000;
    let ids: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    write(
        &cluster,
        &client,
        ids.iter()
            .map(|i| series(&[("__name__", "partial_test"), ("i", i.as_str())], &[(t, 1.0)]))
            .collect(),
    )
    .await;
    let api = cluster.select_api("0");
    let at = format!("{}", t as f64 / 1000.0);
    let doc = get_json(
        &client,
        &format!("{api}/query"),
        &[("query", "count(partial_test)".into()), ("time", at.clone())],
    )
    .await;
    assert_eq!(doc["isPartial"], false);
    assert_eq!(doc["data"]["result"][0]["value"][1], "40");

    cluster.storage[1].kill9();
    let doc = get_json(
        &client,
        &format!("{api}/query"),
        &[("query", "count(partial_test)".into()), ("time", at.clone())],
    )
    .await;
    assert_eq!(doc["isPartial"], true, "{doc}");
    let count: f64 = doc["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(count > 0.0 && count < 40.0, "{doc}");
    assert!(
        doc["warnings"][0].as_str().unwrap_or("").contains("did not answer"),
        "{doc}"
    );

    let (status, doc) = get_raw(
        &client,
        &format!("{api}/query"),
        &[
            ("query", "count(partial_test)".into()),
            ("time", at),
            ("deny_partial_response", "1".into()),
        ],
    )
    .await;
    assert_eq!(status, 503, "{doc}");
    assert_eq!(doc["errorType"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_endpoints_answer() {
    let cluster = Cluster::start(1, &[]);
    let client = reqwest::Client::new();
    let api = cluster.select_api("0");
    let doc = get_json(&client, &format!("{api}/status/buildinfo"), &[]).await;
    assert_eq!(doc["data"]["version"], "2.24.0");
    let doc = get_json(
        &client,
        &format!("{api}/format_query"),
        &[("query", "sum(rate(x[5m]))by(job)".into())],
    )
    .await;
    assert_eq!(doc["data"], "sum by (job) (rate(x[5m]))");
    // Grafana's "Save & test".
    let doc = get_json(&client, &format!("{api}/query"), &[("query", "1+1".into())]).await;
    assert_eq!(doc["data"]["resultType"], "scalar");
    assert_eq!(doc["data"]["result"][1], "2");
    for path in ["query_exemplars", "rules", "metadata"] {
        let doc = get_json(&client, &format!("{api}/{path}"), &[]).await;
        assert_eq!(doc["status"], "success", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_timeout_parameters() {
    let cluster = Cluster::start(1, &[]);
    let client = reqwest::Client::new();
    let t = now_ms() - 30_000;
    let values = ["a", "b", "c", "d", "e"];
    write(
        &cluster,
        &client,
        values
            .iter()
            .map(|v| series(&[("__name__", "lim"), ("v", v)], &[(t, 1.0)]))
            .collect(),
    )
    .await;
    let api = cluster.select_api("0");
    let span = [
        ("start", format!("{}", (t - 60_000) / 1000)),
        ("end", format!("{}", (t + 60_000) / 1000)),
    ];

    let mut q = vec![("limit", "2".to_string())];
    q.extend(span.iter().cloned());
    let doc = get_json(&client, &format!("{api}/label/v/values"), &q).await;
    assert_eq!(doc["data"], serde_json::json!(["a", "b"]));
    assert!(doc["warnings"][0].as_str().unwrap_or("").contains("truncated"), "{doc}");

    let mut q = vec![("match[]", "lim".to_string()), ("limit", "3".to_string())];
    q.extend(span.iter().cloned());
    let doc = get_json(&client, &format!("{api}/series"), &q).await;
    assert_eq!(doc["data"].as_array().map(Vec::len), Some(3), "{doc}");

    let at = format!("{}", t as f64 / 1000.0);
    let (status, doc) = get_raw(
        &client,
        &format!("{api}/query"),
        &[
            ("query", "lim".into()),
            ("time", at.clone()),
            ("timeout", "soon".into()),
        ],
    )
    .await;
    assert_eq!(status, 400, "{doc}");
    assert!(doc["error"].as_str().unwrap_or("").contains("\"timeout\""), "{doc}");
    let doc = get_json(
        &client,
        &format!("{api}/query"),
        &[("query", "count(lim)".into()), ("time", at), ("timeout", "5s".into())],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["value"][1], "5");
}
