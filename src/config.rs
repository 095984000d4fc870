//! The server's configuration: every setting can come from a flag, an `AWS_FLIGHTSQL_*`
//! environment variable, a TOML file (`--config`), or its default, in that order of
//! precedence. The same struct is parsed by clap (flags and environment) and by serde (the
//! file, where an unknown key is an error naming it), then merged and resolved.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthOptions, LoginLimits};
use crate::ec2::{AwsConfig, LimitsConfig};
use crate::limits::{QueryLimits, ServerLimits};
use crate::server::{Regions, ServerOptions};
use crate::tls::TlsFiles;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings as given: each `None` when its source did not set it.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Settings {
    /// Address to listen on (port 0 picks a free one). [default: 127.0.0.1:50051]
    #[arg(long, env = "AWS_FLIGHTSQL_LISTEN", help_heading = "Server")]
    pub listen: Option<SocketAddr>,
    /// Regions asked when a query names none: a comma list, or `all` (every enabled
    /// region). [default: the AWS environment's or profile's region, else us-east-1]
    #[arg(long, env = "AWS_FLIGHTSQL_REGIONS", help_heading = "AWS")]
    #[serde(default, deserialize_with = "regions_from_str")]
    pub regions: Option<Regions>,
    /// Send EC2 requests to this URL (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_EC2 work too).
    #[arg(long, env = "AWS_FLIGHTSQL_ENDPOINT_URL", help_heading = "AWS")]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS read call, retries included: throttling and 5xx are retried with
    /// back-off, x-amz-retry-after honoured. [default: 5]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_ATTEMPTS", help_heading = "AWS")]
    pub max_attempts: Option<u32>,
    /// Client-side limit of AWS calls started per second per region; 0 = none. [default: 0]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_RPS_PER_REGION", help_heading = "AWS")]
    pub max_rps_per_region: Option<u32>,
    /// AWS calls in flight at once, all regions together. [default: 64]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY", help_heading = "AWS")]
    pub max_concurrency: Option<usize>,
    /// AWS calls in flight at once per region. [default: 8]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_CONCURRENCY_PER_REGION",
        help_heading = "AWS"
    )]
    pub max_concurrency_per_region: Option<usize>,
    /// How long DescribeStoreImageTasks answers are cached, e.g. 5s or 500ms; 0s = off.
    /// [default: 5s]
    #[arg(long, env = "AWS_FLIGHTSQL_CACHE_TTL", help_heading = "AWS", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub cache_ttl: Option<Duration>,
    /// Refuse every INSERT with PERMISSION_DENIED, before any AWS call. [default: false]
    #[arg(long, env = "AWS_FLIGHTSQL_READ_ONLY", help_heading = "Server", num_args = 0..=1, default_missing_value = "true")]
    pub read_only: Option<bool>,
    /// Start an in-process EC2 emulator with sample data and serve it. [default: false]
    #[arg(long, env = "AWS_FLIGHTSQL_DEMO", help_heading = "Server", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Serve Prometheus metrics on this address (GET /metrics). [default: off]
    #[arg(long, env = "AWS_FLIGHTSQL_METRICS_LISTEN", help_heading = "Server")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format. [default: text]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_LOG_FORMAT",
        help_heading = "Server",
        value_enum
    )]
    pub log_format: Option<LogFormat>,
    /// Log a slow-query line (SQL, duration, AWS calls) for statements slower than this
    /// many milliseconds; 0 = off. [default: 5000]
    #[arg(long, env = "AWS_FLIGHTSQL_SLOW_QUERY_MS", help_heading = "Server")]
    pub slow_query_ms: Option<u64>,
    /// On SIGTERM or Ctrl-C, how long running queries may finish before they are
    /// cancelled, e.g. 30s. [default: 30s]
    #[arg(long, env = "AWS_FLIGHTSQL_SHUTDOWN_GRACE", help_heading = "Server", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
    /// A TOML file of users (name, argon2 password_hash, role read|write); every RPC but
    /// health checks then needs credentials. [default: none: no authentication, loopback
    /// addresses only]
    #[arg(long, env = "AWS_FLIGHTSQL_USERS_FILE", help_heading = "Security")]
    pub users_file: Option<PathBuf>,
    /// Serve a non-loopback address without a users file (when something in front of the
    /// server already restricts who reaches it). [default: false]
    #[arg(long, env = "AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED", help_heading = "Security", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated: Option<bool>,
    /// How long a bearer token from a handshake stays valid, e.g. 1h. [default: 1h]
    #[arg(long, env = "AWS_FLIGHTSQL_TOKEN_TTL", help_heading = "Security", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub token_ttl: Option<Duration>,
    /// A file holding the key (32+ bytes) that signs bearer tokens; replicas behind one load
    /// balancer share it. [default: a random key per start]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_TOKEN_SECRET_FILE",
        help_heading = "Security"
    )]
    pub token_secret_file: Option<PathBuf>,
    /// Failed logins of one user name from one client address that lock that name out from
    /// that address for --login-lockout (every password is refused then, the right one
    /// too). [default: 5]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_LOGIN_MAX_FAILURES",
        help_heading = "Security"
    )]
    pub login_max_failures: Option<u32>,
    /// How long a user name stays locked out from an address, e.g. 5m; failed logins are
    /// also forgotten after this long without one. [default: 5m]
    #[arg(long, env = "AWS_FLIGHTSQL_LOGIN_LOCKOUT", help_heading = "Security", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub login_lockout: Option<Duration>,
    /// Failed logins per minute one client address may make, all user names together;
    /// past them its password checks are refused until the budget comes back; 0 = no
    /// limit. [default: 30]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_LOGIN_ADDRESS_FAILURES_PER_MINUTE",
        help_heading = "Security"
    )]
    pub login_address_failures_per_minute: Option<u32>,
    /// PEM certificate chain: serve TLS (grpc+tls://). Needs --tls-key. [default: plaintext]
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_CERT", help_heading = "Security")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_KEY", help_heading = "Security")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): require client certificates signed by them (mutual TLS).
    /// [default: none]
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_CLIENT_CA", help_heading = "Security")]
    pub tls_client_ca: Option<PathBuf>,
    /// Statement RPCs (GetFlightInfo, DoGet, DoPut, ...) running at once; more are refused
    /// with RESOURCE_EXHAUSTED. [default: 64]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_CONCURRENT_QUERIES",
        help_heading = "Limits"
    )]
    pub max_concurrent_queries: Option<usize>,
    /// How long a query may run and stream (DoGet) before it is stopped with
    /// DEADLINE_EXCEEDED, e.g. 5m; 0s = no limit. [default: 5m]
    #[arg(long, env = "AWS_FLIGHTSQL_QUERY_TIMEOUT", help_heading = "Limits", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub query_timeout: Option<Duration>,
    /// How long a query's response may have data ready that its client does not read before
    /// the stream is stopped (DEADLINE_EXCEEDED) and its slot given back, e.g. 30s; 0s = no
    /// limit. [default: 60s]
    #[arg(long, env = "AWS_FLIGHTSQL_CLIENT_STALL_TIMEOUT", help_heading = "Limits", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub client_stall_timeout: Option<Duration>,
    /// Longest SQL statement accepted, in bytes. [default: 1048576]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_SQL_BYTES", help_heading = "Limits")]
    pub max_sql_bytes: Option<usize>,
    /// Largest gRPC message decoded (parameter batches, bulk ingest), in bytes.
    /// [default: 134217728]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_MESSAGE_BYTES", help_heading = "Limits")]
    pub max_message_bytes: Option<usize>,
    /// Largest HTTP/2 request header list, in bytes. [default: 65536]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_HEADER_BYTES", help_heading = "Limits")]
    pub max_header_bytes: Option<u32>,
    /// Deepest expression accepted: operators chained or nested in one expression (256 is
    /// a 257-term sum, 128 ORs, or 256 nested calls; IN lists are not deep). [default: 256]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_EXPRESSION_DEPTH",
        help_heading = "Limits"
    )]
    pub max_expression_depth: Option<usize>,
    /// Most query blocks (SELECT or VALUES: union arms, CTEs, subqueries) in one statement.
    /// [default: 128]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_QUERY_BLOCKS", help_heading = "Limits")]
    pub max_query_blocks: Option<usize>,
    /// Most joins (JOIN, or tables listed with commas) in one statement. [default: 32]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_JOINS", help_heading = "Limits")]
    pub max_joins: Option<usize>,
    /// Memory all running statements together may use for sorts, joins, aggregates and
    /// buffers, e.g. 1GiB or 512MiB; a statement that needs more fails with
    /// RESOURCE_EXHAUSTED. [default: 1GiB]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_MEMORY", help_heading = "Limits")]
    pub max_memory: Option<bytesize::ByteSize>,
    /// Most DescribeStoreImageTasks calls one statement may make; a plan that needs more is
    /// refused before the first call, a scan that reaches it is stopped; 0 = no limit.
    /// [default: 500]
    #[arg(
        long,
        env = "AWS_FLIGHTSQL_MAX_AWS_CALLS_PER_QUERY",
        help_heading = "AWS"
    )]
    pub max_aws_calls_per_query: Option<usize>,
    /// Time allowed to connect to AWS, per call. [default: 5s]
    #[arg(long, env = "AWS_FLIGHTSQL_AWS_CONNECT_TIMEOUT", help_heading = "AWS", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub aws_connect_timeout: Option<Duration>,
    /// Time allowed for one attempt of an AWS call (retries get their own). [default: 30s]
    #[arg(long, env = "AWS_FLIGHTSQL_AWS_ATTEMPT_TIMEOUT", help_heading = "AWS", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub aws_attempt_timeout: Option<Duration>,
}

