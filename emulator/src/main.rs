//! The `ec2-emulator` binary: starts the emulator, prints one line with its URL on stdout
//! once it is listening, logs to stderr, and stops on Ctrl-C or SIGTERM.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ec2_emulator::{BucketFailure, Emulator, EmulatorOptions, Faults, MAX_CREDENTIAL_SECONDS};
use tracing_subscriber::EnvFilter;

/// An emulator of the AWS EC2 Query API for store image tasks, STS and Organizations, for
/// tests and demos.
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
    /// Seconds a created store task takes to complete (fractions allowed: 0.5 runs a whole
    /// lifecycle in half a second). Also spelt --task-duration-secs.
    #[arg(
        long,
        alias = "task-duration-secs",
        env = "EC2_EMULATOR_TASK_SECONDS",
        default_value_t = 60.0
    )]
    task_seconds: f64,
    /// BUCKET[=AT_PERCENT[:REASON]]: the store tasks created to BUCKET run up to AT_PERCENT
    /// (default 50) and then end Failed with storeTaskFailureReason REASON (default S3's
    /// "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)").
    /// Repeatable.
    #[arg(long = "failing-bucket", value_parser = parse_failing_bucket)]
    failing_buckets: Vec<(String, BucketFailure)>,
    /// Accounts of the organization: the home (management) account 111111111111 and N - 1
    /// members 100000000001, 100000000002, ...
    #[arg(long, env = "EC2_EMULATOR_ACCOUNTS", default_value_t = 1)]
    accounts: usize,
    /// A role ARN AssumeRole refuses with AccessDenied (repeatable, or comma-separated).
    #[arg(
        long = "unassumable-role",
        env = "EC2_EMULATOR_UNASSUMABLE_ROLES",
        value_delimiter = ','
    )]
    unassumable_roles: Vec<String>,
    /// ROLE_ARN=EXTERNAL_ID: the external id the role's trust policy requires (repeatable).
    #[arg(long = "role-external-id", value_parser = parse_pair)]
    role_external_ids: Vec<(String, String)>,
    /// Upper bound, in seconds, of the lifetime of credentials AssumeRole issues.
    #[arg(long, env = "EC2_EMULATOR_CREDENTIAL_SECONDS", default_value_t = MAX_CREDENTIAL_SECONDS)]
    credential_seconds: u64,
    /// An account ListAccounts shows SUSPENDED (repeatable, or comma-separated).
    #[arg(
        long = "suspended-account",
        env = "EC2_EMULATOR_SUSPENDED_ACCOUNTS",
        value_delimiter = ','
    )]
    suspended_accounts: Vec<String>,
    /// ACCOUNT=REGION: a served region not enabled in that account (repeatable).
    #[arg(long = "disabled-region", value_parser = parse_pair)]
    disabled_regions: Vec<(String, String)>,
}

/// Reads `BUCKET[=AT_PERCENT[:REASON]]`.
fn parse_failing_bucket(raw: &str) -> Result<(String, BucketFailure), String> {
    BucketFailure::parse_flag(raw).map_err(|e| e.0)
}

/// Reads `KEY=VALUE`.
fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

impl Cli {
    fn options(&self) -> anyhow::Result<EmulatorOptions> {
        anyhow::ensure!(
            self.task_seconds.is_finite() && self.task_seconds > 0.0,
            "--task-seconds must be a positive number of seconds, not {}",
            self.task_seconds
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
            task_duration: Duration::from_secs_f64(self.task_seconds),
            failing_buckets: self.failing_buckets.iter().cloned().collect(),
            accounts: self.accounts,
            unassumable_roles: trimmed(&self.unassumable_roles).collect(),
            role_external_ids: self.role_external_ids.iter().cloned().collect(),
            credential_seconds: self.credential_seconds,
            suspended_accounts: trimmed(&self.suspended_accounts).collect(),
            disabled_regions: self.disabled_regions.iter().fold(
                BTreeMap::new(),
                |mut map: BTreeMap<String, BTreeSet<String>>, (account, region)| {
                    map.entry(account.clone())
                        .or_default()
                        .insert(region.clone());
                    map
                },
            ),
        })
    }
}

fn trimmed(values: &[String]) -> impl Iterator<Item = String> + '_ {
    values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_seconds_keeps_its_old_spelling_and_failing_buckets_repeat() {
        let cli = Cli::try_parse_from([
            "ec2-emulator",
            "--task-seconds",
            "0.5",
            "--failing-bucket",
            "b1",
            "--failing-bucket",
            "b2=20:Disk full",
        ])
        .unwrap();
        let options = cli.options().unwrap();
        assert_eq!(options.task_duration, Duration::from_millis(500));
        assert_eq!(options.failing_buckets["b1"], BucketFailure::default());
        assert_eq!(options.failing_buckets["b2"].at_percent, 20);
        assert_eq!(options.failing_buckets["b2"].reason, "Disk full");
        let old = Cli::try_parse_from(["ec2-emulator", "--task-duration-secs", "2"]).unwrap();
        assert_eq!(old.options().unwrap().task_duration, Duration::from_secs(2));
        assert!(Cli::try_parse_from(["ec2-emulator", "--failing-bucket", "b=150"]).is_err());
        let zero = Cli::try_parse_from(["ec2-emulator", "--task-seconds", "0"]).unwrap();
        assert!(zero.options().is_err());
    }
}
