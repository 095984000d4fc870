//! Deterministic sample data: from a seed, an account and a region name, the buckets,
//! registered AMIs and store tasks of that account in that region, with start times relative
//! to the emulator's start instant, so the same seed always gives the same data (only shifted
//! in absolute time). The home account's data does not depend on the number of accounts.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::store::{Failure, RegionState, Task};

/// Sample tasks older than the 31-day window, per region: they exist but are never listed.
pub const OLD_TASKS_PER_REGION: usize = 5;
/// Registered AMIs without any task, per region, so that INSERTs can succeed.
pub const UNTASKED_AMIS_PER_REGION: usize = 10;

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
const MINUTE_MS: i64 = 60 * 1000;

const BUCKET_STEMS: [&str; 4] = [
    "ami-archive",
    "ami-backup",
    "golden-images",
    "dr-image-store",
];

/// Builds one region's sample state for the home account.
#[cfg(test)]
pub fn region(name: &str, seed: u64, tasks: usize, start: DateTime<Utc>) -> RegionState {
    account_region(crate::accounts::HOME_ACCOUNT, name, seed, tasks, start)
}

/// Builds the sample state of `account` in region `name`. The home account's buckets are
/// `<stem>-<region>`, a member's `<stem>-<account>-<region>` (bucket names are global).
pub fn account_region(
    account: &str,
    name: &str,
    seed: u64,
    tasks: usize,
    start: DateTime<Utc>,
) -> RegionState {
    let home = account == crate::accounts::HOME_ACCOUNT;
    let salt = if home {
        fnv1a(name.as_bytes())
    } else {
        fnv1a(format!("{account}/{name}").as_bytes())
    };
    let mut rng = StdRng::seed_from_u64(seed ^ salt);
    let bucket_count = rng.random_range(3..=4);
    let buckets: Vec<String> = BUCKET_STEMS[..bucket_count]
        .iter()
        .map(|stem| {
            if home {
                format!("{stem}-{name}")
            } else {
                format!("{stem}-{account}-{name}")
            }
        })
        .collect();

    let mut amis = AmiFactory::default();
    let mut generator = Generator {
        rng,
        start,
        buckets: &buckets,
        next_id: 1,
    };
    let mut all = Vec::with_capacity(tasks + OLD_TASKS_PER_REGION);

    // Older than the window: never listed, but their AMIs are registered.
    for _ in 0..OLD_TASKS_PER_REGION {
        let age = generator.rng.random_range(32 * DAY_MS..90 * DAY_MS);
        let ami = amis.fresh(&mut generator.rng);
        let failed = generator.rng.random_bool(0.3);
        all.push(generator.finished_task(ami, age, failed));
    }
    all.sort_by_key(|t| t.start);
    for (id, task) in all.iter_mut().enumerate() {
        task.id = id as u64 + 1;
    }
    generator.next_id = all.len() as u64 + 1;

    let ages = distinct_ages(&mut generator.rng, tasks);
    let plan = plan_states(&mut generator.rng, &ages);
    // Chronological order, so a reused AMI's earlier task is the older one.
    let mut finished_amis: Vec<String> = Vec::new();
    let forced_reuse = (tasks >= 4).then_some(tasks / 2);
    let mut reused = 0;
    for (index, (&age, &state)) in ages.iter().zip(&plan).enumerate() {
        let reuse = !finished_amis.is_empty()
            && (generator.rng.random_bool(0.12) || (reused == 0 && Some(index) == forced_reuse));
        let ami = if reuse {
            reused += 1;
            let pick = generator.rng.random_range(0..finished_amis.len());
            finished_amis.swap_remove(pick)
        } else {
            amis.fresh(&mut generator.rng)
        };
        let task = match state {
            Planned::InProgress => generator.running_task(ami, age),
            Planned::Completed => {
                finished_amis.push(ami.clone());
                generator.finished_task(ami, age, false)
            }
            Planned::Failed => {
                finished_amis.push(ami.clone());
                generator.finished_task(ami, age, true)
            }
        };
        all.push(task);
    }

    let untasked: Vec<String> = (0..UNTASKED_AMIS_PER_REGION)
        .map(|_| amis.fresh(&mut generator.rng))
        .collect();
    RegionState::new(name, buckets, untasked, all)
}

/// Ages (ms before the start instant) of the listed tasks, distinct, oldest first, within
/// (1 minute, 30 days].
fn distinct_ages(rng: &mut StdRng, count: usize) -> Vec<i64> {
    let mut seen = HashSet::with_capacity(count);
    let mut ages = Vec::with_capacity(count);
    while ages.len() < count {
        let age = rng.random_range(MINUTE_MS + 1..=30 * DAY_MS);
        if seen.insert(age) {
            ages.push(age);
        }
    }
    ages.sort_unstable_by(|a, b| b.cmp(a));
    ages
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    InProgress,
    Completed,
    Failed,
}

