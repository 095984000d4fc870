//! The `aws.*` settings of a session (`SET aws.dry_run = true`, or the Flight SQL session
//! option `aws.dry_run`), a DataFusion config extension read by the table at plan time.

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Settings of the AWS tables.
    pub struct AwsOptions {
        /// Send `DryRun=true` on writes: AWS checks permissions and parameters, nothing is
        /// created, and INSERT reports how many rows would have been created.
        pub dry_run: bool, default = false
        /// `on` (default): serve SELECT from the short-lived response cache when it can;
        /// `off`: always ask AWS.
        pub cache: String, default = "on".to_owned()
    }
}

impl ConfigExtension for AwsOptions {
    const PREFIX: &'static str = "aws";
}

impl AwsOptions {
    /// Whether `aws.cache` allows the cache; an unknown value is an error naming it.
    pub fn use_cache(&self) -> Result<bool, String> {
        match self.cache.to_ascii_lowercase().as_str() {
            "on" | "true" => Ok(true),
            "off" | "false" => Ok(false),
            other => Err(format!("aws.cache must be on or off, not `{other}`")),
        }
    }
}
