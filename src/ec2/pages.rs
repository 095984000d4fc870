//! `DescribeStoreImageTasks` as a stream of pages: one API call per page, the next call only
//! when the consumer asks for the next page, so dropping the stream stops paging. Each
//! call goes through the limits, the response cache and the call counters.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};

use super::cache::Page;
use super::client::Ec2Clients;
use super::error::AwsError;
use super::stats::{CallStats, CountAttempts};

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

/// How one listing uses the shared machinery.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Serve pages from the response cache (and share identical concurrent calls).
    pub use_cache: bool,
    /// Where to count the calls made.
    pub stats: Arc<CallStats>,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            use_cache: true,
            stats: Arc::default(),
        }
    }
}

impl Ec2Clients {
    /// Pages through `DescribeStoreImageTasks` in `region`: each page is asked for only
    /// when the consumer polls for it. The stream ends after the last page, or after the
    /// first error (which it yields).
    pub fn describe_store_image_tasks(
        &self,
        region: &str,
        request: DescribeRequest,
        options: PageOptions,
    ) -> BoxStream<'static, Result<TaskPage, AwsError>> {
        let clients = self.clone();
        let region = region.to_owned();
        // State: Some(token) = a page to fetch (None token = first page); None = done.
        stream::try_unfold(Some(None::<String>), move |state| {
            let clients = clients.clone();
            let region = region.clone();
            let request = request.clone();
            let options = options.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let (page, hit) = clients
                    .cache
                    .get_or_fetch(
                        options.use_cache,
                        &region,
                        &request,
                        token.as_deref(),
                        clients.fetch_page(&region, &request, token.clone(), &options.stats),
                    )
                    .await?;
                let stats = &options.stats;
                if options.use_cache {
                    clients.metrics.cache_lookup(hit);
                }
                CallStats::add(&stats.pages, 1);
                CallStats::add(&stats.rows, page.tasks.len() as u64);
                if hit {
                    CallStats::add(&stats.cache_hits, 1);
                }
                let next = page.next_token.clone().map(Some);
                Ok(Some((
                    TaskPage {
                        region,
                        tasks: page.tasks.clone(),
                    },
                    next,
                )))
            }
        })
        .boxed()
    }

    /// One `DescribeStoreImageTasks` call, within the limits.
    async fn fetch_page(
        &self,
        region: &str,
        request: &DescribeRequest,
        token: Option<String>,
        stats: &Arc<CallStats>,
    ) -> Result<Page, AwsError> {
        let started = Instant::now();
        let _slot = self.limits.acquire(region).await;
        let mut call = self
            .client(region)
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
        let this_call = Arc::new(CallStats::default());
        let result = call
            .customize()
            .interceptor(CountAttempts(Arc::clone(&this_call)))
            .send()
            .await;
        CallStats::add(&stats.calls, 1);
        CallStats::add(&stats.wait_nanos, started.elapsed().as_nanos() as u64);
        let attempts = this_call
            .attempts
            .load(std::sync::atomic::Ordering::Relaxed);
        let throttled = this_call
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed);
        CallStats::add(&stats.attempts, attempts.max(1));
        CallStats::add(&stats.throttled, throttled);
        const ACTION: &str = "DescribeStoreImageTasks";
        for _ in 1..attempts {
            self.metrics.aws_call(region, ACTION, "retried");
        }
        for _ in 0..throttled {
            self.metrics.aws_call(region, ACTION, "throttled");
        }
        self.metrics
            .aws_call(region, ACTION, if result.is_ok() { "ok" } else { "error" });
        let out = result.map_err(|e| AwsError::from_sdk(region, ACTION, e))?;
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
                task_start_time: t
                    .task_start_time()
                    .and_then(|d| DateTime::<Utc>::from_timestamp_millis(d.to_millis().ok()?)),
            })
            .collect();
        let next_token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(Page { tasks, next_token })
    }
}
