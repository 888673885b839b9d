//! The engine's view of the cluster: a [`Querier`] for one tenant and one request, over
//! the [`Fanout`]. It remembers whether any answer was partial.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_common::{Labels, Matcher, Tenant};
use cairn_proto::storage::{SearchRequest, Selector};
use futures::future::BoxFuture;

use crate::fanout::{Fanout, merge_series};
use crate::promql::{Fetched, Querier, QueryError};

/// A querier bound to a tenant and to one API request's partial-response policy.
pub struct ClusterQuerier {
    fanout: Arc<Fanout>,
    tenant: Tenant,
    deny_partial: bool,
    max_series: u64,
    partial: AtomicBool,
}

impl ClusterQuerier {
    /// A querier for `tenant`; `max_series` (0 = none) caps the series of one selector
    /// per storage node.
    pub fn new(fanout: Arc<Fanout>, tenant: Tenant, deny_partial: bool, max_series: u64) -> Self {
        ClusterQuerier {
            fanout,
            tenant,
            deny_partial,
            max_series,
            partial: AtomicBool::new(false),
        }
    }

    /// Whether any search of this request was answered by only some storage nodes.
    pub fn is_partial(&self) -> bool {
        self.partial.load(Ordering::Relaxed)
    }
}

impl Querier for ClusterQuerier {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> BoxFuture<'a, Result<Fetched, QueryError>> {
        Box::pin(async move {
            let request = SearchRequest {
                tenant: Some(self.tenant.to_proto()),
                selector: Some(Selector {
                    matchers: matchers.iter().map(Matcher::to_proto).collect(),
                }),
                start_ms,
                end_ms,
                max_series: self.max_series,
            };
            metrics::counter!("cairn_select_searches_total").increment(1);
            let gathered = self
                .fanout
                .gather(self.deny_partial, |mut client| {
                    let request = request.clone();
                    async move {
                        let mut stream = client.search(request).await?.into_inner();
                        let mut series = Vec::new();
                        while let Some(msg) = stream.message().await? {
                            series.extend(msg.series);
                        }
                        Ok(series)
                    }
                })
                .await?;
            if !gathered.warnings.is_empty() {
                self.partial.store(true, Ordering::Relaxed);
            }
            let series = merge_series(
                gathered
                    .answers
                    .into_iter()
                    .flatten()
                    .map(|s| (Labels::from_proto(s.labels), s.timestamps_ms, s.values)),
            );
            Ok(Fetched {
                series,
                warnings: gathered.warnings,
            })
        })
    }
}
