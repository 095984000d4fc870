//! `DescribeStoreImageTasks` as a stream of pages: one API call per page, each in a task of
//! its own, the next started as soon as the previous answer's `NextToken` is known (so the
//! decoding of one page overlaps the wait for the next), at most one ahead of the page
//! handed out; dropping the stream aborts it, so paging stops. Each call goes through the
//! limits, the response cache and the call counters.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::client::{in_region, Ec2Clients};
use super::decode::FastDecode;
use super::early_token::{EarlyToken, NextToken};
use super::error::AwsError;
use super::stats::{CallBudget, CallStats, CountAttempts};
use super::task::{DescribeRequest, Page, StoreImageTask, TaskPage};

/// How one listing uses the shared machinery.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Serve pages from the response cache (and share identical concurrent calls).
    pub use_cache: bool,
    /// Where to count the calls made.
    pub stats: Arc<CallStats>,
    /// Stop after this many rows: no call is made for rows beyond them.
    pub row_limit: Option<usize>,
    /// Ask for the next page as soon as this one's `NextToken` has arrived, while the SDK
    /// decodes this one on another core (and while the consumer handles it), instead of
    /// when the consumer asks. Never when a row limit could be met by the page in hand.
    pub read_ahead: bool,
    /// Decode successful answers with this crate's one-pass decoder (the SDK's own still
    /// decodes errors and any answer that one declines); `false` leaves all decoding to the
    /// SDK, for comparison.
    pub fast_decode: bool,
    /// The statement's budget of calls, shared by its listings; `None` = no limit.
    pub budget: Option<Arc<CallBudget>>,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            use_cache: true,
            stats: Arc::default(),
            row_limit: None,
            read_ahead: true,
            fast_decode: true,
            budget: None,
        }
    }
}

impl Ec2Clients {
    /// Pages through `DescribeStoreImageTasks` in `region`. The first call is made when the
    /// stream is first polled; each later one as soon as the previous answer's `NextToken`
    /// has arrived (see [`PageOptions::read_ahead`]), so at most one call runs ahead of the
    /// page being handed out. The stream ends after the last page, after
    /// [`PageOptions::row_limit`] rows, or after the first error (which it yields); dropping
    /// it aborts the call in flight.
    pub fn describe_store_image_tasks(
        &self,
        region: &str,
        request: DescribeRequest,
        options: PageOptions,
    ) -> BoxStream<'static, Result<TaskPage, AwsError>> {
        let pager = Pager {
            clients: self.clone(),
            region: region.to_owned(),
            request,
            rows_left: options.row_limit,
            options,
        };
        stream::try_unfold(
            (pager, Some(Next::Ask(None))),
            |(mut pager, state)| async move {
                let Some(fetch) = state else {
                    return Ok(None);
                };
                let fetch = match fetch {
                    Next::Ask(token) => pager.spawn(token),
                    Next::Running(fetch) => fetch,
                };
                let (page, next) = pager.receive(fetch).await?;
                Ok(Some((page, (pager, next))))
            },
        )
        .boxed()
    }
    /// One `DescribeStoreImageTasks` call, within the limits.
    async fn fetch_page(
        &self,
        region: &str,
        request: &DescribeRequest,
        token: Option<String>,
        options: &PageOptions,
        early: EarlyToken,
    ) -> Result<Page, AwsError> {
        let stats = &options.stats;
        let started = Instant::now();
        let _slot = self.limits.acquire(region).await;
        let mut call = self
            .client()
            .describe_store_image_tasks()
            .set_next_token(token)
            .set_max_results(request.max_results);
        if !request.image_ids.is_empty() {
            call = call.set_image_ids(Some(request.image_ids.clone()));
        }
        for (name, values) in [
            ("task-state", &request.task_states),
            ("bucket", &request.buckets),
        ] {
            if !values.is_empty() {
                call = call.filters(
                    Filter::builder()
                        .name(name)
                        .set_values(Some(values.clone()))
                        .build(),
                );
            }
        }
        if let Some(budget) = &options.budget {
            if !budget.take() {
                return Err(AwsError::over_budget(region, ACTION, budget.max()));
            }
        }
        let this_call = Arc::new(CallStats::default());
        // Counted before it is sent: a call read ahead and then dropped was still made.
        CallStats::add(&stats.calls, 1);
        let mut call = call
            .customize()
            .config_override(in_region(region))
            .interceptor(CountAttempts(Arc::clone(&this_call)))
            .interceptor(early);
        if options.fast_decode {
            call = call.interceptor(FastDecode(Arc::clone(stats)));
        }
        let result = call.send().await;
        CallStats::add(&stats.wait_nanos, started.elapsed().as_nanos() as u64);
        let attempts = this_call
            .attempts
            .load(std::sync::atomic::Ordering::Relaxed);
        let throttled = this_call
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed);
        CallStats::add(&stats.attempts, attempts.max(1));
        CallStats::add(&stats.throttled, throttled);
        for _ in 1..attempts {
            self.metrics.aws_call(region, ACTION, "retried");
        }
        for _ in 0..throttled {
            self.metrics.aws_call(region, ACTION, "throttled");
        }
        self.metrics
            .aws_call(region, ACTION, if result.is_ok() { "ok" } else { "error" });
        let out = result.map_err(|e| AwsError::from_sdk(region, ACTION, e))?;
        // The SDK's strings are moved, not copied.
        let next_token = out.next_token.filter(|t| !t.is_empty());
        let tasks = out
            .store_image_task_results
            .unwrap_or_default()
            .into_iter()
            .map(|t| StoreImageTask {
                ami_id: t.ami_id,
                bucket: t.bucket,
                progress_percentage: t.progress_percentage,
                s3_object_key: t.s3object_key,
                store_task_failure_reason: t.store_task_failure_reason,
                store_task_state: t.store_task_state,
                task_start_time: t
                    .task_start_time
                    .and_then(|d| DateTime::<Utc>::from_timestamp_millis(d.to_millis().ok()?)),
            })
            .collect();
        Ok(Page { tasks, next_token })
    }
}

