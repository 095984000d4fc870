//! What every RPC goes through on its way in and out, whatever the service: a query id
//! (the field `query_id` of a tracing span around the call and its response stream, and the
//! `x-query-id` response header: the id of the query the Flight layer names with
//! [`note_query_id`], the one made at GetFlightInfo and read back from the ticket at DoGet,
//! so both RPCs of one query log the same id; a fresh UUID for an RPC about no query), the RPC metrics (method, status, latency to the end of the stream,
//! in flight, bytes), and draining: while the server shuts down, new RPCs other than health
//! checks and DoGet are answered UNAVAILABLE so load balancers move on; a DoGet is marked
//! [`Draining`] and the Flight layer serves it only when it fetches an INSERT's count (or a
//! metadata answer, which runs no query).
//!
//! Every RPC that ends with an error status is logged here, once, at WARN (a cancelled one
//! at INFO): its status code, its status message and, when the Flight layer saw one, the
//! SQL it was about ([`note_statement`]), cut at [`MAX_LOGGED_SQL_BYTES`]. Headers, tokens
//! and passwords are never logged, and the log writer masks access key ids
//! ([`crate::redact`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tonic::body::Body;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::rpc_layer::{BoxFuture, Inner, RpcMiddleware};

/// The response header carrying the query id.
pub const QUERY_ID_HEADER: &str = "x-query-id";

/// State shared by the layer and the server.
#[derive(Debug)]
pub struct RpcState {
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    draining: AtomicBool,
}

impl RpcState {
    /// State recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RpcState {
            metrics,
            draining: AtomicBool::new(false),
        }
    }

    /// New RPCs are refused from now on (health checks excepted).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The longest SQL a log line carries; longer statements are cut, saying how much.
pub const MAX_LOGGED_SQL_BYTES: usize = 2048;

/// What the service notes about the RPC being served.
#[derive(Debug)]
struct Notes {
    /// The statement the RPC is about.
    statement: std::sync::Mutex<Option<String>>,
    /// The query it is about; set once.
    query_id: std::sync::OnceLock<String>,
    /// The RPC's span, whose `query_id` field gets that id.
    span: tracing::Span,
}

impl Notes {
    /// Sets the query id if none is set yet, and records it on the span.
    fn set_query_id(&self, query_id: &str) {
        if self.query_id.set(query_id.to_owned()).is_ok() {
            self.span.record("query_id", query_id);
        }
    }

    /// The query id, or `""` when none was set.
    fn query_id(&self) -> &str {
        self.query_id.get().map(String::as_str).unwrap_or_default()
    }
}

tokio::task_local! {
    /// What the Flight layer noted about the RPC being served.
    static NOTES: Arc<Notes>;
}

/// Notes the SQL the current RPC is about (its first statement; later ones, such as the
/// query that answers an INSERT's count, do not replace it), for the log line of an RPC
/// that fails. Outside an RPC it does nothing.
pub fn note_statement(sql: &str) {
    let _ = NOTES.try_with(|notes| {
        let mut slot = notes.statement.lock().expect("statement note lock");
        if slot.is_none() {
            *slot = Some(sql.to_owned());
        }
    });
}

/// Names the query the current RPC is about (the first id noted counts): the `query_id`
/// of its log lines and its `x-query-id` header. Outside an RPC it does nothing.
pub fn note_query_id(query_id: &str) {
    let _ = NOTES.try_with(|notes| notes.set_query_id(query_id));
}

/// `sql` cut at [`MAX_LOGGED_SQL_BYTES`] (on a character boundary), saying how many bytes
/// were left out.
fn capped(sql: &str) -> String {
    if sql.len() <= MAX_LOGGED_SQL_BYTES {
        return sql.to_owned();
    }
    let mut end = MAX_LOGGED_SQL_BYTES;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &sql[..end], sql.len() - end)
}

/// `text` on one line (line breaks written `\n`), so that a log line is one line.
fn one_line(text: &str) -> String {
    text.replace('\r', "").replace('\n', "\\n")
}

