//! The server's configuration, each setting declared once: a field of [`Config`] carries its
//! flag (`--max-attempts`), environment variable (`AWS_FLIGHTSQL_MAX_ATTEMPTS`), file key
//! (`max_attempts`), default, help text and `serve --help` heading.
//!
//! Layering, lowest first: the defaults (clap's, read by [`Config::default`]), a TOML file
//! (`--config`; serde, where an unknown key or a bad value is an error naming it), then the
//! environment and the flags, which clap parses and which win only where the user gave them
//! (clap's [`ValueSource`]: a default never hides a file's value). [`Config::check`] then
//! refuses combinations and values the server cannot start with.
//!
//! The file is flat (`max_attempts = 3`, no sections), so the settings are one struct with a
//! heading per field rather than one flattened struct per group: serde's `flatten` would lose
//! the key name in the errors for bad values.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, FromArgMatches};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthOptions, LoginLimits};
use crate::ec2::organizations::DEFAULT_REFRESH as DEFAULT_ORG_REFRESH;
use crate::ec2::{AccountSpec, AwsConfig, LimitsConfig, OrgDiscovery};
use crate::limits::{QueryLimits, ServerLimits};
use crate::server::{Regions, ServerOptions};
use crate::table::{AwaitLimits, LOWEST_AWAIT_INTERVAL};
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

/// `serve --help` heading: where the server listens and how it is reached.
const LISTENING: &str = "Listening";
/// `serve --help` heading: how AWS is called.
const AWS: &str = "AWS";
/// `serve --help` heading: what one statement or all of them may use.
const LIMITS: &str = "Limits";
/// `serve --help` heading: who may connect and write.
const SECURITY: &str = "Security";
/// `serve --help` heading: logs and shutdown.
const OPERATIONS: &str = "Operations";