fn regions_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Regions>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| t.parse().map_err(serde::de::Error::custom))
        .transpose()
}

macro_rules! merge {
    ($primary:expr, $fallback:expr, $($field:ident),+) => {
        Settings { $($field: $primary.$field.or($fallback.$field)),+ }
    };
}

impl Settings {
    /// Reads a TOML file of settings; unknown keys and bad values are errors naming them.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }

    /// These settings, with `fallback`'s where these have none.
    pub fn or(self, fallback: Settings) -> Settings {
        merge!(
            self,
            fallback,
            listen,
            regions,
            endpoint_url,
            max_attempts,
            max_rps_per_region,
            max_concurrency,
            max_concurrency_per_region,
            cache_ttl,
            read_only,
            demo,
            metrics_listen,
            log_format,
            slow_query_ms,
            shutdown_grace,
            users_file,
            allow_unauthenticated,
            token_ttl,
            token_secret_file,
            login_max_failures,
            login_lockout,
            login_address_failures_per_minute,
            tls_cert,
            tls_key,
            tls_client_ca,
            max_concurrent_queries,
            query_timeout,
            client_stall_timeout,
            max_sql_bytes,
            max_message_bytes,
            max_header_bytes,
            max_expression_depth,
            max_query_blocks,
            max_joins,
            max_memory,
            max_aws_calls_per_query,
            aws_connect_timeout,
            aws_attempt_timeout
        )
    }

