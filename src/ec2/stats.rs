//! What the AWS calls of one scan did: calls, attempts (so retries), throttled answers,
//! pages, rows, cache hits, calls read ahead and time spent waiting on AWS. Shared counters,
//! updated by the pager and by an SDK interceptor on each attempt; the scan turns them into
//! `EXPLAIN ANALYZE` metrics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

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
