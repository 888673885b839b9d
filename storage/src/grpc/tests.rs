//! A storage node served over real sockets: write and search through gRPC, restart,
//! and read the same samples back from blocks written at shutdown.

use std::time::Duration;

use crate::StorageConfig;
use cairn_common::block;
use cairn_proto::storage::storage_client::StorageClient;
use cairn_proto::storage::{
    Label, LabelValuesRequest, Matcher, SearchRequest, Selector, Series, SeriesRequest, Tenant, WriteRequest,
    matcher::Op,
};
use tokio_util::sync::CancellationToken;

fn label(name: &str, value: &str) -> cairn_proto::storage::Label {
    cairn_proto::storage::Label {
        name: name.into(),
        value: value.into(),
    }
}

/// Sends a bodiless HTTP/1.1 request and returns the whole response as text.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect HTTP");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut out = String::new();
    conn.read_to_string(&mut out).await.expect("read");
    out
}

async fn start(dir: &std::path::Path) -> (CancellationToken, tokio::task::JoinHandle<()>, String) {
    let addr_file = dir.join("addrs");
    let _ = std::fs::remove_file(&addr_file);
    let mut cfg = StorageConfig::for_dir(dir.join("data"));
    cfg.listen_addr_file = Some(addr_file.clone());
    let token = CancellationToken::new();
    let t = token.clone();
    let task = tokio::spawn(async move {
        crate::run(cfg, t).await.expect("storage node runs");
    });
    for _ in 0..200 {
        if let Some(a) = cairn_common::listen_addr_file::read(&addr_file, "grpc") {
            return (token, task, format!("http://{a}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("storage node did not write its listen address file");
}

fn search(start_ms: i64, end_ms: i64, max_series: u64) -> SearchRequest {
    SearchRequest {
        tenant: Some(Tenant {
            account_id: 5,
            project_id: 0,
        }),
        selector: Some(Selector {
            matchers: vec![Matcher {
                op: Op::Equal as i32,
                name: "__name__".into(),
                value: "up".into(),
            }],
        }),
        start_ms,
        end_ms,
        max_series,
        accept_blocks: false,
        accept_keys: false,
    }
}

/// The series of a search answer, with their samples (sent as `samples_le`) decoded into
/// `timestamps_ms` and `values`. The same search is also asked for as blocks with keys
/// (`accept_blocks`, `accept_keys`): read as a select node reads them, they must give the
/// same series and samples, bit for bit.
async fn collect(
    client: &mut StorageClient<tonic::transport::Channel>,
    req: SearchRequest,
) -> Result<Vec<Series>, tonic::Status> {
    let (start_ms, end_ms) = (req.start_ms, req.end_ms);
    let mut stream = client.search(req.clone()).await?.into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await? {
        for mut s in msg.series {
            assert!(
                s.timestamps_ms.is_empty() && s.values.is_empty() && s.blocks.is_empty(),
                "answers use samples_le"
            );
            (s.timestamps_ms, s.values) = cairn_common::samples_le::decode(&s.samples_le).expect("samples_le");
            s.samples_le.clear();
            out.push(s);
        }
    }
    let as_blocks = SearchRequest {
        accept_blocks: true,
        accept_keys: true,
        ..req
    };
    let mut stream = client.search(as_blocks).await?.into_inner();
    let mut from_blocks = Vec::new();
    while let Some(msg) = stream.message().await? {
        for s in msg.series {
            assert!(s.samples_le.is_empty() && !s.blocks.is_empty(), "answers use blocks");
            assert!(s.labels.is_empty() && !s.key.is_empty(), "answers use keys");
            let labels = cairn_common::Labels::from_key_labels(&s.key).expect("key decodes");
            let (ts, vs) = block::read::samples_in_range(&s.blocks, start_ms, end_ms).expect("blocks decode");
            // A block may overlap the range without a sample in it.
            if !ts.is_empty() {
                let bits: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
                from_blocks.push((labels.into_proto(), ts, bits));
            }
        }
    }
    // A long series comes as consecutive samples_le pieces; as blocks, in one entry.
    let mut from_samples: Vec<(Vec<Label>, Vec<i64>, Vec<u64>)> = Vec::new();
    for s in &out {
        let bits = s.values.iter().map(|v| v.to_bits());
        match from_samples.last_mut() {
            Some(last) if last.0 == s.labels => {
                last.1.extend(&s.timestamps_ms);
                last.2.extend(bits);
            }
            _ => from_samples.push((s.labels.clone(), s.timestamps_ms.clone(), bits.collect())),
        }
    }
    assert_eq!(from_blocks, from_samples, "blocks and samples_le answers differ");
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_search_restart_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ts: Vec<i64> = (0..10).map(|i| now - 100_000 + i * 10_000).collect();
    let write = WriteRequest {
        tenant: Some(Tenant {
            account_id: 5,
            project_id: 0,
        }),
        series: vec![
            Series {
                labels: vec![label("__name__", "up"), label("job", "a")],
                timestamps_ms: ts.clone(),
                values: ts.iter().map(|t| (*t % 1000) as f64).collect(),
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            },
            Series {
                labels: vec![label("__name__", "up"), label("job", "b")],
                timestamps_ms: vec![now],
                values: vec![f64::from_bits(cairn_common::STALE_NAN_BITS)],
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            },
            // Malformed: no values.
            Series {
                labels: vec![label("__name__", "up"), label("job", "c")],
                timestamps_ms: vec![now],
                values: vec![],
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            },
        ],
        ..Default::default()
    };

    let (token, task, url) = start(dir.path()).await;
    let mut client = StorageClient::connect(url).await.expect("connect");
    let err = client.write(write.clone()).await.expect_err("one series is malformed");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("timestamps but 0 values"), "{}", err.message());
    let got = collect(&mut client, search(now - 200_000, now, 0))
        .await
        .expect("search");
    assert_eq!(got.len(), 2, "the valid series of the request are stored");
    // The Series rpc gives the same label sets, in the same order, as labels or as keys.
    let mut answers = Vec::new();
    for accept_keys in [false, true] {
        let req = SeriesRequest {
            tenant: write.tenant,
            selectors: search(0, 0, 0).selector.into_iter().collect(),
            start_ms: now - 200_000,
            end_ms: now,
            limit: 0,
            accept_keys,
        };
        let mut stream = client.series(req).await.expect("series").into_inner();
        let mut got = Vec::new();
        while let Some(msg) = stream.message().await.expect("series message") {
            for s in msg.series {
                assert_eq!(s.key.is_empty(), !accept_keys, "keys only when accepted");
                got.push(match accept_keys {
                    true => cairn_common::Labels::from_key_labels(&s.key).expect("key decodes"),
                    false => cairn_common::Labels::from_proto(s.labels),
                });
            }
        }
        answers.push(got);
    }
    assert_eq!(answers[0].len(), 2);
    assert_eq!(answers[0], answers[1]);
    let too_many = collect(&mut client, search(now - 200_000, now, 1))
        .await
        .expect_err("limit");
    assert_eq!(too_many.code(), tonic::Code::ResourceExhausted);
    assert!(too_many.message().contains("max_series=1"), "{}", too_many.message());
    // Flush over HTTP; the samples are then read from blocks, and /metrics counts them.
    let http_addr = cairn_common::listen_addr_file::read(&dir.path().join("addrs"), "http").expect("http addr");
    let flushed = http(http_addr, "POST", "/internal/force_flush").await;
    assert!(flushed.starts_with("HTTP/1.1 200"), "{flushed}");
    assert!(flushed.contains("flushed 11 samples of 2 series"), "{flushed}");
    let got = collect(&mut client, search(now - 200_000, now, 0))
        .await
        .expect("search after flush");
    assert_eq!(got.iter().map(|s| s.timestamps_ms.len()).sum::<usize>(), 11);
    let metrics = http(http_addr, "GET", "/metrics").await;
    assert!(metrics.contains("cairn_storage_rows_ingested_total"), "{metrics}");
    assert!(metrics.contains("cairn_storage_flushes_total"), "{metrics}");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("node stops within 20 s with a client still connected")
        .expect("node stops cleanly");

    let (token, task, url) = start(dir.path()).await;
    let mut client = StorageClient::connect(url).await.expect("reconnect");
    let got = collect(&mut client, search(now - 200_000, now, 0))
        .await
        .expect("search after restart");
    let a = got
        .iter()
        .find(|s| s.labels.contains(&label("job", "a")))
        .expect("series a");
    assert_eq!(a.timestamps_ms, ts);
    let b = got
        .iter()
        .find(|s| s.labels.contains(&label("job", "b")))
        .expect("series b");
    assert_eq!(b.values[0].to_bits(), cairn_common::STALE_NAN_BITS);
    // Only part of the range: samples are cut to it.
    let part = collect(&mut client, search(ts[2], ts[4], 0))
        .await
        .expect("partial range");
    assert_eq!(part.len(), 1);
    assert_eq!(part[0].timestamps_ms, ts[2..=4].to_vec());
    let values = client
        .label_values(LabelValuesRequest {
            tenant: Some(Tenant {
                account_id: 5,
                project_id: 0,
            }),
            name: "job".into(),
            selectors: vec![],
            start_ms: now - 200_000,
            end_ms: now,
            limit: 0,
        })
        .await
        .expect("label values")
        .into_inner();
    assert_eq!(values.values, ["a", "b"]);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("node stops within 20 s with a client still connected")
        .expect("node stops cleanly");
    assert!(
        dir.path().join("data/rocksdb").exists() && dir.path().join("data/wal").exists(),
        "data dir layout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_series_is_streamed_in_pieces_in_time_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ts: Vec<i64> = (0..70_000).map(|i| now - 100_000 + i).collect();
    let (token, task, url) = start(dir.path()).await;
    let mut client = StorageClient::connect(url).await.expect("connect");
    let written = client
        .write(WriteRequest {
            tenant: Some(Tenant {
                account_id: 5,
                project_id: 0,
            }),
            series: vec![Series {
                labels: vec![label("__name__", "up"), label("job", "long")],
                timestamps_ms: ts.clone(),
                values: ts.iter().map(|t| *t as f64).collect(),
                samples_le: Default::default(),
                blocks: Vec::new(),
                key: Default::default(),
            }],
            ..Default::default()
        })
        .await
        .expect("write")
        .into_inner();
    assert_eq!(written.rows_written, 70_000);
    let got = collect(&mut client, search(now - 200_000, now, 1))
        .await
        .expect("search");
    // 65,536 samples per message at most: two pieces, same labels, in time order.
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels, got[1].labels);
    assert_eq!(got[0].timestamps_ms.len(), 65_536);
    let all: Vec<i64> = got.iter().flat_map(|s| s.timestamps_ms.iter().copied()).collect();
    assert_eq!(all, ts);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("node stops within 20 s")
        .expect("node stops cleanly");
}

/// The series IDs of a search the node would answer on the gRPC thread.
fn inline_ids(
    engine: &crate::engine::Engine,
    req: &SearchRequest,
    matchers: &[cairn_common::Matcher],
) -> Option<Vec<u64>> {
    let ids = super::cached_selection(engine, req, matchers)?;
    super::is_small(&ids, req).then(|| ids.iter().collect())
}

/// A search for blocks is answered inline only when its selection is cached and small in
/// series and in series times span; every other search takes the blocking path.
#[test]
fn only_small_cached_block_searches_are_answered_inline() {
    use crate::engine::testing::{block_on, open, series};
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let tenant = cairn_common::Tenant {
        account_id: 5,
        project_id: 0,
    };
    let base = 1_700_000_000_000;
    let few: Vec<_> = (0..3).map(|i| series("up", &format!("j{i}"), &[(base, 1.0)])).collect();
    let many: Vec<_> = (0..=super::INLINE_SEARCH_MAX_SERIES)
        .map(|i| series("many", &format!("j{i}"), &[(base, 1.0)]))
        .collect();
    block_on(engine.write(tenant, few)).expect("write few");
    block_on(engine.write(tenant, many)).expect("write many");
    let name_is =
        |name: &str| vec![cairn_common::Matcher::new(cairn_common::MatchOp::Equal, "__name__", name).expect("matcher")];
    let request = |name: &str, start_ms: i64, end_ms: i64, accept_blocks: bool| SearchRequest {
        tenant: Some(tenant.to_proto()),
        selector: Some(Selector {
            matchers: name_is(name).iter().map(cairn_common::Matcher::to_proto).collect(),
        }),
        start_ms,
        end_ms,
        max_series: 0,
        accept_blocks,
        accept_keys: true,
    };
    let hour = (base - 3_600_000, base);
    let req = request("up", hour.0, hour.1, true);
    assert_eq!(inline_ids(&engine, &req, &name_is("up")), None, "not cached yet");
    let ids: Vec<u64> = engine
        .select_ids(tenant, &name_is("up"), hour.0, hour.1)
        .expect("select")
        .iter()
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(inline_ids(&engine, &req, &name_is("up")), Some(ids));
    let as_samples = request("up", hour.0, hour.1, false);
    assert_eq!(
        inline_ids(&engine, &as_samples, &name_is("up")),
        None,
        "samples_le answers"
    );
    // Three series: two days are within the series-time budget, eight days are not.
    for (days, inline) in [(2, true), (8, false)] {
        let (start, end) = (base - days * 86_400_000, base);
        engine.select_ids(tenant, &name_is("up"), start, end).expect("select");
        let long = request("up", start, end, true);
        assert_eq!(
            inline_ids(&engine, &long, &name_is("up")).is_some(),
            inline,
            "3 series over {days} days"
        );
    }
    engine
        .select_ids(tenant, &name_is("many"), hour.0, hour.1)
        .expect("select");
    let big = request("many", hour.0, hour.1, true);
    assert_eq!(inline_ids(&engine, &big, &name_is("many")), None, "too many series");
    // A new series makes the cached selection stale.
    block_on(engine.write(tenant, vec![series("up", "new", &[(base, 1.0)])])).expect("write new");
    assert_eq!(
        inline_ids(&engine, &req, &name_is("up")),
        None,
        "stale after a new series"
    );
}

/// A search answered inline keeps the series limit: the second search of the same
/// selection (cached by the first) fails like the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answered_inline_keeps_the_series_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let (token, task, url) = start(dir.path()).await;
    let mut client = StorageClient::connect(url).await.expect("connect");
    let series = ["a", "b"]
        .iter()
        .map(|job| Series {
            labels: vec![label("__name__", "up"), label("job", job)],
            timestamps_ms: vec![now - 1_000],
            values: vec![1.0],
            ..Default::default()
        })
        .collect();
    client
        .write(WriteRequest {
            tenant: Some(Tenant {
                account_id: 5,
                project_id: 0,
            }),
            series,
            ..Default::default()
        })
        .await
        .expect("write");
    let limited = SearchRequest {
        accept_blocks: true,
        accept_keys: true,
        ..search(now - 60_000, now, 1)
    };
    for attempt in ["blocking", "inline"] {
        let outcome = async {
            let mut stream = client.search(limited.clone()).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok::<(), tonic::Status>(())
        }
        .await;
        let err = outcome.expect_err(attempt);
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{attempt}: {err}");
    }
    let unlimited = SearchRequest {
        max_series: 0,
        ..limited
    };
    let mut stream = client.search(unlimited).await.expect("search").into_inner();
    let mut keys = Vec::new();
    while let Some(msg) = stream.message().await.expect("message") {
        keys.extend(msg.series.into_iter().map(|s| s.key));
    }
    assert_eq!(keys.len(), 2, "both series, from the cached selection");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("node stops within 20 s")
        .expect("node stops cleanly");
}