/// A duration as flags, files and `--check-config` write it (`5s`, `1m`, `1h`): the text
/// of a duration default.
fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The effective configuration of `serve`: every setting, its flag, environment variable,
/// file key (the field's name), default and help. Field order is the order of
/// `--check-config`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "AWS_FLIGHTSQL_LISTEN", help_heading = LISTENING,
        default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Regions asked when a query names none: a comma list, or `all` (every enabled
    /// region). [default: the AWS environment's or profile's region, else us-east-1]
    #[arg(long, env = "AWS_FLIGHTSQL_REGIONS", help_heading = AWS)]
    #[serde(
        serialize_with = "regions_to_str",
        deserialize_with = "regions_from_str"
    )]
    pub regions: Option<Regions>,
    /// Send EC2 requests to this URL (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_EC2 work too).
    #[arg(long, env = "AWS_FLIGHTSQL_ENDPOINT_URL", help_heading = AWS)]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS read call, retries included: throttling and 5xx are retried with
    /// back-off, x-amz-retry-after honoured.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_ATTEMPTS", help_heading = AWS,
        default_value_t = AwsConfig::default().max_attempts)]
    pub max_attempts: u32,
    /// Client-side limit of AWS calls started per second per region; 0 = none.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_RPS_PER_REGION", help_heading = AWS,
        default_value_t = 0)]
    pub max_rps_per_region: u32,
    /// AWS calls in flight at once, all regions together.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY", help_heading = AWS,
        default_value_t = LimitsConfig::default().max_concurrency)]
    pub max_concurrency: usize,
    /// AWS calls in flight at once per region.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY_PER_REGION", help_heading = AWS,
        default_value_t = LimitsConfig::default().max_concurrency_per_region)]
    pub max_concurrency_per_region: usize,
    /// How long DescribeStoreImageTasks answers are cached, e.g. 5s or 500ms; 0s = off.
    #[arg(long, env = "AWS_FLIGHTSQL_CACHE_TTL", help_heading = AWS,
        value_parser = humantime::parse_duration,
        default_value = duration(AwsConfig::default().cache_ttl))]
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Statement RPCs (GetFlightInfo, DoGet, DoPut, ...) running at once; more are refused
    /// with RESOURCE_EXHAUSTED.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENT_QUERIES", help_heading = LIMITS,
        default_value_t = ServerLimits::default().queries.max_concurrent_queries)]
    pub max_concurrent_queries: usize,
    /// How long a query may run and stream (DoGet) before it is stopped with
    /// DEADLINE_EXCEEDED, e.g. 5m; 0s = no limit.
    #[arg(long, env = "AWS_FLIGHTSQL_QUERY_TIMEOUT", help_heading = LIMITS,
        value_parser = humantime::parse_duration,
        default_value = duration(ServerLimits::default().queries.query_timeout.unwrap_or_default()))]
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// How long a query's response may have data ready that its client does not read before
    /// the stream is stopped (DEADLINE_EXCEEDED) and its slot given back, e.g. 30s; 0s = no
    /// limit.
    #[arg(long, env = "AWS_FLIGHTSQL_CLIENT_STALL_TIMEOUT", help_heading = LIMITS,
        value_parser = humantime::parse_duration,
        default_value = duration(ServerLimits::default().queries.client_stall_timeout.unwrap_or_default()))]
    #[serde(with = "humantime_serde")]
    pub client_stall_timeout: Duration,
    /// The longest a watch (`watch_store_image_tasks(...)`) may run, e.g. 1h: its timeout
    /// may not be longer, and its DoGet may run this much longer than --query-timeout;
    /// 0s = no watches.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_WATCH", help_heading = LIMITS,
        value_parser = humantime::parse_duration,
        default_value = duration(ServerLimits::default().max_watch))]
    #[serde(with = "humantime_serde")]
    pub max_watch: Duration,
    /// Longest wait of an awaiting INSERT (`INSERT /*+ AWAIT */`, `aws.await`): a longer
    /// `aws.await_timeout` is cut to it. The query timeout does not apply to INSERT; this
    /// bounds how long one holds its slot. 0s = AWAIT is refused.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_AWAIT", help_heading = LIMITS,
        value_parser = humantime::parse_duration,
        default_value = duration(AwaitLimits::default().max_await))]
    #[serde(with = "humantime_serde")]
    pub max_await: Duration,
    /// Shortest `aws.await_interval` a session may set (each poll of an awaiting INSERT is
    /// one DescribeStoreImageTasks per account and region); at least 100ms.
    #[arg(long, env = "AWS_FLIGHTSQL_MIN_AWAIT_INTERVAL", help_heading = LIMITS,
        value_parser = humantime::parse_duration,
        default_value = duration(AwaitLimits::default().min_interval))]
    #[serde(with = "humantime_serde")]
    pub min_await_interval: Duration,
    /// Longest SQL statement accepted, in bytes.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_SQL_BYTES", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_sql_bytes)]
    pub max_sql_bytes: usize,
    /// Largest gRPC message decoded (parameter batches, bulk ingest), in bytes.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_MESSAGE_BYTES", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Largest HTTP/2 request header list, in bytes.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_HEADER_BYTES", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_header_bytes)]
    pub max_header_bytes: u32,
    /// Deepest expression accepted: operators chained or nested in one expression (256 is
    /// a 257-term sum, 128 ORs, or 256 nested calls; IN lists are not deep).
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_EXPRESSION_DEPTH", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_expression_depth)]
    pub max_expression_depth: usize,
    /// Most query blocks (SELECT or VALUES: union arms, CTEs, subqueries) in one statement.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_QUERY_BLOCKS", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_query_blocks)]
    pub max_query_blocks: usize,
    /// Most joins (JOIN, or tables listed with commas) in one statement.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_JOINS", help_heading = LIMITS,
        default_value_t = ServerLimits::default().max_joins)]
    pub max_joins: usize,
    /// Memory all running statements together may use for sorts, joins, aggregates and
    /// buffers, e.g. 1GiB or 512MiB; a statement that needs more fails with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_MEMORY", help_heading = LIMITS,
        default_value_t = bytesize::ByteSize::b(ServerLimits::default().max_memory as u64))]
    pub max_memory: bytesize::ByteSize,
    /// Refuse every INSERT with PERMISSION_DENIED, before any AWS call.
    #[arg(long, env = "AWS_FLIGHTSQL_READ_ONLY", help_heading = SECURITY,
        action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
        default_value_t = false)]
    pub read_only: bool,
    /// Start an in-process EC2 emulator with sample data and serve it.
    #[arg(long, env = "AWS_FLIGHTSQL_DEMO", help_heading = AWS,
        action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
        default_value_t = false)]
    pub demo: bool,
    /// Serve Prometheus metrics on this address (GET /metrics). [default: off]
    #[arg(long, env = "AWS_FLIGHTSQL_METRICS_LISTEN", help_heading = LISTENING)]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "AWS_FLIGHTSQL_LOG_FORMAT", help_heading = OPERATIONS,
        value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log a slow-query line (SQL, duration, AWS calls) for statements slower than this
    /// many milliseconds; 0 = off.
    #[arg(long, env = "AWS_FLIGHTSQL_SLOW_QUERY_MS", help_heading = OPERATIONS,
        default_value_t = 5000)]
    pub slow_query_ms: u64,
    /// On SIGTERM or Ctrl-C, how long running queries may finish before they are
    /// cancelled, e.g. 30s.
    #[arg(long, env = "AWS_FLIGHTSQL_SHUTDOWN_GRACE", help_heading = OPERATIONS,
        value_parser = humantime::parse_duration,
        default_value = duration(Duration::from_secs(30)))]
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// A TOML file of users (name, argon2 password_hash, role read|write); every RPC but
    /// health checks then needs credentials. [default: none: no authentication, loopback
    /// addresses only]
    #[arg(long, env = "AWS_FLIGHTSQL_USERS_FILE", help_heading = SECURITY)]
    pub users_file: Option<PathBuf>,
    /// Serve a non-loopback address without a users file (when something in front of the
    /// server already restricts who reaches it).
    #[arg(long, env = "AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED", help_heading = SECURITY,
        action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
        default_value_t = false)]
    pub allow_unauthenticated: bool,
    /// How long a bearer token from a handshake stays valid, e.g. 1h.
    #[arg(long, env = "AWS_FLIGHTSQL_TOKEN_TTL", help_heading = SECURITY,
        value_parser = humantime::parse_duration,
        default_value = duration(crate::auth::DEFAULT_TOKEN_TTL))]
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// A file holding the key (32+ bytes) that signs bearer tokens; replicas behind one load
    /// balancer share it. [default: a random key per start]
    #[arg(long, env = "AWS_FLIGHTSQL_TOKEN_SECRET_FILE", help_heading = SECURITY)]
    pub token_secret_file: Option<PathBuf>,
    /// Failed logins of one user name from one client address that lock that name out from
    /// that address for --login-lockout (every password is refused then, the right one
    /// too).
    #[arg(long, env = "AWS_FLIGHTSQL_LOGIN_MAX_FAILURES", help_heading = SECURITY,
        default_value_t = crate::auth::DEFAULT_MAX_FAILURES)]
    pub login_max_failures: u32,
    /// How long a user name stays locked out from an address, e.g. 5m; failed logins are
    /// also forgotten after this long without one.
    #[arg(long, env = "AWS_FLIGHTSQL_LOGIN_LOCKOUT", help_heading = SECURITY,
        value_parser = humantime::parse_duration,
        default_value = duration(crate::auth::DEFAULT_LOCKOUT))]
    #[serde(with = "humantime_serde")]
    pub login_lockout: Duration,
    /// Failed logins per minute one client address may make, all user names together;
    /// past them its password checks are refused until the budget comes back; 0 = no
    /// limit.
    #[arg(long, env = "AWS_FLIGHTSQL_LOGIN_ADDRESS_FAILURES_PER_MINUTE", help_heading = SECURITY,
        default_value_t = crate::auth::DEFAULT_ADDRESS_FAILURES_PER_MINUTE)]
    pub login_address_failures_per_minute: u32,
    /// PEM certificate chain: serve TLS (grpc+tls://). Needs --tls-key. [default: plaintext]
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_CERT", help_heading = LISTENING)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_KEY", help_heading = LISTENING)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): require client certificates signed by them (mutual TLS).
    /// [default: none]
    #[arg(long, env = "AWS_FLIGHTSQL_TLS_CLIENT_CA", help_heading = LISTENING)]
    pub tls_client_ca: Option<PathBuf>,
    /// Most DescribeStoreImageTasks calls one statement may make; a plan that needs more is
    /// refused before the first call, a scan that reaches it is stopped; 0 = no limit.
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_AWS_CALLS_PER_QUERY", help_heading = AWS,
        default_value_t = ServerLimits::default().max_aws_calls_per_query)]
    pub max_aws_calls_per_query: usize,
    /// Time allowed to connect to AWS, per call.
    #[arg(long, env = "AWS_FLIGHTSQL_AWS_CONNECT_TIMEOUT", help_heading = AWS,
        value_parser = humantime::parse_duration,
        default_value = duration(AwsConfig::default().connect_timeout))]
    #[serde(with = "humantime_serde")]
    pub aws_connect_timeout: Duration,
    /// Time allowed for one attempt of an AWS call (retries get their own).
    #[arg(long, env = "AWS_FLIGHTSQL_AWS_ATTEMPT_TIMEOUT", help_heading = AWS,
        value_parser = humantime::parse_duration,
        default_value = duration(AwsConfig::default().attempt_timeout))]
    #[serde(with = "humantime_serde")]
    pub aws_attempt_timeout: Duration,
    /// Discover the organization's accounts with AWS Organizations ListAccounts (asked with
    /// the server's own credentials, which need organizations:ListAccounts in the management
    /// or a delegated administrator account) and read every ACTIVE one by assuming the role
    /// of this NAME in it (`arn:aws:iam::<id>:role/<name>`). [default: off: only the server's
    /// own account and the configured ones]
    #[arg(long, env = "AWS_FLIGHTSQL_ORG_MEMBER_ROLE", help_heading = AWS)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_member_role: Option<String>,
    /// Accounts discovery leaves out: 12-digit ids, repeatable or a comma list.
    #[arg(long, env = "AWS_FLIGHTSQL_ORG_SKIP_ACCOUNTS", help_heading = AWS,
        value_delimiter = ',')]
    pub org_skip_accounts: Vec<String>,
    /// How long one listing of the organization's accounts is used; then it is listed again
    /// in the background while queries go on with the last list.
    #[arg(long, env = "AWS_FLIGHTSQL_ORG_REFRESH", help_heading = AWS,
        value_parser = humantime::parse_duration,
        default_value = duration(DEFAULT_ORG_REFRESH))]
    #[serde(with = "humantime_serde")]
    pub org_refresh: Duration,
    /// Another account to read, reached by assuming a role: ID=ROLE_ARN, repeatable (in the
    /// environment a comma list). An external id is never a flag (ps would show it): set
    /// AWS_FLIGHTSQL_EXTERNAL_ID, or give each account its own in the file (`[[accounts]]`:
    /// id, role_arn, external_id, regions). [default: only the server's own account]
    #[arg(long = "account", id = "account", env = "AWS_FLIGHTSQL_ACCOUNT", help_heading = AWS,
        value_parser = parse_account, value_delimiter = ',')]
    #[serde(rename = "accounts")]
    pub accounts: Vec<AccountConfig>,
}

