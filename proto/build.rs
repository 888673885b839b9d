//! Compiles the `.proto` files with `protox` (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/cairn_storage.proto", "proto/prometheus_remote.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // `bytes` fields as `bytes::Bytes`: decoding a received message slices its
        // buffer instead of copying each field (the packed series keys of a write, the
        // stored blocks of a search answer).
        .bytes(".")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
