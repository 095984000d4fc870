//! `StoreImageTasksExec`, the scan plan: one place per account, region (and ImageIds
//! chunk), each a background task that pages through `DescribeStoreImageTasks` (which asks
//! for at most one page ahead, see `ec2::pages`) and sends one record batch per page into
//! its output partition's small buffer. A scan has one output partition per place up to 16;
//! beyond that (an organization) places share output partitions, so DataFusion's
//! per-partition state does not grow with the accounts. The buffer bounds how far paging
//! runs ahead of the consumer, and dropping the stream aborts the tasks and their page
//! calls, so no further page is requested. Once run, the plan shows its calls per account
//! (and the busiest account × region places) for `EXPLAIN ANALYZE`, beside the metrics
//! that sum every place's.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    ReplaceChildrenOptions,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use futures::StreamExt;

use super::error::TableError;
use super::regions::explain_failure;
use super::schema::tasks_to_projected_batch;
use super::skips::{self, SkipReason, SkippedAccount, SkippedAccounts};
use crate::ec2::{CallBudget, CallStats, CallsByPlace, DescribeRequest, Ec2Clients, PageOptions};

/// Pages fetched ahead of the consumer, per output partition.
const PAGES_BUFFERED: usize = 2;

/// The most output partitions a scan has. Each costs DataFusion operator state (a partial
/// aggregate, a repartition task, a buffer); a scan of more places than this (an
/// organization: 100 accounts x 16 regions is 1,600) puts several places in each output
/// partition, place `i` in partition `i % MAX_OUTPUT_PARTITIONS`, all paging at once within
/// the limits and sharing the partition's buffer.
const MAX_OUTPUT_PARTITIONS: usize = 16;

/// The output partitions of a scan of `places` places.
fn output_partitions(places: usize) -> usize {
    places.clamp(1, MAX_OUTPUT_PARTITIONS)
}

/// One partition: one account, one region, one request (several per region when ImageIds
/// are chunked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPartition {
    /// The account asked (its 12-digit id).
    pub account: String,
    /// The region asked.
    pub region: String,
    /// The request sent.
    pub request: DescribeRequest,
}

/// Scans `store_image_tasks`: one place per account, region and request, at most 16 output
/// partitions.
#[derive(Debug)]
pub struct StoreImageTasksExec {
    clients: Ec2Clients,
    partitions: Vec<ScanPartition>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    use_cache: bool,
    budget: Option<Arc<CallBudget>>,
    /// `aws.on_account_error = 'skip'`: a region refused on its first call as not enabled
    /// is left out (and recorded here) instead of failing the query.
    skip: bool,
    skips: Option<Arc<SkippedAccounts>>,
    /// The clients of the plan's accounts, by id (else asked from `clients`).
    accounts: std::collections::BTreeMap<String, Ec2Clients>,
    metrics: ExecutionPlanMetricsSet,
    /// The calls per account and region, for `EXPLAIN ANALYZE` (the metrics sum every
    /// partition's).
    calls: Arc<CallsByPlace>,
    properties: Arc<PlanProperties>,
}

impl StoreImageTasksExec {
    /// A scan of `partitions`, producing `schema` (the projection of the table's schema by
    /// `projection`), stopping after `limit` rows per partition.
    pub fn new(
        clients: Ec2Clients,
        partitions: Vec<ScanPartition>,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
        limit: Option<usize>,
        use_cache: bool,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            // Zero partitions confuse some operators: an empty scan keeps one, which yields
            // nothing.
            Partitioning::UnknownPartitioning(output_partitions(partitions.len())),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        StoreImageTasksExec {
            clients,
            partitions,
            projection,
            limit,
            use_cache,
            budget: None,
            skip: false,
            skips: None,
            accounts: Default::default(),
            metrics: ExecutionPlanMetricsSet::new(),
            calls: Arc::default(),
            properties: Arc::new(properties),
        }
    }

    /// Makes at most as many AWS calls as `budget` allows, all partitions together.
    pub fn with_budget(mut self, budget: Option<Arc<CallBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// Skips (`skip`) a partition whose region is refused on its first call as not enabled
    /// in the account, recording it in `skips`.
    pub fn with_skips(mut self, skip: bool, skips: Option<Arc<SkippedAccounts>>) -> Self {
        self.skip = skip;
        self.skips = skips;
        self
    }

    /// Uses these clients for the partitions of their accounts (the plan's, kept while the
    /// organization's list of accounts is refreshed).
    pub fn with_accounts(
        mut self,
        accounts: std::collections::BTreeMap<String, Ec2Clients>,
    ) -> Self {
        self.accounts = accounts;
        self
    }

    /// What each partition asks.
    pub fn partitions(&self) -> &[ScanPartition] {
        &self.partitions
    }
}

/// AWS's answer, when `failure` is a region refused as not enabled in the account.
fn region_not_enabled(
    failure: &datafusion::common::DataFusionError,
) -> Option<&crate::ec2::AwsError> {
    match failure {
        datafusion::common::DataFusionError::External(e) => match e.downcast_ref::<TableError>() {
            Some(TableError::RegionNotEnabled { cause, .. }) => Some(cause),
            _ => None,
        },
        _ => None,
    }
}

/// Copies a partition's call counters into its DataFusion metrics.
fn record(metrics: &ExecutionPlanMetricsSet, partition: usize, stats: &CallStats) {
    let count = |name: &'static str, value: u64| {
        MetricBuilder::new(metrics)
            .counter(name, partition)
            .add(value as usize)
    };
    count("api_calls", stats.calls.load(Ordering::Relaxed));
    count("pages", stats.pages.load(Ordering::Relaxed));
    count("rows_from_aws", stats.rows.load(Ordering::Relaxed));
    count("retries", stats.retries());
    count("throttled", stats.throttled.load(Ordering::Relaxed));
    count("cache_hits", stats.cache_hits.load(Ordering::Relaxed));
    count("calls_read_ahead", stats.read_ahead.load(Ordering::Relaxed));
    count(
        "pages_sdk_decoded",
        stats.sdk_decoded.load(Ordering::Relaxed),
    );
    MetricBuilder::new(metrics)
        .subset_time("aws_wait_time", partition)
        .add_duration(Duration::from_nanos(
            stats.wait_nanos.load(Ordering::Relaxed),
        ));
}

