#![allow(unused_crate_dependencies)]
//! Runs Prometheus' own PromQL test files (the spec of PromQL semantics) through Cairn's
//! engine over an in-memory querier.
//!
//! Two suites:
//! - Prometheus 3 (`latest`): the directory comes from `CAIRN_PROMQL_TESTDATA` (default:
//!   `shared/promql-testdata/latest` next to the workspace). The test fails when a file
//!   passes fewer cases than `promql_testdata/baseline.txt` records (lines
//!   `<directory name>/<file> <passing cases>`).
//! - Prometheus 2.42 (`v2.42.0`): from `CAIRN_PROMQL_TESTDATA_V2` (default:
//!   `shared/promql-testdata/v2.42.0`). Every case must pass except those listed in
//!   `promql_testdata/v2_42_expected_differences.txt` (`file:line reason`), where
//!   Prometheus 3 answers differently from Prometheus 2.
//!
//! Each prints `file: P passed, F failed, S skipped` per file and a total. A missing
//! directory skips the test, unless `CI` is set. Set `CAIRN_PROMQL_VERBOSE=1` to print every
//! failing or skipped case with its reason.

#[path = "promql_testdata/format.rs"]
mod format;
#[path = "promql_testdata/perf.rs"]
mod perf;
#[path = "promql_testdata/runner.rs"]
mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use runner::Outcome;

fn testdata_dir(var: &str, default: &str) -> PathBuf {
    match std::env::var(var) {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/promql-testdata")
            .join(default),
    }
}

fn baseline() -> BTreeMap<String, usize> {
    let text = include_str!("promql_testdata/baseline.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (f, n) = l.split_once(char::is_whitespace)?;
            Some((f.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

/// The `file:line` keys of `v2_42_expected_differences.txt`.
fn expected_differences() -> BTreeSet<String> {
    let text = include_str!("promql_testdata/v2_42_expected_differences.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Counts of one test file, and its failing cases as `(line, query, reason)`.
struct FileReport {
    name: String,
    passed: usize,
    skipped: usize,
    failures: Vec<(usize, String, String)>,
    passes: Vec<usize>,
}

/// Runs every `.test` file of `dir`, printing the per-file and total counts. `None` when the
/// directory is missing (a failure when `CI` is set).
fn run_dir(dir: &Path) -> Option<Vec<FileReport>> {
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PromQL test data missing at {}",
            dir.display()
        );
        eprintln!("skipping: no PromQL test data at {}", dir.display());
        return None;
    }
    let verbose = std::env::var_os("CAIRN_PROMQL_VERBOSE").is_some();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable test data directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut reports = Vec::new();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let text = std::fs::read_to_string(&path).expect("readable test file");
        let cmds = match format::parse_file(&text) {
            Ok(c) => c,
            Err(e) => {
                println!("{name}: cannot parse: {e}");
                continue;
            }
        };
        let mut r = FileReport {
            name: name.clone(),
            passed: 0,
            skipped: 0,
            failures: Vec::new(),
            passes: Vec::new(),
        };
        for (line, query, outcome) in runner::run_file(&rt, &cmds) {
            match outcome {
                Outcome::Pass => {
                    r.passed += 1;
                    r.passes.push(line);
                }
                Outcome::Fail(why) => {
                    if verbose {
                        println!("  FAIL {name}:{line} {query}\n       {why}");
                    }
                    r.failures.push((line, query, why));
                }
                Outcome::Skip(why) => {
                    r.skipped += 1;
                    if verbose {
                        println!("  SKIP {name}:{line} {query}: {why}");
                    }
                }
            }
        }
        println!(
            "{name}: {} passed, {} failed, {} skipped",
            r.passed,
            r.failures.len(),
            r.skipped
        );
        reports.push(r);
    }
    let total = |f: fn(&FileReport) -> usize| reports.iter().map(f).sum::<usize>();
    println!(
        "{} passed, {} failed, {} skipped",
        total(|r| r.passed),
        total(|r| r.failures.len()),
        total(|r| r.skipped)
    );
    Some(reports)
}

#[test]
fn prometheus_test_files_pass_at_least_the_baseline() {
    let dir = testdata_dir("CAIRN_PROMQL_TESTDATA", "latest");
    let Some(reports) = run_dir(&dir) else {
        return;
    };
    // Baseline keys are `<directory name>/<file>`, so other versions of the test data
    // are run and reported but not held to the latest one's numbers.
    let dir_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let base = baseline();
    let regressions: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let want = *base.get(&format!("{dir_name}/{}", r.name))?;
            (r.passed < want).then(|| format!("{}: {} passed < baseline {want}", r.name, r.passed))
        })
        .collect();
    assert!(regressions.is_empty(), "below baseline: {regressions:?}");
}

#[test]
fn prometheus_2_42_test_files_pass_except_the_listed_differences() {
    let dir = testdata_dir("CAIRN_PROMQL_TESTDATA_V2", "v2.42.0");
    let Some(reports) = run_dir(&dir) else {
        return;
    };
    let listed = expected_differences();
    let mut unexpected = Vec::new();
    for r in &reports {
        for (line, query, why) in &r.failures {
            if !listed.contains(&format!("{}:{line}", r.name)) {
                unexpected.push(format!("{}:{line} {query}: {why}", r.name));
            }
        }
        for line in &r.passes {
            if listed.contains(&format!("{}:{line}", r.name)) {
                println!("note: {}:{line} passes but is listed as an expected difference", r.name);
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "v2.42.0 cases failing without a listed reason:\n{}",
        unexpected.join("\n")
    );
}