/// A realistic mix: recent tasks are often still running, older ones mostly completed, some
/// failed; every state appears when there are at least three tasks.
fn plan_states(rng: &mut StdRng, ages_oldest_first: &[i64]) -> Vec<Planned> {
    let mut plan: Vec<Planned> = ages_oldest_first
        .iter()
        .map(|&age| {
            if age < 2 * DAY_MS && rng.random_bool(0.5) {
                Planned::InProgress
            } else if rng.random_bool(0.15) {
                Planned::Failed
            } else {
                Planned::Completed
            }
        })
        .collect();
    if plan.len() >= 3 {
        // A missing state takes the slot of a state present more than once (there is one, by
        // pigeonhole): InProgress the newest such slot, the others the oldest.
        for wanted in [Planned::InProgress, Planned::Failed, Planned::Completed] {
            if plan.contains(&wanted) {
                continue;
            }
            let duplicated = |p: &Planned| plan.iter().filter(|q| *q == p).count() > 1;
            let slot = if wanted == Planned::InProgress {
                plan.iter().rposition(duplicated)
            } else {
                plan.iter().position(duplicated)
            };
            let slot = slot.expect("a duplicated state among three or more tasks");
            plan[slot] = wanted;
        }
    }
    plan
}

struct Generator<'a> {
    rng: StdRng,
    start: DateTime<Utc>,
    buckets: &'a [String],
    next_id: u64,
}

impl Generator<'_> {
    fn base(&mut self, ami: String, age_ms: i64, duration_ms: i64) -> Task {
        let bucket = self.buckets[self.rng.random_range(0..self.buckets.len())].clone();
        let id = self.next_id;
        self.next_id += 1;
        Task {
            id,
            ami_id: ami,
            bucket,
            start: self.start - TimeDelta::milliseconds(age_ms),
            duration: TimeDelta::milliseconds(duration_ms),
            failure: None,
            tags: vec![],
        }
    }

    /// A task that completed or failed before the start instant.
    fn finished_task(&mut self, ami: String, age_ms: i64, failed: bool) -> Task {
        let duration = self
            .rng
            .random_range(10 * MINUTE_MS..3 * HOUR_MS)
            .min(age_ms);
        let mut task = self.base(ami, age_ms, duration);
        if failed {
            let fraction = self.rng.random_range(0.05..0.95);
            let after = (duration as f64 * fraction) as i64;
            let reason = self.failure_reason(&task);
            task.failure = Some(Failure {
                after: TimeDelta::milliseconds(after),
                reason,
            });
        }
        task
    }

    /// A task still running, with hours left, so it stays InProgress through a test run.
    fn running_task(&mut self, ami: String, age_ms: i64) -> Task {
        let target = self.rng.random_range(0.02..0.9);
        let remaining_at_least = self.rng.random_range(6 * HOUR_MS..48 * HOUR_MS);
        let duration = ((age_ms as f64 / target) as i64).max(age_ms + remaining_at_least);
        self.base(ami, age_ms, duration)
    }

    fn failure_reason(&mut self, task: &Task) -> String {
        let snapshot = hex(&mut self.rng, 17);
        match self.rng.random_range(0..4) {
            0 => format!(
                "The snapshot 'snap-{snapshot}' of image '{}' is not in the completed state.",
                task.ami_id
            ),
            1 => "The store task would exceed the limit of 1,200 GB of snapshot data being stored at once.".to_owned(),
            2 => format!(
                "Access Denied: the request to put object '{}.bin' in bucket '{}' was denied by its bucket policy",
                task.ami_id, task.bucket
            ),
            _ => "InternalError: the store task was interrupted. Try again later.".to_owned(),
        }
    }
}

/// Hands out AMI ids never given before.
#[derive(Default)]
struct AmiFactory {
    given: HashSet<String>,
}

impl AmiFactory {
    fn fresh(&mut self, rng: &mut StdRng) -> String {
        loop {
            let id = format!("ami-{}", hex(rng, 17));
            if self.given.insert(id.clone()) {
                return id;
            }
        }
    }
}

fn hex(rng: &mut StdRng, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..digits)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

