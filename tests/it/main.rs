//! The integration tests, as one test binary: each module was once a binary of its own, and
//! linking DataFusion and the AWS SDK into each of them cost a link step apiece. `common` is
//! the shared fixture (an EC2 emulator and a Flight SQL server on 127.0.0.1:0).
//!
//! The tests run on parallel threads of one process, so none may change process-wide state:
//! no `std::env::set_var`, no global tracing subscriber, no fixed file names (temporary
//! files come from `tempfile`). What is measured per process (CPU time, logs, exit on
//! SIGTERM) is measured on the server binary run as a child process
//! (`env!("CARGO_BIN_EXE_aws-flightsql")`).

mod common;

mod accounts;
mod awaiting;
mod bad_input;
mod cli;
mod datafusion_example;
mod datafusion_remote;
mod flight_surface;
mod insert;
mod metadata;
mod names;
mod operate;
mod org_explain;
mod org_insert;
mod organizations;
mod pushdown;
mod rust_cli;
mod secrets;
mod security;
mod select;
mod watch;
