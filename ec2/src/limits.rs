//! How hard the server may press AWS: a global and a per-region bound on calls in flight,
//! and an optional per-region rate limit (governor), so one query over many regions or
//! ImageIds chunks cannot exhaust the account's API budget. Each account has its own
//! per-region bounds (AWS throttles per account and region); all accounts share the global
//! one ([`Limits::sibling`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Calls in flight across all regions.
    pub max_concurrency: usize,
    /// Calls in flight per region.
    pub max_concurrency_per_region: usize,
    /// Calls started per second per region; `None` = no client-side limit (AWS's own
    /// throttling is then met by retries with back-off).
    pub max_rps_per_region: Option<NonZeroU32>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrency: 64,
            max_concurrency_per_region: 8,
            max_rps_per_region: None,
        }
    }
}

/// Permission to make one call; released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _global: OwnedSemaphorePermit,
    _region: OwnedSemaphorePermit,
}

/// A region's bound on calls in flight and its rate limiter, if any.
type RegionLimits = (Arc<Semaphore>, Option<Arc<DefaultDirectRateLimiter>>);

#[derive(Debug)]
pub(crate) struct Limits {
    config: LimitsConfig,
    global: Arc<Semaphore>,
    regions: Mutex<HashMap<String, RegionLimits>>,
}

impl Limits {
    pub(crate) fn new(config: LimitsConfig) -> Self {
        Limits {
            config,
            global: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            regions: Mutex::default(),
        }
    }

    /// Bounds of another account: per-region bounds of its own, the same ceiling on calls
    /// in flight across all accounts and regions.
    pub(crate) fn sibling(&self) -> Self {
        Limits {
            config: self.config,
            global: Arc::clone(&self.global),
            regions: Mutex::default(),
        }
    }

    /// Waits for a slot to call `region`.
    pub(crate) async fn acquire(&self, region: &str) -> Slot {
        let (region_sem, limiter) = {
            let mut regions = self.regions.lock().expect("limits poisoned");
            regions
                .entry(region.to_owned())
                .or_insert_with(|| {
                    (
                        Arc::new(Semaphore::new(
                            self.config.max_concurrency_per_region.max(1),
                        )),
                        self.config
                            .max_rps_per_region
                            .map(|rps| Arc::new(RateLimiter::direct(Quota::per_second(rps)))),
                    )
                })
                .clone()
        };
        let region_permit = region_sem.acquire_owned().await.expect("never closed");
        let global_permit = Arc::clone(&self.global)
            .acquire_owned()
            .await
            .expect("never closed");
        if let Some(limiter) = limiter {
            limiter.until_ready().await;
        }
        Slot {
            _global: global_permit,
            _region: region_permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn per_region_bound_holds_back_the_next_call() {
        let limits = Limits::new(LimitsConfig {
            max_concurrency: 10,
            max_concurrency_per_region: 1,
            max_rps_per_region: None,
        });
        let first = limits.acquire("a").await;
        // Another region is not held back.
        let _other = limits.acquire("b").await;
        let blocked = tokio::time::timeout(Duration::from_millis(50), limits.acquire("a")).await;
        assert!(blocked.is_err());
        drop(first);
        let _second = limits.acquire("a").await;
    }

    #[tokio::test]
    async fn accounts_have_their_own_region_bounds_and_share_the_ceiling() {
        let home = Limits::new(LimitsConfig {
            max_concurrency: 2,
            max_concurrency_per_region: 1,
            max_rps_per_region: None,
        });
        let member = home.sibling();
        let _a = home.acquire("a").await;
        // Another account's region a is not held back by this one's.
        let _b = member.acquire("a").await;
        // The ceiling of 2 is reached, whichever account asks.
        let blocked = tokio::time::timeout(Duration::from_millis(50), member.acquire("b")).await;
        assert!(blocked.is_err());
    }

    #[tokio::test]
    async fn rate_limit_spaces_calls() {
        let limits = Limits::new(LimitsConfig {
            max_rps_per_region: NonZeroU32::new(20),
            ..LimitsConfig::default()
        });
        let start = Instant::now();
        for _ in 0..25 {
            drop(limits.acquire("a").await);
        }
        // A burst of 20, then one every 50 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
    }
}
