//! [`ClusterQuerier`] against in-process fake storage nodes: the merge of replicas and
//! `--dedup-interval` applied to what the nodes answered.

use std::pin::Pin;
use std::sync::Arc;

use cairn_common::{Labels, Tenant, block};
use cairn_proto::storage::storage_server::{Storage, StorageServer};
use cairn_proto::storage::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse, SearchRequest, SearchResponse,
    Series, SeriesRequest, SeriesResponse, WriteRequest, WriteResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::ClusterQuerier;
use crate::fanout::Fanout;
use crate::promql::{FetchedSeries, Querier};

use cairn_common::STALE_NAN_BITS as STALE_NAN;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A storage node that answers every search with the same series.
struct FakeNode {
    series: Vec<Series>,
}

#[tonic::async_trait]
impl Storage for FakeNode {
    type SearchStream = BoxStream<SearchResponse>;
    type SeriesStream = BoxStream<SeriesResponse>;

    async fn write(&self, _: Request<WriteRequest>) -> Result<Response<WriteResponse>, Status> {
        Err(Status::unimplemented("write"))
    }

    async fn search(&self, _: Request<SearchRequest>) -> Result<Response<Self::SearchStream>, Status> {
        let msg = SearchResponse {
            series: self.series.clone(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(msg)]))))
    }

    async fn series(&self, _: Request<SeriesRequest>) -> Result<Response<Self::SeriesStream>, Status> {
        Err(Status::unimplemented("series"))
    }

    async fn label_names(&self, _: Request<LabelNamesRequest>) -> Result<Response<LabelNamesResponse>, Status> {
        Err(Status::unimplemented("label_names"))
    }

    async fn label_values(&self, _: Request<LabelValuesRequest>) -> Result<Response<LabelValuesResponse>, Status> {
        Err(Status::unimplemented("label_values"))
    }
}

fn labels() -> Labels {
    Labels::from_pairs([("__name__", "up"), ("job", "node")])
}

fn series(ts: &[i64], vs: &[f64]) -> Series {
    Series {
        labels: labels().to_proto(),
        timestamps_ms: ts.to_vec(),
        values: vs.to_vec(),
        samples_le: Default::default(),
        blocks: Vec::new(),
        key: Default::default(),
    }
}

/// Starts one fake node per entry on a loopback port; returns their `host:port`.
async fn start_nodes(nodes: Vec<Vec<Series>>) -> Vec<String> {
    let mut addrs = Vec::new();
    for series in nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.push(listener.local_addr().expect("addr").to_string());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder().serve_with_incoming(StorageServer::new(FakeNode { series }), incoming),
        );
    }
    addrs
}

/// Two replicas of one series, scraped by two scrapers 1 s apart every 15 s, both holding
/// a sample at 45 s (4 on the first node, 40 on the second) and the first one a
/// staleness marker at 50 s.
async fn replicas() -> Arc<Fanout> {
    let stale = f64::from_bits(STALE_NAN);
    let addrs = start_nodes(vec![
        vec![series(
            &[1_000, 16_000, 31_000, 45_000, 50_000],
            &[1.0, 2.0, 3.0, 4.0, stale],
        )],
        vec![series(&[2_000, 17_000, 29_000, 45_000], &[10.0, 20.0, 30.0, 40.0])],
    ])
    .await;
    Arc::new(Fanout::new(&addrs).expect("fanout"))
}

async fn select(querier: &ClusterQuerier) -> FetchedSeries {
    let fetched = querier.select(&[], 0, 60_000).await.expect("select");
    assert!(fetched.warnings.is_empty(), "{:?}", fetched.warnings);
    let mut series = fetched.series;
    assert_eq!(series.len(), 1);
    let s = series.remove(0);
    assert_eq!(s.labels, labels());
    s
}