/// A `grpc-message` value as text (it travels percent-encoded).
fn grpc_message(value: &http::HeaderValue) -> String {
    percent_encoding::percent_decode(value.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

/// What a client is told of a new RPC while the server drains.
pub const SHUTTING_DOWN: &str = "the server is shutting down; retry on another replica";

/// Marks a DoGet that arrived while the server drains (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Draining;

/// The middleware, installed as `RpcLayer(Observe(state))`.
#[derive(Debug, Clone)]
pub struct Observe(pub Arc<RpcState>);

impl RpcMiddleware for Observe {
    fn handle<S: Inner>(
        &self,
        mut inner: S,
        request: http::Request<Body>,
    ) -> BoxFuture<http::Response<Body>, S::Error> {
        let path = request.uri().path().to_owned();
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let is_health = path.starts_with("/grpc.health.");
        let mut request = request;
        if self.0.draining() && !is_health {
            if method != "DoGet" {
                let response = tonic::Status::unavailable(SHUTTING_DOWN).into_http();
                return Box::pin(async move { Ok(response) });
            }
            // A DoGet may fetch the count of an INSERT that already ran: the Flight layer
            // serves those and refuses the rest.
            request.extensions_mut().insert(Draining);
        }
        let span = tracing::info_span!("rpc", %method, query_id = tracing::field::Empty);
        let state = Arc::clone(&self.0);
        state.metrics.rpc_started();
        let started = Instant::now();
        let notes = Arc::new(Notes {
            statement: std::sync::Mutex::default(),
            query_id: std::sync::OnceLock::new(),
            span: span.clone(),
        });
        let fut = NOTES
            .scope(Arc::clone(&notes), inner.call(request))
            .instrument(span.clone());
        Box::pin(async move {
            tracing::debug!(parent: &span, "rpc started");
            // A call dropped before it answers (its client cancelled it or went away, as
            // from a long INSERT /*+ AWAIT */) ends here, counted as cancelled.
            let mut unanswered = Unanswered {
                state: Some(Arc::clone(&state)),
                method: &method,
                started,
                notes: &notes,
            };
            let response = fut.await;
            unanswered.state = None;
            drop(unanswered);
            // An RPC about no query (or refused before its query was known) gets an id of
            // its own.
            notes.set_query_id(&uuid::Uuid::new_v4().to_string());
            let response = match response {
                Ok(response) => response,
                Err(e) => {
                    let query_id = notes.query_id();
                    RpcEnd::finish_now(&state, &method, "Unknown", started, query_id);
                    return Err(e);
                }
            };
            let (mut parts, body) = response.into_parts();
            let query_id = notes.query_id();
            if let Ok(value) = http::HeaderValue::from_str(query_id) {
                parts.headers.insert(QUERY_ID_HEADER, value);
            }
            // A "trailers-only" answer carries its status in the headers.
            let status = parts
                .headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let message = parts.headers.get("grpc-message").map(grpc_message);
            let end = RpcEnd {
                state,
                method,
                started,
                status,
                message,
                notes,
                span,
                done: false,
            };
            Ok(http::Response::from_parts(
                parts,
                Body::new(ObservedBody { inner: body, end }),
            ))
        })
    }
}

/// Records the end of an RPC dropped before its response: it is no longer in flight.
struct Unanswered<'a> {
    /// `None` once the RPC answered.
    state: Option<Arc<RpcState>>,
    method: &'a str,
    started: Instant,
    notes: &'a Notes,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let query_id = self.notes.query_id();
            tracing::info!(parent: &self.notes.span, method = %self.method,
                "rpc dropped before it answered: its client cancelled it or went away");
            RpcEnd::finish_now(&state, self.method, "Cancelled", self.started, query_id);
        }
    }
}

