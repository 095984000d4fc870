//! AWAIT: an INSERT that returns only when every task it created has ended.
//! `INSERT /*+ AWAIT */ INTO store_image_tasks ...` (StackQL's spelling, read by the catalog's
//! parser) or `SET aws.await = true` turns it on for the statement; `aws.await_interval`
//! (default 5 s) and `aws.await_timeout` (default 1 h) say how often to look and for how
//! long, within the server's bounds ([`AwaitLimits`]: `--min-await-interval`, `--max-await`).
//!
//! It runs after stage 4 ([`super::report`]), only for a statement whose every row was
//! created (one that was not fails with its report, as without AWAIT) and never for a dry
//! run, which creates nothing (its result says so: [`dry_run_note`]). Every INSERT guarantee
//! stands: the rows were checked and each created once before the wait starts, and the wait
//! sends nothing but `DescribeStoreImageTasks`.
//!
//! Polling: every interval, one `DescribeStoreImageTasks` with `ImageIds` per account ×
//! region that still has an unfinished task (one per 20 AMIs, AWS's limit per call), never
//! from the cache and never a full listing; a task's newest listing for its AMI (to its
//! bucket) says its state. It ends when every task is `Completed` or `Failed`
//! ([`TaskEnd`]s, left in the statement's [`AwaitedTasks`] for the result row), or fails
//! ([`AwaitError`]) at the timeout (DEADLINE_EXCEEDED, listing the tasks still in progress),
//! when polling keeps failing, or when the server's shutdown grace ends. In every case the
//! tasks exist and keep running; nothing is re-sent. A client that goes away drops the
//! statement's future, and with it the polling.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use tokio::time::Instant;

use super::invalid;
use crate::ec2::{AwsError, Ec2Clients, StoreImageTask, WriteGate};
use crate::table::error::{CreatedRow, TableError};
use crate::table::options::AwsOptions;

/// The lowest `--min-await-interval` a server accepts.
pub const LOWEST_AWAIT_INTERVAL: Duration = Duration::from_millis(100);

/// Polls in a row that may fail (each after the AWS client's own retries) before AWAIT
/// gives up.
const MAX_FAILED_POLLS: u32 = 3;

/// How often a wait checks whether the server's shutdown grace has ended.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(200);

/// How many tasks an error message names (it is cut at 4 KB anyway).
const TASKS_NAMED: usize = 25;

/// The server's bounds on AWAIT, for every session (a session config extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitLimits {
    /// The longest wait (`--max-await`): a longer `aws.await_timeout` is cut to it; zero
    /// refuses AWAIT.
    pub max_await: Duration,
    /// The shortest `aws.await_interval` (`--min-await-interval`).
    pub min_interval: Duration,
}

impl Default for AwaitLimits {
    fn default() -> Self {
        AwaitLimits {
            max_await: Duration::from_secs(3600),
            min_interval: Duration::from_secs(1),
        }
    }
}

/// How one INSERT awaits its tasks: the session's settings within the server's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AwaitPlan {
    /// Time between polls.
    pub interval: Duration,
    /// The longest wait.
    pub timeout: Duration,
    /// The session asked for longer and `--max-await` cut it to `timeout`.
    pub capped: bool,
}

/// The AWAIT of the statement planned in `state` (`aws.await`, set by the hint or `SET`),
/// or `None`. A setting out of the server's bounds refuses the statement, before anything
/// is sent to AWS.
pub(crate) fn plan(state: &dyn Session) -> Result<Option<AwaitPlan>> {
    let options = AwsOptions::of(state.config_options());
    if !options.await_tasks {
        return Ok(None);
    }
    let limits = state
        .config()
        .get_extension::<AwaitLimits>()
        .map(|l| *l)
        .unwrap_or_default();
    plan_within(&options, limits).map(Some).map_err(invalid)
}

fn plan_within(options: &AwsOptions, limits: AwaitLimits) -> Result<AwaitPlan, String> {
    if limits.max_await.is_zero() {
        return Err(
            "AWAIT is turned off on this server (--max-await 0): run the INSERT \
                    without /*+ AWAIT */ (and with aws.await false), then SELECT its tasks \
                    from store_image_tasks to follow them; nothing was created"
                .to_owned(),
        );
    }
    let interval = options.await_interval()?;
    if interval < limits.min_interval {
        return Err(format!(
            "aws.await_interval is {}, and this server polls at most every {} \
             (--min-await-interval): SET aws.await_interval = '{}' or longer; nothing was \
             created",
            words(interval),
            words(limits.min_interval),
            words(limits.min_interval)
        ));
    }
    let asked = options.await_timeout()?;
    Ok(AwaitPlan {
        interval,
        timeout: asked.min(limits.max_await),
        capped: asked > limits.max_await,
    })
}

