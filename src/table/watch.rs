//! `watch_store_image_tasks(interval, until, timeout)`, a table function that streams store
//! image tasks as they progress: the table's columns plus `observedAt`, one record batch per
//! AWS page on the first poll (every matching task) and then one per poll with the tasks that
//! changed, until every watched task is `Completed` or `Failed` (`until => 'done'`) or the
//! timeout passes.
//!
//! - The first poll is the table's own scan (`StoreImageTasksTable::scan`): the same
//!   partitions (account × region × ImageIds chunk), the same pushdown of `account`,
//!   `region`, `amiId`, `storeTaskState` and `bucket` predicates, the same region and account
//!   checks and the statement's AWS call budget. The tasks it returns are the watched set.
//! - Every later poll asks `DescribeStoreImageTasks` with `ImageIds`: the AMIs of the watched
//!   tasks that are still running, one call per account × region (per 20 AMIs), never a full
//!   listing, never from the response cache. With `until => 'timeout'` it also asks the AMIs
//!   the query names (`amiId = / IN`), so a task started after the watch began joins it.
//! - `amiId`, `storeTaskState` and `bucket` predicates choose the watched tasks on the first
//!   poll (the watch checks them itself, so DataFusion does not filter them again): the later
//!   rows of a watched task are streamed whatever its state, so
//!   `WHERE storeTaskState = 'InProgress'` follows the running tasks to their end.
//! - The polls run in a task of their own behind a two-batch buffer: dropping the stream
//!   (the client went away) aborts it, and no AWS call is made after that.
//! - The timeout is capped by the server's `--max-watch` ([`MaxWatch`], a session config
//!   extension); the Flight layer adds the watch's timeout to the statement's query timeout
//!   ([`watch_timeout`] finds it in a plan).
//!
//! DataFusion 55 passes a table function its arguments by position only (a named argument
//! `interval => '5 seconds'` is refused by its planner); the server's SQL entry
//! (`catalog::table_args`) puts named arguments in [`WATCH_PARAMETERS`] order first, so both
//! spellings work through the server. An application calling `ctx.sql` directly passes them
//! by position: `watch_store_image_tasks('5 seconds', 'done', '1 hour')`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{project_schema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;

use super::error::TableError;
use super::naming::check_ami_id;
use super::provider::StoreImageTasksTable;
use super::pushdown;
use super::regions::explain_failure;
use super::scan::{ScanPartition, StoreImageTasksExec};
use super::schema::{store_image_tasks_schema, tasks_to_batch, COMMENT};
use crate::ec2::{
    AwsError, CallBudget, CallStats, DescribeRequest, Ec2Clients, PageOptions, StoreImageTask,
    MAX_IMAGE_IDS,
};

/// The name of the table function.
pub const WATCH_FUNCTION: &str = "watch_store_image_tasks";
/// Its parameters, in positional order.
pub const WATCH_PARAMETERS: [&str; 3] = ["interval", "until", "timeout"];
/// The column a watch adds to the table's.
pub const OBSERVED_AT: &str = "observedAt";
/// Time between two polls when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long a watch may run when the server sets no other ceiling (`--max-watch`), and its
/// timeout when none is given (or the ceiling, if shorter).
pub const DEFAULT_MAX_WATCH: Duration = Duration::from_secs(3600);

/// Batches buffered between the polling task and the consumer.
const BATCHES_BUFFERED: usize = 2;

/// The server's ceiling on a watch's timeout (`--max-watch`), as a session config extension;
/// zero refuses every watch. Without it, [`DEFAULT_MAX_WATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxWatch(pub Duration);

/// When a watch ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When every watched task is Completed or Failed, or at the timeout.
    Done,
    /// At the timeout.
    Timeout,
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Until::Done => "done",
            Until::Timeout => "timeout",
        })
    }
}

/// A watch's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchArgs {
    /// Time from the start of one poll to the start of the next.
    pub interval: Duration,
    /// When the stream ends.
    pub until: Until,
    /// The longest the stream runs.
    pub timeout: Duration,
}

