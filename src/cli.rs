//! The command line: `aws-flightsql serve` runs the server (with `--demo`, against an
//! in-process EC2 emulator with sample data), `aws-flightsql sql` is a small client,
//! `watch` follows store image tasks with a progress bar each (`watch_store_image_tasks`),
//! `health` asks the health service, `hash-password` makes a users file entry.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use std::path::PathBuf;

use crate::client::{self, Format};
use crate::config::{Config, LogFormat};
use crate::server::Server;

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
    Serve(Box<ServeArgs>),
    /// Run SQL statements against a server (in one session) and print the results.
    Sql(SqlArgs),
    /// Follow store image tasks as they run: a progress bar per task on a terminal (AMI,
    /// region, bucket, percent, time since it started, state), a line per change otherwise.
    /// Exits 0 when every task completed, 1 when one failed (its reason is printed), did not
    /// finish before --timeout, or none matched.
    Watch(WatchArgs),
    /// Ask a server's gRPC health service whether it is serving (exit 0 if it is).
    Health(HealthArgs),
    /// Hash a password for the users file (--users-file). The password is read from the
    /// terminal (asked twice, not echoed) or from standard input, never from the command
    /// line.
    HashPassword(HashPasswordArgs),
}

#[derive(Debug, clap::Args)]
struct HashPasswordArgs {
    /// Print a whole `[[users]]` entry for this user instead of the hash alone.
    #[arg(long)]
    user: Option<String>,
    /// The role of the entry printed with --user.
    #[arg(long, value_enum, default_value_t = RoleArg::Read, requires = "user")]
    role: RoleArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    /// Queries only.
    Read,
    /// Queries and INSERT.
    Write,
}

/// How the client commands reach a TLS server.
#[derive(Debug, Clone, clap::Args)]
struct TlsArgs {
    /// PEM CA certificate to trust for grpc+tls:// (instead of the system's roots).
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS).
    #[arg(
        long = "tls-client-cert",
        env = "AWS_FLIGHTSQL_TLS_CLIENT_CERT",
        requires = "tls_client_key"
    )]
    tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert.
    #[arg(
        long = "tls-client-key",
        env = "AWS_FLIGHTSQL_TLS_CLIENT_KEY",
        requires = "tls_client_cert"
    )]
    tls_client_key: Option<PathBuf>,
}

impl TlsArgs {
    fn client_tls(&self) -> crate::tls::ClientTls {
        crate::tls::ClientTls {
            ca: self.tls_ca.clone(),
            identity: self
                .tls_client_cert
                .clone()
                .zip(self.tls_client_key.clone()),
        }
    }
}

/// The environment variable the `sql` command reads a password from.
const PASSWORD_ENV: &str = "AWS_FLIGHTSQL_PASSWORD";

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A TOML file of settings (the keys are the flags' names with underscores). Flags and
    /// AWS_FLIGHTSQL_* environment variables win over it.
    #[arg(long, env = "AWS_FLIGHTSQL_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration, print the effective settings, and exit.
    #[arg(long)]
    check_config: bool,
    /// The settings' flags and environment variables. Their values as parsed here include
    /// clap's defaults, which must not hide the file's: [`Config::resolve`] layers the
    /// flags and environment the user gave (from the matches) over the file instead.
    #[command(flatten)]
    _settings: Config,
}