/// The operation, as metrics and errors name it.
const ACTION: &str = "DescribeStoreImageTasks";

/// Whether the page after the one being fetched will be wanted whatever that one holds: with
/// `rows_left` rows still wanted, a page of at most `max_results` rows cannot meet them.
fn next_page_needed(rows_left: Option<usize>, max_results: Option<i32>) -> bool {
    let page_max = max_results.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(0));
    rows_left.is_none_or(|left| left > page_max)
}

/// What comes after a page.
enum Next {
    /// A page to ask for, with this token (`None`: the first page).
    Ask(Option<String>),
    /// A page already asked for.
    Running(Fetch),
}

/// One page call running in a task of its own (aborted when dropped).
struct Fetch {
    /// The token it asked with.
    token: Option<String>,
    /// The next page's token, as soon as the raw answer has arrived.
    early: Option<oneshot::Receiver<NextToken>>,
    /// The page (and whether it came from the cache).
    page: AbortOnDropHandle<Result<(Arc<Page>, bool), AwsError>>,
}

/// The state of one listing.
struct Pager {
    clients: Ec2Clients,
    region: String,
    request: DescribeRequest,
    options: PageOptions,
    rows_left: Option<usize>,
}

impl Pager {
    /// Starts the call for the page after `token`.
    fn spawn(&self, token: Option<String>) -> Fetch {
        let (early, early_rx) = EarlyToken::channel();
        let clients = self.clients.clone();
        let region = self.region.clone();
        let request = self.request.clone();
        let options = self.options.clone();
        let asked = token.clone();
        let page = tokio::spawn(
            async move {
                let fetch = clients.fetch_page(&region, &request, asked.clone(), &options, early);
                clients
                    .cache
                    .get_or_fetch(
                        options.use_cache,
                        &clients.cache_place(&region),
                        &request,
                        asked.as_deref(),
                        fetch,
                    )
                    .await
            }
            .in_current_span(),
        );
        Fetch {
            token,
            early: Some(early_rx),
            page: AbortOnDropHandle::new(page),
        }
    }