/// The watch's columns: the table's, then `observedAt`.
static WATCH_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let table = store_image_tasks_schema();
    let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(
        Field::new(
            OBSERVED_AT,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        )
        .with_metadata(
            [(
                COMMENT.to_owned(),
                "When the server received the AWS answer this row comes from (UTC).".to_owned(),
            )]
            .into(),
        ),
    );
    Arc::new(Schema::new_with_metadata(
        fields,
        [(
            COMMENT.to_owned(),
            "Store image tasks as they progress: every matching task on the first poll, then \
             the tasks that changed at each poll."
                .to_owned(),
        )]
        .into(),
    ))
});

/// The columns of `watch_store_image_tasks(...)`.
pub fn watch_schema() -> SchemaRef {
    Arc::clone(&WATCH_SCHEMA)
}

/// The longest watch timeout in `plan`, if it watches.
pub fn watch_timeout(plan: &Arc<dyn ExecutionPlan>) -> Option<Duration> {
    let own = plan.downcast_ref::<WatchExec>().map(|w| w.args.timeout);
    plan.children()
        .into_iter()
        .filter_map(watch_timeout)
        .chain(own)
        .max()
}

/// The table function, registered as [`WATCH_FUNCTION`]:
/// `ctx.register_udtf(WATCH_FUNCTION, Arc::new(WatchFunction::new(table)))`.
#[derive(Debug)]
pub struct WatchFunction {
    table: Arc<StoreImageTasksTable>,
}

impl WatchFunction {
    /// Watches the tasks of `table`.
    pub fn new(table: Arc<StoreImageTasksTable>) -> Self {
        WatchFunction { table }
    }
}

impl TableFunctionImpl for WatchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let ceiling = args
            .session()
            .config()
            .get_extension::<MaxWatch>()
            .map_or(DEFAULT_MAX_WATCH, |m| m.0);
        let parsed = parse_args(args.exprs(), ceiling).map_err(refused)?;
        Ok(Arc::new(WatchTable {
            table: Arc::clone(&self.table),
            args: parsed,
        }))
    }
}

/// What one call of the function returns: a table whose scan is a watch.
#[derive(Debug)]
struct WatchTable {
    table: Arc<StoreImageTasksTable>,
    args: WatchArgs,
}

