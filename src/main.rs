//! The `aws-flightsql` binary: see [`aws_flightsql::cli`].

/// mimalloc instead of the system allocator: with glibc's, allocation and free took about a
/// third of the server's CPU in the organization benchmark (README "Benchmarks").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aws_flightsql::cli::main()
}