/// A duration in words (`5s`, `1h 30m`).
fn words(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// One created task to await.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Awaited {
    /// The account it was created in.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The AMI it stores.
    pub ami_id: String,
    /// The bucket it writes to.
    pub bucket: String,
}

impl Awaited {
    /// The task of a created `row`, in the row's account (`own_account`, the server's, when
    /// the row names none).
    pub(crate) fn of(own_account: &str, row: &CreatedRow) -> Awaited {
        let account = if row.account.is_empty() {
            own_account
        } else {
            &row.account
        };
        Awaited {
            account: account.to_owned(),
            region: row.region.clone(),
            ami_id: row.ami_id.clone(),
            bucket: row.bucket.clone(),
        }
    }
}

/// How a created task ended, or where it stood when the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnd {
    /// The account it was created in.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The AMI it stores.
    pub ami_id: String,
    /// The bucket it writes to.
    pub bucket: String,
    /// `Completed`, `Failed` or `InProgress` (also before AWS first listed it).
    pub state: String,
    /// Its last `progressPercentage` (`None` until AWS listed it).
    pub progress: Option<i32>,
    /// Its `storeTaskFailureReason`, when it failed.
    pub failure_reason: Option<String>,
}

impl TaskEnd {
    fn waiting(task: Awaited) -> TaskEnd {
        TaskEnd {
            account: task.account,
            region: task.region,
            ami_id: task.ami_id,
            bucket: task.bucket,
            state: IN_PROGRESS.to_owned(),
            progress: None,
            failure_reason: None,
        }
    }

    /// Whether the task has ended.
    pub fn ended(&self) -> bool {
        self.state == COMPLETED || self.state == FAILED
    }

    /// Takes what AWS lists for its AMI: the newest task to its bucket (AWS stores an AMI
    /// once at a time, so the newest is the one this INSERT created).
    fn update(&mut self, listed: &[StoreImageTask]) {
        let newest = listed
            .iter()
            .filter(|t| t.ami_id.as_deref() == Some(self.ami_id.as_str()))
            .filter(|t| t.bucket.as_deref().is_none_or(|b| b == self.bucket))
            .max_by_key(|t| t.task_start_time);
        if let Some(task) = newest {
            self.state = task
                .store_task_state
                .clone()
                .unwrap_or_else(|| IN_PROGRESS.to_owned());
            self.progress = task.progress_percentage.or(self.progress);
            self.failure_reason = task.store_task_failure_reason.clone();
        }
    }

    /// `ami-1 in us-east-1` (with the account when it is not the server's own).
    fn name(&self, own_account: &str) -> String {
        if self.account == own_account {
            format!("{} in {}", self.ami_id, self.region)
        } else {
            format!(
                "{} in {} (account {})",
                self.ami_id, self.region, self.account
            )
        }
    }
}

const IN_PROGRESS: &str = "InProgress";
const COMPLETED: &str = "Completed";
const FAILED: &str = "Failed";

/// Where an awaiting INSERT leaves how its tasks ended, for the caller that words its
/// result ([`super::insert_result`]); set in the statement's session config
/// (`SessionConfig::set_extension`) before it runs.
#[derive(Debug, Default)]
pub struct AwaitedTasks(Mutex<Option<AwaitOutcome>>);

/// How the tasks of an awaiting INSERT ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitOutcome {
    /// The server's own account (tasks elsewhere are named with theirs).
    pub own_account: String,
    /// Every task the INSERT created, ended.
    pub tasks: Vec<TaskEnd>,
}

impl AwaitedTasks {
    pub(crate) fn put(&self, outcome: AwaitOutcome) {
        *self.0.lock().expect("awaited tasks lock") = Some(outcome);
    }

    /// How the awaited tasks ended, if the statement awaited them.
    pub fn take(&self) -> Option<AwaitOutcome> {
        self.0.lock().expect("awaited tasks lock").take()
    }
}

