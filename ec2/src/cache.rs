//! The response cache: `DescribeStoreImageTasks` pages per (place, request, page token),
//! where a place is an account's region (`Ec2Clients::cache_place`), kept for a short TTL
//! (task progress changes), with identical concurrent requests sharing one API call (moka's
//! single-flight initialisation). A write to a place moves that place to a new generation,
//! so no page cached before the write is served after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;

use super::error::AwsError;
use super::task::{DescribeRequest, Page};

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct PageKey {
    region: String,
    generation: u64,
    request: DescribeRequest,
    token: Option<String>,
}

#[derive(Debug)]
pub(crate) struct PageCache {
    pages: Option<Cache<PageKey, Arc<Page>>>,
    generations: Mutex<HashMap<String, u64>>,
}

impl PageCache {
    /// A cache keeping pages for `ttl`; zero turns it off.
    pub(crate) fn new(ttl: Duration) -> Self {
        let pages = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .time_to_live(ttl)
                .max_capacity(10_000)
                .build()
        });
        PageCache {
            pages,
            generations: Mutex::default(),
        }
    }

    fn generation(&self, region: &str) -> u64 {
        *self
            .generations
            .lock()
            .expect("generations poisoned")
            .get(region)
            .unwrap_or(&0)
    }

    /// Forgets every page of `region`.
    pub(crate) fn invalidate(&self, region: &str) {
        *self
            .generations
            .lock()
            .expect("generations poisoned")
            .entry(region.to_owned())
            .or_default() += 1;
    }

    /// The page from the cache, or from `fetch` (shared with identical concurrent
    /// requests). Returns the page and whether it came from the cache.
    pub(crate) async fn get_or_fetch<F>(
        &self,
        use_cache: bool,
        region: &str,
        request: &DescribeRequest,
        token: Option<&str>,
        fetch: F,
    ) -> Result<(Arc<Page>, bool), AwsError>
    where
        F: std::future::Future<Output = Result<Page, AwsError>>,
    {
        let Some(pages) = self.pages.as_ref().filter(|_| use_cache) else {
            return Ok((Arc::new(fetch.await?), false));
        };
        let key = PageKey {
            region: region.to_owned(),
            generation: self.generation(region),
            request: request.clone(),
            token: token.map(str::to_owned),
        };
        let entry = pages
            .entry(key)
            .or_try_insert_with(async { fetch.await.map(Arc::new) })
            .await
            .map_err(|e| (*e).clone())?;
        let hit = !entry.is_fresh();
        Ok((entry.into_value(), hit))
    }
}
