//! The limits that keep one client from taking the server: concurrent queries, the query
//! timeout (stream and AWS paging stop), SQL, message and header sizes, and clients that
//! stall (never read their stream, never send their request) losing their slots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Empty, Ticket};
use aws_flightsql::limits::{QueryLimits, ServerLimits};
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use futures::StreamExt;
use prost::Message;
use tonic::Code;

use super::{count_rows, small};
use crate::common::{channel, statement, to_status, Fixture};

#[tokio::test]
async fn concurrent_queries_past_the_limit_are_resource_exhausted() {
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(2000), |options| {
        options.limits.queries.max_concurrent_queries = 1;
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(200),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    // A running stream (10 pages of 200 ms) holds the only slot...
    let mut stream = raw
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    let mut other = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let err = other
        .get_flight_info(statement("SELECT 1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("--max-concurrent-queries"),
        "{}",
        err.message()
    );
    // ...metadata-free calls are not queries...
    other.list_actions(Empty {}).await.unwrap();
    // ...and once it is gone, the next query runs.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match other.get_flight_info(statement("SELECT 1")).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the slot was never freed: {e}"),
        }
    }
}

#[tokio::test]
async fn the_query_timeout_stops_the_stream_and_its_aws_paging() {
    // 3000 tasks: 15 pages of 200, each answered after 150 ms; the timeout is 600 ms.
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(3000), |options| {
        options.limits.queries.query_timeout = Some(Duration::from_millis(600));
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(150),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    let mut stream = raw
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner();
    let mut ended_with = None;
    let mut messages = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => messages += 1,
            Err(status) => {
                ended_with = Some(status);
                break;
            }
        }
    }
    let status = ended_with.expect("the stream ended without an error");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--query-timeout"),
        "{}",
        status.message()
    );
    assert!(messages < 15, "the whole table came: {messages} messages");
    let calls_at_timeout = fx.calls("DescribeStoreImageTasks");
    // No further page is asked for: give paging the time of several more pages.
    let until = Instant::now() + Duration::from_millis(5 * 150);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = fx.calls("DescribeStoreImageTasks");
    assert!(
        calls <= calls_at_timeout + 1,
        "paging went on after the timeout: {calls_at_timeout} then {calls}"
    );
    // The server still answers.
    let mut client = fx.client().await;
    assert_eq!(count_rows(&mut client, "SELECT 1").await, 1);
}

#[tokio::test]
async fn sql_message_and_header_sizes_are_limited() {
    let fx = Fixture::start_configured(small(), |options| {
        options.limits = ServerLimits {
            queries: QueryLimits::default(),
            max_sql_bytes: 1000,
            max_message_bytes: 256 * 1024,
            max_header_bytes: 16 * 1024,
            ..ServerLimits::default()
        };
    })
    .await;
    let mut client = fx.client().await;
    let long = format!("SELECT '{}' AS s", "x".repeat(1000));
    let err = client
        .execute(long, None)
        .await
        .map_err(to_status)
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains("at most 1000") && err.message().contains("--max-sql-bytes"),
        "{}",
        err.message()
    );

    // A message over the limit (a 512 KiB statement) is refused by the gRPC layer, with
    // tonic's OUT_OF_RANGE.
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await)
        .max_encoding_message_size(usize::MAX);
    let err = raw
        .get_flight_info(statement(&format!("SELECT '{}'", "y".repeat(512 * 1024))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err}");
    assert!(err.message().contains("too large"), "{}", err.message());

    // Headers over the limit: the request is refused.
    let mut big = FlightSqlServiceClient::new(channel(&fx.server.uri()).await);
    big.set_header("x-padding", "p".repeat(32 * 1024));
    let err = big.execute("SELECT 1".into(), None).await.unwrap_err();
    // (HTTP 431, Request Header Fields Too Large, before any gRPC handling.)
    let err = to_status(err);
    assert!(err.message().contains("431"), "{err}");

    // The server still answers.
    assert_eq!(count_rows(&mut client, "SELECT 1").await, 1);
}

/// The stream window of the stalled client's DoGet streams: data beyond it is never asked
/// for.
const STALL_WINDOW: u32 = 1024;

/// A DoGet from a raw HTTP/2 client that never reads: its stream's initial window is
/// [`STALL_WINDOW`] bytes and it never releases what it received, so it never sends a
/// WINDOW_UPDATE. (Its connection task still answers the server's PINGs and SETTINGS, as a
/// live client's does.)
struct StalledDoGet {
    body: h2::RecvStream,
    /// Bytes received and not released.
    held: usize,
    _client: h2::client::SendRequest<bytes::Bytes>,
}

