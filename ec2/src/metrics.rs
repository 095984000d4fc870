//! The AWS side's Prometheus metrics: API calls by region, action and outcome, response
//! cache lookups, store tasks created, and accounts a query skipped. The server registers
//! them in its one registry beside its RPC metrics (`aws_flightsql::metrics`), under the
//! same prefix; nothing here is global.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of an AWS API call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsLabels {
    /// The region called.
    pub region: String,
    /// The API action, e.g. `DescribeStoreImageTasks`.
    pub action: String,
    /// `ok`, `error`, `throttled` (an attempt answered 503) or `retried` (an attempt after
    /// the first).
    pub outcome: String,
}

/// Labels of the response cache.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: String,
}

/// Labels of an account (or one of its regions) a query skipped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    /// `assume_role` (its role could not be assumed) or `region_not_enabled`.
    pub reason: String,
}

/// The AWS side's counters. A clone counts into the same series.
#[derive(Clone, Debug, Default)]
pub struct AwsMetrics {
    aws_calls: Family<AwsLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    store_tasks_created: Counter,
    accounts_skipped: Family<SkipLabels, Counter>,
}

impl AwsMetrics {
    /// Registers these counters in `registry` (whose prefix names the server).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_calls",
            "AWS API calls by region, action and outcome",
            self.aws_calls.clone(),
        );
        registry.register(
            "cache_lookups",
            "DescribeStoreImageTasks response cache lookups",
            self.cache.clone(),
        );
        registry.register(
            "store_tasks_created",
            "Store image tasks created by INSERT",
            self.store_tasks_created.clone(),
        );
        registry.register(
            "accounts_skipped",
            "Accounts (or regions of one) left out of a query under aws.on_account_error = \
             'skip', by reason: assume_role or region_not_enabled",
            self.accounts_skipped.clone(),
        );
    }

    /// An AWS call (or attempt) ended with `outcome`.
    pub fn aws_call(&self, region: &str, action: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&AwsLabels {
                region: region.to_owned(),
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A response cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get_or_create(&CacheLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// A store image task was created.
    pub fn store_task_created(&self) {
        self.store_tasks_created.inc();
    }

    /// A query left out an account (or one of its regions) for `reason`.
    pub fn account_skipped(&self, reason: &str) {
        self.accounts_skipped
            .get_or_create(&SkipLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }
}
