//! What the AWS calls of one scan did: calls, attempts (so retries), throttled answers,
//! pages, rows, cache hits, calls read ahead and time spent waiting on AWS. Shared counters,
//! updated by the pager and by an SDK interceptor on each attempt; the scan turns them into
//! `EXPLAIN ANALYZE` metrics, and sums each partition's into [`CallsByPlace`], the calls per
//! account (and region) that `EXPLAIN ANALYZE` shows in a few lines however many accounts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ec2::error::BoxError;

/// Counters of AWS activity (all monotonic).
#[derive(Debug, Default)]
pub struct CallStats {
    /// API calls made (a call may take several attempts).
    pub calls: AtomicU64,
    /// HTTP attempts, retries included.
    pub attempts: AtomicU64,
    /// Attempts answered as throttled (HTTP 503 / RequestLimitExceeded).
    pub throttled: AtomicU64,
    /// Pages received.
    pub pages: AtomicU64,
    /// Rows received.
    pub rows: AtomicU64,
    /// Pages served from the response cache.
    pub cache_hits: AtomicU64,
    /// Calls started from the raw answer's `NextToken`, before the page before was decoded.
    pub read_ahead: AtomicU64,
    /// Successful answers this crate's decoder left to the SDK's (an answer shaped in a way
    /// it does not know; 0 against AWS and the emulator).
    pub sdk_decoded: AtomicU64,
    /// Nanoseconds spent waiting for AWS answers (and for rate-limit slots).
    pub wait_nanos: AtomicU64,
}

