//! Per-region state: the known buckets, the registered AMIs and the store tasks, with the two
//! things the API does with them: list tasks (newest first, cursor-paged, within the 31-day
//! window) and create one. A task's state and progress are computed from the emulator clock
//! when asked, so nothing runs in the background.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::clock::format_timestamp;
use crate::config::BucketFailure;

/// Only tasks that started this recently are ever listed.
pub const LISTING_WINDOW: TimeDelta = TimeDelta::days(31);

/// A store task as DescribeStoreImageTasks shows it at one instant (and `/_emulator/tasks`
/// serialises it, with the XML's camelCase names plus `region`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// The region the task belongs to.
    pub region: String,
    /// The AMI being stored.
    pub ami_id: String,
    /// The destination bucket.
    pub bucket: String,
    /// 0..=100; frozen at its last value when the task failed.
    pub progress_percentage: i32,
    /// `<ami-id>.bin`.
    #[serde(rename = "s3objectKey")]
    pub s3_object_key: String,
    /// `InProgress`, `Completed` or `Failed`.
    pub store_task_state: String,
    /// Why the task failed; `None` unless Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_task_failure_reason: Option<String>,
    /// When the task started (millisecond precision).
    #[serde(serialize_with = "serialize_timestamp")]
    pub task_start_time: DateTime<Utc>,
    /// The `S3ObjectTag.N` given to CreateStoreImageTask (not shown by the API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3_object_tags: Vec<ObjectTag>,
}

/// One tag of the stored S3 object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectTag {
    /// The tag key.
    pub key: String,
    /// The tag value (AWS allows it to be absent).
    pub value: Option<String>,
}

fn serialize_timestamp<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*time))
}

/// The three states of a store task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Still copying.
    InProgress,
    /// The object is in the bucket.
    Completed,
    /// Stopped with a reason.
    Failed,
}

impl TaskState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::InProgress => "InProgress",
            TaskState::Completed => "Completed",
            TaskState::Failed => "Failed",
        }
    }
}

/// When and why a task fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Time from the task's start to its failure.
    pub after: TimeDelta,
    /// The `storeTaskFailureReason`.
    pub reason: String,
}

/// A store task as kept: its outcome is fixed at creation, its state at an instant is derived.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Unique within its region; breaks ties between equal start times.
    pub id: u64,
    /// The AMI being stored.
    pub ami_id: String,
    /// The destination bucket.
    pub bucket: String,
    /// Start instant, whole milliseconds.
    pub start: DateTime<Utc>,
    /// Time to completion (were it not to fail).
    pub duration: TimeDelta,
    /// Set when the task will fail.
    pub failure: Option<Failure>,
    /// Tags of the S3 object.
    pub tags: Vec<ObjectTag>,
}

/// A task's state at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The state.
    pub state: TaskState,
    /// 0..=100.
    pub progress: i32,
    /// Set when Failed.
    pub reason: Option<String>,
}

impl Task {
    /// The task's state at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        let elapsed = (now - self.start).max(TimeDelta::zero());
        if let Some(failure) = &self.failure {
            if elapsed >= failure.after {
                return Status {
                    state: TaskState::Failed,
                    progress: self.percent_at(failure.after).min(99),
                    reason: Some(failure.reason.clone()),
                };
            }
        }
        if elapsed >= self.duration {
            Status {
                state: TaskState::Completed,
                progress: 100,
                reason: None,
            }
        } else {
            Status {
                state: TaskState::InProgress,
                progress: self.percent_at(elapsed).min(99),
                reason: None,
            }
        }
    }

    fn percent_at(&self, elapsed: TimeDelta) -> i32 {
        let total = self.duration.num_milliseconds().max(1);
        let done = elapsed.num_milliseconds().clamp(0, total);
        i32::try_from(done * 100 / total).expect("0..=100")
    }

    fn key(&self) -> TaskKey {
        (self.start.timestamp_millis(), self.id)
    }

    fn view(&self, region: &str, now: DateTime<Utc>) -> TaskView {
        let status = self.status(now);
        TaskView {
            region: region.to_owned(),
            ami_id: self.ami_id.clone(),
            bucket: self.bucket.clone(),
            progress_percentage: status.progress,
            s3_object_key: object_key(&self.ami_id),
            store_task_state: status.state.as_str().to_owned(),
            store_task_failure_reason: status.reason,
            task_start_time: self.start,
            s3_object_tags: self.tags.clone(),
        }
    }
}

/// The time at which a task of `duration` shows `percent` progress (rounded up to the
/// millisecond, so that its progress then reads `percent`).
fn share_of(duration: TimeDelta, percent: u8) -> TimeDelta {
    let total = duration.num_milliseconds().max(1);
    TimeDelta::milliseconds((total * i64::from(percent) + 99) / 100)
}