/// Why AWAIT ended before every task had: the tasks exist and keep running either way.
#[derive(Debug, Clone)]
pub struct AwaitError {
    /// What ended the wait.
    pub reason: AwaitEnd,
    /// Every awaited task as last seen.
    pub tasks: Vec<TaskEnd>,
    /// The server's own account (tasks elsewhere are named with theirs).
    pub own_account: String,
}

/// What ended a wait early.
#[derive(Debug, Clone)]
pub enum AwaitEnd {
    /// `aws.await_timeout` (or `--max-await`) passed.
    TimedOut {
        /// The wait's length.
        timeout: Duration,
        /// `--max-await` cut the session's timeout.
        capped: bool,
    },
    /// DescribeStoreImageTasks kept failing.
    PollFailed(Box<AwsError>),
    /// The server's shutdown grace ended.
    ShuttingDown,
}

impl AwaitError {
    /// The AWS error that ended the wait, if one did.
    pub fn aws_error(&self) -> Option<&AwsError> {
        match &self.reason {
            AwaitEnd::PollFailed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the wait timed out.
    pub fn timed_out(&self) -> bool {
        matches!(self.reason, AwaitEnd::TimedOut { .. })
    }
}

impl std::error::Error for AwaitError {}

impl fmt::Display for AwaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running: Vec<&TaskEnd> = self.tasks.iter().filter(|t| !t.ended()).collect();
        let completed = self.tasks.iter().filter(|t| t.state == COMPLETED).count();
        let failed: Vec<&TaskEnd> = self.tasks.iter().filter(|t| t.state == FAILED).collect();
        let total = self.tasks.len();
        match &self.reason {
            AwaitEnd::TimedOut { timeout, capped } => {
                let limit = if *capped {
                    "aws.await_timeout, cut to the server's --max-await"
                } else {
                    "aws.await_timeout"
                };
                write!(f, "AWAIT timed out after {} ({limit})", words(*timeout))?;
            }
            AwaitEnd::PollFailed(error) => write!(
                f,
                "AWAIT stopped: DescribeStoreImageTasks failed {MAX_FAILED_POLLS} times in a \
                 row ({})",
                error.summary()
            )?,
            AwaitEnd::ShuttingDown => write!(
                f,
                "AWAIT stopped: the server is shutting down and its grace period ended"
            )?,
        }
        write!(
            f,
            " with {} of {total} tasks still in progress: ",
            running.len()
        )?;
        let named: Vec<String> = running
            .iter()
            .take(TASKS_NAMED)
            .map(|t| match t.progress {
                Some(p) => format!("{} at {p}%", t.name(&self.own_account)),
                None => format!("{} (not listed yet)", t.name(&self.own_account)),
            })
            .collect();
        write!(f, "{}", named.join(", "))?;
        if running.len() > TASKS_NAMED {
            write!(f, " and {} more", running.len() - TASKS_NAMED)?;
        }
        write!(f, "; {completed} completed, {} failed", failed.len())?;
        if !failed.is_empty() {
            let reasons: Vec<String> = failed
                .iter()
                .take(TASKS_NAMED)
                .map(|t| {
                    format!(
                        "{}: {}",
                        t.name(&self.own_account),
                        t.failure_reason.as_deref().unwrap_or("no reason given")
                    )
                })
                .collect();
            write!(f, " ({})", reasons.join("; "))?;
        }
        let ids: Vec<String> = running
            .iter()
            .take(TASKS_NAMED)
            .map(|t| format!("'{}'", t.ami_id))
            .collect();
        let (created, them) = if total == 1 {
            (
                "The task was created once and keeps running".to_owned(),
                "it",
            )
        } else {
            (
                format!("The {total} tasks were created, once each, and keep running"),
                "them",
            )
        };
        write!(
            f,
            ". {created} in AWS: nothing was re-sent and nothing is undone. Watch {them} with \
             SELECT amiId, region, storeTaskState, progressPercentage, storeTaskFailureReason \
             FROM store_image_tasks WHERE amiId IN ({})",
            ids.join(", ")
        )?;
        if self.timed_out() {
            write!(
                f,
                ", or give AWAIT longer next time (SET aws.await_timeout = '2 hours')"
            )?;
        }
        write!(f, ".")
    }
}

impl From<AwaitError> for DataFusionError {
    fn from(e: AwaitError) -> Self {
        DataFusionError::External(Box::new(TableError::Await(e)))
    }
}

