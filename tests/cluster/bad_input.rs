//! Bad input gets a 4xx that names the problem, and never costs the valid series of the
//! same request.

use crate::support::*;

async fn post(client: &reqwest::Client, url: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut req = client.post(url).body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_gets_a_4xx_naming_it() {
    let cluster = Cluster::start(2, &["--max-request-bytes", "65536"]);
    let client = reqwest::Client::new();
    let write = format!("{}/api/v1/write", cluster.insert_url("0"));

    let (status, text) = post(&client, &write, Some("snappy"), b"this is not snappy".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not snappy"), "{text}");

    let not_proto = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff")
        .expect("snappy");
    let (status, text) = post(&client, &write, Some("snappy"), not_proto).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("protobuf"), "{text}");

    let big = vec![7u8; 100_000];
    let (status, text) = post(&client, &write, Some("snappy"), big).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("--max-request-bytes"), "{text}");

    // Small on the wire, large once decompressed.
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 1_000_000])
        .expect("snappy");
    assert!(bomb.len() < 65536);
    let (status, text) = post(&client, &write, Some("snappy"), bomb).await;
    assert_eq!(status, 413, "{text}");

    let bad_tenant = write.replace("/insert/0/", "/insert/acme/");
    let (status, text) = post(&client, &bad_tenant, Some("snappy"), remote_write_body(vec![])).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid tenant \"acme\""), "{text}");

    // A request mixing valid and invalid series: 400 naming the bad one, the good stored.
    let t = now_ms() - 30_000;
    let body = remote_write_body(vec![
        series(&[("__name__", "mixed_ok"), ("n", "1")], &[(t, 1.0)]),
        series(&[("__name__", "mixed_bad"), ("", "empty name")], &[(t, 2.0)]),
        series(&[("__name__", "mixed_ok"), ("n", "2")], &[(t, 3.0)]),
    ]);
    let (status, text) = post(&client, &write, Some("snappy"), body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("empty label name"), "{text}");
    assert!(text.contains("2 series stored"), "{text}");
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", "sum(mixed_ok)".into()),
            ("time", format!("{}", t as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["value"][1], "4");
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[
            ("query", "mixed_bad".into()),
            ("time", format!("{}", t as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(doc["data"]["result"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_store_good_lines_and_name_bad_ones() {
    let cluster = Cluster::start(1, &[]);
    let client = reqwest::Client::new();
    let t = now_ms() - 20_000;
    let json_body = format!(
        "{{\"metric\":{{\"__name__\":\"json_import\",\"job\":\"a\"}},\"values\":[1.5,\"NaN\"],\"timestamps\":[{t},{}]}}\nnot json at all\n",
        t + 1000
    );
    let (status, text) = post(
        &client,
        &format!("{}/api/v1/import", cluster.insert_url("0")),
        None,
        json_body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("line 2"), "{text}");

    let text_body = format!("# TYPE text_import gauge\ntext_import{{le=\"+Inf\"}} 7 {t}\ntext_import{{broken 1\n");
    let (status, text) = post(
        &client,
        &format!("{}/api/v1/import/prometheus", cluster.insert_url("0")),
        None,
        text_body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("line 3"), "{text}");

    let time = format!("{}", t as f64 / 1000.0);
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[("query", "json_import".into()), ("time", time.clone())],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["value"][1], "1.5");
    let doc = get_json(
        &client,
        &format!("{}/query", cluster.select_api("0")),
        &[("query", "text_import".into()), ("time", time)],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["metric"]["le"], "+Inf");
    assert_eq!(doc["data"]["result"][0]["value"][1], "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_errors_have_prometheus_shape() {
    let cluster = Cluster::start(1, &[]);
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/query", cluster.select_api("0")))
        .query(&[("query", "sum(")])
        .send()
        .await
        .expect("query");
    assert_eq!(resp.status().as_u16(), 400);
    let doc: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["errorType"], "bad_data");
    assert!(doc["error"].as_str().is_some_and(|e| !e.is_empty()));

    let resp = client
        .get(format!("{}/query_range", cluster.select_api("0")))
        .query(&[("query", "up"), ("start", "100"), ("end", "50"), ("step", "10")])
        .send()
        .await
        .expect("query_range");
    assert_eq!(resp.status().as_u16(), 400);

    let resp = client
        .post(format!("{}/query", cluster.select_api("0")))
        .form(&[("query", "1+1"), ("time", "1700000000")])
        .send()
        .await
        .expect("POST query");
    let doc: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(doc["data"]["resultType"], "scalar");
    assert_eq!(doc["data"]["result"], serde_json::json!([1700000000, "2"]));
}
