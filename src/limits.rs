//! Limits on the RPCs that run statements, as a tower layer: at most
//! `--max-concurrent-queries` of them at once (RESOURCE_EXHAUSTED past it, at once rather
//! than queued), a query timeout on DoGet, where queries run and stream (`--query-timeout`,
//! DEADLINE_EXCEEDED), and a stall timeout on every response they stream
//! (`--client-stall-timeout`). A stopped stream is dropped, and with it the DataFusion
//! stream and the AWS paging behind it. Writes (INSERT at GetFlightInfo or DoPut) are never
//! cut off halfway, which would lose the report of what was created: each AWS call has its
//! own timeout and an INSERT at most 1,000 rows, the query timeout does not apply to them,
//! and their response exists only once the write is done (so the stall timeout, which acts
//! on responses, never stops one).
//!
//! # Timeouts and stalled clients
//!
//! A limited response body (`LimitedBody`) holds the RPC's slot. hyper's HTTP/2 server
//! stops polling a body while the stream has no send capacity (its client does not read, so
//! it sends no WINDOW_UPDATE): nothing inside `poll_frame` would run again, and the slot
//! would be held until the socket closes. So each limited body has a watchdog task, aborted
//! when the body ends or is dropped, sharing the body's state (the inner body, the slot,
//! whether a frame handed out has not been followed by another poll, and since when). It
//! ends the stream when
//! - the query timeout passes (wall time from the start of the call, whether the client
//!   reads or not), or
//! - data has been ready and not taken for the stall timeout: the body handed out a frame
//!   and hyper has not asked for the next one since. A body whose last poll returned
//!   `Pending` is waiting on AWS, not on its client, and is never stalled.
//!
//! Ending drops the inner stream (which stops the query and its AWS paging) and gives the
//! slot back at once, counts it (`aws_flightsql_streams_ended_total{reason}`) and logs a
//! line. The client gets the status (DEADLINE_EXCEEDED, naming the setting) in the trailers
//! when hyper next polls the body: at once when the body was waiting on AWS (its waker is
//! woken), or when the client reads again. hyper cannot be made to reset a stalled stream
//! from the body: while the stream has no capacity, its `PipeToSendStream` holds one chunk
//! and waits for capacity or the peer's RST_STREAM without polling the body, and a wake-up
//! only makes it check those again. So a stalled stream stays open, holding at most the
//! data already handed to hyper (hyper's send buffer, 400 KiB per stream), until its client
//! reads, resets it or closes the connection (or stops answering the server's keepalive
//! PINGs); it no longer holds a slot, a query or AWS paging.
//!
//! The other size limits live where the data is read: message size in the Flight service,
//! header size in the HTTP/2 server, the SQL text's length and shape in the Flight layer's
//! admission (measured by [`crate::sql_limits`] before the SQL is parsed). [`ServerLimits`]
//! holds the values of all of them.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tonic::body::Body;
use tracing::Instrument;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::rpc_layer::{BoxFuture, Inner, RpcMiddleware};

/// The Flight RPCs that run statements (and metadata fetches), counted against the limit.
const QUERY_METHODS: [&str; 6] = [
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
];
const FLIGHT_PREFIX: &str = "/arrow.flight.protocol.FlightService/";

/// Default stall timeout: long enough for a client that pauses between batches, short
/// enough that stalled clients do not hold slots for the whole query timeout.
pub const DEFAULT_CLIENT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Statement RPCs running at once.
    pub max_concurrent_queries: usize,
    /// How long a DoGet may run, stream included, whether its client reads or not; `None` =
    /// no limit.
    pub query_timeout: Option<Duration>,
    /// How long a response of a statement RPC may have data ready that its client does not
    /// take (it does not read: no HTTP/2 WINDOW_UPDATE) before the stream is ended and its
    /// slot given back; `None` = no limit.
    pub client_stall_timeout: Option<Duration>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_concurrent_queries: 64,
            query_timeout: Some(Duration::from_secs(300)),
            client_stall_timeout: Some(DEFAULT_CLIENT_STALL_TIMEOUT),
        }
    }
}

