#![allow(unused_crate_dependencies)]
//! Runs Prometheus' own PromQL test files (the spec of PromQL semantics) through Cairn's
//! engine over an in-memory querier.
//!
//! The directory comes from `CAIRN_PROMQL_TESTDATA` (default: `shared/promql-testdata/latest`
//! next to the workspace). Prints `file: P passed, F failed, S skipped` per file and a total;
//! fails when a file passes fewer cases than `promql_testdata/baseline.txt` records
//! (lines `<directory name>/<file> <passing cases>`). A missing
//! directory skips the test, unless `CI` is set. Set `CAIRN_PROMQL_VERBOSE=1` to print every
//! failing or skipped case with its reason.

#[path = "promql_testdata/format.rs"]
mod format;
#[path = "promql_testdata/runner.rs"]
mod runner;

use std::collections::BTreeMap;
use std::path::PathBuf;

use runner::Outcome;

fn testdata_dir() -> PathBuf {
    match std::env::var("CAIRN_PROMQL_TESTDATA") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/promql-testdata/latest"),
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

#[test]
fn prometheus_test_files_pass_at_least_the_baseline() {
    let dir = testdata_dir();
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PromQL test data missing at {}",
            dir.display()
        );
        eprintln!("skipping: no PromQL test data at {}", dir.display());
        return;
    }
    let verbose = std::env::var_os("CAIRN_PROMQL_VERBOSE").is_some();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable test data directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let base = baseline();
    // Baseline keys are `<directory name>/<file>`, so other versions of the test data
    // (e.g. `v2.42.0`) are run and reported but not held to the latest one's numbers.
    let dir_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let (mut tp, mut tf, mut ts) = (0, 0, 0);
    let mut regressions = Vec::new();
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
        let (mut p, mut f, mut s) = (0, 0, 0);
        for (line, query, outcome) in runner::run_file(&rt, &cmds) {
            match outcome {
                Outcome::Pass => p += 1,
                Outcome::Fail(why) => {
                    f += 1;
                    if verbose {
                        println!("  FAIL {name}:{line} {query}\n       {why}");
                    }
                }
                Outcome::Skip(why) => {
                    s += 1;
                    if verbose {
                        println!("  SKIP {name}:{line} {query}: {why}");
                    }
                }
            }
        }
        println!("{name}: {p} passed, {f} failed, {s} skipped");
        if let Some(&want) = base.get(&format!("{dir_name}/{name}"))
            && p < want
        {
            regressions.push(format!("{name}: {p} passed < baseline {want}"));
        }
        tp += p;
        tf += f;
        ts += s;
    }
    println!("{tp} passed, {tf} failed, {ts} skipped");
    assert!(regressions.is_empty(), "below baseline: {regressions:?}");
}
