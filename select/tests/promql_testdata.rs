#![allow(unused_crate_dependencies)]
//! Runs Prometheus' own PromQL test files (the spec of PromQL semantics) through Cairn's
//! engine over an in-memory querier. (`tests/promql_conformance` at the workspace root runs
//! the same files through the storage engine.)
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
#[path = "promql_testdata/memory_store.rs"]
mod memory_store;
#[path = "promql_testdata/perf.rs"]
mod perf;
#[path = "promql_testdata/runner.rs"]
mod runner;
#[path = "promql_testdata/suite.rs"]
mod suite;

use std::path::Path;

use memory_store::MemoryStore;

/// `shared/promql-testdata` next to the workspace.
fn testdata_base() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/promql-testdata"))
}

#[test]
fn prometheus_test_files_pass_at_least_the_baseline() {
    let dir = suite::testdata_dir("CAIRN_PROMQL_TESTDATA", testdata_base(), "latest");
    let Some(reports) = suite::run_dir(&dir, &mut MemoryStore::default) else {
        return;
    };
    suite::assert_baseline(&dir, &reports);
}

#[test]
fn prometheus_2_42_test_files_pass_except_the_listed_differences() {
    let dir = suite::testdata_dir("CAIRN_PROMQL_TESTDATA_V2", testdata_base(), "v2.42.0");
    let Some(reports) = suite::run_dir(&dir, &mut MemoryStore::default) else {
        return;
    };
    suite::assert_only_listed_differences(&reports);
}
