//! The `ec2-emulator` binary: starts the emulator, prints one line with its URL on stdout
//! once it is listening, logs to stderr, and stops on Ctrl-C or SIGTERM.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ec2_emulator::{Emulator, EmulatorOptions, Faults};
use tracing_subscriber::EnvFilter;

/// An emulator of the AWS EC2 Query API for store image tasks, for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "ec2-emulator", version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "EC2_EMULATOR_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Regions served, comma-separated.
    #[arg(
        long,
        env = "EC2_EMULATOR_REGIONS",
        value_delimiter = ',',
        default_value = "us-east-1,us-west-2,eu-west-1"
    )]
    regions: Vec<String>,
    /// Sample tasks listed per region.
    #[arg(long, env = "EC2_EMULATOR_TASKS_PER_REGION", default_value_t = 250)]
    tasks_per_region: usize,
    /// Seed of the sample data.
    #[arg(long, env = "EC2_EMULATOR_SEED", default_value_t = 42)]
    seed: u64,
    /// Milliseconds every API request waits before it is handled.
    #[arg(long, env = "EC2_EMULATOR_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Requests per second allowed per region; more are answered RequestLimitExceeded.
    #[arg(long, env = "EC2_EMULATOR_THROTTLE_RPS")]
    throttle_rps: Option<f64>,
    /// Probability (0..1) of answering a request InternalError without effect.
    #[arg(long, env = "EC2_EMULATOR_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Probability (0..1) of answering a successful CreateStoreImageTask InternalError.
    #[arg(
        long,
        env = "EC2_EMULATOR_FAIL_AFTER_COMMIT_RATE",
        default_value_t = 0.0
    )]
    fail_after_commit_rate: f64,
    /// Actions answered UnauthorizedOperation, comma-separated.
    #[arg(long, env = "EC2_EMULATOR_DENY_ACTIONS", value_delimiter = ',')]
    deny_actions: Vec<String>,
    /// Start with the emulator clock frozen (step it through POST /_emulator/config).
    #[arg(long, env = "EC2_EMULATOR_FREEZE_TIME")]
    freeze_time: bool,
    /// Seconds a created store task takes to complete.
    #[arg(long, env = "EC2_EMULATOR_TASK_DURATION_SECS", default_value_t = 60.0)]
    task_duration_secs: f64,
}

impl Cli {
    fn options(&self) -> anyhow::Result<EmulatorOptions> {
        anyhow::ensure!(
            self.task_duration_secs.is_finite() && self.task_duration_secs > 0.0,
            "--task-duration-secs must be a positive number"
        );
        Ok(EmulatorOptions {
            regions: self
                .regions
                .iter()
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect(),
            tasks_per_region: self.tasks_per_region,
            seed: self.seed,
            faults: Faults {
                latency_ms: self.latency_ms,
                throttle_rps: self.throttle_rps,
                fail_rate: self.fail_rate,
                fail_after_commit_rate: self.fail_after_commit_rate,
                deny_actions: self
                    .deny_actions
                    .iter()
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect(),
            },
            freeze_time: self.freeze_time,
            task_duration: Duration::from_secs_f64(self.task_duration_secs),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let emulator = Emulator::start(cli.listen, cli.options()?).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "ec2-emulator listening on {}",
            emulator.endpoint_url()
        )
        .and_then(|()| stdout.flush())
        .context("writing the listening line to stdout")?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