/// One `[[accounts]]` entry: an account read through a role.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The 12-digit account id.
    pub id: String,
    /// The role to assume there, `arn:aws:iam::<id>:role/<name>`.
    pub role_arn: String,
    /// The external id the role's trust policy requires; never printed.
    #[serde(default, skip_serializing)]
    pub external_id: Option<String>,
    /// The regions asked there when a query names none. [default: the server's regions]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("role_arn", &self.role_arn)
            // Never print the external id.
            .field("external_id", &self.external_id.as_ref().map(|_| ".."))
            .field("regions", &self.regions)
            .finish()
    }
}

impl AccountConfig {
    /// The account as the AWS layer takes it.
    pub fn spec(&self) -> AccountSpec {
        AccountSpec {
            id: self.id.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            regions: self.regions.clone(),
        }
    }
}

/// `--account ID=ROLE_ARN`.
fn parse_account(text: &str) -> Result<AccountConfig, String> {
    let Some((id, role_arn)) = text.trim().split_once('=') else {
        return Err(format!(
            "`{text}` is not ID=ROLE_ARN (e.g. 123456789012=arn:aws:iam::123456789012:role/reader)"
        ));
    };
    Ok(AccountConfig {
        id: id.trim().to_owned(),
        role_arn: role_arn.trim().to_owned(),
        external_id: None,
        regions: None,
    })
}

