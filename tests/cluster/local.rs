//! `cairn local`: the one command a newcomer runs starts a working cluster.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Free ports for insert and select: bind port 0, note the port, release it.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
    };
    let (insert, select) = (free(), free());
    let mut child = Command::new(CAIRN)
        .args(["local", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--insert-listen",
            &insert.to_string(),
            "--select-listen",
            &select.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cairn local");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut banner = String::new();
    while !banner.contains("Press Ctrl-C") {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("cairn local prints its URLs");
        banner.push_str(&line);
        banner.push('\n');
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    assert!(
        banner.contains(&format!("http://{insert}/insert/0/prometheus/api/v1/write")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("http://{select}/select/0/prometheus")),
        "{banner}"
    );

    let client = reqwest::Client::new();
    let t = now_ms() - 1000;
    let body = remote_write_body(vec![series(
        &[("__name__", "local_round_trip"), ("job", "demo")],
        &[(t, 3.25)],
    )]);
    let (status, text) = post_remote_write(
        &client,
        &format!("http://{insert}/insert/0/prometheus/api/v1/write"),
        body,
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let doc = get_json(
        &client,
        &format!("http://{select}/select/0/prometheus/api/v1/query"),
        &[
            ("query", "local_round_trip".into()),
            ("time", format!("{}", t as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!(doc["data"]["result"][0]["metric"]["job"], "demo");
    assert_eq!(doc["data"]["result"][0]["value"][1], "3.25");

    // Ctrl-C stops everything cleanly.
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "cairn local exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "cairn local did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}