/// The middleware, installed as `RpcLayer(QueryLimiter::new(limits).with_metrics(m))`.
#[derive(Debug, Clone)]
pub struct QueryLimiter {
    limits: QueryLimits,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl QueryLimiter {
    /// Enforces `limits` (counting what it stops in metrics of its own until
    /// [`with_metrics`](Self::with_metrics)).
    pub fn new(limits: QueryLimits) -> QueryLimiter {
        QueryLimiter {
            limits,
            permits: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
            metrics: Arc::default(),
        }
    }

    /// Counts the streams it stops in `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> QueryLimiter {
        QueryLimiter { metrics, ..self }
    }
}

impl RpcMiddleware for QueryLimiter {
    fn handle<S: Inner>(
        &self,
        mut inner: S,
        request: http::Request<Body>,
    ) -> BoxFuture<http::Response<Body>, S::Error> {
        let method = request
            .uri()
            .path()
            .strip_prefix(FLIGHT_PREFIX)
            .unwrap_or_default();
        if !QUERY_METHODS.contains(&method) {
            return Box::pin(inner.call(request));
        }
        let limits = self.limits;
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let status = tonic::Status::from(Error::Busy(format!(
                    "the server is running its maximum of {} concurrent queries \
                     (--max-concurrent-queries); retry shortly",
                    limits.max_concurrent_queries
                )));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let timeout = limits.query_timeout.filter(|_| method == "DoGet");
        let metrics = Arc::clone(&self.metrics);
        // A DoGet that runs a watch is given the watch's timeout on top of the query timeout
        // by its handler (see `ExtraTime`).
        let extra = ExtraTime::default();
        let mut request = request;
        if timeout.is_some() {
            request.extensions_mut().insert(extra.clone());
        }
        // The slot is taken before the request is read: a client that sends the headers and
        // never the message must not keep it.
        let request = match limits.client_stall_timeout {
            Some(stall) => request
                .map(|body| Body::new(SilentRequestBody::new(body, stall, Arc::clone(&metrics)))),
            None => request,
        };
        let fut = inner.call(request);
        Box::pin(async move {
            // (A timeout too long to add to the clock is none.)
            let deadline =
                timeout.and_then(|timeout| Some((Instant::now().checked_add(timeout)?, timeout)));
            let response = match deadline {
                None => fut.await?,
                Some((at, timeout)) => match tokio::time::timeout_at(at, fut).await {
                    Ok(response) => response?,
                    // Dropping the call's future stops whatever it had started.
                    Err(_) => {
                        let ending = Ending::Timeout(timeout, extra.get());
                        ending.record(&metrics);
                        return Ok(ending.status().into_http());
                    }
                },
            };
            // The stream's deadline, lengthened by what the handler granted (a watch).
            let deadline = deadline.map(|(at, timeout)| {
                let granted = extra.get();
                (at.checked_add(granted).unwrap_or(at), timeout, granted)
            });
            let watch = Watch {
                deadline,
                stall: limits.client_stall_timeout,
                metrics,
            };
            Ok(response.map(|body| Body::new(LimitedBody::new(body, permit, watch))))
        })
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with DEADLINE_EXCEEDED when its client sends nothing for
    /// the stall timeout while the server waits for it (only then: a body nobody reads is
    /// never timed out).
    struct SilentRequestBody {
        #[pin]
        inner: Body,
        stall: Duration,
        silence: Pin<Box<tokio::time::Sleep>>,
        waiting: bool,
        metrics: Arc<Metrics>,
    }
}

impl SilentRequestBody {
    fn new(inner: Body, stall: Duration, metrics: Arc<Metrics>) -> Self {
        SilentRequestBody {
            inner,
            stall,
            silence: Box::pin(tokio::time::sleep(stall)),
            waiting: false,
            metrics,
        }
    }
}

impl HttpBody for SilentRequestBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Pending => {
                if !*this.waiting {
                    // The server starts waiting now: the client has the stall timeout.
                    *this.waiting = true;
                    let at = Instant::now() + *this.stall;
                    this.silence.as_mut().reset(at);
                }
                if std::future::Future::poll(this.silence.as_mut(), cx).is_pending() {
                    return Poll::Pending;
                }
                tracing::info!(stall = ?this.stall, "client stalled: its request stopped");
                this.metrics.stream_ended("stalled");
                Poll::Ready(Some(Err(tonic::Status::deadline_exceeded(format!(
                    "the client sent no part of its request for {} (--client-stall-timeout); \
                     the call was stopped and its slot given to others",
                    humantime::format_duration(*this.stall)
                )))))
            }
            ready => {
                *this.waiting = false;
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Extra time a DoGet's handler grants its stream beyond the query timeout: a statement
/// that watches (`watch_store_image_tasks`) gets its watch's timeout (at most `--max-watch`)
/// on top of `--query-timeout`. The limiter puts one in the request's extensions; what was
/// granted when the response is ready counts.
#[derive(Debug, Clone, Default)]
pub struct ExtraTime(Arc<Mutex<Duration>>);

impl ExtraTime {
    /// Grants `time` (the largest grant counts).
    pub fn grant(&self, time: Duration) {
        let mut granted = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *granted = (*granted).max(time);
    }

    fn get(&self) -> Duration {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the server ended a stream.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The query timeout passed (with the extra time a watch was granted).
    Timeout(Duration, Duration),
    /// The client took no data for the stall timeout.
    Stalled(Duration),
}

impl Ending {
    fn status(self) -> tonic::Status {
        tonic::Status::from(Error::TimedOut(match self {
            Ending::Timeout(timeout, extra) if extra.is_zero() => format!(
                "the query ran for longer than the query timeout ({}, --query-timeout) and \
                 was stopped",
                humantime::format_duration(timeout)
            ),
            Ending::Timeout(timeout, extra) => format!(
                "the query ran for longer than the query timeout ({}, --query-timeout) plus \
                 its watch's timeout ({}) and was stopped",
                humantime::format_duration(timeout),
                humantime::format_duration(extra)
            ),
            Ending::Stalled(stall) => format!(
                "the client took no data for {} (--client-stall-timeout): the query was \
                 stopped and its slot given to others",
                humantime::format_duration(stall)
            ),
        }))
    }

    /// Counts and logs it.
    fn record(self, metrics: &Metrics) {
        match self {
            Ending::Timeout(timeout, _) => {
                metrics.stream_ended("timeout");
                tracing::info!(timeout = ?timeout, "query timeout: stream stopped");
            }
            Ending::Stalled(stall) => {
                metrics.stream_ended("stalled");
                tracing::warn!(
                    stall_timeout = ?stall,
                    "client stalled: it took no data for the stall timeout; stream stopped \
                     and its slot released"
                );
            }
        }
    }
}

/// The `grpc-status` / `grpc-message` trailers of `status`.
fn status_trailers(status: tonic::Status) -> http::HeaderMap {
    let response = status.into_http::<Body>();
    let mut trailers = http::HeaderMap::new();
    for (name, value) in response.headers() {
        if name.as_str().starts_with("grpc-") {
            trailers.insert(name.clone(), value.clone());
        }
    }
    trailers
}

/// What a limited body's watchdog enforces.
struct Watch {
    /// The query timeout's instant, the timeout, and the extra time granted (a watch's).
    deadline: Option<(Instant, Duration, Duration)>,
    /// The stall timeout.
    stall: Option<Duration>,
    metrics: Arc<Metrics>,
}

/// A response body that holds the query's slot until it ends or is dropped, while its
/// watchdog ends it with DEADLINE_EXCEEDED when the query timeout passes or its client
/// stalls (see the [module documentation](self)).
struct LimitedBody {
    shared: Arc<Shared>,
    watchdog: Option<AbortHandle>,
}

/// The state a body shares with its watchdog.
struct Shared {
    state: Mutex<State>,
    /// Tells the watchdog that a frame was handed out, when it waits for one.
    handed_out: Notify,
}

struct State {
    /// The response body; `None` once the watchdog ended the stream.
    inner: Option<Body>,
    /// The slot; `None` once the stream ended.
    permit: Option<OwnedSemaphorePermit>,
    /// Since when the last frame handed out has not been followed by another poll (data
    /// ready, not taken); `None` while a poll waits on the inner body.
    ready_since: Option<Instant>,
    /// The watchdog waits for `ready_since` to be set.
    watchdog_waits: bool,
    /// The waker of the last poll that returned `Pending`.
    waker: Option<Waker>,
    /// The trailers of the status the watchdog ended the stream with, for the next poll.
    ending: Option<http::HeaderMap>,
    /// The stream ended (its status is on its way): nothing left to watch.
    finished: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LimitedBody {
    fn new(inner: Body, permit: OwnedSemaphorePermit, watch: Watch) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                inner: Some(inner),
                permit: Some(permit),
                // The response (its headers) is out: hyper polls the body next.
                ready_since: Some(Instant::now()),
                watchdog_waits: false,
                waker: None,
                ending: None,
                finished: false,
            }),
            handed_out: Notify::new(),
        });
        let watchdog = (watch.deadline.is_some() || watch.stall.is_some()).then(|| {
            // In the RPC's span, so its log line carries the query id.
            tokio::spawn(watchdog(Arc::clone(&shared), watch).in_current_span()).abort_handle()
        });
        LimitedBody { shared, watchdog }
    }
}

