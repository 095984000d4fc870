//! The `aws.*` settings of a session (`SET aws.dry_run = true`, or the Flight SQL session
//! option `aws.dry_run`), a DataFusion config extension read by the table at plan time.
//!
//! Written out rather than with DataFusion's `extensions_options!`: that macro lists an
//! extension's settings without their prefix (`dry_run`), so `SHOW aws.dry_run` and
//! `information_schema.df_settings` did not know them by the name they are set with.

use std::any::Any;

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
    /// `fail` (default): an account that cannot be reached fails the query; `skip`: it is
    /// left out and reported (log, metric, and to the client; see `table::skips`).
    pub on_account_error: String,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            dry_run: false,
            cache: "on".to_owned(),
            on_account_error: "fail".to_owned(),
        }
    }
}

const DRY_RUN: &str = "dry_run";
const CACHE: &str = "cache";
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
            other => config_err!(
                "unknown setting `{}.{other}`: the aws settings are {}.{DRY_RUN}, {}.{CACHE} \
                 and {}.{ON_ACCOUNT_ERROR}",
                Self::PREFIX,
                Self::PREFIX,
                Self::PREFIX,
                Self::PREFIX
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::config::ConfigOptions;

    #[test]
    fn settings_are_listed_under_the_name_they_are_set_with() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(AwsOptions::default());
        options.set("aws.dry_run", "TRUE").unwrap();
        options.set("aws.cache", "off").unwrap();
        let get = |key: &str| {
            options
                .entries()
                .into_iter()
                .find(|e| e.key == key)
                .and_then(|e| e.value)
        };
        assert_eq!(get("aws.dry_run").as_deref(), Some("true"));
        assert_eq!(get("aws.cache").as_deref(), Some("off"));
        let err = options.set("aws.dry_run", "maybe").unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
        let err = options.set("aws.nope", "1").unwrap_err().to_string();
        assert!(err.contains("aws.dry_run"), "{err}");
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
}