#[tokio::test]
async fn without_dedup_interval_only_identical_timestamps_merge() {
    let querier = ClusterQuerier::new(replicas().await, Tenant::default(), false, 0);
    let s = select(&querier).await;
    // Every distinct timestamp of both nodes; at 45 s the first node's sample.
    assert_eq!(
        s.timestamps,
        [1_000, 2_000, 16_000, 17_000, 29_000, 31_000, 45_000, 50_000]
    );
    assert_eq!(s.values[..7], [1.0, 10.0, 2.0, 20.0, 30.0, 3.0, 4.0]);
    assert_eq!(s.values[7].to_bits(), STALE_NAN);
}

#[tokio::test]
async fn dedup_interval_keeps_the_last_sample_per_interval_across_nodes() {
    let querier = ClusterQuerier::new(replicas().await, Tenant::default(), false, 0).with_dedup_interval(15_000);
    let s = select(&querier).await;
    // (0, 15 s]: 1 s and 2 s -> 2 s. (15 s, 30 s]: 16, 17, 29 s -> 29 s.
    // (30 s, 45 s]: 31 s and 45 s -> 45 s, which ends the interval. (45 s, 60 s]: the marker.
    assert_eq!(s.timestamps, [2_000, 29_000, 45_000, 50_000]);
    assert_eq!(s.values[..3], [10.0, 30.0, 4.0]);
    assert_eq!(s.values[3].to_bits(), STALE_NAN);
}

#[tokio::test]
async fn block_answers_are_cut_to_the_range_and_the_later_block_wins() {
    let sample = |t: i64, v: f64| (t, v.to_bits());
    let older = block::encode(&[sample(10_000, 1.0), sample(20_000, 2.0), sample(70_000, 7.0)]);
    let newer = block::encode_unpacked(&[sample(20_000, 22.0)]);
    let in_blocks = Series {
        labels: labels().to_proto(),
        blocks: vec![older.into(), newer.into()],
        ..Series::default()
    };
    let addrs = start_nodes(vec![vec![in_blocks], vec![series(&[30_000], &[3.0])]]).await;
    let querier = ClusterQuerier::new(
        Arc::new(Fanout::new(&addrs).expect("fanout")),
        Tenant::default(),
        false,
        0,
    );
    let s = select(&querier).await;
    // 70 s is past the searched range [0, 60 s]; at 20 s the later block's value.
    assert_eq!(s.timestamps, [10_000, 20_000, 30_000]);
    assert_eq!(s.values, [1.0, 22.0, 3.0]);
}

#[tokio::test]
async fn a_corrupt_block_answer_is_an_error_not_a_panic() {
    let bad = Series {
        labels: labels().to_proto(),
        blocks: vec![vec![1, 0, 200].into()],
        ..Series::default()
    };
    let addrs = start_nodes(vec![vec![bad]]).await;
    let querier = ClusterQuerier::new(
        Arc::new(Fanout::new(&addrs).expect("fanout")),
        Tenant::default(),
        true,
        0,
    );
    assert!(querier.select(&[], 0, 60_000).await.is_err());
}

#[tokio::test]
async fn a_series_whose_blocks_have_no_sample_in_the_range_is_left_out() {
    // The block spans 0..120 s, the range is [30 s, 60 s]: it overlaps without a sample.
    let around = Series {
        labels: Labels::from_pairs([("__name__", "up"), ("job", "gap")]).to_proto(),
        blocks: vec![block::encode(&[(0, 1f64.to_bits()), (120_000, 2f64.to_bits())]).into()],
        ..Series::default()
    };
    let addrs = start_nodes(vec![vec![around, series(&[40_000], &[4.0])]]).await;
    let querier = ClusterQuerier::new(
        Arc::new(Fanout::new(&addrs).expect("fanout")),
        Tenant::default(),
        false,
        0,
    );
    let fetched = querier.select(&[], 30_000, 60_000).await.expect("select");
    assert_eq!(fetched.series.len(), 1);
    assert_eq!(fetched.series[0].labels, labels());
}