/// The S3 object key of a stored AMI.
pub fn object_key(ami_id: &str) -> String {
    format!("{ami_id}.bin")
}

/// Tasks are kept in listing order: (start in ms, id), iterated in reverse for newest first.
type TaskKey = (i64, u64);

/// Where a page ended: the last task listed. The next page starts strictly after it, so tasks
/// created meanwhile (newer than everything) never shift later pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last listed task's start, in ms since the epoch.
    pub start_ms: i64,
    /// The last listed task's id.
    pub id: u64,
}

/// A filter of DescribeStoreImageTasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `task-state`: the state is one of these.
    TaskState(BTreeSet<String>),
    /// `bucket`: the bucket is one of these.
    Bucket(BTreeSet<String>),
}

impl Filter {
    fn matches(&self, task: &Task, status: &Status) -> bool {
        match self {
            Filter::TaskState(states) => states.contains(status.state.as_str()),
            Filter::Bucket(buckets) => buckets.contains(&task.bucket),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The tasks, newest first.
    pub items: Vec<TaskView>,
    /// Set when more tasks match after the last item.
    pub next: Option<Cursor>,
}

/// Why a task cannot be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefusal {
    /// The AMI is not registered in this region.
    NotFound,
    /// A task of the AMI is InProgress.
    AlreadyInProgress,
}

/// One region's buckets, AMIs and tasks.
#[derive(Debug, Clone)]
pub struct RegionState {
    name: String,
    buckets: Vec<String>,
    /// Registered AMIs, those without any task first.
    registered: Vec<String>,
    registered_set: HashSet<String>,
    tasks: BTreeMap<TaskKey, Task>,
    next_id: u64,
}

impl RegionState {
    /// A region with these buckets, AMIs that have no task yet, and tasks (whose AMIs are
    /// registered too).
    pub fn new(name: &str, buckets: Vec<String>, untasked: Vec<String>, tasks: Vec<Task>) -> Self {
        let mut registered = untasked;
        let mut tasked: Vec<String> = tasks.iter().map(|t| t.ami_id.clone()).collect();
        tasked.sort();
        tasked.dedup();
        registered.extend(tasked);
        let registered_set: HashSet<String> = registered.iter().cloned().collect();
        let next_id = tasks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        RegionState {
            name: name.to_owned(),
            buckets,
            registered,
            registered_set,
            tasks: tasks.into_iter().map(|t| (t.key(), t)).collect(),
            next_id,
        }
    }

    /// The buckets owned in this region.
    pub fn buckets(&self) -> &[String] {
        &self.buckets
    }

    /// Every task ever created here, oldest first (the listing window not applied).
    #[cfg(test)]
    pub fn all_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// AMIs that CreateStoreImageTask accepts now: registered, with no task InProgress.
    /// AMIs that never had a task come first.
    pub fn storable_amis(&self, now: DateTime<Utc>) -> Vec<String> {
        let busy = self.in_progress_amis(now);
        let tasked: HashSet<&str> = self.tasks.values().map(|t| t.ami_id.as_str()).collect();
        let (fresh, used): (Vec<&String>, Vec<&String>) = self
            .registered
            .iter()
            .partition(|ami| !tasked.contains(ami.as_str()));
        fresh
            .into_iter()
            .chain(used.into_iter().filter(|ami| !busy.contains(ami.as_str())))
            .cloned()
            .collect()
    }

    fn in_progress_amis(&self, now: DateTime<Utc>) -> HashSet<&str> {
        self.tasks
            .values()
            .filter(|t| t.status(now).state == TaskState::InProgress)
            .map(|t| t.ami_id.as_str())
            .collect()
    }

    /// Listed tasks, newest first, from after `cursor`, in the window ending at `now`.
    fn listed(
        &self,
        now: DateTime<Utc>,
        cursor: Option<Cursor>,
    ) -> impl Iterator<Item = &Task> + '_ {
        let oldest = now - LISTING_WINDOW;
        let upper = match cursor {
            Some(c) => std::ops::Bound::Excluded((c.start_ms, c.id)),
            None => std::ops::Bound::Unbounded,
        };
        self.tasks
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
            .map(|(_, task)| task)
            .take_while(move |task| task.start >= oldest)
    }

    /// Every task listed now, newest first.
    pub fn list_all(&self, now: DateTime<Utc>) -> Vec<TaskView> {
        self.listed(now, None)
            .map(|t| t.view(&self.name, now))
            .collect()
    }

