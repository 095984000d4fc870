//! The server's configuration: every setting can come from a flag, an `AWS_FLIGHTSQL_*`
//! environment variable, a TOML file (`--config`), or its default, in that order of
//! precedence. The same struct is parsed by clap (flags and environment) and by serde (the
//! file, where an unknown key is an error naming it), then merged and resolved.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::ec2::{AwsConfig, LimitsConfig};
use crate::server::{Regions, ServerOptions};

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
    #[arg(long, env = "AWS_FLIGHTSQL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Regions asked when a query names none: a comma list, or `all` (every enabled
    /// region). [default: the AWS environment's or profile's region, else us-east-1]
    #[arg(long, env = "AWS_FLIGHTSQL_REGIONS")]
    #[serde(default, deserialize_with = "regions_from_str")]
    pub regions: Option<Regions>,
    /// Send EC2 requests to this URL (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_EC2 work too).
    #[arg(long, env = "AWS_FLIGHTSQL_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS read call, retries included: throttling and 5xx are retried with
    /// back-off, x-amz-retry-after honoured. [default: 5]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Client-side limit of AWS calls started per second per region; 0 = none. [default: 0]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_RPS_PER_REGION")]
    pub max_rps_per_region: Option<u32>,
    /// AWS calls in flight at once, all regions together. [default: 64]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// AWS calls in flight at once per region. [default: 8]
    #[arg(long, env = "AWS_FLIGHTSQL_MAX_CONCURRENCY_PER_REGION")]
    pub max_concurrency_per_region: Option<usize>,
    /// How long DescribeStoreImageTasks answers are cached, e.g. 5s or 500ms; 0s = off.
    /// [default: 5s]
    #[arg(long, env = "AWS_FLIGHTSQL_CACHE_TTL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub cache_ttl: Option<Duration>,
    /// Refuse every INSERT with PERMISSION_DENIED, before any AWS call. [default: false]
    #[arg(long, env = "AWS_FLIGHTSQL_READ_ONLY", num_args = 0..=1, default_missing_value = "true")]
    pub read_only: Option<bool>,
    /// Start an in-process EC2 emulator with sample data and serve it. [default: false]
    #[arg(long, env = "AWS_FLIGHTSQL_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Serve Prometheus metrics on this address (GET /metrics). [default: off]
    #[arg(long, env = "AWS_FLIGHTSQL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format. [default: text]
    #[arg(long, env = "AWS_FLIGHTSQL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log a slow-query line (SQL, duration, AWS calls) for statements slower than this
    /// many milliseconds; 0 = off. [default: 5000]
    #[arg(long, env = "AWS_FLIGHTSQL_SLOW_QUERY_MS")]
    pub slow_query_ms: Option<u64>,
    /// On SIGTERM or Ctrl-C, how long running queries may finish before they are
    /// cancelled, e.g. 30s. [default: 30s]
    #[arg(long, env = "AWS_FLIGHTSQL_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
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
            shutdown_grace
        )
    }

    /// Applies the defaults and checks the values.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let defaults = AwsConfig::default();
        let limits = LimitsConfig::default();
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
        };
        if config.max_attempts == 0 {
            bail!("max_attempts must be at least 1");
        }
        if config.max_concurrency == 0 || config.max_concurrency_per_region == 0 {
            bail!("max_concurrency and max_concurrency_per_region must be at least 1");
        }
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
                ..AwsConfig::default()
            },
            regions: self.regions.clone(),
            read_only: self.read_only,
            metrics_listen: self.metrics_listen,
            slow_query: (self.slow_query_ms > 0).then(|| Duration::from_millis(self.slow_query_ms)),
            keepalive: crate::server::DEFAULT_KEEPALIVE,
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
    fn effective_configuration_prints_as_toml_that_reads_back() {
        let config = Settings::default().resolve().unwrap();
        let text = config.to_toml();
        assert!(text.contains("listen = \"127.0.0.1:50051\""), "{text}");
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back.listen, Some(config.listen));
    }
}
