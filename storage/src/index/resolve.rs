//! Matchers → series IDs: bitmap algebra over the postings.
//!
//! PromQL semantics: a matcher that matches the empty string also matches series without
//! the label. Such a matcher is computed as "every series of the tenant minus the series
//! whose value of the label does not match"; any other matcher as the union of the
//! postings of the values it matches. Matchers are intersected, those that do not match
//! "" first. A selector without such a matcher starts from every series of the tenant.

use std::sync::Arc;

use cairn_common::{MatchOp, Matcher, Tenant};
use roaring::RoaringTreemap;

use crate::day::day_of;
use crate::error::StorageError;
use crate::index::Index;
use crate::index::keys::ALL_DAYS;
use crate::index::search_cache::SelectionKey;

/// Above this many days a look-up uses the all-time postings instead of the union of
/// per-day postings.
const MAX_DAY_SCOPES: u64 = 62;

/// The postings scopes that cover `[start_ms, end_ms]`: each UTC day, or the all-time
/// scope for long or inverted ranges.
pub(crate) fn scopes(start_ms: i64, end_ms: i64) -> Vec<u32> {
    let (a, b) = (day_of(start_ms), day_of(end_ms));
    if b < a || u64::from(b - a) >= MAX_DAY_SCOPES {
        return vec![ALL_DAYS];
    }
    (a..=b).collect()
}

impl Index {
    /// Series IDs of `tenant` matching every matcher, with postings in any of `scopes`:
    /// from the selection cache while no postings changed since it was kept
    /// ([`super::search_cache`]), else from the postings (and then kept).
    pub(crate) fn select(
        &self,
        tenant: Tenant,
        matchers: &[Matcher],
        scopes: &[u32],
    ) -> Result<RoaringTreemap, StorageError> {
        let key = SelectionKey::new(tenant, matchers, scopes);
        if let Some(ids) = self.kept_selection(&key) {
            return Ok(RoaringTreemap::clone(&ids));
        }
        metrics::counter!("cairn_storage_index_cache_requests_total", "cache" => "selections", "outcome" => "miss")
            .increment(1);
        let generation = self.cache().generation();
        let mut out = RoaringTreemap::new();
        for &scope in scopes {
            out |= self.select_scope(scope, tenant, matchers)?;
        }
        self.cache().keep_selection(key, generation, Arc::new(out.clone()));
        Ok(out)
    }

    /// [`Index::select`] answered from the selection cache alone (counted as a hit), or
    /// `None` (not counted) when the selection is not cached under the current generation.
    pub(crate) fn cached_select(
        &self,
        tenant: Tenant,
        matchers: &[Matcher],
        scopes: &[u32],
    ) -> Option<Arc<RoaringTreemap>> {
        self.kept_selection(&SelectionKey::new(tenant, matchers, scopes))
    }

    /// The cached selection of `key`, counted as a hit.
    fn kept_selection(&self, key: &SelectionKey) -> Option<Arc<RoaringTreemap>> {
        let ids = self.cache().selection(key)?;
        metrics::counter!("cairn_storage_index_cache_requests_total", "cache" => "selections", "outcome" => "hit")
            .increment(1);
        Some(ids)
    }

