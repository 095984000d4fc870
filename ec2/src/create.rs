//! `CreateStoreImageTask`, exactly once. The operation is not idempotent, so the SDK's own
//! retries are turned off for it and retries happen here: a throttled request was not
//! applied and is simply sent again; after an ambiguous failure (5xx, timeout, lost
//! connection) `DescribeStoreImageTasks` for that AMI tells whether the first attempt took
//! effect before anything is re-sent. AWS refuses a second store of an AMI while one is in
//! progress, which closes the remaining window: a re-sent create that meets "already in
//! progress" after an ambiguous failure found a task that may be our own. Whether it is
//! decides [`super::claims`]: creates of one AMI take turns on this server, and a task
//! another statement already claimed is never claimed again; a task this server cannot
//! attribute is reported as created by this or a concurrent statement, apart from the
//! tasks created.

use std::time::Duration;

use aws_sdk_ec2::config::retry::RetryConfig;

use super::claims::{Owner, StatementId};
use super::client::{in_region, Ec2Clients};
use super::error::{AwsError, AwsErrorKind};
use super::pages::PageOptions;
use super::task::{DescribeRequest, StoreImageTask};

/// Attempts per row before giving up.
const MAX_ATTEMPTS: u32 = 4;
/// First back-off; doubled after each attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// One store task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The account to create it in: sent through that account's clients
    /// ([`Ec2Clients::for_account`]), and part of every claim's key.
    pub account: String,
    /// The region to create it in.
    pub region: String,
    /// The AMI to store.
    pub ami_id: String,
    /// The destination bucket (in that region).
    pub bucket: String,
    /// Only check permissions and parameters (`DryRun=true`).
    pub dry_run: bool,
    /// The statement sending it: tasks are claimed per statement.
    pub statement: StatementId,
}

/// What a successful create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The task was created; the object will be written under this key.
    Created {
        /// The S3 object key, `<ami>.bin`.
        object_key: String,
        /// Attempts it took (1 = first try).
        attempts: u32,
    },
    /// Dry run: AWS answered `DryRunOperation`, the request would have succeeded.
    WouldCreate,
    /// After an ambiguous failure an in-progress task of the AMI was found, but another
    /// statement of this server claimed that AMI's task before: it was created by this or
    /// by a concurrent statement, and is not counted as created by this one.
    Unconfirmed {
        /// The S3 object key of the task found.
        object_key: String,
    },
    /// Not sent: the server stopped sending creates (its shutdown grace ended).
    NotSent,
}

enum Failure {
    /// AWS refused the request: it was not applied.
    Refused(AwsError),
    /// Throttled: not applied, send again after a pause.
    Throttled(AwsError),
    /// It may or may not have been applied.
    Ambiguous(AwsError),
    /// Not sent: creates were stopped (shutdown) while it waited for its turn.
    NotSent,
}

