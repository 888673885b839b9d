//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`, `limitk`, `limit_ratio`) with
//! `by`/`without` grouping, as Prometheus' `aggregation` in `promql/engine.go`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use cairn_common::{Labels, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::error::{QueryError, exec};
use super::eval::Evaluator;
use super::functions::{format_float, quantile};
use super::kahan::{KahanMean, KahanSum};
use super::value::{Sample, Val};

/// The group key of a series under `by`/`without` (`None`: one group of everything).
fn group_labels(l: &Labels, m: &Option<LabelModifier>) -> Labels {
    match m {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => Labels::from_pairs(
            l.iter()
                .filter(|x| by.labels.iter().any(|n| n == &x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
        Some(LabelModifier::Exclude(without)) => Labels::from_pairs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !without.labels.iter().any(|n| n == &x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
    }
}

/// Hashes addresses (the only keys it is used for): a multiply-shift of the one `usize`
/// written, much cheaper than the default SipHash for the per-step, per-series lookups of
/// group keys. Addresses are not chosen by clients, so no flooding resistance is needed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Heap addresses are 16-byte aligned: fold the high bits down after mixing.
        let x = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }
}

/// Builds [`AddrHasher`]s.
pub(crate) type BuildAddrHasher = BuildHasherDefault<AddrHasher>;

/// Most input series one aggregation remembers the group key of; past it the memory is
/// cleared (inputs whose labels are made anew at every step would otherwise pile up).
const MAX_REMEMBERED_KEYS: usize = 1 << 18;

/// The group keys of one aggregation's input series, computed once per series for the
/// whole query rather than at every step. Inputs are known by the address of their shared
/// labels, kept alive here so that an address is never reused for other labels; equal
/// keys share one `Arc`, so groups are found by the key's address too.
#[derive(Debug, Default)]
pub(crate) struct GroupKeys {
    by_input: HashMap<usize, (Arc<Labels>, Arc<Labels>), BuildAddrHasher>,
    interned: HashMap<Labels, Arc<Labels>>,
}

impl GroupKeys {
    /// The group key of `labels` under `by`/`without` modifier `m`.
    fn key(&mut self, labels: &Arc<Labels>, m: &Option<LabelModifier>) -> Arc<Labels> {
        let addr = Arc::as_ptr(labels) as usize;
        if let Some((_, key)) = self.by_input.get(&addr) {
            return Arc::clone(key);
        }
        if self.by_input.len() >= MAX_REMEMBERED_KEYS {
            self.by_input.clear();
        }
        let key = group_labels(labels, m);
        let key = match self.interned.get(&key) {
            Some(k) => Arc::clone(k),
            None => {
                let k = Arc::new(key.clone());
                self.interned.insert(key, Arc::clone(&k));
                k
            }
        };
        self.by_input.insert(addr, (Arc::clone(labels), Arc::clone(&key)));
        key
    }
}

/// The group keys of `input` in order of first appearance, and the position in them of
/// each input sample's key.
fn group_indices(keys: &mut GroupKeys, input: &[Sample], m: &Option<LabelModifier>) -> (Vec<Arc<Labels>>, Vec<usize>) {
    let mut index: HashMap<usize, usize, BuildAddrHasher> = HashMap::default();
    let mut group_keys: Vec<Arc<Labels>> = Vec::new();
    let group_of = input
        .iter()
        .map(|s| {
            let key = keys.key(&s.labels, m);
            *index.entry(Arc::as_ptr(&key) as usize).or_insert_with(|| {
                group_keys.push(key);
                group_keys.len() - 1
            })
        })
        .collect();
    (group_keys, group_of)
}

/// Groups samples by key, keeping the order of first appearance.
fn groups(keys: &mut GroupKeys, v: Vec<Sample>, m: &Option<LabelModifier>) -> Vec<(Arc<Labels>, Vec<Sample>)> {
    let (group_keys, group_of) = group_indices(keys, &v, m);
    let mut out: Vec<(Arc<Labels>, Vec<Sample>)> = group_keys.into_iter().map(|k| (k, Vec::new())).collect();
    for (s, g) in v.into_iter().zip(group_of) {
        out[g].1.push(s);
    }
    out
}

/// The values of one step's input grouped by key without moving the samples: one flat
/// column of values ordered by group (first appearance), input order kept within a group,
/// so that order-sensitive aggregations (the compensated `sum`) add in Prometheus' order.
struct GroupedValues {
    /// Group keys in order of first appearance.
    keys: Vec<Arc<Labels>>,
    /// Where each group's values start in `values`; one more entry than groups.
    starts: Vec<usize>,
    values: Vec<f64>,
    /// Per group, whether any of its inputs drops the metric name.
    drops: Vec<bool>,
}

impl GroupedValues {
    fn new(keys: &mut GroupKeys, input: &[Sample], m: &Option<LabelModifier>) -> Self {
        let (group_keys, group_of) = group_indices(keys, input, m);
        let mut counts = vec![0usize; group_keys.len()];
        let mut drops = vec![false; group_keys.len()];
        for (s, &g) in input.iter().zip(&group_of) {
            counts[g] += 1;
            drops[g] |= s.drop;
        }
        // A counting sort of the values by group.
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut at = 0;
        for c in &counts {
            starts.push(at);
            at += c;
        }
        starts.push(at);
        let mut next = starts.clone();
        let mut values = vec![0.0; input.len()];
        for (s, &g) in input.iter().zip(&group_of) {
            values[next[g]] = s.v;
            next[g] += 1;
        }
        GroupedValues {
            keys: group_keys,
            starts,
            values,
            drops,
        }
    }

    /// Per group in key order: its values (non-empty) and whether any input drops the name.
    fn slices(&self) -> impl Iterator<Item = (&[f64], bool)> {
        self.starts
            .windows(2)
            .zip(&self.drops)
            .map(|(w, &d)| (&self.values[w[0]..w[1]], d))
    }
}

fn scalar_param(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<f64, QueryError> {
    match &a.param {
        Some(p) => match ev.eval(p, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(exec(format!("expected scalar parameter, got {}", other.type_name()))),
        },
        None => Err(exec("missing aggregation parameter")),
    }
}

/// Orders values descending with NaN last (`topk`), or ascending with NaN last (`bottomk`).
fn cmp_k(a: f64, b: f64, top: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if top => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Evaluates an aggregation at `t` (ms).
pub(crate) fn eval_aggregate(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Val, QueryError> {
    let op = a.op.to_string();
    let (k_param, label_param) = match op.as_str() {
        "topk" | "bottomk" | "limitk" | "quantile" | "limit_ratio" => (Some(scalar_param(ev, a, t)?), None),
        "count_values" => match &a.param {
            Some(p) => match ev.eval(p, t)? {
                Val::Str(s) => (None, Some(s)),
                _ => return Err(exec("count_values needs a string parameter")),
            },
            None => return Err(exec("count_values needs a string parameter")),
        },
        _ => (None, None),
    };
    let input = match ev.eval(&a.expr, t)? {
        Val::Vector(v) => v,
        other => return Err(exec(format!("aggregation over {} is not allowed", other.type_name()))),
    };
    let node = std::ptr::from_ref::<AggregateExpr>(a) as usize;
    let mut keys = ev.group_keys.remove(&node).unwrap_or_default();
    let out = aggregate(ev, &mut keys, a, &op, k_param, label_param, input, t);
    ev.group_keys.insert(node, keys);
    out
}

/// Aggregates `input` at `t` (ms) with the parameters already evaluated.
#[allow(clippy::too_many_arguments)]
fn aggregate(
    ev: &mut Evaluator<'_>,
    keys: &mut GroupKeys,
    a: &AggregateExpr,
    op: &str,
    k_param: Option<f64>,
    label_param: Option<String>,
    input: Vec<Sample>,
    t: i64,
) -> Result<Val, QueryError> {
    let m = &a.modifier;
    let mut out: Vec<Sample> = Vec::new();
    let sample = |labels: Arc<Labels>, v: f64, drop: bool| Sample { labels, t, v, drop };
    match op {
        "topk" | "bottomk" | "limitk" => {
            let k = k_param.unwrap_or(0.0);
            if k.is_nan() {
                return Err(exec("Parameter value is NaN"));
            }
            if k < 1.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            let k = if k >= usize::MAX as f64 { usize::MAX } else { k as usize };
            for (_, mut g) in groups(keys, input, m) {
                if op != "limitk" {
                    let top = op == "topk";
                    g.sort_by(|x, y| cmp_k(x.v, y.v, top));
                }
                g.truncate(k);
                out.extend(g);
            }
        }
        "limit_ratio" => {
            let mut r = k_param.unwrap_or(0.0);
            if r.is_nan() {
                return Err(exec("Ratio value is NaN"));
            }
            if !(-1.0..=1.0).contains(&r) {
                let capped = r.clamp(-1.0, 1.0);
                ev.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                    format_float(r),
                    format_float(capped)
                ));
                r = capped;
            }
            for s in input {
                // The series as it would leave the query: without its name when dropped.
                let off = if s.drop {
                    super::functions::sample_offset(&super::eval::drop_name(Labels::clone(&s.labels)))
                } else {
                    super::functions::sample_offset(&s.labels)
                };
                if (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r) {
                    out.push(s);
                }
            }
        }
        "count_values" => {
            let name = label_param.unwrap_or_default();
            if !valid_label_name(&name) {
                return Err(exec(format!("invalid label name {name:?}")));
            }
            let mut index: HashMap<Labels, usize> = HashMap::new();
            for s in input {
                let mut key = group_labels(&s.labels, m);
                key.set(&name, &format_float(s.v));
                match index.get(&key) {
                    Some(&i) => out[i].v += 1.0,
                    None => {
                        index.insert(key.clone(), out.len());
                        out.push(sample(Arc::new(key), 1.0, false));
                    }
                }
            }
        }
        _ => {
            if op == "quantile" {
                let q = k_param.unwrap_or(f64::NAN);
                if !(0.0..=1.0).contains(&q) {
                    ev.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_float(q)
                    ));
                }
            }
            let grouped = GroupedValues::new(keys, &input, m);
            out.reserve(grouped.keys.len());
            for (key, (vals, any_drop)) in grouped.keys.iter().zip(grouped.slices()) {
                let v = simple(op, vals, k_param)?;
                // The name survives only under `by (__name__)`; dropped if any input drops it.
                let drop = key.metric_name().is_some() && any_drop;
                out.push(sample(Arc::clone(key), v, drop));
            }
        }
    }
    Ok(Val::Vector(out))
}

/// The value of a non-selecting aggregation over one group's values (non-empty).
fn simple(op: &str, vals: &[f64], param: Option<f64>) -> Result<f64, QueryError> {
    Ok(match op {
        "sum" => {
            let mut s = KahanSum::default();
            vals.iter().for_each(|&v| s.add(v));
            s.value()
        }
        "avg" => {
            let mut s = KahanMean::default();
            vals.iter().for_each(|&v| s.add(v));
            s.value()
        }
        "count" => vals.len() as f64,
        "group" => 1.0,
        "max" => vals
            .iter()
            .skip(1)
            .fold(vals[0], |m, &v| if m < v || m.is_nan() { v } else { m }),
        "min" => vals
            .iter()
            .skip(1)
            .fold(vals[0], |m, &v| if m > v || m.is_nan() { v } else { m }),
        "stddev" | "stdvar" => {
            let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for &v in vals {
                n += 1.0;
                let delta = v - mean;
                mean += delta / n;
                m2 += delta * (v - mean);
            }
            let var = m2 / n;
            if op == "stddev" { var.sqrt() } else { var }
        }
        "quantile" => quantile(param.unwrap_or(f64::NAN), vals.to_vec()),
        other => return Err(exec(format!("unknown aggregation {other}"))),
    })
}

/// Whether `s` is a valid label name (UTF-8 names are allowed in Prometheus 3, but not
/// empty or invalid UTF-8, which a Rust string cannot hold).
pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}