    fn select_scope(&self, scope: u32, tenant: Tenant, matchers: &[Matcher]) -> Result<RoaringTreemap, StorageError> {
        let mut ordered: Vec<&Matcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| m.matches_empty());
        let mut all: Option<RoaringTreemap> = None;
        let mut acc: Option<RoaringTreemap> = None;
        for m in ordered {
            if acc.as_ref().is_some_and(|a| a.is_empty()) {
                break;
            }
            let set = self.matcher_set(scope, tenant, m, &mut all)?;
            acc = Some(match acc {
                None => set,
                Some(a) => a & set,
            });
        }
        match acc {
            Some(a) => Ok(a),
            None => self.all_series(scope, tenant, &mut all),
        }
    }

    fn all_series(
        &self,
        scope: u32,
        tenant: Tenant,
        cache: &mut Option<RoaringTreemap>,
    ) -> Result<RoaringTreemap, StorageError> {
        if cache.is_none() {
            *cache = Some(self.postings(scope, tenant, "", "")?);
        }
        Ok(cache.clone().unwrap_or_default())
    }

    /// The series of `(scope, tenant)` that one matcher accepts.
    fn matcher_set(
        &self,
        scope: u32,
        tenant: Tenant,
        m: &Matcher,
        all: &mut Option<RoaringTreemap>,
    ) -> Result<RoaringTreemap, StorageError> {
        if m.name.is_empty() {
            // No stored series has a label with an empty name: it is absent everywhere.
            return if m.matches_empty() {
                self.all_series(scope, tenant, all)
            } else {
                Ok(RoaringTreemap::new())
            };
        }
        if m.matches_empty() {
            let excluded = match m.op {
                MatchOp::NotEqual => self.postings(scope, tenant, &m.name, &m.value)?,
                _ => self.values_union(scope, tenant, m, false)?,
            };
            return Ok(self.all_series(scope, tenant, all)? - excluded);
        }
        match m.op {
            MatchOp::Equal => self.postings(scope, tenant, &m.name, &m.value),
            _ => self.values_union(scope, tenant, m, true),
        }
    }

    /// Union of the postings of the values of `m.name` for which `m.matches(value)`
    /// equals `want`.
    fn values_union(
        &self,
        scope: u32,
        tenant: Tenant,
        m: &Matcher,
        want: bool,
    ) -> Result<RoaringTreemap, StorageError> {
        let mut out = RoaringTreemap::new();
        self.for_each_value(scope, tenant, &m.name, |value, bm| {
            if m.matches(value) == want {
                out |= bm;
            }
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_common::Labels;

    fn index() -> (tempfile::TempDir, Index) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, _) = crate::db::open(dir.path()).expect("open db");
        (
            dir,
            Index::new(db, crate::index::search_cache::DEFAULT_INDEX_CACHE_BYTES),
        )
    }

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).expect("matcher")
    }

    fn ids(b: RoaringTreemap) -> Vec<u64> {
        b.iter().collect()
    }

    /// Series 1: up{job="a"}, 2: up{job="b", env="prod"}, 3: up (no job),
    /// 4: other{job="a"}; tenant 7 also has 5: up{job="a"}.
    fn fill(ix: &Index) -> Tenant {
        let t = Tenant {
            account_id: 1,
            project_id: 0,
        };
        let other = Tenant {
            account_id: 7,
            project_id: 0,
        };
        let series = [
            (1, t, Labels::from_pairs([("__name__", "up"), ("job", "a")])),
            (
                2,
                t,
                Labels::from_pairs([("__name__", "up"), ("job", "b"), ("env", "prod")]),
            ),
            (3, t, Labels::from_pairs([("__name__", "up")])),
            (4, t, Labels::from_pairs([("__name__", "other"), ("job", "a")])),
            (5, other, Labels::from_pairs([("__name__", "up"), ("job", "a")])),
        ];
        for (id, tenant, labels) in &series {
            ix.create_series(*id, &labels.canonical_key(*tenant), *tenant, labels)
                .expect("create");
        }
        t
    }

    #[test]
    fn equal_not_equal_regex_not_regex() {
        let (_d, ix) = index();
        let t = fill(&ix);
        let all = [ALL_DAYS];
        let sel = |ms: &[Matcher]| ids(ix.select(t, ms, &all).expect("select"));
        let up = m(MatchOp::Equal, "__name__", "up");
        assert_eq!(sel(std::slice::from_ref(&up)), [1, 2, 3]);
        assert_eq!(sel(&[up.clone(), m(MatchOp::Equal, "job", "a")]), [1]);
        // `!=` also matches series without the label (3).
        assert_eq!(sel(&[up.clone(), m(MatchOp::NotEqual, "job", "a")]), [2, 3]);
        assert_eq!(sel(&[up.clone(), m(MatchOp::Regex, "job", "a|b")]), [1, 2]);
        // Anchored: "a" alone does not match "ab"-like partials; `.` is one character.
        assert_eq!(sel(&[m(MatchOp::Regex, "job", ".")]), [1, 2, 4]);
        assert_eq!(sel(&[up.clone(), m(MatchOp::NotRegex, "job", "b|c")]), [1, 3]);
        assert_eq!(
            sel(&[m(MatchOp::Regex, "__name__", "u.*"), m(MatchOp::Equal, "env", "prod")]),
            [2]
        );
        assert_eq!(sel(&[m(MatchOp::Equal, "job", "zzz")]), Vec::<u64>::new());
    }

    #[test]
    fn empty_matching_matchers_select_series_without_the_label() {
        let (_d, ix) = index();
        let t = fill(&ix);
        let all = [ALL_DAYS];
        let sel = |ms: &[Matcher]| ids(ix.select(t, ms, &all).expect("select"));
        let up = m(MatchOp::Equal, "__name__", "up");
        // job="" selects series without job.
        assert_eq!(sel(&[up.clone(), m(MatchOp::Equal, "job", "")]), [3]);
        // job=~"a|" selects job="a" and series without job.
        assert_eq!(sel(&[up.clone(), m(MatchOp::Regex, "job", "a|")]), [1, 3]);
        // job!="" selects series that have job.
        assert_eq!(sel(&[up.clone(), m(MatchOp::NotEqual, "job", "")]), [1, 2]);
        // Only empty-matching matchers: every series of the tenant, filtered.
        assert_eq!(sel(&[m(MatchOp::Regex, "job", ".*")]), [1, 2, 3, 4]);
        assert_eq!(sel(&[m(MatchOp::NotEqual, "job", "a")]), [2, 3]);
        assert_eq!(sel(&[]), [1, 2, 3, 4]);
    }

    #[test]
    fn per_day_postings_restrict_to_series_with_samples_that_day() {
        let (_d, ix) = index();
        let t = fill(&ix);
        let l1 = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let l2 = Labels::from_pairs([("__name__", "up"), ("job", "b"), ("env", "prod")]);
        ix.add_days(&[(1, 100, t, &l1), (2, 101, t, &l2), (1, 102, t, &l1)])
            .expect("days");
        let up = [m(MatchOp::Equal, "__name__", "up")];
        assert_eq!(ids(ix.select(t, &up, &[100]).expect("d100")), [1]);
        assert_eq!(ids(ix.select(t, &up, &[101]).expect("d101")), [2]);
        assert_eq!(ids(ix.select(t, &up, &[100, 101]).expect("both")), [1, 2]);
        assert_eq!(ids(ix.select(t, &up, &[103]).expect("none")), Vec::<u64>::new());
        let day = crate::day::DAY_MS;
        assert_eq!(scopes(100 * day + 5, 101 * day + 7), [100, 101]);
        assert_eq!(scopes(0, 1000 * day), [ALL_DAYS]);
        ix.drop_days_before(101).expect("drop");
        assert_eq!(ids(ix.select(t, &up, &[100]).expect("dropped")), Vec::<u64>::new());
        assert_eq!(ids(ix.select(t, &up, &[102]).expect("kept")), [1]);
    }

    #[test]
    fn selections_are_cached_until_postings_change() {
        let (_d, ix) = index();
        let t = fill(&ix);
        let up = [m(MatchOp::Equal, "__name__", "up")];
        assert_eq!(ids(ix.select(t, &up, &[ALL_DAYS]).expect("select")), [1, 2, 3]);
        // Answered from the cache: a postings entry removed behind the index's back
        // does not show.
        let cf = ix.cf(crate::db::CF_POSTINGS).expect("cf");
        ix.db
            .delete_cf(&cf, crate::index::keys::postings_key(ALL_DAYS, t, "__name__", "up"))
            .expect("delete");
        assert_eq!(ids(ix.select(t, &up, &[ALL_DAYS]).expect("cached")), [1, 2, 3]);
        // A series created through the index is seen at once (postings read again).
        let l = Labels::from_pairs([("__name__", "up"), ("job", "c")]);
        ix.create_series(6, &l.canonical_key(t), t, &l).expect("create");
        assert_eq!(ids(ix.select(t, &up, &[ALL_DAYS]).expect("after create")), [6]);
        // So is a series' first sample of a day, and the label values follow too.
        assert_eq!(
            ix.label_values(200, t, "job").expect("values").as_slice(),
            [] as [String; 0]
        );
        ix.add_days(&[(6, 200, t, &l)]).expect("days");
        assert_eq!(ids(ix.select(t, &up, &[200]).expect("day")), [6]);
        assert_eq!(ix.label_values(200, t, "job").expect("values").as_slice(), ["c"]);
        // Label names too: a series with a new label name shows it at once.
        assert!(
            !ix.label_names(ALL_DAYS, t)
                .expect("names")
                .contains(&"zone".to_string())
        );
        let z = Labels::from_pairs([("__name__", "up"), ("zone", "x")]);
        ix.create_series(7, &z.canonical_key(t), t, &z).expect("create");
        assert!(
            ix.label_names(ALL_DAYS, t)
                .expect("names")
                .contains(&"zone".to_string())
        );
    }

    #[test]
    fn label_names_and_values() {
        let (_d, ix) = index();
        let t = fill(&ix);
        let mut names = ix.label_names(ALL_DAYS, t).expect("names").to_vec();
        names.sort();
        assert_eq!(names, ["__name__", "env", "job"]);
        let mut values = Vec::new();
        ix.for_each_value(ALL_DAYS, t, "job", |v, _| values.push(v.to_string()))
            .expect("values");
        assert_eq!(values, ["a", "b"]);
    }
}