#[async_trait]
impl TableProvider for WatchTable {
    fn schema(&self) -> SchemaRef {
        watch_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The table leaves amiId (and, with ImageIds, state and bucket) for DataFusion to
        // check again; the watch checks them itself on the first poll, and a filter above it
        // would drop the later rows of the tasks it follows.
        Ok(pushdown::support(filters)
            .into_iter()
            .map(|s| match s {
                TableProviderFilterPushDown::Inexact => TableProviderFilterPushDown::Exact,
                other => other,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The first poll is the table's scan, planned (and checked) as the table plans it.
        let first = self.table.scan(state, None, filters, None).await?;
        let Some(scan) = first.downcast_ref::<StoreImageTasksExec>() else {
            return Err(DataFusionError::Internal(
                "the table's scan is not a StoreImageTasksExec".to_owned(),
            ));
        };
        let partitions = scan.partitions().to_vec();
        let valid = |ids: BTreeSet<String>| -> BTreeSet<String> {
            ids.into_iter()
                .filter(|i| check_ami_id(i).is_ok())
                .collect()
        };
        let checks = Checks {
            amis: pushdown::allowed(filters, pushdown::AMI_ID).map(valid),
            states: pushdown::allowed(filters, pushdown::STATE),
            buckets: pushdown::allowed(filters, pushdown::BUCKET),
        };
        let schema = project_schema(&watch_schema(), projection)?;
        Ok(Arc::new(WatchExec::new(
            self.table.clients().clone(),
            Arc::clone(&first),
            partitions,
            checks,
            self.args,
            projection.cloned(),
            schema,
            state.config().get_extension::<CallBudget>(),
        )))
    }
}

/// The values the pushed predicates allow (`None`: any), checked on the first poll's tasks
/// and on any task that joins later.
#[derive(Debug, Clone, Default)]
struct Checks {
    amis: Option<BTreeSet<String>>,
    states: Option<BTreeSet<String>>,
    buckets: Option<BTreeSet<String>>,
}

impl Checks {
    fn allow(&self, task: &StoreImageTask) -> bool {
        let ok = |set: &Option<BTreeSet<String>>, value: &Option<String>| {
            set.as_ref()
                .is_none_or(|s| value.as_ref().is_some_and(|v| s.contains(v)))
        };
        ok(&self.amis, &task.ami_id)
            && ok(&self.states, &task.store_task_state)
            && ok(&self.buckets, &task.bucket)
    }
}

/// The watch plan: the first poll (the table's scan, for its partitions and EXPLAIN), then
/// polls with ImageIds. One output partition.
#[derive(Debug)]
pub struct WatchExec {
    clients: Ec2Clients,
    first: Arc<dyn ExecutionPlan>,
    partitions: Vec<ScanPartition>,
    checks: Checks,
    args: WatchArgs,
    projection: Option<Vec<usize>>,
    budget: Option<Arc<CallBudget>>,
    metrics: ExecutionPlanMetricsSet,
    properties: Arc<PlanProperties>,
}

impl WatchExec {
    #[allow(clippy::too_many_arguments)]
    fn new(
        clients: Ec2Clients,
        first: Arc<dyn ExecutionPlan>,
        partitions: Vec<ScanPartition>,
        checks: Checks,
        args: WatchArgs,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
        budget: Option<Arc<CallBudget>>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        WatchExec {
            clients,
            first,
            partitions,
            checks,
            args,
            projection,
            budget,
            metrics: ExecutionPlanMetricsSet::new(),
            properties: Arc::new(properties),
        }
    }

    /// The watch's arguments.
    pub fn args(&self) -> WatchArgs {
        self.args
    }
}

impl DisplayAs for WatchExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let pairs: BTreeSet<(&str, &str)> = self
            .partitions
            .iter()
            .map(|p| (p.account.as_str(), p.region.as_str()))
            .collect();
        write!(
            f,
            "WatchStoreImageTasksExec: interval={}, until={}, timeout={}, first poll: ",
            humantime::format_duration(self.args.interval),
            self.args.until,
            humantime::format_duration(self.args.timeout),
        )?;
        match self.first.downcast_ref::<StoreImageTasksExec>() {
            Some(scan) => scan.fmt_as(t, f)?,
            None => write!(f, "{}", self.first.name())?,
        }
        write!(
            f,
            "; then every {}: DescribeStoreImageTasks(ImageIds=the AMIs of the unfinished \
             tasks",
            humantime::format_duration(self.args.interval),
        )?;
        if self.args.until == Until::Timeout {
            if let Some(amis) = &self.checks.amis {
                write!(f, " and {amis:?}")?;
            }
        }
        write!(f, ") in each of {} account/region pair(s)", pairs.len())
    }
}

impl ExecutionPlan for WatchExec {
    fn name(&self) -> &str {
        "WatchStoreImageTasksExec"
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
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema(), BATCHES_BUFFERED);
        if partition != 0 {
            return Ok(builder.build());
        }
        let watcher = Watcher {
            clients: self.clients.clone(),
            partitions: self.partitions.clone(),
            checks: self.checks.clone(),
            args: self.args,
            projection: self.projection.clone(),
            budget: self.budget.clone(),
            stats: Arc::new(CallStats::default()),
            watched: BTreeMap::new(),
            polls: 0,
        };
        let tx = builder.tx();
        let metrics = self.metrics.clone();
        builder.spawn(async move {
            let stats = Arc::clone(&watcher.stats);
            let (polls, result) = watcher.run(tx).await;
            MetricBuilder::new(&metrics).counter("polls", 0).add(polls);
            MetricBuilder::new(&metrics)
                .counter("api_calls", 0)
                .add(stats.calls.load(Ordering::Relaxed) as usize);
            result
        });
        Ok(builder.build())
    }
}

/// A task's identity: account, region, AMI and start time.
type TaskKey = (String, String, Option<String>, Option<DateTime<Utc>>);

