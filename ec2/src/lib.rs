//! The AWS side: per-region EC2 clients built from the standard aws-config chain, the
//! `DescribeStoreImageTasks` page stream (each call started from the previous raw answer's
//! `NextToken`, while that page is decoded), the one-pass decoder of its answers,
//! exactly-once creates, limits, retries, the response cache, call statistics, and the error
//! type of this layer, and AWS Organizations discovery of the member accounts
//! (`organizations`). Nothing here knows about Flight or DataFusion: it is its own crate
//! (`aws-flightsql-ec2`), which the server re-exports as `aws_flightsql::ec2`, so it compiles
//! beside DataFusion in a fresh build instead of after it.
//!
//! Imports go one way: `pages` (the stream) → `client` (the clients and what they share)
//! → `cache` → `task` (the plain data of a listing); `create` → `client`, `pages`,
//! `claims`; `client` → `writes` (the write gate), `limits`, `claims`, `metrics`.
#![warn(missing_docs)]

mod accounts;
mod cache;
mod claims;
mod client;
mod create;
mod decode;
mod early_token;
mod error;
pub mod fuzzing;
mod limits;
pub mod metrics;
pub mod organizations;
mod pages;
mod stats;
mod task;
mod writes;

/// The most AMI ids one DescribeStoreImageTasks call takes.
pub const MAX_IMAGE_IDS: usize = 20;

pub use accounts::{check_role_arn, AccountSpec, SESSION_NAME};
pub use claims::StatementId;
pub use client::{is_account_id, AwsConfig, Credentials, Ec2Clients};
pub use create::{CreateOutcome, CreateRequest};
pub use error::{AwsError, AwsErrorKind};
pub use limits::LimitsConfig;
pub use organizations::{OrgAccount, OrgDiscovery};
pub use pages::PageOptions;
pub use stats::{CallBudget, CallStats, CallsByPlace, PlaceCalls, DEFAULT_MAX_CALLS_PER_QUERY};
pub use task::{DescribeRequest, StoreImageTask, TaskPage};
pub use writes::{RunningWrite, WriteGate};