/// Waits until every task of `tasks` has ended, polling as [`plan`] says; `own_account` is
/// the server's (the account of `clients`), `writes` the server's write gate (stopped when
/// the shutdown grace ends).
pub(crate) async fn await_all(
    clients: &Ec2Clients,
    own_account: &str,
    tasks: Vec<Awaited>,
    plan: AwaitPlan,
    writes: &WriteGate,
) -> Result<Vec<TaskEnd>, AwaitError> {
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let mut ends: Vec<TaskEnd> = tasks.into_iter().map(TaskEnd::waiting).collect();
    tracing::info!(
        tasks = ends.len(),
        interval = %words(plan.interval),
        timeout = %words(plan.timeout),
        "INSERT awaits its tasks"
    );
    let fail = |reason, ends: Vec<TaskEnd>| AwaitError {
        reason,
        tasks: ends,
        own_account: own_account.to_owned(),
    };
    let mut failed_polls = 0u32;
    let mut last_poll = started;
    loop {
        // A whole interval from the start of the last poll, however long that one took:
        // polls of one place never come closer together than the interval.
        if !wait_until((last_poll + plan.interval).min(deadline), writes).await {
            return Err(fail(AwaitEnd::ShuttingDown, ends));
        }
        last_poll = Instant::now();
        match poll(clients, own_account, &mut ends).await {
            Ok(()) => failed_polls = 0,
            Err(error) => {
                failed_polls += 1;
                tracing::warn!(%error, failed_polls, "AWAIT: DescribeStoreImageTasks failed");
                if failed_polls >= MAX_FAILED_POLLS {
                    return Err(fail(AwaitEnd::PollFailed(Box::new(error)), ends));
                }
            }
        }
        if ends.iter().all(TaskEnd::ended) {
            let failed = ends.iter().filter(|t| t.state == FAILED).count();
            tracing::info!(
                completed = ends.len() - failed,
                failed,
                waited_ms = started.elapsed().as_millis() as u64,
                "INSERT's tasks ended"
            );
            return Ok(ends);
        }
        if Instant::now() >= deadline {
            let error = fail(
                AwaitEnd::TimedOut {
                    timeout: plan.timeout,
                    capped: plan.capped,
                },
                ends,
            );
            tracing::warn!(%error, "AWAIT timed out");
            return Err(error);
        }
    }
}

/// Sleeps until `at`; `false` when the server's shutdown grace ends first.
async fn wait_until(at: Instant, writes: &WriteGate) -> bool {
    loop {
        if writes.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        tokio::time::sleep_until(at.min(now + SHUTDOWN_CHECK)).await;
    }
}