#[derive(Debug, clap::Args)]
struct HealthArgs {
    /// The server's Flight SQL URI.
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_CONNECT",
        default_value = "grpc://127.0.0.1:50051"
    )]
    connect: String,
    #[command(flatten)]
    tls: TlsArgs,
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
    /// Output format. Rows are printed as they arrive: CSV and JSON hold nothing, so a
    /// result of any size streams through; a table holds at most --max-table-rows rows.
    #[arg(long, env = "AWS_FLIGHTSQL_FORMAT", value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Most rows one table holds. A longer result is printed as it arrives, in tables of
    /// at most this many rows, each aligned on its own, after a note saying so (for one
    /// result of any size use --format csv or json).
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_TABLE_ROWS",
        default_value_t = client::DEFAULT_MAX_TABLE_ROWS as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_table_rows: u64,
    /// User name, for servers with a users file; the password comes from
    /// AWS_FLIGHTSQL_PASSWORD or is asked on the terminal.
    #[arg(long, env = "AWS_FLIGHTSQL_USER")]
    user: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Run with `aws.dry_run` on: AWS checks each INSERT row (permissions, parameters),
    /// nothing is created, and the rows that would be created are listed.
    #[arg(long)]
    dry_run: bool,
    /// Set a session option for this call, as `SET name = 'value'` would (repeatable; for
    /// example --set aws.cache=off --set datafusion.execution.time_zone=+02:00).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// The SQL to run: one statement, or several separated by `;`, run in order in one
    /// session (`SET aws.dry_run = true; INSERT ...`), stopping at the first that fails.
    sql: String,
}

#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// The server's Flight SQL URI.
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_CONNECT",
        default_value = "grpc://127.0.0.1:50051"
    )]
    connect: String,
    /// Only the tasks of this region (repeatable); without it, the server's regions.
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// Only the tasks of this AMI (repeatable), whatever their state, the newest of each
    /// AMI and region; without it, the tasks in progress when the watch starts.
    #[arg(long = "ami", value_name = "AMI")]
    amis: Vec<String>,
    /// Time between two polls (each asks AWS once per account and region).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: std::time::Duration,
    /// Stop watching after this long (at most the server's --max-watch).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// User name, for servers with a users file; the password comes from
    /// AWS_FLIGHTSQL_PASSWORD or is asked on the terminal.
    #[arg(long, env = "AWS_FLIGHTSQL_USER")]
    user: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