/// The polling task's state.
struct Watcher {
    clients: Ec2Clients,
    partitions: Vec<ScanPartition>,
    checks: Checks,
    args: WatchArgs,
    projection: Option<Vec<usize>>,
    budget: Option<Arc<CallBudget>>,
    stats: Arc<CallStats>,
    /// Every watched task as last sent.
    watched: BTreeMap<TaskKey, StoreImageTask>,
    polls: usize,
}

/// The consumer went away: stop.
struct Gone;

impl Watcher {
    /// Polls until the watch ends; returns the number of polls and how it ended.
    async fn run(mut self, tx: Sender<Result<RecordBatch>>) -> (usize, Result<()>) {
        let result = self.poll_all(&tx).await;
        let result = match result {
            Ok(Ok(())) | Ok(Err(Gone)) => Ok(()),
            Err(e) => Err(e),
        };
        (self.polls, result)
    }

    async fn poll_all(&mut self, tx: &Sender<Result<RecordBatch>>) -> Result<Result<(), Gone>> {
        let started = Instant::now();
        let deadline = started + self.args.timeout;
        if let Err(gone) = self.first_poll(tx).await? {
            return Ok(Err(gone));
        }
        let mut poll_started = started;
        loop {
            if self.args.until == Until::Done && self.watched.values().all(is_terminal) {
                return Ok(Ok(()));
            }
            let next = poll_started + self.args.interval;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Ok(Ok(()));
            }
            tokio::time::sleep_until(next).await;
            poll_started = Instant::now();
            if let Err(gone) = self.poll(tx).await? {
                return Ok(Err(gone));
            }
        }
    }

    /// The first poll: the table's partitions, concurrently, a batch per page.
    async fn first_poll(&mut self, tx: &Sender<Result<RecordBatch>>) -> Result<Result<(), Gone>> {
        self.polls += 1;
        let mut streams = Vec::with_capacity(self.partitions.len());
        for p in &self.partitions {
            let options = PageOptions {
                use_cache: false,
                stats: Arc::clone(&self.stats),
                budget: self.budget.clone(),
                ..PageOptions::default()
            };
            let account = p.account.clone();
            let clients = self.clients_of(&p.account)?;
            streams.push(
                clients
                    .describe_store_image_tasks(&p.region, p.request.clone(), options)
                    .map(move |page| (account.clone(), page)),
            );
        }
        let mut pages = futures::stream::select_all(streams);
        while let Some((account, page)) = pages.next().await {
            let page = page.map_err(|e| (account.clone(), e));
            let page = match page {
                Ok(page) => page,
                Err((account, e)) => return Err(self.explain(&account, e).await),
            };
            let observed = Utc::now();
            let mut rows = Vec::new();
            for task in page.tasks {
                if self.checks.allow(&task) {
                    let key = key_of(&account, &page.region, &task);
                    self.watched.insert(key, task.clone());
                    rows.push(task);
                }
            }
            if rows.is_empty() {
                continue;
            }
            let batch = self.batch(&[(&account, &page.region, rows)], observed)?;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(Err(Gone));
            }
        }
        Ok(Ok(()))
    }

    /// A later poll: ImageIds for the AMIs still to follow, one call per account × region
    /// (per 20 AMIs); one batch with the tasks that changed.
    async fn poll(&mut self, tx: &Sender<Result<RecordBatch>>) -> Result<Result<(), Gone>> {
        let mut asks: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for ((account, region, ami, _), task) in &self.watched {
            if let (false, Some(ami)) = (is_terminal(task), ami) {
                asks.entry((account.clone(), region.clone()))
                    .or_default()
                    .insert(ami.clone());
            }
        }
        if self.args.until == Until::Timeout {
            if let Some(amis) = &self.checks.amis {
                for p in &self.partitions {
                    asks.entry((p.account.clone(), p.region.clone()))
                        .or_default()
                        .extend(amis.iter().cloned());
                }
            }
        }
        asks.retain(|_, amis| !amis.is_empty());
        if asks.is_empty() {
            return Ok(Ok(()));
        }
        self.polls += 1;
        let calls = asks.iter().flat_map(|((account, region), amis)| {
            let amis: Vec<String> = amis.iter().cloned().collect();
            amis.chunks(MAX_IMAGE_IDS)
                .map(|chunk| (account.clone(), region.clone(), chunk.to_vec()))
                .collect::<Vec<_>>()
        });
        let answers = futures::future::join_all(calls.map(|(account, region, image_ids)| {
            let options = PageOptions {
                use_cache: false,
                stats: Arc::clone(&self.stats),
                ..PageOptions::default()
            };
            let clients = self.clients_of(&account);
            async move {
                let clients = match clients {
                    Ok(clients) => clients,
                    Err(e) => return (account, region, Err(Err(e))),
                };
                let request = DescribeRequest {
                    image_ids,
                    ..DescribeRequest::default()
                };
                let mut tasks = Vec::new();
                let mut pages = clients.describe_store_image_tasks(&region, request, options);
                while let Some(page) = pages.next().await {
                    match page {
                        Ok(page) => tasks.extend(page.tasks),
                        Err(e) => return (account, region, Err(Ok(e))),
                    }
                }
                (account, region, Ok(tasks))
            }
        }))
        .await;
        let observed = Utc::now();
        let mut changed: BTreeMap<(String, String), Vec<StoreImageTask>> = BTreeMap::new();
        for (account, region, tasks) in answers {
            let tasks = match tasks {
                Ok(tasks) => tasks,
                Err(Ok(e)) => return Err(self.explain(&account, e).await),
                Err(Err(e)) => return Err(e),
            };
            for task in tasks {
                let key = key_of(&account, &region, &task);
                let new = match self.watched.get(&key) {
                    Some(last) => last != &task,
                    // A task not seen before (started after the watch began, on an AMI
                    // the query names) joins the watch if the query's predicates allow it.
                    None => self.checks.allow(&task),
                };
                if new {
                    self.watched.insert(key, task.clone());
                    changed
                        .entry((account.clone(), region.clone()))
                        .or_default()
                        .push(task);
                }
            }
        }
        if changed.is_empty() {
            return Ok(Ok(()));
        }
        let groups: Vec<(&String, &String, Vec<StoreImageTask>)> = changed
            .iter()
            .map(|((account, region), tasks)| (account, region, tasks.clone()))
            .collect();
        let batch = self.batch(&groups, observed)?;
        if tx.send(Ok(batch)).await.is_err() {
            return Ok(Err(Gone));
        }
        Ok(Ok(()))
    }

    /// One batch of the watch's (projected) columns from `groups` of tasks.
    fn batch(
        &self,
        groups: &[(&String, &String, Vec<StoreImageTask>)],
        observed: DateTime<Utc>,
    ) -> Result<RecordBatch> {
        let schema = watch_schema();
        let mut batches = Vec::with_capacity(groups.len());
        for (account, region, tasks) in groups {
            let table = tasks_to_batch(account, region, tasks)?;
            let mut columns: Vec<ArrayRef> = table.columns().to_vec();
            columns.push(Arc::new(
                TimestampMillisecondArray::from(vec![observed.timestamp_millis(); tasks.len()])
                    .with_timezone("UTC"),
            ));
            batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        let batch = concat_batches(&schema, &batches)?;
        Ok(match &self.projection {
            Some(indices) => batch.project(indices)?,
            None => batch,
        })
    }

    /// The clients of `account` (one the plan checked).
    fn clients_of(&self, account: &str) -> Result<Ec2Clients> {
        self.clients.for_account(account).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "account {account} of the plan is not one the server reaches"
            ))
        })
    }

    /// A failed call, as the query reports it (naming the account when the server reaches
    /// more than its own).
    async fn explain(&self, account: &str, mut e: AwsError) -> DataFusionError {
        if !self.clients.member_accounts().is_empty() && e.account.is_none() {
            e = e.in_account(account);
        }
        match self.clients.for_account(account) {
            Some(clients) => explain_failure(&clients, e).await,
            None => DataFusionError::External(Box::new(e)),
        }
    }
}