    /// One page of the tasks matching every filter, newest first, after `cursor`.
    pub fn list_page(
        &self,
        now: DateTime<Utc>,
        filters: &[Filter],
        cursor: Option<Cursor>,
        page_size: usize,
    ) -> Page {
        let mut items = Vec::with_capacity(page_size.min(256));
        let mut last = None;
        for task in self.listed(now, cursor) {
            let status = task.status(now);
            if !filters.iter().all(|f| f.matches(task, &status)) {
                continue;
            }
            if items.len() == page_size {
                return Page { items, next: last };
            }
            last = Some(Cursor {
                start_ms: task.start.timestamp_millis(),
                id: task.id,
            });
            items.push(task.view(&self.name, now));
        }
        Page { items, next: None }
    }

    /// Every listed task of these AMIs, newest first.
    pub fn list_amis(&self, now: DateTime<Utc>, ami_ids: &[String]) -> Vec<TaskView> {
        let wanted: HashSet<&str> = ami_ids.iter().map(String::as_str).collect();
        self.listed(now, None)
            .filter(|t| wanted.contains(t.ami_id.as_str()))
            .map(|t| t.view(&self.name, now))
            .collect()
    }

    /// Whether CreateStoreImageTask may store this AMI now.
    pub fn check_create(&self, now: DateTime<Utc>, ami_id: &str) -> Result<(), CreateRefusal> {
        if !self.registered_set.contains(ami_id) {
            return Err(CreateRefusal::NotFound);
        }
        let busy = self
            .tasks
            .values()
            .any(|t| t.ami_id == ami_id && t.status(now).state == TaskState::InProgress);
        if busy {
            return Err(CreateRefusal::AlreadyInProgress);
        }
        Ok(())
    }