/// The environment variable holding the external id of the accounts that have none of their
/// own (never a flag: ps shows a process's arguments).
pub const EXTERNAL_ID_ENV: &str = "AWS_FLIGHTSQL_EXTERNAL_ID";

impl Default for Config {
    /// Every setting at its default: the defaults declared on the fields, the environment
    /// not read.
    fn default() -> Self {
        let command = Config::augment_args(clap::Command::new("defaults"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(["defaults"])
            .expect("every setting has a default or is optional");
        Config::from_arg_matches(&matches).expect("the defaults parse")
    }
}

/// `regions` in a file or in `--check-config`'s output: `all` or a comma list; absent is
/// the AWS environment's region (printed as `default`, which [`Config::to_toml`] explains).
fn regions_to_str<S: serde::Serializer>(r: &Option<Regions>, s: S) -> Result<S::Ok, S::Error> {
    match r.as_ref().unwrap_or(&Regions::Default) {
        Regions::Default => s.serialize_str("default"),
        Regions::All => s.serialize_str("all"),
        Regions::List(list) => s.serialize_str(&list.join(",")),
    }
}

fn regions_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Regions>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| t.parse().map_err(serde::de::Error::custom))
        .transpose()
}

impl Config {
    /// The configuration of `serve`: the defaults, then the TOML file `file` if there is
    /// one, then the environment variables and flags in `given` (the matches of a command
    /// that [`Config::augment_args`] built), checked.
    pub fn resolve(file: Option<&Path>, given: &ArgMatches) -> anyhow::Result<Config> {
        let base = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let mut config = base.overridden_by(given)?;
        if let Ok(external_id) = std::env::var(EXTERNAL_ID_ENV) {
            config.default_external_id(&external_id);
        }
        config.check()?;
        Ok(config)
    }