fn key_of(account: &str, region: &str, task: &StoreImageTask) -> TaskKey {
    (
        account.to_owned(),
        region.to_owned(),
        task.ami_id.clone(),
        task.task_start_time,
    )
}

/// Completed or Failed: it will not change again.
fn is_terminal(task: &StoreImageTask) -> bool {
    matches!(
        task.store_task_state.as_deref(),
        Some("Completed") | Some("Failed")
    )
}

/// The arguments in [`WATCH_PARAMETERS`] order (NULL: the default), checked.
pub fn parse_args(exprs: &[Expr], ceiling: Duration) -> Result<WatchArgs, String> {
    const USAGE: &str = "call it as watch_store_image_tasks(interval => '5 seconds', until => \
        'done', timeout => '1 hour'), every argument optional, or by position in that order";
    if exprs.len() > WATCH_PARAMETERS.len() {
        return Err(format!(
            "{WATCH_FUNCTION} takes at most {} arguments ({}), not {}: {USAGE}",
            WATCH_PARAMETERS.len(),
            WATCH_PARAMETERS.join(", "),
            exprs.len()
        ));
    }
    if ceiling.is_zero() {
        return Err(format!(
            "this server does not allow {WATCH_FUNCTION} (--max-watch is 0s): select from \
             store_image_tasks instead, or ask its operator for a --max-watch"
        ));
    }
    let arg = |i: usize| exprs.get(i).filter(|e| !is_null(e));
    let interval = match arg(0) {
        Some(e) => duration_arg("interval", e)?,
        None => DEFAULT_INTERVAL,
    };
    let until = match arg(1) {
        None => Until::Done,
        Some(e) => match string_literal(e).map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("done") => Until::Done,
            Some(s) if s.eq_ignore_ascii_case("timeout") => Until::Timeout,
            _ => {
                return Err(format!(
                    "{WATCH_FUNCTION}'s until is 'done' (end when every watched task is \
                     Completed or Failed, or at the timeout) or 'timeout' (poll until the \
                     timeout), not {}",
                    shown(e)
                ))
            }
        },
    };
    let timeout = match arg(2) {
        Some(e) => duration_arg("timeout", e)?,
        None => DEFAULT_MAX_WATCH.min(ceiling),
    };
    if timeout > ceiling {
        return Err(format!(
            "{WATCH_FUNCTION}'s timeout {} is longer than this server lets a watch run ({}, \
             --max-watch): give a timeout of at most {}",
            humantime::format_duration(timeout),
            humantime::format_duration(ceiling),
            humantime::format_duration(ceiling),
        ));
    }
    if interval < MIN_INTERVAL {
        return Err(format!(
            "{WATCH_FUNCTION}'s interval {} is shorter than the shortest allowed ({}): each \
             poll makes one AWS call per account and region",
            humantime::format_duration(interval),
            humantime::format_duration(MIN_INTERVAL),
        ));
    }
    if interval > timeout {
        return Err(format!(
            "{WATCH_FUNCTION}'s interval {} is longer than its timeout {}: it would poll only \
             once; give a shorter interval or a longer timeout",
            humantime::format_duration(interval),
            humantime::format_duration(timeout),
        ));
    }
    Ok(WatchArgs {
        interval,
        until,
        timeout,
    })
}

