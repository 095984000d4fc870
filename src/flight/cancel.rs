//! The cancel family: CancelFlightInfo (and the older CancelQuery action), and the queries
//! this server is streaming, by query id, so that they can be stopped. Stopping a stream
//! drops the DataFusion stream under it, which aborts the scan's paging tasks: no further
//! API page is requested. Each FlightInfo's tickets carry the query id made for that
//! GetFlightInfo ([`new_query_id`], a UUID: the id of its log lines too), so cancelling one
//! client's query never stops another's identical query.
//!
//! The registry is per process: tickets are self-contained and any replica may be streaming
//! one, so a cancel that reaches another replica finds nothing running there.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, Any, TicketStatementQuery,
};
use arrow_flight::{
    CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightData, FlightInfo,
};
use futures::Stream;
use prost::Message;
use tokio::sync::oneshot;
use tonic::Status;

use super::service::FlightSqlHandler;
use super::tickets;

use crate::error::Error;

/// Cancelled query ids remembered, so a ticket fetched after its cancel fails too.
const CANCELLED_REMEMBERED: usize = 4096;

/// `ActionCancelQueryResult.CancelResult.CANCEL_RESULT_CANCELLED`.
const CANCEL_RESULT_CANCELLED: i32 = 1;

/// A new query id, unique to this FlightInfo (and across replicas): a random UUID.
pub fn new_query_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl FlightSqlHandler {
    /// CancelFlightInfo: stops the running streams of the queries of the FlightInfo.
    pub(super) fn cancel_flight_info(
        &self,
        request: CancelFlightInfoRequest,
    ) -> CancelFlightInfoResult {
        let info = request.info.unwrap_or_default();
        let ids = query_ids(&info);
        let cancelled = self.queries.cancel(ids.iter().map(String::as_str));
        tracing::info!(
            query_id = %ids.join(","),
            queries = ids.len(),
            streams = cancelled.stopped,
            "cancelled"
        );
        CancelFlightInfoResult {
            status: CancelStatus::Cancelled as i32,
        }
    }

    /// CancelQuery, the older action: the same, with the FlightInfo as bytes.
    #[allow(deprecated)]
    pub(super) fn cancel_query(
        &self,
        request: ActionCancelQueryRequest,
    ) -> Result<ActionCancelQueryResult, Error> {
        let info = FlightInfo::decode(request.info.as_ref())
            .map_err(|e| Error::bad_request(format!("CancelQuery: invalid FlightInfo: {e}")))?;
        let ids = query_ids(&info);
        self.queries.cancel(ids.iter().map(String::as_str));
        Ok(ActionCancelQueryResult {
            result: CANCEL_RESULT_CANCELLED,
        })
    }
}

/// The query ids in the tickets of `info`.
fn query_ids(info: &FlightInfo) -> Vec<String> {
    info.endpoint
        .iter()
        .filter_map(|e| e.ticket.as_ref())
        .filter_map(|t| Any::decode(t.ticket.as_ref()).ok())
        .filter_map(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
        .filter_map(|t| tickets::decode_statement(&t.statement_handle).ok())
        .map(|s| s.query_id)
        .filter(|id| !id.is_empty())
        .collect()
}

/// The registry of running queries.
#[derive(Debug, Clone, Default)]
pub struct RunningQueries {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    running: HashMap<String, Vec<(u64, oneshot::Sender<()>)>>,
    cancelled: HashSet<String>,
    cancelled_order: VecDeque<String>,
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// Streams that were running and are now stopped.
    pub stopped: usize,
}

impl RunningQueries {
    /// Wraps the Flight data stream of query `query_id`, so that [`Self::cancel`] stops it.
    /// Fails at once when the query was cancelled already.
    pub fn track<S>(&self, query_id: &str, stream: S) -> Result<CancellableStream<S>, Error>
    where
        S: Stream<Item = Result<FlightData, Status>> + Send + Unpin,
    {
        let (tx, rx) = oneshot::channel();
        let mut registry = self.inner.lock().expect("registry lock");
        if registry.cancelled.contains(query_id) {
            return Err(Error::Cancelled(CANCELLED_MESSAGE.into()));
        }
        let serial = registry.next;
        registry.next += 1;
        registry
            .running
            .entry(query_id.to_owned())
            .or_default()
            .push((serial, tx));
        Ok(CancellableStream {
            inner: Some(stream),
            cancel: Some(rx),
            done: false,
            _guard: Registration {
                registry: Arc::clone(&self.inner),
                query_id: query_id.to_owned(),
                serial,
            },
        })
    }

    /// Stops every running stream of these queries and remembers them as cancelled.
    pub fn cancel<'a>(&self, query_ids: impl IntoIterator<Item = &'a str>) -> Cancelled {
        let mut registry = self.inner.lock().expect("registry lock");
        let mut stopped = 0;
        for id in query_ids {
            for (_, tx) in registry.running.remove(id).unwrap_or_default() {
                if tx.send(()).is_ok() {
                    stopped += 1;
                }
            }
            if registry.cancelled.insert(id.to_owned()) {
                registry.cancelled_order.push_back(id.to_owned());
                if registry.cancelled_order.len() > CANCELLED_REMEMBERED {
                    if let Some(old) = registry.cancelled_order.pop_front() {
                        registry.cancelled.remove(&old);
                    }
                }
            }
        }
        Cancelled { stopped }
    }

    /// How many streams are running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        let registry = self.inner.lock().expect("registry lock");
        registry.running.values().map(Vec::len).sum()
    }
}

