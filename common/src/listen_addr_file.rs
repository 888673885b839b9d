//! `--listen-addr-file`: a role writes the addresses it actually bound (useful with port
//! 0) so that tests and scripts can find it. One `name=address` line per listener,
//! written to a temporary file and renamed, so a reader never sees half a file.

use std::net::SocketAddr;
use std::path::Path;

/// Writes `name=addr` lines (e.g. `http=127.0.0.1:40123`) to `path` atomically.
/// Errors: the file cannot be written or renamed.
pub fn write(path: &Path, addrs: &[(&str, SocketAddr)]) -> std::io::Result<()> {
    let body: String = addrs.iter().map(|(n, a)| format!("{n}={a}\n")).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

/// Reads a file written by [`write`]: the address named `name`, or `None` if the file
/// is missing, incomplete or lacks that name.
pub fn read(path: &Path, name: &str) -> Option<SocketAddr> {
    let body = std::fs::read_to_string(path).ok()?;
    body.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, a)| a.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("cairn-laf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("addrs");
        let http: std::net::SocketAddr = "127.0.0.1:8482".parse().expect("addr");
        let grpc: std::net::SocketAddr = "127.0.0.1:8400".parse().expect("addr");
        super::write(&path, &[("http", http), ("grpc", grpc)]).expect("write");
        assert_eq!(super::read(&path, "grpc"), Some(grpc));
        assert_eq!(super::read(&path, "http"), Some(http));
        assert_eq!(super::read(&path, "nope"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