    /// Applies the defaults and checks the values.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let defaults = AwsConfig::default();
        let limits = LimitsConfig::default();
        let server_limits = ServerLimits::default();
        let config = Config {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            regions: self.regions.unwrap_or_default(),
            endpoint_url: self.endpoint_url,
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts),
            max_rps_per_region: self.max_rps_per_region.unwrap_or(0),
            max_concurrency: self.max_concurrency.unwrap_or(limits.max_concurrency),
            max_concurrency_per_region: self
                .max_concurrency_per_region
                .unwrap_or(limits.max_concurrency_per_region),
            cache_ttl: self.cache_ttl.unwrap_or(defaults.cache_ttl),
            read_only: self.read_only.unwrap_or(false),
            demo: self.demo.unwrap_or(false),
            metrics_listen: self.metrics_listen,
            log_format: self.log_format.unwrap_or(LogFormat::Text),
            slow_query_ms: self.slow_query_ms.unwrap_or(5000),
            shutdown_grace: self.shutdown_grace.unwrap_or(Duration::from_secs(30)),
            users_file: self.users_file,
            allow_unauthenticated: self.allow_unauthenticated.unwrap_or(false),
            token_ttl: self.token_ttl.unwrap_or(crate::auth::DEFAULT_TOKEN_TTL),
            token_secret_file: self.token_secret_file,
            login_max_failures: self
                .login_max_failures
                .unwrap_or(crate::auth::DEFAULT_MAX_FAILURES),
            login_lockout: self.login_lockout.unwrap_or(crate::auth::DEFAULT_LOCKOUT),
            login_address_failures_per_minute: self
                .login_address_failures_per_minute
                .unwrap_or(crate::auth::DEFAULT_ADDRESS_FAILURES_PER_MINUTE),
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            tls_client_ca: self.tls_client_ca,
            max_concurrent_queries: self
                .max_concurrent_queries
                .unwrap_or(server_limits.queries.max_concurrent_queries),
            query_timeout: self
                .query_timeout
                .or(server_limits.queries.query_timeout)
                .unwrap_or_default(),
            client_stall_timeout: self
                .client_stall_timeout
                .or(server_limits.queries.client_stall_timeout)
                .unwrap_or_default(),
            max_sql_bytes: self.max_sql_bytes.unwrap_or(server_limits.max_sql_bytes),
            max_message_bytes: self
                .max_message_bytes
                .unwrap_or(server_limits.max_message_bytes),
            max_header_bytes: self
                .max_header_bytes
                .unwrap_or(server_limits.max_header_bytes),
            max_expression_depth: self
                .max_expression_depth
                .unwrap_or(server_limits.max_expression_depth),
            max_query_blocks: self
                .max_query_blocks
                .unwrap_or(server_limits.max_query_blocks),
            max_joins: self.max_joins.unwrap_or(server_limits.max_joins),
            max_memory: self
                .max_memory
                .unwrap_or(bytesize::ByteSize::b(server_limits.max_memory as u64)),
            max_aws_calls_per_query: self
                .max_aws_calls_per_query
                .unwrap_or(server_limits.max_aws_calls_per_query),
            aws_connect_timeout: self.aws_connect_timeout.unwrap_or(defaults.connect_timeout),
            aws_attempt_timeout: self.aws_attempt_timeout.unwrap_or(defaults.attempt_timeout),
        };
        if config.max_attempts == 0 {
            bail!("max_attempts must be at least 1");
        }
        if config.max_concurrency == 0 || config.max_concurrency_per_region == 0 {
            bail!("max_concurrency and max_concurrency_per_region must be at least 1");
        }
        if config.max_concurrent_queries == 0 {
            bail!("max_concurrent_queries must be at least 1");
        }
        if config.max_sql_bytes == 0 || config.max_message_bytes == 0 {
            bail!("max_sql_bytes and max_message_bytes must be at least 1");
        }
        if config.max_expression_depth < 16 {
            bail!("max_expression_depth must be at least 16");
        }
        if config.max_query_blocks == 0 || config.max_joins == 0 {
            bail!("max_query_blocks and max_joins must be at least 1");
        }
        if config.max_memory.as_u64() < 16 * 1024 * 1024 {
            bail!("max_memory must be at least 16MiB");
        }
        if config.max_header_bytes < 8 * 1024 {
            bail!("max_header_bytes must be at least 8192 (gRPC clients send several headers)");
        }
        if config.token_ttl.is_zero() {
            bail!("token_ttl must be more than 0s");
        }
        if config.aws_connect_timeout.is_zero() || config.aws_attempt_timeout.is_zero() {
            bail!("aws_connect_timeout and aws_attempt_timeout must be more than 0s");
        }
        match (&config.tls_cert, &config.tls_key) {
            (Some(_), None) => bail!("tls_cert needs tls_key (the certificate's private key)"),
            (None, Some(_)) => bail!("tls_key needs tls_cert"),
            _ => {}
        }
        if config.tls_client_ca.is_some() && config.tls_cert.is_none() {
            bail!("tls_client_ca (mutual TLS) needs tls_cert and tls_key");
        }
        config.auth_options().check_exposure(config.listen)?;
        config.auth_options().login.check()?;
        if let Some(url) = &config.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("endpoint_url must be an http:// or https:// URL, not `{url}`");
            }
        }
        Ok(config)
    }
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Regions asked by default.
    #[serde(serialize_with = "regions_to_str")]
    pub regions: Regions,
    /// EC2 endpoint override.
    pub endpoint_url: Option<String>,
    /// Attempts per read call.
    pub max_attempts: u32,
    /// Calls per second per region; 0 = no limit.
    pub max_rps_per_region: u32,
    /// Calls in flight, all regions.
    pub max_concurrency: usize,
    /// Calls in flight per region.
    pub max_concurrency_per_region: usize,
    /// Response cache TTL.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Refuse INSERT.
    pub read_only: bool,
    /// Serve the in-process emulator.
    pub demo: bool,
    /// Prometheus metrics address.
    pub metrics_listen: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Slow-query threshold in ms; 0 = off.
    pub slow_query_ms: u64,
    /// Shutdown grace period.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The users file; none = no authentication.
    pub users_file: Option<PathBuf>,
    /// Serve a non-loopback address without authentication.
    pub allow_unauthenticated: bool,
    /// Bearer token lifetime.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The token signing key's file; none = random per start.
    pub token_secret_file: Option<PathBuf>,
    /// Failed logins of a user name from an address before a lockout.
    pub login_max_failures: u32,
    /// Lockout duration (and how long failures are remembered).
    #[serde(with = "humantime_serde")]
    pub login_lockout: Duration,
    /// Failed logins per minute from one address, all names; 0 = no limit.
    pub login_address_failures_per_minute: u32,
    /// TLS certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key.
    pub tls_key: Option<PathBuf>,
    /// CA of the client certificates required (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Statement RPCs at once.
    pub max_concurrent_queries: usize,
    /// Query timeout; 0s = none.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Client stall timeout; 0s = none.
    #[serde(with = "humantime_serde")]
    pub client_stall_timeout: Duration,
    /// Longest SQL, bytes.
    pub max_sql_bytes: usize,
    /// Largest decoded message, bytes.
    pub max_message_bytes: usize,
    /// Largest request header list, bytes.
    pub max_header_bytes: u32,
    /// Deepest expression.
    pub max_expression_depth: usize,
    /// Most query blocks per statement.
    pub max_query_blocks: usize,
    /// Most joins per statement.
    pub max_joins: usize,
    /// Memory for all running statements.
    pub max_memory: bytesize::ByteSize,
    /// AWS calls per statement; 0 = no limit.
    pub max_aws_calls_per_query: usize,
    /// AWS connect timeout.
    #[serde(with = "humantime_serde")]
    pub aws_connect_timeout: Duration,
    /// AWS per-attempt timeout.
    #[serde(with = "humantime_serde")]
    pub aws_attempt_timeout: Duration,
}