impl SqlArgs {
    /// The `SET` statements of --dry-run and --set, in that order.
    fn settings(&self) -> anyhow::Result<Vec<String>> {
        let mut settings = Vec::new();
        if self.dry_run {
            settings.push("SET aws.dry_run = true".to_owned());
        }
        for name_value in &self.set {
            settings.push(client::set_statement(name_value)?);
        }
        Ok(settings)
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| e.format(&mut Cli::command()))
        .unwrap_or_else(|e| e.exit());
    // The configuration decides how to log, so it is resolved first.
    let action = match cli.command {
        Command::Serve(args) => match resolve(&args, serve_matches(&matches)) {
            Ok(Some(config)) => Action::Serve(Box::new(config)),
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        Command::Sql(args) => Action::Sql(args),
        Command::Watch(args) => Action::Watch(args),
        Command::Health(args) => Action::Health(args),
        Command::HashPassword(args) => {
            return match hash_password(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    init_logging(match &action {
        Action::Serve(config) => config.log_format,
        _ => LogFormat::Text,
    });
    // Deep stacks: DataFusion walks expression trees recursively (see
    // limits::DEFAULT_MAX_EXPRESSION_DEPTH).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::limits::WORKER_STACK_BYTES)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match action {
            Action::Serve(config) => serve_until_signal(*config).await,
            Action::Watch(args) => match connect_options(args.user.as_deref(), &args.tls) {
                Ok(options) => {
                    let watch = client::Watch {
                        regions: args.regions,
                        amis: args.amis,
                        interval: args.interval,
                        timeout: args.timeout,
                        until_done: true,
                    };
                    client::watch(&args.connect, &options, &watch).await
                }
                Err(e) => Err(e),
            },
            Action::Sql(args) => match (
                connect_options(args.user.as_deref(), &args.tls),
                args.settings(),
            ) {
                (Ok(options), Ok(settings)) => {
                    let printing = client::Printing {
                        format: args.format,
                        max_table_rows: usize::try_from(args.max_table_rows).unwrap_or(usize::MAX),
                    };
                    client::run(&args.connect, &options, &settings, &args.sql, printing).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
            Action::Health(args) => client::health(&args.connect, &args.tls.client_tls()).await,
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

/// What the command line asks for, once parsed and resolved.
enum Action {
    Serve(Box<Config>),
    Sql(SqlArgs),
    Watch(WatchArgs),
    Health(HealthArgs),
}

/// How the `sql` and `watch` commands connect: TLS options and, with --user, the password
/// from the environment or the terminal.
fn connect_options(user: Option<&str>, tls: &TlsArgs) -> anyhow::Result<client::ConnectOptions> {
    let credentials = match user {
        Some(user) => {
            let password = match std::env::var(PASSWORD_ENV) {
                Ok(password) => password,
                Err(_) if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password(format!("password for {user}: "))?
                }
                Err(_) => anyhow::bail!(
                    "--user needs a password: set {PASSWORD_ENV} or run on a terminal to be asked"
                ),
            };
            Some((user.to_owned(), password))
        }
        None => None,
    };
    Ok(client::ConnectOptions {
        tls: tls.client_tls(),
        credentials,
    })
}

/// The `hash-password` command: reads a password (terminal, twice, or one line of standard
/// input) and prints its argon2 hash, or a users file entry with it.
fn hash_password(args: &HashPasswordArgs) -> anyhow::Result<()> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.chars().count() < crate::auth::users::MIN_PASSWORD_CHARS {
        anyhow::bail!(
            "the password is too short: use at least {} characters",
            crate::auth::users::MIN_PASSWORD_CHARS
        );
    }
    let hash = crate::auth::hash_password(&password)?;
    match &args.user {
        Some(user) => {
            let role = match args.role {
                RoleArg::Read => "read",
                RoleArg::Write => "write",
            };
            println!("[[users]]\nname = {user:?}\npassword_hash = '{hash}'\nrole = \"{role}\"");
        }
        None => println!("{hash}"),
    }
    Ok(())
}

/// The matches of the `serve` subcommand: which settings the flags and the environment
/// gave (and which clap filled in from the defaults).
fn serve_matches(matches: &ArgMatches) -> &ArgMatches {
    matches
        .subcommand_matches("serve")
        .expect("the serve command was parsed from these matches")
}

/// The effective configuration, or `None` after `--check-config` printed it.
fn resolve(args: &ServeArgs, matches: &ArgMatches) -> anyhow::Result<Option<Config>> {
    let config = Config::resolve(args.config.as_deref(), matches)?;
    if args.check_config {
        println!("# effective configuration (flags > environment > file > defaults)");
        print!("{}", config.to_toml());
        return Ok(None);
    }
    Ok(Some(config))
}

fn init_logging(format: LogFormat) {
    // aws-config logs each failed instance-metadata region lookup as a long WARN (three off
    // EC2); the server says once, briefly, when no region was found at all.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config::imds::region=error"));
    // Colour only on a terminal: escape codes in files and log collectors are noise. The
    // SDK prints access key ids at debug and trace: every line is masked.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(crate::redact::Redacting);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    #[allow(unused_mut)]
    let mut options = config.server_options();
    #[cfg(feature = "demo")]
    let demo = match config.demo {
        true => Some(crate::demo::Demo::start(&mut options).await?),
        false => None,
    };
    #[cfg(not(feature = "demo"))]
    if config.demo {
        anyhow::bail!(
            "this aws-flightsql was built without the demo (--demo): build it with the `demo` \
             feature (on by default), or point it at AWS or an emulator with --endpoint-url"
        );
    }
    let server = Server::start(options).await?;
    let uri = server.uri();
    #[cfg(feature = "demo")]
    if let Some(demo) = &demo {
        demo.print_banner(&uri);
    }
    if let Some(addr) = server.metrics_addr() {
        println!("metrics: http://{addr}/metrics");
    }
    println!("aws-flightsql listening on {uri}");
    shutdown_signal().await;
    tracing::info!(grace = ?config.shutdown_grace, "shutting down");
    server.shutdown_within(config.shutdown_grace).await?;
    #[cfg(feature = "demo")]
    if let Some(demo) = demo {
        demo.shutdown().await;
    }
    Ok(())
}
