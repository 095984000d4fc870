//! The `aws.*` settings of a session (`SET aws.dry_run = true`, or the Flight SQL session
//! option `aws.dry_run`), a DataFusion config extension read by the table at plan time:
//! `aws.dry_run`, `aws.cache`, and AWAIT's `aws.await`, `aws.await_interval` and
//! `aws.await_timeout` (intervals in words or seconds, checked when set).
//!
//! Written out rather than with DataFusion's `extensions_options!`: that macro lists an
//! extension's settings without their prefix (`dry_run`), so `SHOW aws.dry_run` and
//! `information_schema.df_settings` did not know them by the name they are set with.

use std::any::Any;
use std::time::Duration;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigField, ExtensionOptions};
use datafusion::common::{config_err, Result};

/// Settings of the AWS tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsOptions {
    /// Send `DryRun=true` on writes: AWS checks permissions and parameters, nothing is
    /// created, and INSERT reports 0 rows affected and, row by row, what would have been
    /// created.
    pub dry_run: bool,
    /// `on` (default): serve SELECT from the short-lived response cache when it can;
    /// `off`: always ask AWS.
    pub cache: String,
    /// INSERT returns only when every task it created is `Completed` or `Failed` (as with
    /// `INSERT /*+ AWAIT */`), polling DescribeStoreImageTasks every `await_interval`.
    pub await_tasks: bool,
    /// How often an awaiting INSERT polls: an interval (`'5 seconds'`, `'500ms'`) or a
    /// number of seconds; read by [`AwsOptions::await_interval`].
    pub await_interval: String,
    /// How long an awaiting INSERT waits at most (`'1 hour'`, or seconds); read by
    /// [`AwsOptions::await_timeout`].
    pub await_timeout: String,
    /// `fail` (default): an account that cannot be reached fails the query; `skip`: it is
    /// left out and reported (log, metric, and to the client; see `table::skips`).
    pub on_account_error: String,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            dry_run: false,
            cache: "on".to_owned(),
            await_tasks: false,
            await_interval: DEFAULT_AWAIT_INTERVAL.to_owned(),
            await_timeout: DEFAULT_AWAIT_TIMEOUT.to_owned(),
            on_account_error: "fail".to_owned(),
        }
    }
}

const DRY_RUN: &str = "dry_run";
const CACHE: &str = "cache";
const AWAIT: &str = "await";
const AWAIT_INTERVAL: &str = "await_interval";
const AWAIT_TIMEOUT: &str = "await_timeout";

/// `aws.await_interval` unless set.
pub const DEFAULT_AWAIT_INTERVAL: &str = "5 seconds";
/// `aws.await_timeout` unless set.
pub const DEFAULT_AWAIT_TIMEOUT: &str = "1 hour";
const ON_ACCOUNT_ERROR: &str = "on_account_error";

impl ConfigExtension for AwsOptions {
    const PREFIX: &'static str = "aws";
}

impl ExtensionOptions for AwsOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            DRY_RUN => ConfigField::set(&mut self.dry_run, "", value),
            CACHE => ConfigField::set(&mut self.cache, "", value),
            AWAIT => ConfigField::set(&mut self.await_tasks, "", value),
            AWAIT_INTERVAL => {
                parse_interval(AWAIT_INTERVAL, value).map_err(config_error)?;
                ConfigField::set(&mut self.await_interval, "", value)
            }
            AWAIT_TIMEOUT => {
                parse_interval(AWAIT_TIMEOUT, value).map_err(config_error)?;
                ConfigField::set(&mut self.await_timeout, "", value)
            }
            ON_ACCOUNT_ERROR => match value.trim().to_ascii_lowercase().as_str() {
                v @ ("fail" | "skip") => {
                    self.on_account_error = v.to_owned();
                    Ok(())
                }
                _ => config_err!(
                    "aws.on_account_error must be fail (an account that cannot be reached fails \
                     the query) or skip (it is left out and reported), not `{value}`"
                ),
            },
            other => {
                let p = Self::PREFIX;
                config_err!(
                    "unknown setting `{p}.{other}`: the aws settings are {p}.{DRY_RUN}, \
                     {p}.{CACHE}, {p}.{AWAIT}, {p}.{AWAIT_INTERVAL}, {p}.{AWAIT_TIMEOUT} and \
                     {p}.{ON_ACCOUNT_ERROR}"
                )
            }
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let entry = |name: &str, value: String, description: &'static str| ConfigEntry {
            key: format!("{}.{name}", Self::PREFIX),
            value: Some(value),
            description,
        };
        vec![
            entry(
                DRY_RUN,
                self.dry_run.to_string(),
                "Send DryRun=true on writes: AWS checks permissions and parameters, nothing \
                 is created; INSERT reports 0 rows affected and what would have been created",
            ),
            entry(
                CACHE,
                self.cache.clone(),
                "on (default): serve SELECT from the short-lived response cache when it can; \
                 off: always ask AWS",
            ),
            entry(
                AWAIT,
                self.await_tasks.to_string(),
                "INSERT returns only when every task it created is Completed or Failed (as \
                 INSERT /*+ AWAIT */ does), and says how each ended",
            ),
            entry(
                AWAIT_INTERVAL,
                self.await_interval.clone(),
                "How often an awaiting INSERT polls DescribeStoreImageTasks: an interval \
                 ('5 seconds', '500ms') or a number of seconds",
            ),
            entry(
                AWAIT_TIMEOUT,
                self.await_timeout.clone(),
                "How long an awaiting INSERT waits at most ('1 hour', or seconds); then it \
                 fails with DEADLINE_EXCEEDED, its tasks created and running",
            ),
            entry(
                ON_ACCOUNT_ERROR,
                self.on_account_error.clone(),
                "fail (default): an account whose role cannot be assumed, or a region not \
                 enabled in it, fails the query; skip: it is left out and reported to the \
                 client, in the log and in a metric",
            ),
        ]
    }
}