/// FNV-1a: a stable hash (the standard library's may change between releases), for seeds and
/// pagination tokens.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{TaskState, LISTING_WINDOW};
    use std::collections::HashMap;

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_123).unwrap()
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = region("us-east-1", 42, 250, start());
        let b = region("us-east-1", 42, 250, start());
        assert_eq!(a.list_all(start()), b.list_all(start()));
        assert_eq!(a.storable_amis(start()), b.storable_amis(start()));
        let c = region("us-east-1", 43, 250, start());
        assert_ne!(a.list_all(start()), c.list_all(start()));
        let d = region("us-west-2", 42, 250, start());
        assert_ne!(a.list_all(start())[0].ami_id, d.list_all(start())[0].ami_id);
    }

    #[test]
    fn accounts_have_their_own_data() {
        let home = account_region("111111111111", "us-east-1", 42, 50, start());
        assert_eq!(
            home.list_all(start()),
            region("us-east-1", 42, 50, start()).list_all(start())
        );
        let member = account_region("100000000001", "us-east-1", 42, 50, start());
        let again = account_region("100000000001", "us-east-1", 42, 50, start());
        assert_eq!(member.list_all(start()), again.list_all(start()));
        let other = account_region("100000000002", "us-east-1", 42, 50, start());
        let amis = |r: &RegionState| -> HashSet<String> {
            r.list_all(start()).into_iter().map(|t| t.ami_id).collect()
        };
        assert!(amis(&home).is_disjoint(&amis(&member)));
        assert!(amis(&member).is_disjoint(&amis(&other)));
        assert_eq!(member.buckets()[0], "ami-archive-100000000001-us-east-1");
        assert_eq!(home.buckets()[0], "ami-archive-us-east-1");
    }

    #[test]
    fn sample_has_the_promised_shape() {
        let now = start();
        let region = region("eu-west-1", 7, 250, now);
        let listed = region.list_all(now);
        assert_eq!(listed.len(), 250);
        assert_eq!(region.all_tasks().count(), 250 + OLD_TASKS_PER_REGION);
        let old = region
            .all_tasks()
            .filter(|t| t.start < now - LISTING_WINDOW)
            .count();
        assert_eq!(old, OLD_TASKS_PER_REGION);

        let starts: HashSet<_> = listed.iter().map(|t| t.task_start_time).collect();
        assert_eq!(starts.len(), 250, "start times are distinct");
        assert!(listed
            .iter()
            .all(|t| now - t.task_start_time <= TimeDelta::days(30)));
        assert!(listed
            .windows(2)
            .all(|w| w[0].task_start_time > w[1].task_start_time));

        let count = |s: &str| listed.iter().filter(|t| t.store_task_state == s).count();
        let (running, done, failed) = (count("InProgress"), count("Completed"), count("Failed"));
        assert!(
            running >= 1 && failed >= 1 && done > running + failed,
            "{running} {done} {failed}"
        );
        for t in &listed {
            assert_eq!(
                t.store_task_failure_reason.is_some(),
                t.store_task_state == "Failed"
            );
            assert_eq!(t.s3_object_key, format!("{}.bin", t.ami_id));
            assert!(region.buckets().contains(&t.bucket));
            assert!(t.ami_id.len() == 21 && t.ami_id.starts_with("ami-"));
            match t.store_task_state.as_str() {
                "Completed" => assert_eq!(t.progress_percentage, 100),
                _ => assert!((0..100).contains(&t.progress_percentage)),
            }
        }
        assert!((3..=4).contains(&region.buckets().len()));

        let mut per_ami: HashMap<&str, Vec<&str>> = HashMap::new();
        for t in &listed {
            per_ami
                .entry(&t.ami_id)
                .or_default()
                .push(&t.store_task_state);
        }
        assert!(
            per_ami.values().any(|states| states.len() >= 2),
            "some AMI stored twice"
        );
        for states in per_ami.values() {
            assert!(states.iter().filter(|s| **s == "InProgress").count() <= 1);
            // The older tasks of an AMI are finished.
            assert!(states[1..].iter().all(|s| *s != "InProgress"));
        }
        let storable = region.storable_amis(now);
        assert!(storable.len() >= UNTASKED_AMIS_PER_REGION);
        assert!(storable[..UNTASKED_AMIS_PER_REGION]
            .iter()
            .all(|ami| !per_ami.contains_key(ami.as_str())));
    }

    #[test]
    fn running_sample_tasks_stay_running_for_hours() {
        let now = start();
        let region = region("us-east-1", 42, 250, now);
        let later = now + TimeDelta::hours(5);
        for task in region.all_tasks() {
            if task.status(now).state == TaskState::InProgress {
                assert_eq!(task.status(later).state, TaskState::InProgress);
            }
        }
    }

    #[test]
    fn tiny_regions_still_have_every_state() {
        for seed in 0..20 {
            let region = region("us-east-1", seed, 3, start());
            let mut states: Vec<String> = region
                .list_all(start())
                .into_iter()
                .map(|t| t.store_task_state)
                .collect();
            states.sort();
            assert_eq!(states, ["Completed", "Failed", "InProgress"], "seed {seed}");
        }
        assert!(region("us-east-1", 1, 0, start())
            .list_all(start())
            .is_empty());
    }
}