    /// Creates a task started at `now`, returning its object key. A task to a `failing`
    /// bucket fails at its percentage with its reason; otherwise a bucket this region does not
    /// own makes the task fail halfway through.
    pub fn create(
        &mut self,
        now: DateTime<Utc>,
        ami_id: &str,
        bucket: &str,
        tags: Vec<ObjectTag>,
        duration: TimeDelta,
        failing: Option<&BucketFailure>,
    ) -> Result<String, CreateRefusal> {
        self.check_create(now, ami_id)?;
        let failure = match failing {
            Some(failing) => Some(Failure {
                after: share_of(duration, failing.at_percent),
                reason: failing.reason.clone(),
            }),
            None => (!self.buckets.iter().any(|b| b == bucket)).then(|| Failure {
                after: duration / 2,
                reason: format!(
                    "Access Denied: the bucket '{bucket}' does not exist or is not owned by this \
                     account"
                ),
            }),
        };
        let task = Task {
            id: self.next_id,
            ami_id: ami_id.to_owned(),
            bucket: bucket.to_owned(),
            start: now,
            duration,
            failure,
            tags,
        };
        self.next_id += 1;
        self.tasks.insert(task.key(), task);
        Ok(object_key(ami_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn task(id: u64, ami: &str, start_ms: i64, duration_ms: i64) -> Task {
        Task {
            id,
            ami_id: ami.into(),
            bucket: "b1".into(),
            start: at(start_ms),
            duration: TimeDelta::milliseconds(duration_ms),
            failure: None,
            tags: vec![],
        }
    }

    #[test]
    fn progress_follows_the_clock() {
        let mut t = task(1, "ami-11111111", 0, 60_000);
        assert_eq!(t.status(at(0)).progress, 0);
        assert_eq!(t.status(at(15_000)).progress, 25);
        assert_eq!(t.status(at(59_999)).state, TaskState::InProgress);
        assert_eq!(t.status(at(59_999)).progress, 99);
        assert_eq!(t.status(at(60_000)).state, TaskState::Completed);
        assert_eq!(t.status(at(60_000)).progress, 100);
        t.failure = Some(Failure {
            after: TimeDelta::milliseconds(30_000),
            reason: "r".into(),
        });
        assert_eq!(t.status(at(29_999)).state, TaskState::InProgress);
        let failed = t.status(at(90_000));
        assert_eq!(failed.state, TaskState::Failed);
        assert_eq!(failed.progress, 50);
        assert_eq!(failed.reason.as_deref(), Some("r"));
    }

    #[test]
    fn pages_are_newest_first_and_ties_break_by_id() {
        let tasks = vec![
            task(1, "ami-11111111", 0, 1),
            task(2, "ami-22222222", 1000, 1),
            task(3, "ami-33333333", 1000, 1),
            task(4, "ami-44444444", 2000, 1),
        ];
        let region = RegionState::new("r", vec!["b1".into()], vec![], tasks);
        let now = at(10_000);
        let first = region.list_page(now, &[], None, 2);
        let amis: Vec<_> = first.items.iter().map(|t| t.ami_id.as_str()).collect();
        assert_eq!(amis, ["ami-44444444", "ami-33333333"]);
        let second = region.list_page(now, &[], first.next, 2);
        let amis: Vec<_> = second.items.iter().map(|t| t.ami_id.as_str()).collect();
        assert_eq!(amis, ["ami-22222222", "ami-11111111"]);
        assert_eq!(second.next, None);
    }

    #[test]
    fn the_window_hides_old_tasks() {
        let tasks = vec![
            task(1, "ami-11111111", 0, 1),
            task(2, "ami-22222222", 5_000, 1),
        ];
        let region = RegionState::new("r", vec![], vec![], tasks);
        let edge = at(0) + LISTING_WINDOW;
        assert_eq!(region.list_all(edge).len(), 2);
        let later = edge + TimeDelta::milliseconds(1);
        let listed = region.list_all(later);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].ami_id, "ami-22222222");
        assert!(region
            .list_amis(later, &["ami-11111111".to_owned()])
            .is_empty());
    }

    #[test]
    fn create_refuses_unknown_and_busy_amis_and_fails_unknown_buckets() {
        let mut region = RegionState::new(
            "r",
            vec!["b1".into()],
            vec!["ami-aaaaaaaa".into(), "ami-bbbbbbbb".into()],
            vec![],
        );
        let d = TimeDelta::seconds(60);
        assert_eq!(
            region.create(at(0), "ami-cccccccc", "b1", vec![], d, None),
            Err(CreateRefusal::NotFound)
        );
        assert_eq!(
            region.create(at(0), "ami-aaaaaaaa", "b1", vec![], d, None),
            Ok("ami-aaaaaaaa.bin".into())
        );
        assert_eq!(
            region.create(at(1), "ami-aaaaaaaa", "b1", vec![], d, None),
            Err(CreateRefusal::AlreadyInProgress)
        );
        assert_eq!(region.storable_amis(at(1)), ["ami-bbbbbbbb"]);
        assert_eq!(
            region.storable_amis(at(60_000)),
            ["ami-bbbbbbbb", "ami-aaaaaaaa"],
            "AMIs that never had a task come first"
        );
        region
            .create(at(1), "ami-bbbbbbbb", "nope", vec![], d, None)
            .unwrap();
        let views = region.list_all(at(31_001));
        assert_eq!(views[0].ami_id, "ami-bbbbbbbb");
        assert_eq!(views[0].store_task_state, "Failed");
        assert_eq!(views[0].progress_percentage, 50);
        assert!(views[0]
            .store_task_failure_reason
            .as_deref()
            .unwrap()
            .contains("'nope' does not exist"));
        // After completion the AMI can be stored again.
        assert!(region.check_create(at(60_000), "ami-aaaaaaaa").is_ok());
    }

    #[test]
    fn a_failing_bucket_fails_at_its_percentage_with_its_reason() {
        let mut region = RegionState::new(
            "r",
            vec!["b1".into()],
            vec!["ami-aaaaaaaa".into(), "ami-bbbbbbbb".into()],
            vec![],
        );
        let failing = BucketFailure {
            at_percent: 30,
            reason: "Access Denied".into(),
        };
        // 333 ms: 30% is at 99.9 ms, rounded up so that the progress then reads 30.
        let d = TimeDelta::milliseconds(333);
        region
            .create(at(0), "ami-aaaaaaaa", "b1", vec![], d, Some(&failing))
            .unwrap();
        let task = region.all_tasks().next().unwrap().clone();
        assert_eq!(task.status(at(99)).state, TaskState::InProgress);
        assert_eq!(task.status(at(99)).progress, 29);
        let failed = task.status(at(100));
        assert_eq!(
            (failed.state, failed.progress, failed.reason.as_deref()),
            (TaskState::Failed, 30, Some("Access Denied"))
        );
        // At 0 percent the task fails at once; the configured failure wins over the
        // unknown bucket's.
        let at_once = BucketFailure {
            at_percent: 0,
            reason: "r0".into(),
        };
        region
            .create(at(0), "ami-bbbbbbbb", "nope", vec![], d, Some(&at_once))
            .unwrap();
        let views = region.list_amis(at(0), &["ami-bbbbbbbb".to_owned()]);
        assert_eq!(views[0].store_task_state, "Failed");
        assert_eq!(views[0].progress_percentage, 0);
        assert_eq!(views[0].store_task_failure_reason.as_deref(), Some("r0"));
    }
}
