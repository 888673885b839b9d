//! A real crash: a child process (this test binary, re-run) writes and reports each
//! acknowledged write; the parent kills it with SIGKILL mid-stream, reopens the data
//! directory and checks that every acknowledged sample is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use cairn_common::{MatchOp, Matcher, Tenant};

use super::testing::{block_on, open, series};

const CHILD_DIR_ENV: &str = "CAIRN_STORAGE_CRASH_CHILD_DIR";
const BASE: i64 = 1_700_000_000_000;

/// The child: writes batches of 10 series × 1 sample forever, printing `acked N` after
/// batch N is acknowledged. Does nothing unless started by the parent test.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill as a child process"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let e = open(std::path::Path::new(&dir));
    for n in 0i64.. {
        let batch = (0..10)
            .map(|j| series("crash", &format!("job{j}"), &[(BASE + n * 1000, n as f64)]))
            .collect();
        block_on(e.write(Tenant::default(), batch)).expect("write");
        println!("acked {n}");
        if n % 50 == 49 {
            e.flush().expect("flush");
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "engine::crash_tests::crash_child_writer",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut last_acked = -1i64;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("acked ") {
            last_acked = n.trim().parse().expect("number");
            if last_acked >= 120 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(last_acked >= 120, "child stopped early at {last_acked}");

    let e = open(dir.path());
    let sel = [Matcher::new(MatchOp::Equal, "__name__", "crash").expect("matcher")];
    let end = BASE + (last_acked + 1000) * 1000;
    let ids = e.select_ids(Tenant::default(), &sel, BASE, end).expect("select");
    assert_eq!(ids.len(), 10);
    for id in &ids {
        let (_, samples) = e
            .read_series(Tenant::default(), id, BASE, end)
            .expect("read")
            .expect("series has samples");
        // Every acknowledged batch 0..=last_acked is present, in order, bit-exact.
        assert!(
            samples.len() as i64 > last_acked,
            "{} samples, {last_acked} acked",
            samples.len()
        );
        for (n, (t, v)) in samples.iter().enumerate().take(last_acked as usize + 1) {
            assert_eq!((*t, f64::from_bits(*v)), (BASE + n as i64 * 1000, n as f64));
        }
    }
}
