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
    }
}

impl ConfigExtension for AwsOptions {
    const PREFIX: &'static str = "aws";
}