    /// Gives `external_id` to the accounts that have none of their own.
    pub fn default_external_id(&mut self, external_id: &str) {
        let external_id = external_id.trim();
        if external_id.is_empty() {
            return;
        }
        for account in &mut self.accounts {
            if account.external_id.is_none() {
                account.external_id = Some(external_id.to_owned());
            }
        }
    }

    /// Reads a TOML file of settings over the defaults; unknown keys and bad values are
    /// errors naming them.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }

    /// These settings with the ones `given` on the command line or in the environment
    /// instead; the values clap filled in from the defaults are left out, so a default never
    /// wins over a file's value.
    pub fn overridden_by(mut self, given: &ArgMatches) -> anyhow::Result<Config> {
        let mut given = given.clone();
        let defaulted: Vec<String> = given
            .ids()
            .filter(|id| given.value_source(id.as_str()) == Some(ValueSource::DefaultValue))
            .map(|id| id.as_str().to_owned())
            .collect();
        for id in defaulted {
            given.try_clear_id(&id)?;
        }
        self.update_from_arg_matches(&given)?;
        Ok(self)
    }

    /// Refuses values and combinations the server cannot start with; the message names the
    /// setting.
    pub fn check(&self) -> anyhow::Result<()> {
        let config = self;
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
        if config.min_await_interval < LOWEST_AWAIT_INTERVAL {
            bail!(
                "min_await_interval must be at least {}",
                duration(LOWEST_AWAIT_INTERVAL)
            );
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
        config.check_accounts()?;
        match config.discovery() {
            Some(discovery) => discovery.check().map_err(|e| anyhow::anyhow!(e)),
            None if !config.org_skip_accounts.is_empty() => bail!(
                "org_skip_accounts leaves accounts out of discovery, which is off: set \
                 org_member_role too, or remove org_skip_accounts"
            ),
            None => Ok(()),
        }
    }

    /// Discovery of the organization's accounts, when `org_member_role` is set. Discovered
    /// accounts are assumed without an external id (it is for roles that third parties
    /// assume; give such accounts in `[[accounts]]`).
    pub fn discovery(&self) -> Option<OrgDiscovery> {
        self.org_member_role.as_ref().map(|role| OrgDiscovery {
            member_role: role.trim().to_owned(),
            skip_accounts: self
                .org_skip_accounts
                .iter()
                .map(|a| a.trim().to_owned())
                .collect(),
            refresh: self.org_refresh,
            external_id: None,
        })
    }

    /// Refuses an `accounts` entry the server could not use: an id that is not 12 digits, a
    /// role ARN of the wrong shape or of another account, an external id AWS would refuse,
    /// a region that is not a region name, or an account given twice.
    fn check_accounts(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for account in &self.accounts {
            let spec = account.spec();
            spec.check().map_err(|e| anyhow::anyhow!("accounts: {e}"))?;
            let role_account = account.role_arn.split(':').nth(4).unwrap_or_default();
            if role_account != account.id {
                bail!(
                    "accounts: account {}: role_arn {} is a role of account {role_account}; \
                     give the role of account {} that the server may assume",
                    account.id,
                    account.role_arn,
                    account.id
                );
            }
            for region in account.regions.iter().flatten() {
                if !crate::table::is_region_name(region) {
                    bail!(
                        "accounts: account {}: regions: `{region}` is not an AWS region name",
                        account.id
                    );
                }
            }
            if !seen.insert(account.id.as_str()) {
                bail!(
                    "accounts: account {} is given more than once; give each account once",
                    account.id
                );
            }
        }
        Ok(())
    }

    /// The configuration as TOML, as `serve --check-config` prints it.
    pub fn to_toml(&self) -> String {
        let mut text = toml::to_string(self).expect("the configuration serialises");
        if self.regions.is_none() {
            // `default` is not a value one can write back: say what it means instead.
            text = text.replace(
                "regions = \"default\"",
                "# regions: the AWS environment's or profile's region, else us-east-1",
            );
        }
        if self.org_member_role.is_none() {
            text = text.replacen(
                "org_skip_accounts = ",
                "# org_member_role: not set (no discovery of the organization's accounts)\n\
                 org_skip_accounts = ",
                1,
            );
        }
        // An external id is never printed: say that one is set.
        for account in self.accounts.iter().filter(|a| a.external_id.is_some()) {
            let line = format!("role_arn = \"{}\"\n", account.role_arn);
            text = text.replacen(&line, &format!("{line}# external_id: set (not shown)\n"), 1);
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
                accounts: self.accounts.iter().map(AccountConfig::spec).collect(),
                discovery: self.discovery(),
                ..AwsConfig::default()
            },
            regions: self.regions.clone().unwrap_or_default(),
            read_only: self.read_only,
            metrics_listen: self.metrics_listen,
            slow_query: (self.slow_query_ms > 0).then(|| Duration::from_millis(self.slow_query_ms)),
            keepalive: crate::server::DEFAULT_KEEPALIVE,
            awaiting: AwaitLimits {
                max_await: self.max_await,
                min_interval: self.min_await_interval,
            },
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
                max_watch: self.max_watch,
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

    /// The matches of `serve`'s settings for these arguments (the environment is read too:
    /// the tests set no AWS_FLIGHTSQL_* variable).
    fn given(args: &[&str]) -> ArgMatches {
        Config::augment_args(clap::Command::new("serve"))
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
    }

    fn file(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let config = file(
            "listen = \"127.0.0.1:9000\"\nregions = \"eu-west-1,us-east-1\"\ncache_ttl = \"2s\"\nread_only = true\n",
        )
        .overridden_by(&given(&["--listen", "127.0.0.1:7000"]))
        .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(
            config.regions,
            Some(Regions::List(vec!["eu-west-1".into(), "us-east-1".into()]))
        );
        assert_eq!(config.cache_ttl, Duration::from_secs(2));
        assert!(config.read_only);
        assert_eq!(config.max_attempts, 5);
    }

    #[test]
    fn a_flag_given_at_its_default_value_still_wins_over_the_file() {
        let from_file = file("read_only = true\nmax_attempts = 3\n");
        let config = from_file
            .clone()
            .overridden_by(&given(&["--read-only", "false", "--max-attempts", "5"]))
            .unwrap();
        assert!(!config.read_only);
        assert_eq!(config.max_attempts, 5);
        // A flag without its value means true.
        let config = Config::default()
            .overridden_by(&given(&["--read-only"]))
            .unwrap();
        assert!(config.read_only);
        // No flag: the file's values stay.
        assert_eq!(
            from_file.clone().overridden_by(&given(&[])).unwrap(),
            from_file
        );
    }

    #[test]
    fn discovery_settings_come_from_flags_and_files_are_checked_and_shown() {
        let config = file(
            "org_member_role = \"flightsql-reader\"\norg_skip_accounts = [\"100000000009\"]\n\
             org_refresh = \"5m\"\n",
        )
        .overridden_by(&given(&[
            "--org-skip-accounts",
            "100000000001,100000000002",
        ]))
        .unwrap();
        config.check().unwrap();
        let discovery = config.discovery().unwrap();
        assert_eq!(discovery.member_role, "flightsql-reader");
        assert_eq!(discovery.skip_accounts, ["100000000001", "100000000002"]);
        assert_eq!(discovery.refresh, Duration::from_secs(300));
        assert_eq!(config.server_options().aws.discovery, Some(discovery));
        let shown = config.to_toml();
        assert!(
            shown.contains("org_member_role = \"flightsql-reader\""),
            "{shown}"
        );
        assert!(shown.contains("org_refresh = \"5m\""), "{shown}");
        assert!(shown.contains("\"100000000002\""), "{shown}");

        // Off by default, and --check-config says so.
        let off = Config::default();
        assert_eq!(off.discovery(), None);
        assert_eq!(off.org_refresh, Duration::from_secs(15 * 60));
        assert!(
            off.to_toml().contains("# org_member_role: not set"),
            "{}",
            off.to_toml()
        );

        let err = file("org_member_role = \"arn:aws:iam::123456789012:role/r\"\n")
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be the NAME of a role"), "{err}");
        let err = file("org_skip_accounts = [\"100000000001\"]\n")
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("set org_member_role"), "{err}");
        let err = file("org_member_role = \"r\"\norg_skip_accounts = [\"1\"]\n")
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`1` is not an AWS account id"), "{err}");
    }

    #[test]
    fn the_defaults_are_the_declared_ones_and_pass_the_checks() {
        let config = Config::default();
        assert_eq!(config, file(""));
        assert_eq!(
            config,
            Config::default().overridden_by(&given(&[])).unwrap()
        );
        config.check().unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert_eq!(config.regions, None);
        assert_eq!(config.max_attempts, AwsConfig::default().max_attempts);
        assert_eq!(config.cache_ttl, AwsConfig::default().cache_ttl);
        assert_eq!(config.slow_query_ms, 5000);
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.max_memory.as_u64(), 1024 * 1024 * 1024);
        let options = config.server_options();
        let limits = ServerLimits::default();
        assert_eq!(options.limits.queries, limits.queries);
        assert_eq!(options.limits.max_sql_bytes, limits.max_sql_bytes);
        assert_eq!(options.limits.max_memory, limits.max_memory);
        assert_eq!(options.limits.max_watch, Duration::from_secs(3600));
        assert_eq!(options.regions, Regions::Default);
        assert_eq!(options.slow_query, Some(Duration::from_secs(5)));
    }

