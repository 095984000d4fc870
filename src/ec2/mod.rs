//! The AWS side: per-region EC2 clients built from the standard aws-config chain, the
//! `DescribeStoreImageTasks` page stream, and the error type of this layer. Nothing here
//! knows about Flight or DataFusion.

mod client;
mod create;
mod error;
mod pages;

/// The most AMI ids one DescribeStoreImageTasks call takes.
pub const MAX_IMAGE_IDS: usize = 20;

pub use client::{AwsConfig, Credentials, Ec2Clients};
pub use create::{CreateOutcome, CreateRequest};
pub use error::{AwsError, AwsErrorKind};
pub use pages::{DescribeRequest, StoreImageTask, TaskPage};