    /// Whether the next call may start before this page is decoded.
    fn may_read_ahead(&self) -> bool {
        self.options.read_ahead && next_page_needed(self.rows_left, self.request.max_results)
    }

    /// Waits for `fetch`'s page, starting the next call as soon as its token is known, and
    /// counts it. Returns the page and what comes next (`None`: the listing is over).
    async fn receive(&mut self, mut fetch: Fetch) -> Result<(TaskPage, Option<Next>), AwsError> {
        let mut ahead: Option<Fetch> = None;
        let joined = match fetch.early.take().filter(|_| self.may_read_ahead()) {
            // The token first: it is sent before the page is decoded, so when both are
            // ready the next call still starts here.
            Some(early) => tokio::select! {
                biased;
                Ok(Some(token)) = early => {
                    CallStats::add(&self.options.stats.read_ahead, 1);
                    ahead = Some(self.spawn(Some(token)));
                    (&mut fetch.page).await
                }
                joined = &mut fetch.page => joined,
            },
            None => (&mut fetch.page).await,
        };
        let (page, hit) = match joined {
            Ok(page) => page?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only the runtime shutting down cancels a task this stream still holds.
            Err(_) => return Err(AwsError::cancelled(&self.region, ACTION)),
        };
        let stats = &self.options.stats;
        if self.options.use_cache {
            self.clients.metrics.cache_lookup(hit);
        }
        CallStats::add(&stats.pages, 1);
        CallStats::add(&stats.rows, page.tasks.len() as u64);
        if hit {
            CallStats::add(&stats.cache_hits, 1);
        }
        if let Some(left) = self.rows_left.as_mut() {
            *left = left.saturating_sub(page.tasks.len());
        }
        let next = match page.next_token.clone() {
            Some(_) if self.rows_left == Some(0) => None,
            Some(token) => Some(match ahead {
                Some(ahead) if ahead.token.as_deref() == Some(token.as_str()) => {
                    Next::Running(ahead)
                }
                stale => {
                    if stale.is_some() {
                        // Dropping it aborts the call asked with the wrong token.
                        tracing::warn!(
                            region = %self.region,
                            "the NextToken read from the raw answer differs from the SDK's; \
                             asking again with the SDK's"
                        );
                    }
                    if self.options.read_ahead {
                        Next::Running(self.spawn(Some(token)))
                    } else {
                        Next::Ask(Some(token))
                    }
                }
            }),
            None => None,
        };
        // Copied only when the cache keeps the page too.
        let tasks = Arc::try_unwrap(page).map_or_else(|shared| shared.tasks.clone(), |p| p.tasks);
        let page = TaskPage {
            region: self.region.clone(),
            tasks,
        };
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use ec2_emulator::{Emulator, EmulatorOptions};
    use futures::{StreamExt, TryStreamExt};

    use super::*;
    use crate::{AwsConfig, Credentials};

    async fn clients(url: String) -> Ec2Clients {
        Ec2Clients::load(&AwsConfig {
            endpoint_url: Some(url),
            credentials: Credentials::Static {
                access_key_id: "AKIDTEST".into(),
                secret_access_key: "test".into(),
            },
            default_region: Some("us-east-1".into()),
            max_attempts: 1,
            ..AwsConfig::default()
        })
        .await
    }

    async fn emulator(tasks: usize) -> Emulator {
        Emulator::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            EmulatorOptions::one_frozen_region(tasks),
        )
        .await
        .expect("emulator")
    }

