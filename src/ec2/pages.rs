//! `DescribeStoreImageTasks` as a stream of pages: one API call per page, the next call only
//! when the consumer asks for the next page, so dropping the stream stops paging.

use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};

use super::client::Ec2Clients;
use super::error::AwsError;

/// The parameters of one `DescribeStoreImageTasks` listing in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

impl Ec2Clients {
    /// Pages through `DescribeStoreImageTasks` in `region`. The stream ends after the last
    /// page, or after the first error (which it yields).
    pub fn describe_store_image_tasks(
        &self,
        region: &str,
        request: DescribeRequest,
    ) -> BoxStream<'static, Result<TaskPage, AwsError>> {
        let client = self.client(region);
        let region = region.to_owned();
        // State: Some(token) = a page to fetch (None token = first page); None = done.
        stream::try_unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            let region = region.clone();
            let request = request.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let mut call = client
                    .describe_store_image_tasks()
                    .set_next_token(token)
                    .set_max_results(request.max_results);
                if !request.image_ids.is_empty() {
                    call = call.set_image_ids(Some(request.image_ids.clone()));
                }
                for (name, values) in [
                    ("task-state", &request.task_states),
                    ("bucket", &request.buckets),
                ] {
                    if !values.is_empty() {
                        call = call.filters(
                            Filter::builder()
                                .name(name)
                                .set_values(Some(values.clone()))
                                .build(),
                        );
                    }
                }
                let out = call
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&region, "DescribeStoreImageTasks", e))?;
                let tasks = out
                    .store_image_task_results()
                    .iter()
                    .map(|t| StoreImageTask {
                        ami_id: t.ami_id().map(str::to_owned),
                        bucket: t.bucket().map(str::to_owned),
                        progress_percentage: t.progress_percentage(),
                        s3_object_key: t.s3object_key().map(str::to_owned),
                        store_task_failure_reason: t.store_task_failure_reason().map(str::to_owned),
                        store_task_state: t.store_task_state().map(str::to_owned),
                        task_start_time: t.task_start_time().and_then(|d| {
                            DateTime::<Utc>::from_timestamp_millis(d.to_millis().ok()?)
                        }),
                    })
                    .collect();
                let next = out
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(|t| Some(t.to_owned()));
                Ok(Some((TaskPage { region, tasks }, next)))
            }
        })
        .boxed()
    }
}
