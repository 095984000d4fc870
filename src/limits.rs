//! Limits on the RPCs that run statements, as a tower layer: at most
//! `--max-concurrent-queries` of them at once (RESOURCE_EXHAUSTED past it, at once rather
//! than queued), and a query timeout on DoGet, where queries run and stream
//! (`--query-timeout`, DEADLINE_EXCEEDED). A timed-out stream is dropped, and with it the
//! DataFusion stream and the AWS paging behind it. Writes (INSERT at GetFlightInfo or DoPut)
//! are never cut off halfway, which would lose the report of what was created: each AWS
//! call has its own timeout and an INSERT at most 1,000 rows.
//! The other size limits live where the data is read: message size in the Flight service,
//! header size in the HTTP/2 server, the SQL text's length and shape in the Flight handler
//! (measured by [`crate::sql_limits`] before the SQL is parsed).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::body::Body;

use crate::flight::ServiceError;
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

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Statement RPCs running at once.
    pub max_concurrent_queries: usize,
    /// How long a DoGet may run, stream included; `None` = no limit.
    pub query_timeout: Option<Duration>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_concurrent_queries: 64,
            query_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// The middleware, installed as `RpcLayer(QueryLimiter::new(limits))`.
#[derive(Debug, Clone)]
pub struct QueryLimiter {
    limits: QueryLimits,
    permits: Arc<Semaphore>,
}

impl QueryLimiter {
    /// Enforces `limits`.
    pub fn new(limits: QueryLimits) -> QueryLimiter {
        QueryLimiter {
            limits,
            permits: Arc::new(Semaphore::new(limits.max_concurrent_queries)),
        }
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
                let status = tonic::Status::from(ServiceError::Busy(format!(
                    "the server is running its maximum of {} concurrent queries \
                     (--max-concurrent-queries); retry shortly",
                    limits.max_concurrent_queries
                )));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let timeout = limits.query_timeout.filter(|_| method == "DoGet");
        let fut = inner.call(request);
        Box::pin(async move {
            let Some(timeout) = timeout else {
                let response = fut.await?;
                return Ok(response.map(|body| Body::new(LimitedBody::new(body, permit, None))));
            };
            let deadline = tokio::time::Instant::now() + timeout;
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(response) => {
                    let sleep = Box::pin(tokio::time::sleep_until(deadline));
                    Ok(response?.map(|body| {
                        Body::new(LimitedBody::new(body, permit, Some((sleep, timeout))))
                    }))
                }
                // Dropping the call's future stops whatever it had started.
                Err(_) => Ok(timed_out(timeout).into_http()),
            }
        })
    }
}

fn timed_out(timeout: Duration) -> tonic::Status {
    tonic::Status::from(ServiceError::TimedOut(format!(
        "the query ran for longer than the query timeout ({}, --query-timeout) and was \
         stopped",
        humantime::format_duration(timeout)
    )))
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

pin_project_lite::pin_project! {
    /// A response body that holds the query's permit until it ends or is dropped, and ends
    /// with DEADLINE_EXCEEDED when the timeout passes first.
    struct LimitedBody {
        inner: Option<Body>,
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
        permit: Option<OwnedSemaphorePermit>,
    }
}

impl LimitedBody {
    fn new(
        inner: Body,
        permit: OwnedSemaphorePermit,
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    ) -> Self {
        LimitedBody {
            inner: Some(inner),
            deadline,
            permit: Some(permit),
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
        let this = self.project();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some((sleep, timeout)) = this.deadline.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                let timeout = *timeout;
                // Drop the stream now: that stops the query and its AWS paging.
                *this.inner = None;
                *this.deadline = None;
                this.permit.take();
                tracing::info!(timeout = ?timeout, "query timeout: stream stopped");
                return Poll::Ready(Some(Ok(Frame::trailers(status_trailers(timed_out(
                    timeout,
                ))))));
            }
        }
        let polled = Pin::new(inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers(),
            Poll::Pending => false,
        };
        if ended {
            // The status is on its way: the timeout can no longer replace it.
            this.permit.take();
            *this.deadline = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => http_body::SizeHint::with_exact(0),
        }
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
    /// Deepest expression accepted, as [`crate::sql_limits::SqlShape`] measures it.
    pub max_expression_depth: usize,
    /// Most query blocks (SELECT, VALUES) in one statement.
    pub max_query_blocks: usize,
    /// Most joins in one statement.
    pub max_joins: usize,
    /// Memory all running statements together may hold, in bytes.
    pub max_memory: usize,
    /// Most AWS calls one query may make.
    pub max_aws_calls_per_query: usize,
}

impl ServerLimits {
    /// The limits on a statement's text.
    pub fn sql(&self) -> crate::sql_limits::SqlLimits {
        crate::sql_limits::SqlLimits {
            max_bytes: self.max_sql_bytes,
            max_depth: self.max_expression_depth,
            max_blocks: self.max_query_blocks,
            max_joins: self.max_joins,
        }
    }
}

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
            max_query_blocks: crate::sql_limits::DEFAULT_MAX_QUERY_BLOCKS,
            max_joins: crate::sql_limits::DEFAULT_MAX_JOINS,
            max_memory: crate::catalog::DEFAULT_MAX_MEMORY,
            max_aws_calls_per_query: crate::ec2::DEFAULT_MAX_CALLS_PER_QUERY,
        }
    }
}
