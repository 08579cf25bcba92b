//! Generates the gRPC server code of the plugin protocol from `proto/` (provider feature only,
//! so the runner's Lambda bundle builds without `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("CARGO_FEATURE_PROVIDER").is_none() {
        return Ok(());
    }
    tonic_build::configure()
        .build_client(false)
        .build_transport(false)
        .compile_protos(
            &["proto/tfplugin6.proto", "proto/go_plugin.proto"],
            &["proto"],
        )?;
    Ok(())
}