impl StalledDoGet {
    /// Sends DoGet `ticket` to `addr` and waits for the response and the first data.
    async fn start(addr: std::net::SocketAddr, ticket: &Ticket) -> StalledDoGet {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::Builder::new()
            .initial_window_size(STALL_WINDOW)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::post(format!(
            "http://{addr}/arrow.flight.protocol.FlightService/DoGet"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let (response, mut send) = client.send_request(request, false).unwrap();
        // A gRPC message: no compression, length, the protobuf `Ticket`.
        let ticket = ticket.encode_to_vec();
        let mut message = vec![0];
        message.extend_from_slice(&u32::try_from(ticket.len()).unwrap().to_be_bytes());
        message.extend_from_slice(&ticket);
        send.send_data(message.into(), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(
            response.headers().get("grpc-status").is_none(),
            "DoGet refused: {:?}",
            response.headers()
        );
        let mut body = response.into_body();
        let first = body.data().await.expect("data").unwrap();
        assert!(first.len() <= STALL_WINDOW as usize);
        StalledDoGet {
            body,
            held: first.len(),
            _client: client,
        }
    }

    /// Reads again: what the server had sent, then the status in its trailers.
    async fn read_to_end(mut self) -> tonic::Status {
        let read = async {
            self.body
                .flow_control()
                .release_capacity(self.held)
                .unwrap();
            while let Some(data) = self.body.data().await {
                let data = data.unwrap();
                self.body
                    .flow_control()
                    .release_capacity(data.len())
                    .unwrap();
            }
            self.body.trailers().await.unwrap().expect("trailers")
        };
        let trailers = tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the stream ends once the client reads");
        tonic::Status::from_header_map(&trailers).expect("a grpc-status")
    }
}

/// A server on an emulator of 2000 tasks (10 pages, far more than [`STALL_WINDOW`]) with
/// `limits`, its metrics, and a DoGet ticket for all of them.
async fn stall_fixture(
    limits: QueryLimits,
) -> (Fixture, Arc<aws_flightsql::metrics::Metrics>, Ticket) {
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(2000), |options| {
        options.limits.queries = limits;
    })
    .await;
    let metrics = fx.server.metrics();
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    (fx, metrics, ticket)
}

/// Runs `sql` as soon as a slot is free (RESOURCE_EXHAUSTED until then, for at most 20 s);
/// returns its row count.
async fn rows_once_a_slot_is_free(fx: &Fixture, sql: &str) -> usize {
    let mut client = fx.client().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match aws_flightsql::client::query(&mut client, sql)
            .await
            .map_err(to_status)
        {
            Ok((_, batches)) => return batches.iter().map(RecordBatch::num_rows).sum(),
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no slot was freed: {e}"),
        }
    }
}

/// Waits (at most 10 s) until the metrics text contains `line`.
async fn metric_line(metrics: &aws_flightsql::metrics::Metrics, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.encode().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no `{line}` in\n{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stalled_clients_lose_their_slots_after_the_client_stall_timeout() {
    const STALL: Duration = Duration::from_secs(2);
    let (fx, metrics, ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 2,
        client_stall_timeout: Some(STALL),
        ..QueryLimits::default()
    })
    .await;
    let started = Instant::now();
    let addr = fx.server.local_addr();
    let stalled = [
        StalledDoGet::start(addr, &ticket).await,
        StalledDoGet::start(addr, &ticket).await,
    ];
    // Two clients that do not read hold both slots...
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < STALL, "too slow to see the slots held");
    // ...until the stall timeout ends their streams: then everyone else's queries run.
    assert_eq!(
        rows_once_a_slot_is_free(&fx, "SELECT * FROM store_image_tasks").await,
        2000
    );
    assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"stalled\"} 2",
    )
    .await;
    assert!(!metrics.encode().contains("reason=\"timeout\""));
    // Both slots are free: two queries at once run.
    let (a, b) = tokio::join!(fx.query("SELECT 1"), fx.query("SELECT 2"));
    a.unwrap();
    b.unwrap();
    // A stalled client that reads again gets what the server had sent, then the reason.
    for stream in stalled {
        let status = stream.read_to_end().await;
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
        assert!(
            status.message().contains("--client-stall-timeout"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn the_query_timeout_ends_a_stalled_stream_when_the_stall_timeout_is_off() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let (fx, metrics, ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 1,
        query_timeout: Some(TIMEOUT),
        client_stall_timeout: None,
    })
    .await;
    let started = Instant::now();
    let stalled = StalledDoGet::start(fx.server.local_addr(), &ticket).await;
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < TIMEOUT, "too slow to see the slot held");
    // The query timeout counts wall time, read or not.
    assert_eq!(rows_once_a_slot_is_free(&fx, "SELECT 1").await, 1);
    assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"timeout\"} 1",
    )
    .await;
    assert!(!metrics.encode().contains("reason=\"stalled\""));
    let status = stalled.read_to_end().await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--query-timeout"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_stream_waiting_on_slow_aws_pages_is_not_a_stalled_client() {
    // 3 pages of 200, each answered after 700 ms; the stall timeout is 300 ms.
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(600), |options| {
        options.limits.queries.client_stall_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let metrics = fx.server.metrics();
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(700),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut client = fx.client().await;
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        600
    );
    assert!(
        !metrics.encode().contains("streams_ended_total{"),
        "{}",
        metrics.encode()
    );
}

/// A client that sends a statement RPC's headers and never its message loses its slot after
/// the stall timeout too: the slot is taken before the request is read.
#[tokio::test]
async fn a_client_that_never_sends_its_request_loses_its_slot() {
    const STALL: Duration = Duration::from_secs(2);
    let (fx, metrics, _ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 1,
        client_stall_timeout: Some(STALL),
        ..QueryLimits::default()
    })
    .await;
    let addr = fx.server.local_addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{addr}/arrow.flight.protocol.FlightService/GetFlightInfo"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let started = Instant::now();
    // Headers only: the message never comes (the stream stays open).
    let (response, _send) = client.send_request(request, false).unwrap();
    // The slot is held: others are refused until the stall timeout frees it.
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < STALL, "too slow to see the slot held");
    assert_eq!(rows_once_a_slot_is_free(&fx, "SELECT 1").await, 1);
    assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"stalled\"} 1",
    )
    .await;
    // The silent client is told why.
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer")
        .unwrap();
    let status = match tonic::Status::from_header_map(response.headers()) {
        Some(status) => status,
        None => {
            let mut body = response.into_body();
            while body.data().await.is_some() {}
            let trailers = body.trailers().await.unwrap().expect("trailers");
            tonic::Status::from_header_map(&trailers).expect("a grpc-status")
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--client-stall-timeout"),
        "{}",
        status.message()
    );
}