/// Ends the stream of `shared` when the query timeout passes or its client stalls.
async fn watchdog(shared: Arc<Shared>, watch: Watch) {
    loop {
        let (wake_at, wait_for_frame) = {
            let mut state = shared.lock();
            if state.finished {
                return;
            }
            let now = Instant::now();
            let stalls_at = watch
                .stall
                .zip(state.ready_since)
                .and_then(|(stall, since)| since.checked_add(stall));
            let ending = match (watch.deadline, watch.stall) {
                (Some((at, timeout, extra)), _) if now >= at => {
                    Some(Ending::Timeout(timeout, extra))
                }
                (_, Some(stall)) if stalls_at.is_some_and(|at| now >= at) => {
                    Some(Ending::Stalled(stall))
                }
                _ => None,
            };
            if let Some(ending) = ending {
                // Drop the stream now: that stops the query and its AWS paging.
                let inner = state.inner.take();
                state.permit.take();
                state.ready_since = None;
                state.ending = Some(status_trailers(ending.status()));
                let waker = state.waker.take();
                drop(state);
                drop(inner);
                ending.record(&watch.metrics);
                // A body waiting on AWS is polled again at once and ends with the status.
                if let Some(waker) = waker {
                    waker.wake();
                }
                return;
            }
            // While a poll waits on the inner body, the stall clock starts only when a
            // frame is handed out: be told then.
            let wait_for_frame = watch.stall.is_some() && state.ready_since.is_none();
            state.watchdog_waits = wait_for_frame;
            let wake_at = [watch.deadline.map(|(at, _, _)| at), stalls_at]
                .into_iter()
                .flatten()
                .min();
            (wake_at, wait_for_frame)
        };
        let sleep = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        if wait_for_frame {
            tokio::select! {
                _ = shared.handed_out.notified() => {}
                _ = sleep => {}
            }
        } else {
            sleep.await;
        }
    }
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let mut state = this.shared.lock();
        if let Some(trailers) = state.ending.take() {
            state.finished = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let Some(inner) = state.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Pending => {
                state.ready_since = None;
                if !state
                    .waker
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
            }
            Poll::Ready(Some(Ok(frame))) if !frame.is_trailers() => {
                state.ready_since = Some(Instant::now());
                if std::mem::take(&mut state.watchdog_waits) {
                    this.shared.handed_out.notify_one();
                }
            }
            Poll::Ready(_) => {
                // The status is on its way: the watchdog can no longer replace it.
                state.finished = true;
                state.ready_since = None;
                state.permit.take();
                drop(state);
                if let Some(watchdog) = this.watchdog.take() {
                    watchdog.abort();
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock();
        state.ending.is_none() && state.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let state = self.shared.lock();
        match (&state.inner, &state.ending) {
            (Some(inner), None) => inner.size_hint(),
            (None, None) => http_body::SizeHint::with_exact(0),
            (_, Some(_)) => http_body::SizeHint::default(),
        }
    }
}

impl Drop for LimitedBody {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
        }
        // Give the slot back and stop the query now, not when the aborted watchdog's
        // share of the state is dropped.
        let mut state = self.shared.lock();
        state.finished = true;
        let inner = state.inner.take();
        state.permit.take();
        drop(state);
        drop(inner);
    }
}

