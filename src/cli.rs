//! The command line: `aws-flightsql serve` runs the server (with `--demo`, against an
//! in-process EC2 emulator with sample data), `aws-flightsql sql` is a small client.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ec2_emulator::{Emulator, EmulatorOptions};
use tracing_subscriber::EnvFilter;

use crate::client;
use std::num::NonZeroU32;

use crate::ec2::{AwsConfig, Credentials, LimitsConfig};
use crate::server::{Regions, Server, ServerOptions};

/// An Apache Arrow Flight SQL server for AWS resources.
#[derive(Debug, Parser)]
#[command(name = "aws-flightsql", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Flight SQL server.
    Serve(ServeArgs),
    /// Run one SQL statement against a server and print the result.
    Sql(SqlArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "AWS_FLIGHTSQL_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Regions asked when a query names none: a comma list, or `all` (every enabled region).
    /// Default: the region of the AWS environment or profile, else us-east-1.
    #[arg(long, env = "AWS_FLIGHTSQL_REGIONS")]
    regions: Option<Regions>,
    /// Send EC2 requests to this URL (also AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_EC2).
    #[arg(long, env = "AWS_FLIGHTSQL_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Attempts per AWS read call, retries included (throttling and 5xx are retried with
    /// back-off; `x-amz-retry-after` is honoured).
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    /// Client-side limit of AWS calls started per second per region (0 = none).
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_RPS_PER_REGION", default_value_t = 0)]
    max_rps_per_region: u32,
    /// AWS calls in flight at once, all regions together.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY", default_value_t = 64)]
    max_concurrency: usize,
    /// AWS calls in flight at once per region.
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_CONCURRENCY_PER_REGION",
        default_value_t = 8
    )]
    max_concurrency_per_region: usize,
    /// How long DescribeStoreImageTasks answers are cached (e.g. 5s, 500ms; 0 = off).
    #[arg(long, env = "AWS_FLIGHTSQL_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    cache_ttl: std::time::Duration,
    /// Refuse every INSERT (PERMISSION_DENIED, before any AWS call).
    #[arg(long, env = "AWS_FLIGHTSQL_READ_ONLY")]
    read_only: bool,
    /// Start an in-process EC2 emulator with sample data and serve it (no AWS account needed).
    #[arg(long, env = "AWS_FLIGHTSQL_DEMO")]
    demo: bool,
}

#[derive(Debug, clap::Args)]
struct SqlArgs {
    /// The server's Flight SQL URI.
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_CONNECT",
        default_value = "grpc://127.0.0.1:50051"
    )]
    connect: String,
    /// Output format.
    #[arg(long, env = "AWS_FLIGHTSQL_FORMAT", value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The SQL statement.
    sql: String,
}

/// How the `sql` command prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row, in a JSON array.
    Json,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Sql(args) => client::run(&args.connect, &args.sql, args.format).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sample data of the demo: three regions, more tasks than one API page holds.
fn demo_options() -> EmulatorOptions {
    EmulatorOptions {
        regions: vec!["us-east-1".into(), "us-west-2".into(), "eu-west-1".into()],
        tasks_per_region: 250,
        ..EmulatorOptions::default()
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut options = ServerOptions {
        listen: args.listen,
        aws: AwsConfig {
            endpoint_url: args.endpoint_url,
            max_attempts: args.max_attempts,
            limits: LimitsConfig {
                max_concurrency: args.max_concurrency,
                max_concurrency_per_region: args.max_concurrency_per_region,
                max_rps_per_region: NonZeroU32::new(args.max_rps_per_region),
            },
            cache_ttl: args.cache_ttl,
            ..AwsConfig::default()
        },
        regions: args.regions.unwrap_or_default(),
        read_only: args.read_only,
    };
    let mut emulator = None;
    if args.demo {
        let emu = Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), demo_options()).await?;
        options.aws = AwsConfig {
            endpoint_url: Some(emu.endpoint_url()),
            credentials: Credentials::Static {
                access_key_id: "AKIDEMO".into(),
                secret_access_key: "demo-secret".into(),
            },
            default_region: Some("us-east-1".into()),
            ..options.aws
        };
        if options.regions == Regions::Default {
            options.regions = Regions::List(emu.regions());
        }
        emulator = Some(emu);
    }
    let server = Server::start(options).await?;
    let uri = server.uri();
    if let Some(emu) = &emulator {
        print_demo_banner(emu, &uri);
    }
    println!("aws-flightsql listening on {uri}");
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    Ok(())
}

fn print_demo_banner(emu: &Emulator, uri: &str) {
    println!(
        "Demo mode: an in-process EC2 emulator at {} serves regions {} with sample data.",
        emu.endpoint_url(),
        emu.regions().join(", ")
    );
    println!("AMIs available for INSERT (CreateStoreImageTask), with a bucket of their region:");
    for region in emu.regions() {
        let amis = emu.storable_amis(&region);
        let bucket = emu.buckets(&region).into_iter().next().unwrap_or_default();
        println!("  {region} (bucket {bucket}): {}", amis.join(" "));
    }
    println!("Try:");
    println!(
        "  aws-flightsql sql --connect {uri} \"SELECT region, storeTaskState, count(*) AS tasks \
         FROM store_image_tasks GROUP BY region, storeTaskState ORDER BY 1, 2\""
    );
    println!(
        "  aws-flightsql sql --connect {uri} \"SELECT amiId, bucket, progressPercentage FROM \
         aws.ec2.store_image_tasks WHERE region = 'eu-west-1' AND storeTaskState = 'InProgress'\""
    );
}