impl DisplayAs for StoreImageTasksExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoreImageTasksExec: ")?;
        if self.partitions.is_empty() {
            write!(f, "no request (the filters match nothing)")?;
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}/{}: DescribeStoreImageTasks(", p.account, p.region)?;
            let mut params = Vec::new();
            if !p.request.image_ids.is_empty() {
                params.push(format!("ImageIds={:?}", p.request.image_ids));
            }
            if !p.request.task_states.is_empty() {
                params.push(format!("task-state={:?}", p.request.task_states));
            }
            if !p.request.buckets.is_empty() {
                params.push(format!("bucket={:?}", p.request.buckets));
            }
            if let Some(m) = p.request.max_results {
                params.push(format!("MaxResults={m}"));
            }
            write!(f, "{})", params.join(", "))?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        if !self.use_cache {
            write!(f, ", cache=off")?;
        }
        // Once run (EXPLAIN ANALYZE): the calls per account, in a few lines however many.
        if let Some(summary) = self.calls.summary() {
            write!(f, ", {summary}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StoreImageTasksExec {
    fn name(&self) -> &str {
        "StoreImageTasksExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema, PAGES_BUFFERED);
        if self.limit == Some(0) {
            return Ok(builder.build());
        }
        // This output partition's places (none: the filters match nothing).
        let step = output_partitions(self.partitions.len());
        for place in self.partitions.iter().skip(partition).step_by(step) {
            self.spawn_place(&mut builder, partition, place.clone())?;
        }
        Ok(builder.build())
    }
}

impl StoreImageTasksExec {
    /// Pages through one place (`part`) in a task of `builder`'s, sending a batch per page
    /// into output partition `partition`'s buffer.
    fn spawn_place(
        &self,
        builder: &mut RecordBatchReceiverStreamBuilder,
        partition: usize,
        part: ScanPartition,
    ) -> Result<()> {
        let tx = builder.tx();
        let stats = Arc::new(CallStats::default());
        let options = PageOptions {
            use_cache: self.use_cache,
            stats: Arc::clone(&stats),
            row_limit: self.limit,
            budget: self.budget.clone(),
            ..PageOptions::default()
        };
        // The scan's accounts were checked when it was planned.
        let known = self.accounts.get(&part.account).cloned();
        let Some(clients) = known.or_else(|| self.clients.for_account(&part.account)) else {
            return Err(datafusion::common::DataFusionError::Internal(format!(
                "account {} of the plan is not one the server reaches",
                part.account
            )));
        };
        let mut pages = clients.describe_store_image_tasks(&part.region, part.request, options);
        // Name the account in errors when the server reaches more than its own.
        let name_account = self.accounts.len() > 1 || !self.clients.member_accounts().is_empty();
        let account = part.account.clone();
        let projection = self.projection.clone();
        let mut remaining = self.limit;
        let metrics = self.metrics.clone();
        let skip = self.skip;
        let skips = self.skips.clone();
        let calls = Arc::clone(&self.calls);
        builder.spawn(async move {
            let result = async {
                let mut first = true;
                while let Some(page) = pages.next().await {
                    let page = match page {
                        Ok(page) => page,
                        Err(mut e) => {
                            if name_account && e.account.is_none() {
                                e = e.in_account(&account);
                            }
                            let failure = explain_failure(&clients, e).await;
                            if skip && first {
                                if let Some(cause) = region_not_enabled(&failure) {
                                    let skipped = SkippedAccount::of(
                                        &account,
                                        SkipReason::RegionNotEnabled,
                                        cause,
                                    );
                                    skips::record(clients.metrics(), skips.as_deref(), skipped);
                                    return Ok(());
                                }
                            }
                            return Err(failure);
                        }
                    };
                    first = false;
                    let mut batch = tasks_to_projected_batch(
                        &account,
                        &page.region,
                        &page.tasks,
                        projection.as_deref(),
                    )?;
                    if let Some(left) = remaining.as_mut() {
                        if batch.num_rows() >= *left {
                            batch = batch.slice(0, *left);
                            *left = 0;
                        } else {
                            *left -= batch.num_rows();
                        }
                    }
                    let done = remaining == Some(0);
                    if tx.send(Ok(batch)).await.is_err() || done {
                        // The consumer went away, or the limit is reached: stop paging.
                        break;
                    }
                }
                Ok(())
            }
            .await;
            record(&metrics, partition, &stats);
            calls.add(&account, &part.region, &stats);
            result
        });
        Ok(())
    }
}