/// Every size and concurrency limit of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Concurrent queries and the query timeout.
    pub queries: QueryLimits,
    /// Largest SQL statement, in bytes.
    pub max_sql_bytes: usize,
    /// Largest gRPC message decoded (parameter batches, ingest).
    pub max_message_bytes: usize,
    /// Largest HTTP/2 header list (all request headers together).
    pub max_header_bytes: u32,
    /// Deepest expression accepted, as the Flight layer's admission measures it
    /// ([`crate::sql_limits::SqlShape`]).
    pub max_expression_depth: usize,
    /// Most query blocks (SELECT, VALUES) in one statement.
    pub max_query_blocks: usize,
    /// Most joins in one statement.
    pub max_joins: usize,
    /// Memory all running statements together may hold, in bytes.
    pub max_memory: usize,
    /// Most AWS calls one query may make.
    pub max_aws_calls_per_query: usize,
    /// The longest a watch (`watch_store_image_tasks`) may run; zero refuses watches.
    pub max_watch: Duration,
}

/// Default most query blocks (SELECT or VALUES) in one statement.
pub const DEFAULT_MAX_QUERY_BLOCKS: usize = 128;
/// Default most joins (JOIN, and tables listed with commas in FROM) in one statement.
pub const DEFAULT_MAX_JOINS: usize = 32;