const CANCELLED_MESSAGE: &str = "the query was cancelled (CancelFlightInfo)";

fn cancelled_status() -> Status {
    Status::cancelled(CANCELLED_MESSAGE)
}

/// Removes a stream from the registry when it ends or is dropped.
#[derive(Debug)]
struct Registration {
    registry: Arc<Mutex<Registry>>,
    query_id: String,
    serial: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().expect("registry lock");
        if let Some(list) = registry.running.get_mut(&self.query_id) {
            list.retain(|(serial, _)| *serial != self.serial);
            if list.is_empty() {
                registry.running.remove(&self.query_id);
            }
        }
    }
}

/// A Flight data stream that ends with CANCELLED, dropping its source, once cancelled.
#[derive(Debug)]
pub struct CancellableStream<S> {
    inner: Option<S>,
    cancel: Option<oneshot::Receiver<()>>,
    done: bool,
    _guard: Registration,
}

impl<S> Stream for CancellableStream<S>
where
    S: Stream<Item = Result<FlightData, Status>> + Send + Unpin,
{
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(cancel) = self.cancel.as_mut() {
            match Pin::new(cancel).poll(cx) {
                Poll::Ready(Ok(())) => {
                    // Dropping the source stops the upstream work now, not when the
                    // client goes away.
                    self.inner = None;
                    self.cancel = None;
                    self.done = true;
                    return Poll::Ready(Some(Err(cancelled_status())));
                }
                // The registry let go without cancelling: nothing can cancel any more.
                Poll::Ready(Err(_)) => self.cancel = None,
                Poll::Pending => {}
            }
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let next = Pin::new(inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.done = true;
            self.inner = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn cancel_stops_the_stream_with_cancelled_and_drops_its_source() {
        let queries = RunningQueries::default();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<FlightData, Status>>(1);
        let source = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut stream = queries.track("q1", source).unwrap();
        tx.send(Ok(FlightData::default())).await.unwrap();
        assert!(stream.next().await.unwrap().is_ok());
        assert_eq!(queries.running(), 1);

        assert_eq!(queries.cancel(["q1", "unknown"]), Cancelled { stopped: 1 });
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::Cancelled);
        assert!(stream.next().await.is_none());
        assert!(tx.is_closed(), "the source was dropped");
        drop(stream);
        assert_eq!(queries.running(), 0);

        // A ticket of a cancelled query fails when fetched again on this server.
        let (_tx2, rx2) = tokio::sync::mpsc::channel::<Result<FlightData, Status>>(1);
        let again = queries.track("q1", tokio_stream::wrappers::ReceiverStream::new(rx2));
        assert_eq!(
            Status::from(again.unwrap_err()).code(),
            tonic::Code::Cancelled
        );
    }

    #[tokio::test]
    async fn other_queries_keep_running() {
        let queries = RunningQueries::default();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<FlightData, Status>>(1);
        let mut stream = queries
            .track("q2", tokio_stream::wrappers::ReceiverStream::new(rx))
            .unwrap();
        assert_eq!(queries.cancel(["q1"]), Cancelled { stopped: 0 });
        tx.send(Ok(FlightData::default())).await.unwrap();
        assert!(stream.next().await.unwrap().is_ok());
        drop(tx);
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn query_ids_are_unique() {
        let ids: HashSet<String> = (0..1000).map(|_| new_query_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