/// An argument as the user wrote it: a string quoted, anything else as DataFusion shows it.
fn shown(e: &Expr) -> String {
    match string_literal(e) {
        Some(s) => format!("'{s}'"),
        None => e.to_string(),
    }
}

fn is_null(e: &Expr) -> bool {
    matches!(e, Expr::Literal(v, _) if v.is_null())
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

/// A duration given as a string (`'5 seconds'`, `'200ms'`, `'1h 30m'`) or an INTERVAL.
fn duration_arg(name: &str, e: &Expr) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{WATCH_FUNCTION}'s {name} is a duration such as '5 seconds', '200ms', '1 hour' or \
             INTERVAL '5' SECOND, not {}",
            shown(e)
        )
    };
    let duration = match e {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) => {
            if v.months != 0 || v.days < 0 || v.nanoseconds < 0 {
                return Err(bad());
            }
            Duration::from_secs(v.days as u64 * 86_400) + Duration::from_nanos(v.nanoseconds as u64)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            if v.days < 0 || v.milliseconds < 0 {
                return Err(bad());
            }
            Duration::from_secs(v.days as u64 * 86_400)
                + Duration::from_millis(v.milliseconds as u64)
        }
        _ => {
            let text = string_literal(e).ok_or_else(bad)?;
            parse_duration(text).ok_or_else(bad)?
        }
    };
    if duration.is_zero() {
        return Err(format!(
            "{WATCH_FUNCTION}'s {name} must be longer than zero, not {}",
            shown(e)
        ));
    }
    Ok(duration)
}

