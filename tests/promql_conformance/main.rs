#![allow(unused_crate_dependencies)] // shares the package's dependency list with the binary
//! PromQL conformance: Prometheus' own PromQL test files run through Cairn's real storage
//! engine and select engine. Each `load` is written through the storage node's write path
//! (index, WAL, head) and flushed to blocks; each `eval` is answered by the PromQL engine
//! reading through the storage search (postings, blocks, head) and the select node's
//! per-series merge. A `clear` opens a fresh engine in a new temporary directory.
//!
//! Results are compared as Prometheus' test engine does, and every passing instant eval is
//! also run as a range query from t-1m to t+1m (step 1m), whose middle step must agree (see
//! `select/tests/promql_testdata/runner.rs`, shared with the in-memory harness of
//! `cairn-select`, along with the test-file parser and the recorded expectations).
//!
//! Two suites, as in the in-memory harness and held to the same expectations:
//! - `latest` (Prometheus 3): env `CAIRN_PROMQL_TESTDATA`, default
//!   `../shared/promql-testdata/latest` from the workspace root. Fails when a file passes
//!   fewer cases than `select/tests/promql_testdata/baseline.txt` records.
//! - `v2.42.0` (Prometheus 2.42): env `CAIRN_PROMQL_TESTDATA_V2`, default
//!   `../shared/promql-testdata/v2.42.0`. Fails when a case fails that
//!   `select/tests/promql_testdata/v2_42_expected_differences.txt` does not list.
//!
//! Prints `file: P passed, F failed, S skipped` per file and `N passed, M failed, K skipped`
//! per suite (run with `--nocapture` to see them). A missing directory prints "skipped"
//! and passes, unless env `CI` is set, when it fails. `CAIRN_PROMQL_VERBOSE=1` prints every
//! failing or skipped case with its reason. What passes and why the rest does not:
//! `docs/promql-compatibility.md`.
//!
//! Run: `cargo test --release -p cairn --test promql_conformance -- --nocapture`.

mod engine_store;
#[path = "../../select/tests/promql_testdata/format.rs"]
mod format;
#[path = "../../select/tests/promql_testdata/runner.rs"]
mod runner;
#[path = "../../select/tests/promql_testdata/suite.rs"]
mod suite;

use std::path::Path;

use engine_store::EngineStore;

/// `../shared/promql-testdata` from the workspace root.
fn testdata_base() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/promql-testdata"))
}

#[test]
fn prometheus_test_files_through_storage_pass_at_least_the_baseline() {
    let dir = suite::testdata_dir("CAIRN_PROMQL_TESTDATA", testdata_base(), "latest");
    let Some(reports) = suite::run_dir(&dir, &mut EngineStore::open) else {
        return;
    };
    suite::assert_baseline(&dir, &reports);
}

#[test]
fn prometheus_2_42_test_files_through_storage_pass_except_the_listed_differences() {
    let dir = suite::testdata_dir("CAIRN_PROMQL_TESTDATA_V2", testdata_base(), "v2.42.0");
    let Some(reports) = suite::run_dir(&dir, &mut EngineStore::open) else {
        return;
    };
    suite::assert_only_listed_differences(&reports);
}
