//! Runs a directory of Prometheus test files over any [`Store`], prints the counts, and holds
//! the results to the recorded expectations:
//! - `baseline.txt`: lines `<directory name>/<file> <passing cases>`; a file of that
//!   directory may not pass fewer cases.
//! - `v2_42_expected_differences.txt`: lines `file:line reason`, the v2.42.0 cases where
//!   Prometheus 3 answers differently from Prometheus 2; every other v2.42.0 case must pass.
//!
//! Output: one line `file: P passed, F failed, S skipped` per file and a last line
//! `N passed, M failed, K skipped`. `CAIRN_PROMQL_VERBOSE=1` also prints every failing or
//! skipped case with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::format;
use crate::runner::{self, Outcome, Store};

/// The directory of a suite: env `var` when set, else `base/default`.
pub fn testdata_dir(var: &str, base: &Path, default: &str) -> PathBuf {
    match std::env::var(var) {
        Ok(d) => PathBuf::from(d),
        Err(_) => base.join(default),
    }
}

fn baseline() -> BTreeMap<String, usize> {
    let text = include_str!("baseline.txt");
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
    let text = include_str!("v2_42_expected_differences.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Counts of one test file, and its failing cases as `(line, query, reason)`.
pub struct FileReport {
    pub name: String,
    pub passed: usize,
    pub skipped: usize,
    pub failures: Vec<(usize, String, String)>,
    pub passes: Vec<usize>,
}

/// Runs every `.test` file of `dir` over stores made by `new_store`, printing the per-file
/// and total counts. `None` when the directory is missing (a failure when `CI` is set).
pub fn run_dir<S: Store>(dir: &Path, new_store: &mut dyn FnMut() -> S) -> Option<Vec<FileReport>> {
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PromQL test data missing at {}",
            dir.display()
        );
        println!("skipped: no PromQL test data at {}", dir.display());
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
    // Printed in one piece at the end, so that suites run in parallel do not interleave.
    let mut out = format!("PromQL test data: {}\n", dir.display());
    let mut reports = Vec::new();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let text = std::fs::read_to_string(&path).expect("readable test file");
        let cmds = match format::parse_file(&text) {
            Ok(c) => c,
            Err(e) => {
                out.push_str(&format!("{name}: cannot parse: {e}\n"));
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
        for (line, query, outcome) in runner::run_file(&rt, &cmds, new_store) {
            match outcome {
                Outcome::Pass => {
                    r.passed += 1;
                    r.passes.push(line);
                }
                Outcome::Fail(why) => {
                    if verbose {
                        out.push_str(&format!("  FAIL {name}:{line} {query}\n       {why}\n"));
                    }
                    r.failures.push((line, query, why));
                }
                Outcome::Skip(why) => {
                    r.skipped += 1;
                    if verbose {
                        out.push_str(&format!("  SKIP {name}:{line} {query}: {why}\n"));
                    }
                }
            }
        }
        out.push_str(&format!(
            "{name}: {} passed, {} failed, {} skipped\n",
            r.passed,
            r.failures.len(),
            r.skipped
        ));
        reports.push(r);
    }
    let total = |f: fn(&FileReport) -> usize| reports.iter().map(f).sum::<usize>();
    out.push_str(&format!(
        "{} passed, {} failed, {} skipped",
        total(|r| r.passed),
        total(|r| r.failures.len()),
        total(|r| r.skipped)
    ));
    println!("{out}");
    Some(reports)
}

/// Fails when a file of `dir` passes fewer cases than `baseline.txt` records for it. Keys
/// are `<directory name>/<file>`, so other versions of the test data are run and reported
/// but not held to the recorded numbers.
pub fn assert_baseline(dir: &Path, reports: &[FileReport]) {
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

/// Fails when a case fails that `v2_42_expected_differences.txt` does not list; notes the
/// listed cases that pass.
pub fn assert_only_listed_differences(reports: &[FileReport]) {
    let listed = expected_differences();
    let mut unexpected = Vec::new();
    for r in reports {
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
