//! The `aws-flightsql` binary: see [`aws_flightsql::cli`].

fn main() -> std::process::ExitCode {
    aws_flightsql::cli::main()
}