/// `'5 seconds'`, `'5s'`, `'1 hour 30 minutes'`: humantime's spelling, with or without a
/// space between number and unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return Some(d);
    }
    // Join each number to the unit after it ("5 seconds" -> "5seconds"), and spell the
    // units humantime does not know ("milliseconds") its way.
    let mut joined = String::new();
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let word = match word.to_ascii_lowercase().as_str() {
            "millisecond" | "milliseconds" => "ms",
            "microsecond" | "microseconds" => "us",
            "nanosecond" | "nanoseconds" => "ns",
            _ => word,
        };
        joined.push_str(word);
        let number = word.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !number && words.peek().is_some() {
            joined.push(' ');
        }
    }
    humantime::parse_duration(&joined).ok()
}

fn refused(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TableError::Invalid(message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::lit;

    fn args(exprs: &[Expr]) -> Result<WatchArgs, String> {
        parse_args(exprs, DEFAULT_MAX_WATCH)
    }

    #[test]
    fn defaults_and_spellings() {
        let d = args(&[]).unwrap();
        assert_eq!(
            d,
            WatchArgs {
                interval: DEFAULT_INTERVAL,
                until: Until::Done,
                timeout: DEFAULT_MAX_WATCH
            }
        );
        let a = args(&[lit("200 milliseconds"), lit("TIMEOUT"), lit("1 hour")]).unwrap();
        assert_eq!(a.interval, Duration::from_millis(200));
        assert_eq!(a.until, Until::Timeout);
        assert_eq!(a.timeout, Duration::from_secs(3600));
        let null = Expr::Literal(ScalarValue::Null, None);
        let b = args(&[null, lit("done"), lit("90s")]).unwrap();
        assert_eq!(b.interval, DEFAULT_INTERVAL);
        assert_eq!(b.timeout, Duration::from_secs(90));
        assert_eq!(
            parse_duration("1 hour 30 minutes"),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("5 seconds"), Some(Duration::from_secs(5)));
        // A shorter ceiling is the default timeout.
        let capped = parse_args(&[], Duration::from_secs(60)).unwrap();
        assert_eq!(capped.timeout, Duration::from_secs(60));
    }

    #[test]
    fn bad_arguments_say_what_is_expected() {
        let e = args(&[lit("soon")]).unwrap_err();
        assert!(
            e.contains("interval is a duration such as '5 seconds'"),
            "{e}"
        );
        assert!(e.ends_with("not 'soon'"), "{e}");
        let e = args(&[lit("5s"), lit("forever")]).unwrap_err();
        assert!(e.contains("until is 'done'"), "{e}");
        let e = args(&[lit("5s"), lit("done"), lit("2 hours")]).unwrap_err();
        assert!(
            e.contains("longer than this server lets a watch run (1h"),
            "{e}"
        );
        let e = args(&[lit("10ms")]).unwrap_err();
        assert!(
            e.contains("shorter than the shortest allowed (100ms)"),
            "{e}"
        );
        let e = args(&[lit("1m"), lit("done"), lit("10s")]).unwrap_err();
        assert!(e.contains("longer than its timeout"), "{e}");
        let e = args(&[lit("1s"), lit("done"), lit("1m"), lit("x")]).unwrap_err();
        assert!(e.contains("at most 3 arguments"), "{e}");
        let e = parse_args(&[], Duration::ZERO).unwrap_err();
        assert!(e.contains("--max-watch is 0s"), "{e}");
    }
}