/// Default largest SQL statement: 1 MiB.
pub const DEFAULT_MAX_SQL_BYTES: usize = 1024 * 1024;
/// Default largest decoded message: clients send up to 64 MB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;
/// Default largest header list: the JDBC driver forwards unknown URL parameters as headers,
/// so far more than the usual 8 KB.
pub const DEFAULT_MAX_HEADER_BYTES: u32 = 64 * 1024;

/// Default deepest expression. DataFusion clones, prints and drops expression trees
/// recursively, so a deep one (`1+1+...+1`, thousands of ORs, nested calls) can overflow a
/// thread's stack and abort the whole process (a 250-term sum overflows a 2 MiB stack in a
/// debug build), and its optimizer takes time that grows faster than the depth (500 nested
/// calls: 19 s in a debug build). The server's worker threads have [`WORKER_STACK_BYTES`] of
/// stack, which holds this depth with a wide margin; an application that runs [`Server`]
/// itself should give its runtime threads as much.
///
/// [`Server`]: crate::server::Server
pub const DEFAULT_MAX_EXPRESSION_DEPTH: usize = 256;

/// Stack of the server's runtime threads (`aws-flightsql serve`).
pub const WORKER_STACK_BYTES: usize = 32 * 1024 * 1024;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            queries: QueryLimits::default(),
            max_sql_bytes: DEFAULT_MAX_SQL_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_expression_depth: DEFAULT_MAX_EXPRESSION_DEPTH,
            max_query_blocks: DEFAULT_MAX_QUERY_BLOCKS,
            max_joins: DEFAULT_MAX_JOINS,
            max_memory: crate::catalog::DEFAULT_MAX_MEMORY,
            max_aws_calls_per_query: crate::ec2::DEFAULT_MAX_CALLS_PER_QUERY,
            max_watch: crate::table::DEFAULT_MAX_WATCH,
        }
    }
}
