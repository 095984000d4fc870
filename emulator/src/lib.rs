//! `ec2-emulator`: an emulator of the AWS EC2 Query API for the store-image-task operations
//! (`DescribeStoreImageTasks`, `CreateStoreImageTask`) and `DescribeRegions`, of STS
//! (`GetCallerIdentity`, `AssumeRole`) and of Organizations (`ListAccounts`), faithful to
//! `docs/EC2-CONTRACT.md` and `docs/STS-ORGANIZATIONS-CONTRACT.md` (in the repository root) so
//! that AWS's own clients (the Rust SDK, botocore) parse its answers.
//!
//! One server serves every configured region and service, telling them apart by the SigV4
//! credential scope, whose access key says which account calls: keys issued by AssumeRole act
//! in their role's account, any other key in the home account [`HOME_ACCOUNT`]. Each account
//! has deterministic sample data per region (from a seed); tasks progress with the
//! emulator's clock, which tests may freeze and step; latency, throttling, failures and denied
//! actions can be injected. Test hooks under `/_emulator` expose the state and a request log.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ec2_emulator::{Emulator, EmulatorOptions};
//! let emulator = Emulator::start("127.0.0.1:0".parse()?, EmulatorOptions::default()).await?;
//! println!("point the SDK at {}", emulator.endpoint_url());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Modules, in the order a request meets them: `http` (router, service dispatch and the EC2
//! pipeline), `auth` (the credential scope), `accounts` (callers, issued credentials, account
//! rules), `params` (form fields to typed requests), `faults`, `actions` (EC2), `sts`,
//! `organizations`, `store` (per account and region state, listing, creation), `token`
//! (pagination), `xml` (answers), `error` (error codes of the three services); around them
//! `config`, `clock`, `sample` (seeded data), `requests` (the log), `hooks` (`/_emulator`) and
//! `emulator` (the handle).

#![warn(missing_docs)]

mod accounts;
mod actions;
mod auth;
mod clock;
mod config;
mod emulator;
mod error;
mod faults;
#[doc(hidden)]
pub mod fuzzing;
mod hooks;
mod http;
mod organizations;
mod params;
mod requests;
mod sample;
mod store;
mod sts;
mod token;
mod xml;

pub use crate::accounts::{account_id, HOME_ACCOUNT};
pub use crate::clock::format_timestamp;
pub use crate::config::{
    AccountUpdate, BucketFailure, ConfigError, ConfigUpdate, EffectiveConfig, EmulatorOptions,
    Faults, DEFAULT_FAIL_PERCENT, DEFAULT_FAIL_REASON, MAX_CREDENTIAL_SECONDS,
};
pub use crate::emulator::Emulator;
pub use crate::http::REQUEST_ID_HEADER;
pub use crate::params::{is_ami_id, MAX_IMAGE_IDS, MAX_RESULTS};
pub use crate::requests::RequestRecord;
pub use crate::store::{ObjectTag, TaskView, LISTING_WINDOW};