fn regions_to_str<S: serde::Serializer>(r: &Regions, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Regions::Default => s.serialize_str("default"),
        Regions::All => s.serialize_str("all"),
        Regions::List(list) => s.serialize_str(&list.join(",")),
    }
}

impl Config {
    /// The configuration as TOML, as `serve --check-config` prints it.
    pub fn to_toml(&self) -> String {
        let mut text = toml::to_string(self).expect("the configuration serialises");
        if self.regions == Regions::Default {
            // `default` is not a value one can write back: say what it means instead.
            text = text.replace(
                "regions = \"default\"",
                "# regions: the AWS environment's or profile's region, else us-east-1",
            );
        }
        text
    }

    /// What the server needs from it (the AWS credentials come from the standard chain).
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            listen: self.listen,
            aws: AwsConfig {
                endpoint_url: self.endpoint_url.clone(),
                max_attempts: self.max_attempts,
                limits: LimitsConfig {
                    max_concurrency: self.max_concurrency,
                    max_concurrency_per_region: self.max_concurrency_per_region,
                    max_rps_per_region: NonZeroU32::new(self.max_rps_per_region),
                },
                cache_ttl: self.cache_ttl,
                connect_timeout: self.aws_connect_timeout,
                attempt_timeout: self.aws_attempt_timeout,
                ..AwsConfig::default()
            },
            regions: self.regions.clone(),
            read_only: self.read_only,
            metrics_listen: self.metrics_listen,
            slow_query: (self.slow_query_ms > 0).then(|| Duration::from_millis(self.slow_query_ms)),
            keepalive: crate::server::DEFAULT_KEEPALIVE,
            auth: self.auth_options(),
            tls: self
                .tls_cert
                .as_ref()
                .zip(self.tls_key.as_ref())
                .map(|(cert, key)| TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
            limits: ServerLimits {
                queries: QueryLimits {
                    max_concurrent_queries: self.max_concurrent_queries,
                    query_timeout: (!self.query_timeout.is_zero()).then_some(self.query_timeout),
                    client_stall_timeout: (!self.client_stall_timeout.is_zero())
                        .then_some(self.client_stall_timeout),
                },
                max_sql_bytes: self.max_sql_bytes,
                max_message_bytes: self.max_message_bytes,
                max_header_bytes: self.max_header_bytes,
                max_expression_depth: self.max_expression_depth,
                max_query_blocks: self.max_query_blocks,
                max_joins: self.max_joins,
                max_memory: usize::try_from(self.max_memory.as_u64()).unwrap_or(usize::MAX),
                max_aws_calls_per_query: self.max_aws_calls_per_query,
            },
        }
    }

    /// How the server authenticates.
    pub fn auth_options(&self) -> AuthOptions {
        AuthOptions {
            users_file: self.users_file.clone(),
            token_secret_file: self.token_secret_file.clone(),
            token_ttl: self.token_ttl,
            allow_unauthenticated: self.allow_unauthenticated,
            login: LoginLimits {
                max_failures: self.login_max_failures,
                lockout: self.login_lockout,
                address_failures: self.login_address_failures_per_minute,
                address_period: Duration::from_secs(60),
                ..LoginLimits::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: Settings = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nregions = \"eu-west-1,us-east-1\"\ncache_ttl = \"2s\"\nread_only = true\n",
        )
        .unwrap();
        let flags = Settings {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Settings::default()
        };
        let config = flags.or(file).resolve().unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(
            config.regions,
            Regions::List(vec!["eu-west-1".into(), "us-east-1".into()])
        );
        assert_eq!(config.cache_ttl, Duration::from_secs(2));
        assert!(config.read_only);
        assert_eq!(config.max_attempts, 5);
    }

    #[test]
    fn the_client_stall_timeout_defaults_to_60s_and_0s_turns_it_off() {
        let limits =
            |settings: Settings| settings.resolve().unwrap().server_options().limits.queries;
        let default = limits(Settings::default());
        assert_eq!(default.client_stall_timeout, Some(Duration::from_secs(60)));
        let file: Settings = toml::from_str("client_stall_timeout = \"0s\"").unwrap();
        assert_eq!(limits(file.clone()).client_stall_timeout, None);
        let flags = Settings {
            client_stall_timeout: Some(Duration::from_secs(5)),
            ..Settings::default()
        };
        assert_eq!(
            limits(flags.or(file)).client_stall_timeout,
            Some(Duration::from_secs(5))
        );
        let err = toml::from_str::<Settings>("client_stall_timeout = \"never\"").unwrap_err();
        assert!(err.to_string().contains("client_stall_timeout"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = toml::from_str::<Settings>("listen_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err = toml::from_str::<Settings>("cache_ttl = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("cache_ttl"), "{err}");
        let err = toml::from_str::<Settings>("regions = \"Mars\"").unwrap_err();
        assert!(err.to_string().contains("regions"), "{err}");
        let err = Settings {
            max_attempts: Some(0),
            ..Settings::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
    }

    #[test]
    fn login_throttle_settings_reach_the_auth_options() {
        let defaults = Settings::default().resolve().unwrap().auth_options().login;
        assert_eq!(defaults, LoginLimits::default());
        let file: Settings = toml::from_str(
            "login_max_failures = 3\nlogin_lockout = \"90s\"\nlogin_address_failures_per_minute = 0\n",
        )
        .unwrap();
        let login = file.resolve().unwrap().auth_options().login;
        assert_eq!(login.max_failures, 3);
        assert_eq!(login.lockout, Duration::from_secs(90));
        assert_eq!(login.address_failures, 0);
        let err = Settings {
            login_max_failures: Some(0),
            ..Settings::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("login_max_failures"), "{err}");
        let err = toml::from_str::<Settings>("login_lockout = \"a while\"").unwrap_err();
        assert!(err.to_string().contains("login_lockout"), "{err}");
    }

    #[test]
    fn effective_configuration_prints_as_toml_that_reads_back() {
        let config = Settings::default().resolve().unwrap();
        let text = config.to_toml();
        assert!(text.contains("listen = \"127.0.0.1:50051\""), "{text}");
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back.listen, Some(config.listen));
    }
}