/// Records the end of an RPC once: when its body ends, or when it is dropped.
struct RpcEnd {
    state: Arc<RpcState>,
    method: String,
    started: Instant,
    status: Option<String>,
    /// The status message of an RPC that failed.
    message: Option<String>,
    /// What the Flight layer noted: the SQL the RPC was about, if any.
    notes: Arc<Notes>,
    span: tracing::Span,
    done: bool,
}

impl RpcEnd {
    fn finish_now(state: &RpcState, method: &str, status: &str, started: Instant, query_id: &str) {
        state
            .metrics
            .rpc_finished(method, status, started.elapsed().as_secs_f64(), query_id);
    }

    fn finish(&mut self, cancelled: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let status = match (&self.status, cancelled) {
            (Some(code), _) => code_name(code),
            (None, true) => "Cancelled".to_owned(),
            (None, false) => "Ok".to_owned(),
        };
        let elapsed = self.started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let failed = !matches!(status.as_str(), "Ok" | "Cancelled");
        if failed || (status == "Cancelled" && self.status.is_some()) {
            let message = one_line(self.message.as_deref().unwrap_or_default());
            let sql = self
                .notes
                .statement
                .lock()
                .expect("statement note lock")
                .take()
                .map(|sql| one_line(&sql));
            match (failed, sql) {
                (true, Some(sql)) => tracing::warn!(parent: &self.span, %status, error = %message,
                    sql = %capped(&sql), elapsed_ms, "statement refused"),
                (true, None) => tracing::warn!(parent: &self.span, %status, error = %message,
                    elapsed_ms, "request refused"),
                (false, sql) => tracing::info!(parent: &self.span, %status, error = %message,
                    sql = %capped(sql.as_deref().unwrap_or_default()), elapsed_ms,
                    "statement cancelled"),
            }
        } else {
            tracing::info!(parent: &self.span, %status, elapsed_ms, "rpc finished");
        }
        let query_id = self.notes.query_id();
        Self::finish_now(&self.state, &self.method, &status, self.started, query_id);
    }
}

impl Drop for RpcEnd {
    fn drop(&mut self) {
        // Dropped before the end of the stream: the client went away.
        self.finish(true);
    }
}

fn code_name(code: &str) -> String {
    let code = code
        .parse::<i32>()
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Unknown);
    format!("{code:?}")
}

pin_project_lite::pin_project! {
    struct ObservedBody {
        #[pin]
        inner: Body,
        end: RpcEnd,
    }
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let _entered = this.end.span.clone().entered();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.end.state.metrics.bytes_streamed(data.len() as u64);
                } else if let Some(trailers) = frame.trailers_ref() {
                    if let Some(code) = trailers.get("grpc-status").and_then(|v| v.to_str().ok()) {
                        this.end.status = Some(code.to_owned());
                    }
                    if let Some(message) = trailers.get("grpc-message") {
                        this.end.message = Some(grpc_message(message));
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.end.status.get_or_insert_with(|| "2".to_owned());
                this.end.finish(false);
            }
            Poll::Ready(None) => this.end.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sql_is_cut_on_a_character_boundary_saying_how_much() {
        assert_eq!(capped("SELECT 1"), "SELECT 1");
        let sql = format!("SELECT '{}'", "é".repeat(2000));
        let cut = capped(&sql);
        assert!(cut.len() < MAX_LOGGED_SQL_BYTES + 40, "{}", cut.len());
        let kept = cut.split("... (").next().unwrap();
        assert!(
            cut.ends_with(&format!("({} more bytes)", sql.len() - kept.len())),
            "{cut}"
        );
    }

    #[test]
    fn a_logged_message_or_statement_stays_on_one_line() {
        assert_eq!(
            one_line("SELECT a\r\nFROM t\nWHERE x"),
            "SELECT a\\nFROM t\\nWHERE x"
        );
    }

    #[test]
    fn grpc_messages_are_decoded() {
        let value = http::HeaderValue::from_static("unknown%20column%20%60x%60");
        assert_eq!(grpc_message(&value), "unknown column `x`");
    }
}