impl AwsOptions {
    /// The `aws.*` settings of a session's options (the defaults when it has none).
    pub fn of(options: &datafusion::common::config::ConfigOptions) -> AwsOptions {
        options
            .extensions
            .get::<AwsOptions>()
            .cloned()
            .unwrap_or_default()
    }

    /// `aws.await_interval` as a duration.
    pub fn await_interval(&self) -> Result<Duration, String> {
        parse_interval(AWAIT_INTERVAL, &self.await_interval)
    }

    /// `aws.await_timeout` as a duration.
    pub fn await_timeout(&self) -> Result<Duration, String> {
        parse_interval(AWAIT_TIMEOUT, &self.await_timeout)
    }

    /// Whether `aws.cache` allows the cache; an unknown value is an error naming it.
    pub fn use_cache(&self) -> Result<bool, String> {
        match self.cache.to_ascii_lowercase().as_str() {
            "on" | "true" => Ok(true),
            "off" | "false" => Ok(false),
            other => Err(format!("aws.cache must be on or off, not `{other}`")),
        }
    }

    /// Whether `aws.on_account_error` is `skip`: accounts that cannot be reached are left
    /// out of a query (and reported) instead of failing it.
    pub fn skip_account_errors(&self) -> bool {
        self.on_account_error.eq_ignore_ascii_case("skip")
    }
}

/// A setting's interval: a number of seconds (`5`, `0.5`) or a duration in words
/// (`'5 seconds'`, `'1 hour 30 minutes'`, `'500ms'`); never zero.
fn parse_interval(name: &str, text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        Ok(_) => Err(()),
        // humantime reads `5s`, `5 s`, `5seconds`, `1h 30m`; a space between a number and
        // its unit (`5 seconds`, as SQL intervals are written) is read as well.
        Err(_) => humantime::parse_duration(text)
            .or_else(|_| humantime::parse_duration(&text.split_whitespace().collect::<String>()))
            .map_err(|_| ()),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "{}.{name} must be an interval such as '5 seconds', '500ms' or '1 hour', or a \
             number of seconds greater than 0, not `{text}`",
            AwsOptions::PREFIX
        )),
    }
}

fn config_error(message: String) -> datafusion::common::DataFusionError {
    datafusion::common::DataFusionError::Configuration(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::config::ConfigOptions;

    /// The value `options` lists for `key` (as SHOW and information_schema do).
    fn listed(options: &ConfigOptions, key: &str) -> Option<String> {
        options
            .entries()
            .into_iter()
            .find(|e| e.key == key)
            .and_then(|e| e.value)
    }

    #[test]
    fn settings_are_listed_under_the_name_they_are_set_with() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(AwsOptions::default());
        options.set("aws.dry_run", "TRUE").unwrap();
        options.set("aws.cache", "off").unwrap();
        let get = |key: &str| listed(&options, key);
        assert_eq!(get("aws.dry_run").as_deref(), Some("true"));
        assert_eq!(get("aws.cache").as_deref(), Some("off"));
        let err = options.set("aws.dry_run", "maybe").unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
        let err = options.set("aws.nope", "1").unwrap_err().to_string();
        assert!(err.contains("aws.dry_run"), "{err}");
        assert!(err.contains("aws.await_timeout"), "{err}");
        assert!(err.contains("aws.on_account_error"), "{err}");
        assert_eq!(AwsOptions::of(&options).on_account_error, "fail");
        options.set("aws.on_account_error", "SKIP").unwrap();
        let entries = options.entries();
        let entry = entries.iter().find(|e| e.key == "aws.on_account_error");
        assert_eq!(entry.and_then(|e| e.value.as_deref()), Some("skip"));
        assert!(AwsOptions::of(&options).skip_account_errors());
        let err = options
            .set("aws.on_account_error", "ignore")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`ignore`"), "{err}");
    }

    #[test]
    fn await_settings_read_intervals_in_words_or_seconds() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(AwsOptions::default());
        let aws = AwsOptions::of(&options);
        assert!(!aws.await_tasks);
        assert_eq!(aws.await_interval().unwrap(), Duration::from_secs(5));
        assert_eq!(aws.await_timeout().unwrap(), Duration::from_secs(3600));
        options.set("aws.await", "true").unwrap();
        options.set("aws.await_interval", "0.25").unwrap();
        options
            .set("aws.await_timeout", "1 hour 30 minutes")
            .unwrap();
        let aws = AwsOptions::of(&options);
        assert!(aws.await_tasks);
        assert_eq!(aws.await_interval().unwrap(), Duration::from_millis(250));
        assert_eq!(aws.await_timeout().unwrap(), Duration::from_secs(5400));
        for (text, expected) in [
            ("5 seconds", 5_000),
            ("500ms", 500),
            (" 2s ", 2_000),
            ("1 minute", 60_000),
            ("3", 3_000),
        ] {
            assert_eq!(
                parse_interval("await_interval", text).unwrap(),
                Duration::from_millis(expected),
                "{text}"
            );
        }
        for bad in ["0", "0 seconds", "-1", "soon", "", "NaN"] {
            let err = options
                .set("aws.await_interval", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("aws.await_interval must be an interval"),
                "{err}"
            );
        }
        assert_eq!(
            AwsOptions::of(&options).await_interval().unwrap(),
            Duration::from_millis(250),
            "a refused value changes nothing"
        );
        let get = |key: &str| listed(&options, key);
        assert_eq!(get("aws.await").as_deref(), Some("true"));
        assert_eq!(
            get("aws.await_timeout").as_deref(),
            Some("1 hour 30 minutes")
        );
    }
}
