//! The `DataSink` behind `INSERT INTO store_image_tasks`: it reads every row of the
//! statement, validates all of them before any AWS call, then creates one store task per
//! row (concurrently, a few at a time per region) and accounts for every row: the statement
//! returns the count created, or fails with a report of every row: created, refused,
//! created by this or a concurrent statement, or not sent (the server was shutting down).
//! A dry run (`aws.dry_run`) has AWS check each row and creates nothing: it affects 0 rows,
//! logs how many would be created, leaves its `would_create` rows for a caller that shows
//! them ([`DryRunRows`]), and fails with the whole report when AWS would refuse a row.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::{StreamExt, TryStreamExt};

use super::error::{CreatedRow, NotSentRow, RefusedRow, ReportRow, TableError};
use super::naming::{check_ami_id, check_bucket, is_region_name};
use super::regions::{not_a_region_name, not_enabled};
use super::reports::{report_batch, DryRunRows, InsertReports};
use super::schema::read_only_columns;
use crate::ec2::{CreateOutcome, CreateRequest, Ec2Clients, StatementId};

/// The most rows one INSERT may create: a store task costs money, and every row must fit
/// in the statement's report.
pub const MAX_ROWS_PER_INSERT: usize = 1000;
/// Creates in flight at once per region.
const CREATES_PER_REGION: usize = 4;
/// How many problems one error message lists.
const MAX_PROBLEMS_LISTED: usize = 20;

/// Creates store image tasks from INSERTed rows.
#[derive(Debug)]
pub(crate) struct StoreImageTasksSink {
    pub(crate) clients: Ec2Clients,
    pub(crate) default_region: String,
    pub(crate) enabled_regions: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) schema: SchemaRef,
    pub(crate) reports: InsertReports,
    /// Where a dry run leaves its rows, when the statement's caller shows them.
    pub(crate) dry_run_rows: Option<Arc<DryRunRows>>,
}

impl DisplayAs for StoreImageTasksSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoreImageTasksSink: CreateStoreImageTask per row")?;
        if self.dry_run {
            write!(f, " (DryRun)")?;
        }
        Ok(())
    }
}

fn invalid(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TableError::Invalid(message)))
}

impl StoreImageTasksSink {
    /// Turns the statement's rows into create requests, or lists every problem found.
    fn requests(
        &self,
        batches: &[RecordBatch],
        statement: StatementId,
    ) -> Result<Vec<CreateRequest>> {
        let mut problems = Vec::new();
        let mut given_read_only = Vec::new();
        let mut requests = Vec::new();
        let mut row_number = 0usize;
        let mut seen = HashSet::new();
        for batch in batches {
            for name in read_only_columns() {
                if let Some(col) = batch.column_by_name(name) {
                    if col.null_count() < col.len() && !given_read_only.contains(&name) {
                        given_read_only.push(name);
                    }
                }
            }
            let column = |name: &str| {
                let column = batch
                    .column_by_name(name)
                    .ok_or_else(|| invalid(format!("INSERT input has no column {name}")))?;
                // A bound parameter keeps its own type (an integer AMI id): read it as text,
                // and let the checks below say what is wrong with it.
                let text = datafusion::arrow::compute::cast(
                    column,
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .map_err(|e| invalid(format!("{name} must be text: {e}")))?;
                Ok::<_, DataFusionError>(text.as_string::<i32>().clone())
            };
            let (regions, amis, buckets) = (column("region")?, column("amiId")?, column("bucket")?);
            for i in 0..batch.num_rows() {
                row_number += 1;
                let value = |a: &datafusion::arrow::array::StringArray| {
                    (!a.is_null(i)).then(|| a.value(i).trim().to_owned())
                };
                let region = value(&regions)
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| self.default_region.clone());
                let mut row_problems = Vec::new();
                if !is_region_name(&region) {
                    row_problems.push(not_a_region_name(&region, &self.enabled_regions));
                } else if !self.enabled_regions.contains(&region) {
                    row_problems.push(not_enabled(&region, &self.enabled_regions));
                }
                let ami = value(&amis);
                match &ami {
                    None => row_problems.push("amiId (or ImageId) is required".to_owned()),
                    Some(a) => row_problems.extend(check_ami_id(a).err()),
                }
                let bucket = value(&buckets);
                match &bucket {
                    None => row_problems.push("bucket (or Bucket) is required".to_owned()),
                    Some(b) => row_problems.extend(check_bucket(b).err()),
                }
                if let (Some(ami), true) = (&ami, row_problems.is_empty()) {
                    if !seen.insert((region.clone(), ami.clone())) {
                        row_problems.push(format!(
                            "{ami} appears more than once for region {region}; AWS stores an AMI \
                             once at a time"
                        ));
                    }
                }
                if row_problems.is_empty() {
                    requests.push(CreateRequest {
                        region,
                        ami_id: ami.expect("checked"),
                        bucket: bucket.expect("checked"),
                        dry_run: self.dry_run,
                        statement,
                    });
                } else {
                    problems.push(format!("row {row_number}: {}", row_problems.join("; ")));
                }
            }
        }
        if !given_read_only.is_empty() {
            return Err(invalid(format!(
                "cannot INSERT into read-only column(s) {}: AWS sets them; give only region, \
                 amiId and bucket",
                given_read_only.join(", ")
            )));
        }
        if !problems.is_empty() {
            return Err(invalid(problem_list(
                "INSERT rejected, nothing was created",
                problems,
            )));
        }
        Ok(requests)
    }