/// One poll: for each account × region with unfinished tasks, their AMIs' listing
/// (`ImageIds`, all regions at once); the first error, after every answer was taken.
async fn poll(
    clients: &Ec2Clients,
    own_account: &str,
    ends: &mut [TaskEnd],
) -> Result<(), AwsError> {
    let mut places: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for end in ends.iter().filter(|t| !t.ended()) {
        places
            .entry((&end.account, &end.region))
            .or_default()
            .push(end.ami_id.clone());
    }
    let calls = places.into_iter().map(|((account, region), amis)| {
        let clients = if account == own_account {
            Some(clients.clone())
        } else {
            clients.for_account(account)
        };
        let (account, region) = (account.to_owned(), region.to_owned());
        async move {
            let listed = match clients {
                Some(clients) => clients.tasks_of_images(&region, &amis).await,
                None => Err(AwsError::local(
                    &region,
                    "DescribeStoreImageTasks",
                    crate::ec2::AwsErrorKind::InvalidRequest,
                    format!("account {account} is not one this server reads"),
                )),
            };
            ((account, region), listed)
        }
    });
    let answers = futures::future::join_all(calls).await;
    let mut first_error = None;
    for ((account, region), listed) in answers {
        match listed {
            Ok(listed) => {
                for end in ends
                    .iter_mut()
                    .filter(|t| !t.ended() && t.account == account && t.region == region)
                {
                    end.update(&listed);
                }
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The columns an awaiting INSERT's result adds to `count` and `regions`: `completed`
/// and `failed` (how many tasks ended so), `failures` (each failed task, `ami-1 in
/// us-east-1: <storeTaskFailureReason>`, separated by `; `; null when none failed).
pub(crate) fn result_columns(outcome: &AwaitOutcome) -> Vec<(Field, ArrayRef)> {
    use datafusion::arrow::array::UInt64Array;
    let (ends, own_account) = (&outcome.tasks, outcome.own_account.as_str());
    let failed: Vec<&TaskEnd> = ends.iter().filter(|t| t.state == FAILED).collect();
    let completed = ends.iter().filter(|t| t.state == COMPLETED).count();
    let failures = (!failed.is_empty()).then(|| {
        failed
            .iter()
            .map(|t| {
                format!(
                    "{}: {}",
                    t.name(own_account),
                    t.failure_reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    vec![
        (
            Field::new("completed", DataType::UInt64, false),
            Arc::new(UInt64Array::from(vec![completed as u64])) as ArrayRef,
        ),
        (
            Field::new("failed", DataType::UInt64, false),
            Arc::new(UInt64Array::from(vec![failed.len() as u64])) as ArrayRef,
        ),
        (
            Field::new("failures", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![failures])) as ArrayRef,
        ),
    ]
}

/// What a dry run's result says under AWAIT.
pub const NOTHING_TO_AWAIT: &str = "nothing to await: a dry run creates no task";

/// A dry run's rows with the column `await` saying there is nothing to await (a dry run
/// creates no task), when the statement asked to await (`awaiting`); unchanged otherwise.
pub fn dry_run_note(batch: RecordBatch, awaiting: bool) -> Result<RecordBatch> {
    if !awaiting {
        return Ok(batch);
    }
    let schema = dry_run_schema(batch.schema(), true);
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![
        NOTHING_TO_AWAIT;
        batch.num_rows()
    ])));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The schema of a dry run's rows ([`super::report_schema`]), with the `await` column when
/// the statement asked to await.
pub fn dry_run_schema(
    report: datafusion::arrow::datatypes::SchemaRef,
    awaiting: bool,
) -> datafusion::arrow::datatypes::SchemaRef {
    if !awaiting {
        return report;
    }
    let mut fields: Vec<Field> = report.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("await", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// Whether a statement planned with these session options awaits its tasks.
pub fn is_awaiting(options: &datafusion::common::config::ConfigOptions) -> bool {
    AwsOptions::of(options).await_tasks
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn end(ami: &str, state: &str, progress: Option<i32>) -> TaskEnd {
        TaskEnd {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            ami_id: ami.into(),
            bucket: "b-bucket".into(),
            state: state.into(),
            progress,
            failure_reason: (state == FAILED).then(|| "Access Denied".to_owned()),
        }
    }

    fn listed(ami: &str, bucket: &str, start: i64, state: &str, progress: i32) -> StoreImageTask {
        StoreImageTask {
            ami_id: Some(ami.into()),
            bucket: Some(bucket.into()),
            progress_percentage: Some(progress),
            s3_object_key: Some(format!("{ami}.bin")),
            store_task_failure_reason: (state == FAILED).then(|| "r".to_owned()),
            store_task_state: Some(state.into()),
            task_start_time: Utc.timestamp_opt(start, 0).single(),
        }
    }

    #[test]
    fn the_plan_keeps_within_the_servers_bounds() {
        let mut options = AwsOptions {
            await_tasks: true,
            ..AwsOptions::default()
        };
        let limits = AwaitLimits::default();
        assert_eq!(
            plan_within(&options, limits).unwrap(),
            AwaitPlan {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(3600),
                capped: false,
            }
        );
        options.await_timeout = "3 hours".into();
        let plan = plan_within(&options, limits).unwrap();
        assert_eq!(
            (plan.timeout, plan.capped),
            (Duration::from_secs(3600), true)
        );
        options.await_interval = "0.5".into();
        let err = plan_within(&options, limits).unwrap_err();
        assert!(
            err.contains("polls at most every 1s (--min-await-interval)"),
            "{err}"
        );
        let fast = AwaitLimits {
            min_interval: LOWEST_AWAIT_INTERVAL,
            ..limits
        };
        assert_eq!(
            plan_within(&options, fast).unwrap().interval,
            Duration::from_millis(500)
        );
        let off = AwaitLimits {
            max_await: Duration::ZERO,
            ..limits
        };
        assert!(plan_within(&options, off)
            .unwrap_err()
            .contains("--max-await 0"));
    }

    #[test]
    fn a_task_takes_its_newest_listing_to_its_bucket() {
        let mut task = end("ami-1", IN_PROGRESS, None);
        task.update(&[listed("ami-2", "b-bucket", 5, COMPLETED, 100)]);
        assert_eq!((task.state.as_str(), task.progress), (IN_PROGRESS, None));
        task.update(&[
            listed("ami-1", "b-bucket", 1, COMPLETED, 100),
            listed("ami-1", "b-bucket", 9, IN_PROGRESS, 40),
            listed("ami-1", "other-bucket", 10, IN_PROGRESS, 1),
        ]);
        assert_eq!(
            (task.state.as_str(), task.progress),
            (IN_PROGRESS, Some(40))
        );
        assert!(!task.ended());
        task.update(&[listed("ami-1", "b-bucket", 9, FAILED, 50)]);
        assert!(task.ended());
        assert_eq!(task.failure_reason.as_deref(), Some("r"));
    }

    #[test]
    fn a_timeout_lists_the_unfinished_tasks_and_says_nothing_was_re_sent() {
        let mut other = end("ami-4", IN_PROGRESS, Some(3));
        other.account = "100000000001".into();
        let error = AwaitError {
            reason: AwaitEnd::TimedOut {
                timeout: Duration::from_secs(90),
                capped: false,
            },
            tasks: vec![
                end("ami-1", IN_PROGRESS, Some(45)),
                end("ami-2", COMPLETED, Some(100)),
                end("ami-3", FAILED, Some(50)),
                end("ami-5", IN_PROGRESS, None),
                other,
            ],
            own_account: "111111111111".into(),
        };
        let text = error.to_string();
        assert!(
            text.starts_with(
                "AWAIT timed out after 1m 30s (aws.await_timeout) with 3 of 5 tasks still in \
                 progress: ami-1 in us-east-1 at 45%, ami-5 in us-east-1 (not listed yet), \
                 ami-4 in us-east-1 (account 100000000001) at 3%; 1 completed, 1 failed \
                 (ami-3 in us-east-1: Access Denied). The 5 tasks were created, once each, \
                 and keep running in AWS: nothing was re-sent"
            ),
            "{text}"
        );
        assert!(
            text.contains("WHERE amiId IN ('ami-1', 'ami-5', 'ami-4')"),
            "{text}"
        );
        assert!(text.contains("SET aws.await_timeout"), "{text}");
        let one = AwaitError {
            tasks: vec![end("ami-1", IN_PROGRESS, Some(45))],
            ..error
        };
        let text = one.to_string();
        assert!(
            text.contains(
                "The task was created once and keeps running in AWS: nothing was re-sent and \
                 nothing is undone. Watch it with SELECT"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_result_counts_how_the_tasks_ended() {
        let ends = vec![
            end("ami-1", COMPLETED, Some(100)),
            end("ami-2", FAILED, Some(50)),
            end("ami-3", COMPLETED, Some(100)),
        ];
        let outcome = |tasks: &[TaskEnd]| AwaitOutcome {
            own_account: "111111111111".into(),
            tasks: tasks.to_vec(),
        };
        let columns = result_columns(&outcome(&ends));
        let names: Vec<&str> = columns.iter().map(|(f, _)| f.name().as_str()).collect();
        assert_eq!(names, ["completed", "failed", "failures"]);
        let batch =
            RecordBatch::try_from_iter(columns.into_iter().map(|(f, a)| (f.name().clone(), a)))
                .unwrap();
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::UInt64Type;
        assert_eq!(batch.column(0).as_primitive::<UInt64Type>().value(0), 2);
        assert_eq!(batch.column(1).as_primitive::<UInt64Type>().value(0), 1);
        assert_eq!(
            batch.column(2).as_string::<i32>().value(0),
            "ami-2 in us-east-1: Access Denied"
        );
        let none = result_columns(&outcome(&ends[..1]));
        assert!(none[2].1.is_null(0));
    }

    #[test]
    fn a_dry_run_says_there_is_nothing_to_await() {
        let rows = super::super::report_batch(&[]).unwrap();
        assert_eq!(dry_run_note(rows.clone(), false).unwrap(), rows);
        let noted = dry_run_note(rows, true).unwrap();
        assert_eq!(noted.schema().fields().last().unwrap().name(), "await");
        assert_eq!(
            dry_run_schema(super::super::report_schema(), true),
            noted.schema()
        );
    }
}