impl Ec2Clients {
    /// Creates one store image task, exactly once (see the module docs).
    pub async fn create_store_image_task(
        &self,
        request: &CreateRequest,
    ) -> Result<CreateOutcome, AwsError> {
        // A request routed to another account's clients would create the task in the wrong
        // account: refused before anything is sent.
        if let Some(account) = self.known_account().filter(|a| *a != request.account) {
            return Err(AwsError::local(
                &request.region,
                "CreateStoreImageTask",
                AwsErrorKind::InvalidRequest,
                format!(
                    "the create of {} for account {} reached the clients of account {account}; \
                     nothing was sent",
                    request.ami_id, request.account
                ),
            ));
        }
        // No other statement of this server sends or confirms a create of this AMI in this
        // account until this one knows its outcome.
        let _turn = self
            .claims
            .lock(&request.account, &request.region, &request.ami_id)
            .await;
        if self.writes.stopped() {
            return Ok(CreateOutcome::NotSent);
        }
        let mut backoff = FIRST_BACKOFF;
        let mut maybe_applied = false;
        let mut last_error = None;
        for attempt in 1..=MAX_ATTEMPTS {
            match self.send_create(request).await {
                Ok(object_key) => {
                    // The AMI's in-progress task is this statement's now.
                    self.claims.record(
                        request.statement,
                        &request.account,
                        &request.region,
                        &request.ami_id,
                    );
                    self.metrics.store_task_created();
                    return Ok(CreateOutcome::Created {
                        object_key,
                        attempts: attempt,
                    });
                }
                Err(Failure::Refused(e))
                    if request.dry_run && e.code.as_deref() == Some("DryRunOperation") =>
                {
                    return Ok(CreateOutcome::WouldCreate)
                }
                Err(Failure::Refused(e)) => {
                    if maybe_applied && is_already_in_progress(&e) {
                        if let Some(task) = self.own_task(request).await? {
                            return Ok(self.found(request, task, attempt));
                        }
                    }
                    return Err(e);
                }
                Err(Failure::NotSent) if maybe_applied => break,
                Err(Failure::NotSent) => return Ok(CreateOutcome::NotSent),
                Err(Failure::Throttled(e)) => last_error = Some(e),
                Err(Failure::Ambiguous(e)) => {
                    if !request.dry_run {
                        maybe_applied = true;
                        if let Ok(Some(task)) = self.own_task(request).await {
                            return Ok(self.found(request, task, attempt));
                        }
                    }
                    last_error = Some(e);
                }
            }
            if self.writes.stopped() && !maybe_applied {
                // Nothing was applied: say so rather than send again past the deadline.
                return Ok(CreateOutcome::NotSent);
            }
            if self.writes.stopped() {
                break;
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        if maybe_applied {
            // The last attempt may have taken effect although no look found it yet (or the
            // looks failed too): look again before reporting it refused.
            for _ in 0..MAX_ATTEMPTS {
                if let Ok(found) = self.own_task(request).await {
                    if let Some(task) = found {
                        return Ok(self.found(request, task, MAX_ATTEMPTS));
                    }
                    break;
                }
                tokio::time::sleep(backoff).await;
            }
        }
        let mut err = last_error.expect("at least one attempt failed");
        if maybe_applied {
            err.message.push_str(
                "; the task may have been created: check with \
                 SELECT * FROM store_image_tasks WHERE amiId = '...' before retrying",
            );
        }
        Err(err)
    }

    /// The outcome when `task` was found in progress after an ambiguous failure: created by
    /// this statement, unless another statement of this server claimed the AMI's task.
    fn found(&self, request: &CreateRequest, task: StoreImageTask, attempts: u32) -> CreateOutcome {
        let object_key = task
            .s3_object_key
            .unwrap_or_else(|| format!("{}.bin", request.ami_id));
        match self.claims.claim(
            request.statement,
            &request.account,
            &request.region,
            &request.ami_id,
            task.task_start_time,
        ) {
            Owner::This => {
                self.metrics.store_task_created();
                CreateOutcome::Created {
                    object_key,
                    attempts,
                }
            }
            Owner::Other => CreateOutcome::Unconfirmed { object_key },
        }
    }

    async fn send_create(&self, request: &CreateRequest) -> Result<String, Failure> {
        let _slot = self.limits.acquire(&request.region).await;
        if self.writes.stopped() {
            // Stopped while this create waited for a slot: it is not sent.
            return Err(Failure::NotSent);
        }
        // Whatever the outcome, cached listings of this region may now be stale.
        let _invalidate = InvalidateOnDrop(self, &request.region);
        let result = self
            .client()
            .create_store_image_task()
            .image_id(&request.ami_id)
            .bucket(&request.bucket)
            .dry_run(request.dry_run)
            .customize()
            .config_override(in_region(&request.region).retry_config(RetryConfig::disabled()))
            .send()
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 503) => "throttled",
            Err(_) => "error",
        };
        self.metrics
            .aws_call(&request.region, "CreateStoreImageTask", outcome);
        match result {
            Ok(out) => Ok(out
                .object_key()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}.bin", request.ami_id))),
            Err(e) => {
                let definitely_not_sent =
                    matches!(e, aws_sdk_ec2::error::SdkError::ConstructionFailure(_));
                let err = AwsError::from_sdk(&request.region, "CreateStoreImageTask", e);
                Err(match err.kind {
                    _ if definitely_not_sent => Failure::Refused(err),
                    AwsErrorKind::Throttled => Failure::Throttled(err),
                    AwsErrorKind::Unavailable => Failure::Ambiguous(err),
                    AwsErrorKind::Credentials
                    | AwsErrorKind::PermissionDenied
                    | AwsErrorKind::NotFound
                    | AwsErrorKind::InvalidRequest
                    | AwsErrorKind::OverBudget => Failure::Refused(err),
                })
            }
        }
    }

    /// The in-progress task of `request`'s AMI in its bucket, if there is one.
    async fn own_task(&self, request: &CreateRequest) -> Result<Option<StoreImageTask>, AwsError> {
        let tasks = self
            .tasks_of_images(&request.region, std::slice::from_ref(&request.ami_id))
            .await?;
        Ok(tasks.into_iter().find(|t| {
            t.store_task_state.as_deref() == Some("InProgress")
                && t.bucket.as_deref() == Some(request.bucket.as_str())
        }))
    }

    /// Every listed task of these AMIs in `region` (one call per 20 ids).
    pub async fn tasks_of_images(
        &self,
        region: &str,
        ami_ids: &[String],
    ) -> Result<Vec<StoreImageTask>, AwsError> {
        use futures::TryStreamExt;
        let mut tasks = Vec::new();
        for chunk in ami_ids.chunks(super::MAX_IMAGE_IDS) {
            let request = DescribeRequest {
                image_ids: chunk.to_vec(),
                ..Default::default()
            };
            // Never from the cache: this decides whether to create.
            let options = PageOptions {
                use_cache: false,
                ..Default::default()
            };
            let pages: Vec<_> = self
                .describe_store_image_tasks(region, request, options)
                .try_collect()
                .await?;
            tasks.extend(pages.into_iter().flat_map(|p| p.tasks));
        }
        Ok(tasks)
    }
}

/// Invalidates a region's cached pages when dropped (after the create's answer).
struct InvalidateOnDrop<'a>(&'a Ec2Clients, &'a str);

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        self.0.cache.invalidate(&self.0.cache_place(self.1));
    }
}

fn is_already_in_progress(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValue") && e.message.contains("in progress")
}