    /// Refuses the statement if a task is already in progress for any of its AMIs: AWS would
    /// refuse that row after others were created.
    async fn check_none_in_progress(&self, requests: &[CreateRequest]) -> Result<()> {
        let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in requests {
            by_region
                .entry(&r.region)
                .or_default()
                .push(r.ami_id.clone());
        }
        let checks = by_region.into_iter().map(|(region, amis)| async move {
            let tasks = self.clients.tasks_of_images(region, &amis).await?;
            Ok::<_, crate::ec2::AwsError>(
                tasks
                    .into_iter()
                    .filter(|t| t.store_task_state.as_deref() == Some("InProgress"))
                    .map(|t| {
                        format!(
                            "a store task for {} in {region} is already in progress (bucket {}, \
                             {}%); wait for it to finish",
                            t.ami_id.unwrap_or_default(),
                            t.bucket.unwrap_or_default(),
                            t.progress_percentage.unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let mut problems = Vec::new();
        for result in futures::future::join_all(checks).await {
            problems.extend(result.map_err(|e| DataFusionError::External(Box::new(e)))?);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(invalid(problem_list(
                "INSERT rejected, nothing was created",
                problems,
            )))
        }
    }

    /// What a dry run found, out of `rows` rows: logged, and, when every row would be
    /// created, left for the caller as one `would_create` row per row (otherwise the
    /// statement fails with the whole report, as a real INSERT does).
    fn dry_run_checked(
        &self,
        would_create: &[CreatedRow],
        refused: &[RefusedRow],
        rows: usize,
    ) -> Result<()> {
        let reasons: Vec<String> = refused
            .iter()
            .map(|r| {
                format!(
                    "{} in {}: {}: {}",
                    r.ami_id,
                    r.region,
                    r.error.code.as_deref().unwrap_or("error"),
                    r.error.message
                )
            })
            .collect();
        tracing::info!(
            would_create = would_create.len(),
            rows,
            refused = %reasons.join("; "),
            "dry run: {} of {rows} rows would be created, nothing was created",
            would_create.len()
        );
        if let (Some(slot), true) = (&self.dry_run_rows, would_create.len() == rows) {
            let report: Vec<ReportRow<'_>> = would_create
                .iter()
                .map(|c| ReportRow {
                    region: &c.region,
                    ami_id: &c.ami_id,
                    bucket: &c.bucket,
                    outcome: "would_create",
                    object_key: Some(&c.object_key),
                    error_code: None,
                    error_message: None,
                    request_id: None,
                })
                .collect();
            slot.put(report_batch(&report)?);
        }
        Ok(())
    }
}

fn problem_list(headline: &str, problems: Vec<String>) -> String {
    let total = problems.len();
    let mut message = format!("{headline}: ");
    message.push_str(
        &problems
            .into_iter()
            .take(MAX_PROBLEMS_LISTED)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if total > MAX_PROBLEMS_LISTED {
        message.push_str(&format!("\n... and {} more", total - MAX_PROBLEMS_LISTED));
    }
    message
}

#[async_trait]
impl DataSink for StoreImageTasksSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        // Counted until the report is made, checks included: shutdown waits for it and stops
        // its creates at the end of the grace (see WriteGate).
        let _running = self.clients.writes().enter();
        // Every row is read and checked before the first AWS call.
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut data = data;
        while let Some(batch) = data.try_next().await? {
            rows += batch.num_rows();
            if rows > MAX_ROWS_PER_INSERT {
                return Err(invalid(format!(
                    "an INSERT creates at most {MAX_ROWS_PER_INSERT} store tasks; split the \
                     statement, nothing was created"
                )));
            }
            batches.push(batch);
        }
        // Tasks are claimed per statement (see ec2::claims).
        let requests = self.requests(&batches, rand::random())?;
        if requests.is_empty() {
            if self.dry_run {
                self.dry_run_checked(&[], &[], 0)?;
            }
            return Ok(0);
        }
        self.check_none_in_progress(&requests).await?;

        let mut by_region: BTreeMap<String, Vec<CreateRequest>> = BTreeMap::new();
        for r in requests {
            by_region.entry(r.region.clone()).or_default().push(r);
        }
        let per_region = by_region.into_values().map(|rows| {
            let clients = self.clients.clone();
            futures::stream::iter(rows)
                .map(move |r| {
                    let clients = clients.clone();
                    async move {
                        let outcome = clients.create_store_image_task(&r).await;
                        (r, outcome)
                    }
                })
                .buffer_unordered(CREATES_PER_REGION)
                .collect::<Vec<_>>()
        });
        let mut created = Vec::new();
        let mut refused = Vec::new();
        let mut unconfirmed = Vec::new();
        let mut not_sent = Vec::new();
        for (request, outcome) in futures::future::join_all(per_region)
            .await
            .into_iter()
            .flatten()
        {
            match outcome {
                Ok(CreateOutcome::Created {
                    object_key,
                    attempts,
                }) => {
                    tracing::info!(region = %request.region, ami = %request.ami_id,
                        bucket = %request.bucket, %object_key, attempts, "store image task created");
                    created.push(CreatedRow {
                        region: request.region.clone(),
                        ami_id: request.ami_id.clone(),
                        bucket: request.bucket.clone(),
                        object_key,
                    });
                }
                Ok(CreateOutcome::WouldCreate) => created.push(CreatedRow {
                    region: request.region.clone(),
                    ami_id: request.ami_id.clone(),
                    bucket: request.bucket.clone(),
                    object_key: format!("{}.bin", request.ami_id),
                }),
                Ok(CreateOutcome::NotSent) => not_sent.push(NotSentRow {
                    region: request.region.clone(),
                    ami_id: request.ami_id.clone(),
                    bucket: request.bucket.clone(),
                }),
                Ok(CreateOutcome::Unconfirmed { object_key }) => {
                    tracing::warn!(region = %request.region, ami = %request.ami_id,
                        bucket = %request.bucket, %object_key,
                        "store image task in progress after an ambiguous failure, claimed by \
                         another statement: created by this or a concurrent statement");
                    unconfirmed.push(CreatedRow {
                        region: request.region.clone(),
                        ami_id: request.ami_id.clone(),
                        bucket: request.bucket.clone(),
                        object_key,
                    });
                }
                Err(error) => {
                    if self.dry_run {
                        tracing::info!(region = %request.region, ami = %request.ami_id, %error,
                            "dry run: AWS would refuse this store image task");
                    } else {
                        tracing::warn!(region = %request.region, ami = %request.ami_id, %error,
                            "store image task refused");
                    }
                    refused.push(RefusedRow {
                        region: request.region.clone(),
                        ami_id: request.ami_id.clone(),
                        bucket: request.bucket.clone(),
                        error,
                    });
                }
            }
        }
        if self.dry_run {
            let rows = created.len() + refused.len() + unconfirmed.len() + not_sent.len();
            self.dry_run_checked(&created, &refused, rows)?;
        }
        if refused.is_empty() && unconfirmed.is_empty() && not_sent.is_empty() {
            // A dry run created nothing: 0 rows affected, whatever the client reads.
            return Ok(if self.dry_run {
                0
            } else {
                created.len() as u64
            });
        }
        let mut report = TableError::InsertFailed {
            created,
            refused,
            unconfirmed,
            not_sent,
            dry_run: self.dry_run,
            report_id: None,
        };
        // The whole report stays on the server, and in the log, whatever reaches the client.
        let id = self.reports.keep(&report)?;
        if self.dry_run {
            tracing::info!(report_id = %id, report = %report.detailed(),
                "dry run of INSERT: AWS would refuse some rows, nothing was created");
        } else {
            tracing::warn!(report_id = %id, report = %report.detailed(),
                "INSERT did not create every row");
        }
        if let TableError::InsertFailed { report_id, .. } = &mut report {
            *report_id = Some(id);
        }
        Err(DataFusionError::External(Box::new(report)))
    }
}
