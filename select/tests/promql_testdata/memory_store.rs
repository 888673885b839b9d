//! The in-memory [`Store`]: series kept in a map and served by [`MemoryQuerier`].

use std::collections::BTreeMap;

use cairn_common::Labels;
use cairn_select::promql::{FetchedSeries, MemoryQuerier, Querier};

use crate::runner::Store;

/// Series of one test file in memory.
#[derive(Default)]
pub struct MemoryStore {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    querier: MemoryQuerier,
}

impl Store for MemoryStore {
    fn load(&mut self, _rt: &tokio::runtime::Runtime, series: Vec<FetchedSeries>) -> Result<(), String> {
        for s in series {
            let stored = self.series.entry(s.labels).or_default();
            for (t, v) in s.timestamps.into_iter().zip(s.values) {
                match stored.binary_search_by_key(&t, |x| x.0) {
                    Ok(p) => stored[p].1 = v,
                    Err(p) => stored.insert(p, (t, v)),
                }
            }
        }
        self.querier = MemoryQuerier::new(
            self.series
                .iter()
                .map(|(l, s)| FetchedSeries {
                    labels: l.clone(),
                    timestamps: s.iter().map(|x| x.0).collect(),
                    values: s.iter().map(|x| x.1).collect(),
                })
                .collect(),
        );
        Ok(())
    }

    fn querier(&self) -> &dyn Querier {
        &self.querier
    }
}
