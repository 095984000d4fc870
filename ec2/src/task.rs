//! The data of `DescribeStoreImageTasks`, shared by the client, the page stream, the
//! response cache and the creates: the parameters of one listing ([`DescribeRequest`]), a
//! task as AWS reports it ([`StoreImageTask`]), a page as AWS answered it ([`Page`]) and a
//! page as the stream hands it out ([`TaskPage`]). Plain data: this module imports none of
//! its neighbours, so they all import it and not each other.

use chrono::{DateTime, Utc};

/// The parameters of one `DescribeStoreImageTasks` listing in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DescribeRequest {
    /// `ImageId.N` (at most 20; filters and MaxResults are not allowed with it).
    pub image_ids: Vec<String>,
    /// `task-state` filter values (ORed).
    pub task_states: Vec<String>,
    /// `bucket` filter values (ORed).
    pub buckets: Vec<String>,
    /// `MaxResults` (1..=200).
    pub max_results: Option<i32>,
}

/// One store image task as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreImageTask {
    /// The AMI being stored.
    pub ami_id: Option<String>,
    /// The destination bucket.
    pub bucket: Option<String>,
    /// Progress, 0..=100.
    pub progress_percentage: Option<i32>,
    /// The object key in the bucket.
    pub s3_object_key: Option<String>,
    /// Why the task failed, when it did.
    pub store_task_failure_reason: Option<String>,
    /// `InProgress`, `Completed` or `Failed`.
    pub store_task_state: Option<String>,
    /// When the task started.
    pub task_start_time: Option<DateTime<Utc>>,
}

/// One page of results from one region.
#[derive(Debug, Clone)]
pub struct TaskPage {
    /// The region the page came from.
    pub region: String,
    /// The tasks on this page.
    pub tasks: Vec<StoreImageTask>,
}

/// One page as AWS answered it.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub tasks: Vec<StoreImageTask>,
    pub next_token: Option<String>,
}