    #[test]
    fn every_setting_has_its_flag_environment_variable_and_heading() {
        let command = Config::augment_args(clap::Command::new("serve"));
        let headings = [LISTENING, AWS, SECURITY, LIMITS, OPERATIONS];
        let mut count = 0;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            assert_eq!(arg.get_long(), Some(id.replace('_', "-").as_str()), "{id}");
            let env = format!("AWS_FLIGHTSQL_{}", id.to_uppercase());
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(&env)), "{id}");
            let heading = arg.get_help_heading().unwrap_or_default();
            assert!(headings.contains(&heading), "{id}: heading `{heading}`");
            count += 1;
        }
        // Every setting is a file key too: `--check-config` prints them all (the optional
        // ones once set).
        let text = Config::default().to_toml();
        let printed = text.lines().filter(|l| l.contains(" = ")).count();
        // endpoint_url, metrics_listen, users_file, token_secret_file, tls_*, org_member_role
        let optional = 8;
        assert_eq!(printed + 1 + optional, count, "{text}");
    }

    #[test]
    fn the_client_stall_timeout_defaults_to_60s_and_0s_turns_it_off() {
        let limits = |config: Config| config.server_options().limits.queries;
        assert_eq!(
            limits(Config::default()).client_stall_timeout,
            Some(Duration::from_secs(60))
        );
        let off = file("client_stall_timeout = \"0s\"");
        assert_eq!(limits(off.clone()).client_stall_timeout, None);
        let flags = off
            .overridden_by(&given(&["--client-stall-timeout", "5s"]))
            .unwrap();
        assert_eq!(
            limits(flags).client_stall_timeout,
            Some(Duration::from_secs(5))
        );
        let err = toml::from_str::<Config>("client_stall_timeout = \"never\"").unwrap_err();
        assert!(err.to_string().contains("client_stall_timeout"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = toml::from_str::<Config>("listen_addr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err = toml::from_str::<Config>("cache_ttl = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("cache_ttl"), "{err}");
        let err = toml::from_str::<Config>("regions = \"Mars\"").unwrap_err();
        assert!(err.to_string().contains("regions"), "{err}");
        let err = file("max_attempts = 0").check().unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let err = Config::augment_args(clap::Command::new("serve"))
            .try_get_matches_from(["serve", "--max-attempts", "x"])
            .unwrap_err();
        assert!(err.to_string().contains("--max-attempts"), "{err}");
    }

    #[test]
    fn login_throttle_settings_reach_the_auth_options() {
        assert_eq!(
            Config::default().auth_options().login,
            LoginLimits::default()
        );
        let config = file(
            "login_max_failures = 3\nlogin_lockout = \"90s\"\nlogin_address_failures_per_minute = 0\n",
        );
        config.check().unwrap();
        let login = config.auth_options().login;
        assert_eq!(login.max_failures, 3);
        assert_eq!(login.lockout, Duration::from_secs(90));
        assert_eq!(login.address_failures, 0);
        let err = file("login_max_failures = 0").check().unwrap_err();
        assert!(err.to_string().contains("login_max_failures"), "{err}");
        let err = toml::from_str::<Config>("login_lockout = \"a while\"").unwrap_err();
        assert!(err.to_string().contains("login_lockout"), "{err}");
    }

    #[test]
    fn accounts_come_from_the_file_or_flags_and_are_checked() {
        let config = file(
            "regions = \"us-east-1\"\n\
             [[accounts]]\nid = \"100000000001\"\nrole_arn = \"arn:aws:iam::100000000001:role/reader\"\n\
             external_id = \"ext-s3cr3t\"\nregions = [\"eu-west-1\"]\n\
             [[accounts]]\nid = \"100000000002\"\nrole_arn = \"arn:aws:iam::100000000002:role/reader\"\n",
        );
        config.check().unwrap();
        assert_eq!(config.accounts.len(), 2);
        let specs = config.server_options().aws.accounts;
        assert_eq!(specs[0].external_id.as_deref(), Some("ext-s3cr3t"));
        assert_eq!(specs[0].regions, Some(vec!["eu-west-1".to_owned()]));
        // --check-config and Debug never show the external id, and the output reads back
        // (without it).
        let text = config.to_toml();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert!(text.contains("# external_id: set (not shown)"), "{text}");
        let back = file(&text);
        assert_eq!(back.accounts[0].external_id, None);
        assert_eq!(back.accounts[1], config.accounts[1]);

        // Flags replace the file's list; the environment's external id fills the gaps.
        let mut flags = config
            .overridden_by(&given(&[
                "--account",
                "100000000003=arn:aws:iam::100000000003:role/r",
                "--account",
                "100000000004=arn:aws:iam::100000000004:role/r",
            ]))
            .unwrap();
        flags.default_external_id("from-env");
        let ids: Vec<&str> = flags.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["100000000003", "100000000004"]);
        assert!(flags
            .accounts
            .iter()
            .all(|a| a.external_id.as_deref() == Some("from-env")));
        flags.check().unwrap();

        let bad = |text: &str, says: &str| {
            let err = file(text).check().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        };
        let entry =
            |id: &str, arn: &str| format!("[[accounts]]\nid = \"{id}\"\nrole_arn = \"{arn}\"\n");
        bad(
            &entry("12345", "arn:aws:iam::12345:role/r"),
            "`12345` is not an AWS account id",
        );
        bad(
            &entry("100000000001", "reader"),
            "role_arn `reader` must look like",
        );
        bad(
            &entry("100000000001", "arn:aws:iam::100000000002:role/r"),
            "is a role of account 100000000002",
        );
        bad(
            &format!(
                "{}{}",
                entry("100000000001", "arn:aws:iam::100000000001:role/r"),
                entry("100000000001", "arn:aws:iam::100000000001:role/s")
            ),
            "account 100000000001 is given more than once",
        );
        bad(
            &format!(
                "{}regions = [\"Mars\"]\n",
                entry("100000000001", "arn:aws:iam::100000000001:role/r")
            ),
            "`Mars` is not an AWS region name",
        );
        let err = Config::augment_args(clap::Command::new("serve"))
            .try_get_matches_from(["serve", "--account", "100000000001"])
            .unwrap_err();
        assert!(err.to_string().contains("is not ID=ROLE_ARN"), "{err}");
    }

    #[test]
    fn effective_configuration_prints_as_toml_that_reads_back() {
        let config = Config::default();
        let text = config.to_toml();
        assert!(text.contains("listen = \"127.0.0.1:50051\""), "{text}");
        assert!(text.contains("# regions: "), "{text}");
        assert_eq!(file(&text), config);
        let config = file("regions = \"all\"\nmax_memory = \"512MiB\"\nlog_format = \"json\"\n");
        assert_eq!(file(&config.to_toml()), config);
    }
}