    /// An HTTP server on port 0 that answers every POST with `answer`, standing in for EC2
    /// where a test needs answers the emulator never gives; its URL and its task.
    async fn stand_in(
        answer: axum::routing::MethodRouter,
    ) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/", answer);
        (
            url,
            tokio::spawn(async move { axum::serve(listener, app).await }),
        )
    }

    /// Every page of one listing of us-east-1, and the listing's call counters.
    async fn all_pages(clients: &Ec2Clients, opts: PageOptions) -> (Vec<TaskPage>, Arc<CallStats>) {
        let stats = Arc::clone(&opts.stats);
        let pages = clients
            .describe_store_image_tasks("us-east-1", DescribeRequest::default(), opts)
            .try_collect()
            .await
            .unwrap();
        (pages, stats)
    }

    fn options(read_ahead: bool) -> PageOptions {
        PageOptions {
            use_cache: false,
            read_ahead,
            ..PageOptions::default()
        }
    }

    /// Waits (bounded) until the emulator has answered `n` calls, then a little longer to
    /// see whether more come; returns how many it saw.
    async fn calls_settle_at(emulator: &Emulator, n: usize) -> usize {
        let count = || emulator.requests().len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while count() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_exactly_one_page_ahead_of_the_consumer() {
        let emulator = emulator(1000).await; // 5 pages
        let clients = clients(emulator.endpoint_url()).await;
        let opts = options(true);
        let stats = Arc::clone(&opts.stats);
        let mut pages =
            clients.describe_store_image_tasks("us-east-1", DescribeRequest::default(), opts);
        let first = pages.next().await.unwrap().unwrap();
        assert_eq!(first.tasks.len(), 200);
        // The consumer holds the first page: the second is asked for, not the third.
        assert_eq!(calls_settle_at(&emulator, 2).await, 2);
        let rest: Vec<TaskPage> = pages.try_collect().await.unwrap();
        assert_eq!(rest.len(), 4);
        assert_eq!(emulator.requests().len(), 5);
        // Every later call started from the raw answer's token, before the page was decoded.
        assert_eq!(stats.read_ahead.load(Ordering::Relaxed), 4);
        // The emulator's answers are all decoded by the one-pass decoder.
        assert_eq!(stats.sdk_decoded.load(Ordering::Relaxed), 0);
        assert_eq!(stats.calls.load(Ordering::Relaxed), 5);

        // Without read-ahead, only what the consumer asked for.
        emulator.clear_requests();
        let opts = options(false);
        let stats = Arc::clone(&opts.stats);
        let mut pages =
            clients.describe_store_image_tasks("us-east-1", DescribeRequest::default(), opts);
        pages.next().await.unwrap().unwrap();
        assert_eq!(calls_settle_at(&emulator, 1).await, 1);
        assert_eq!(stats.read_ahead.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_next_page_is_needed_only_when_this_one_cannot_meet_the_limit() {
        assert!(next_page_needed(None, None));
        assert!(next_page_needed(None, Some(5)));
        assert!(next_page_needed(Some(300), Some(150)));
        assert!(!next_page_needed(Some(150), Some(150)));
        assert!(!next_page_needed(Some(100), Some(150)));
        // Without MaxResults a page's size is AWS's choice: it might hold every row wanted.
        assert!(!next_page_needed(Some(100_000), None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_call_is_read_ahead_for_rows_beyond_the_limit() {
        let emulator = emulator(1000).await;
        let clients = clients(emulator.endpoint_url()).await;
        let request = DescribeRequest {
            max_results: Some(150),
            ..DescribeRequest::default()
        };
        let opts = PageOptions {
            row_limit: Some(300),
            ..options(true)
        };
        let stats = Arc::clone(&opts.stats);
        let pages: Vec<TaskPage> = clients
            .describe_store_image_tasks("us-east-1", request, opts)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(pages.iter().map(|p| p.tasks.len()).sum::<usize>(), 300);
        // The second page from the first's token; none from the second's.
        assert_eq!(stats.read_ahead.load(Ordering::Relaxed), 1);
        assert_eq!(calls_settle_at(&emulator, 2).await, 2);
    }

    /// An answer whose raw text misleads the early token (a `nextToken` nested in an item,
    /// which the SDK skips): the listing must follow the SDK's token, and nothing from the
    /// call made with the other one may show.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sdks_token_wins_over_the_early_one() {
        async fn answer(body: String) -> ([(&'static str, &'static str); 1], String) {
            let page = |token: &str, ami: &str, tail: &str| {
                format!(
                    "<DescribeStoreImageTasksResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                     <requestId>r</requestId>{token}<storeImageTaskResultSet><item>\
                     <amiId>{ami}</amiId>{tail}</item></storeImageTaskResultSet>\
                     </DescribeStoreImageTasksResponse>"
                )
            };
            let xml = if body.contains("NextToken=good") {
                page("", "ami-2", "")
            } else if body.contains("NextToken=stale") {
                page("", "ami-wrong", "")
            } else {
                page(
                    "<nextToken>good</nextToken>",
                    "ami-1",
                    "<nextToken>stale</nextToken>",
                )
            };
            ([("content-type", "text/xml")], xml)
        }
        let (url, server) = stand_in(axum::routing::post(answer)).await;
        let clients = clients(url).await;
        let (pages, stats) = all_pages(&clients, options(true)).await;
        // The call with the misleading token was started (and then dropped).
        assert_eq!(stats.read_ahead.load(Ordering::Relaxed), 1);
        let amis: Vec<_> = pages
            .iter()
            .flat_map(|p| &p.tasks)
            .map(|t| t.ami_id.as_deref().unwrap())
            .collect();
        assert_eq!(amis, ["ami-1", "ami-2"]);
        server.abort();
    }

    #[tokio::test]
    async fn answers_the_fast_decoder_declines_are_decoded_by_the_sdk() {
        // A comment inside a field is valid XML the one-pass decoder leaves to the SDK.
        async fn answer() -> ([(&'static str, &'static str); 1], &'static str) {
            let xml = "<DescribeStoreImageTasksResponse><storeImageTaskResultSet><item>\
                       <amiId><!-- c -->ami-1</amiId></item></storeImageTaskResultSet>\
                       </DescribeStoreImageTasksResponse>";
            ([("content-type", "text/xml")], xml)
        }
        let (url, server) = stand_in(axum::routing::post(answer)).await;
        let clients = clients(url).await;
        for fast_decode in [true, false] {
            let opts = PageOptions {
                fast_decode,
                ..options(true)
            };
            let (pages, stats) = all_pages(&clients, opts).await;
            assert_eq!(pages[0].tasks[0].ami_id.as_deref(), Some("ami-1"));
            // Counted only when the fast decoder was installed and declined.
            assert_eq!(
                stats.sdk_decoded.load(Ordering::Relaxed),
                u64::from(fast_decode)
            );
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_request_whose_credentials_expired_in_flight_is_sent_again() {
        // EC2's answer to a request signed with temporary credentials that expired before it
        // arrived; the next attempt (signed with renewed ones) is answered.
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let answer = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        "<Response><Errors><Error><Code>RequestExpired</Code>\
                         <Message>Request has expired.</Message></Error></Errors>\
                         <RequestID>rid-1</RequestID></Response>",
                    )
                } else {
                    (
                        axum::http::StatusCode::OK,
                        "<DescribeStoreImageTasksResponse><storeImageTaskResultSet><item>\
                         <amiId>ami-1</amiId></item></storeImageTaskResultSet>\
                         </DescribeStoreImageTasksResponse>",
                    )
                }
            }
        };
        let (url, server) = stand_in(axum::routing::post(answer)).await;
        let clients = Ec2Clients::load(&AwsConfig {
            endpoint_url: Some(url),
            credentials: Credentials::Static {
                access_key_id: "AKIDTEST".into(),
                secret_access_key: "test".into(),
            },
            default_region: Some("us-east-1".into()),
            max_attempts: 3,
            ..AwsConfig::default()
        })
        .await;
        let (pages, stats) = all_pages(&clients, options(false)).await;
        assert_eq!(pages[0].tasks[0].ami_id.as_deref(), Some("ami-1"));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(stats.attempts.load(Ordering::Relaxed), 2);
        server.abort();
    }
}
