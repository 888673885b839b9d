//! No code is generated. The build-dependency on `regex` (default features) makes a
//! `cargo … -p cairn-storage` build resolve the host-side `regex` with the same features
//! as a whole-workspace build, where another crate's build script needs them; RocksDB's
//! build script (through `bindgen`) then has the same fingerprint in both, and its
//! ~20-minute C++ build is shared instead of done twice.

use regex as _;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