impl CallStats {
    /// Retries: attempts beyond the first of each call.
    pub fn retries(&self) -> u64 {
        self.attempts
            .load(Ordering::Relaxed)
            .saturating_sub(self.calls.load(Ordering::Relaxed))
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The calls of one account and region.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlaceCalls {
    /// API calls made.
    pub calls: u64,
    /// Attempts answered as throttled.
    pub throttled: u64,
}

/// The calls of a scan per account and region, summed from its partitions as they finish.
#[derive(Debug, Default)]
pub struct CallsByPlace(Mutex<BTreeMap<(String, String), PlaceCalls>>);

/// How many accounts, and how many account × region partitions, the summary names.
const BUSIEST_LISTED: usize = 10;

impl CallsByPlace {
    /// Adds a partition's counters, `stats`, to its `account` and `region`.
    pub fn add(&self, account: &str, region: &str, stats: &CallStats) {
        let mut places = self.0.lock().expect("calls by place lock");
        let place = places
            .entry((account.to_owned(), region.to_owned()))
            .or_default();
        place.calls += stats.calls.load(Ordering::Relaxed);
        place.throttled += stats.throttled.load(Ordering::Relaxed);
    }

    /// The calls per account and region so far.
    pub fn snapshot(&self) -> BTreeMap<(String, String), PlaceCalls> {
        self.0.lock().expect("calls by place lock").clone()
    }

    /// The calls in a few lines however many accounts: the total per account (the busiest
    /// ten, then the spread of the others) and the busiest account × region
    /// partitions; `None` before any partition finished.
    pub fn summary(&self) -> Option<String> {
        summary(&self.snapshot())
    }
}

/// See [`CallsByPlace::summary`].
fn summary(places: &BTreeMap<(String, String), PlaceCalls>) -> Option<String> {
    if places.is_empty() {
        return None;
    }
    let mut accounts: BTreeMap<&str, PlaceCalls> = BTreeMap::new();
    for ((account, _), calls) in places {
        let total = accounts.entry(account).or_default();
        total.calls += calls.calls;
        total.throttled += calls.throttled;
    }
    let shown = |calls: &PlaceCalls| match calls.throttled {
        0 => calls.calls.to_string(),
        t => format!("{} ({t} throttled)", calls.calls),
    };
    let mut busiest: Vec<(&str, PlaceCalls)> = accounts.iter().map(|(a, c)| (*a, *c)).collect();
    busiest.sort_by(|(a, x), (b, y)| y.calls.cmp(&x.calls).then(a.cmp(b)));
    let total: u64 = busiest.iter().map(|(_, c)| c.calls).sum();
    let mut text = format!(
        "calls per account: {} account(s), {total} call(s): {}",
        busiest.len(),
        busiest
            .iter()
            .take(BUSIEST_LISTED)
            .map(|(account, calls)| format!("{account}={}", shown(calls)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rest = &busiest[busiest.len().min(BUSIEST_LISTED)..];
    if let (Some(most), Some(least)) = (rest.first(), rest.last()) {
        text.push_str(&format!(
            ", {} more with {} to {} call(s) each",
            rest.len(),
            least.1.calls,
            most.1.calls
        ));
    }
    if places.len() > accounts.len() {
        let mut partitions: Vec<(&(String, String), &PlaceCalls)> = places.iter().collect();
        partitions.sort_by(|(a, x), (b, y)| y.calls.cmp(&x.calls).then(a.cmp(b)));
        text.push_str(&format!(
            "; busiest account/region: {}",
            partitions
                .iter()
                .take(BUSIEST_LISTED)
                .map(|((account, region), calls)| format!("{account}/{region}={}", shown(calls)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if partitions.len() > BUSIEST_LISTED {
            text.push_str(&format!(
                " ({} account/region pairs in all)",
                partitions.len()
            ));
        }
    }
    Some(text)
}

/// Counts attempts and throttled answers into a [`CallStats`].
#[derive(Debug, Clone)]
pub(crate) struct CountAttempts(pub Arc<CallStats>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "CountAttempts"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        CallStats::add(&self.0.attempts, 1);
        if context
            .response()
            .is_some_and(|r| r.status().as_u16() == 503)
        {
            CallStats::add(&self.0.throttled, 1);
        }
        Ok(())
    }
}

/// Default most `DescribeStoreImageTasks` calls one statement may make
/// (`--max-aws-calls-per-query`): a whole listing of 16 regions of 1,000 tasks takes 80, and
/// the account's EC2 API budget is shared with everything else that uses it.
pub const DEFAULT_MAX_CALLS_PER_QUERY: usize = 500;

/// How many AWS read calls one statement may still make: shared by every scan partition
/// of the statement, taken before each call is sent.
#[derive(Debug)]
pub struct CallBudget {
    max: usize,
    used: AtomicUsize,
}

impl CallBudget {
    /// A budget of `max` calls.
    pub fn new(max: usize) -> Self {
        CallBudget {
            max,
            used: AtomicUsize::new(0),
        }
    }

    /// The budget's size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes one call from the budget; `false` when none is left.
    pub fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < self.max).then_some(used + 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(calls: u64, throttled: u64) -> CallStats {
        let stats = CallStats::default();
        CallStats::add(&stats.calls, calls);
        CallStats::add(&stats.throttled, throttled);
        stats
    }

    #[test]
    fn calls_are_summed_per_account_busiest_first() {
        let by_place = CallsByPlace::default();
        assert_eq!(by_place.summary(), None);
        by_place.add("111111111111", "us-east-1", &stats(2, 0));
        by_place.add("100000000001", "us-east-1", &stats(3, 1));
        by_place.add("100000000001", "eu-west-1", &stats(1, 0));
        // A second partition of one place (ImageIds chunks) adds up.
        by_place.add("111111111111", "us-east-1", &stats(1, 0));
        assert_eq!(
            by_place.summary().unwrap(),
            "calls per account: 2 account(s), 7 call(s): 100000000001=4 (1 throttled), \
             111111111111=3; busiest account/region: 100000000001/us-east-1=3 (1 throttled), \
             111111111111/us-east-1=3, 100000000001/eu-west-1=1"
        );
    }

    #[test]
    fn a_hundred_accounts_take_a_few_lines() {
        let by_place = CallsByPlace::default();
        for i in 0..100u64 {
            for r in 0..16u64 {
                let calls = if i == 7 && r == 3 { 9 } else { 2 };
                by_place.add(
                    &format!("1000000000{i:02}"),
                    &format!("region-{r:02}"),
                    &stats(calls, 0),
                );
            }
        }
        let text = by_place.summary().unwrap();
        assert!(
            text.starts_with(
                "calls per account: 100 account(s), 3207 call(s): 100000000007=39, \
                 100000000000=32, 100000000001=32"
            ),
            "{text}"
        );
        assert!(
            text.contains(", 90 more with 32 to 32 call(s) each; "),
            "{text}"
        );
        assert!(
            text.contains("busiest account/region: 100000000007/region-03=9, "),
            "{text}"
        );
        assert!(
            text.ends_with(" (1600 account/region pairs in all)"),
            "{text}"
        );
        assert!(text.len() < 1000, "{}", text.len());
    }
}
