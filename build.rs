//! Compiles `proto/` with a pure-Rust protobuf compiler (protox), so no system `protoc` is
//! needed to build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["proto/aws_flightsql.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(files)?;
    Ok(())
}
