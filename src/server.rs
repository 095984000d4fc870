//! Wires the layers together and serves them: loads the AWS configuration, builds the
//! catalog and the Flight SQL service, and runs it (with the gRPC health service, the RPC
//! observation layer and the metrics endpoint) on a listening socket until shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::auth::{AuthOptions, Authenticate};
use crate::catalog::Catalog;
use crate::ec2::{AwsConfig, Ec2Clients, WriteGate};
use crate::flight::FlightSqlHandler;
use crate::limits::{QueryLimiter, ServerLimits};
use crate::metrics::Metrics;
use crate::observe::{Observe, RpcState};
use crate::rpc_layer::RpcLayer;
use crate::table::AwaitLimits;
use crate::tls::TlsFiles;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// Which regions a query asks when its `WHERE` names none (one type with the table's).
pub use crate::table::RegionSet as Regions;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How to reach AWS.
    pub aws: AwsConfig,
    /// Regions asked by default.
    pub regions: Regions,
    /// Refuse every INSERT before any AWS call, and say so in GetSqlInfo.
    pub read_only: bool,
    /// Serve Prometheus metrics on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Log queries slower than this.
    pub slow_query: Option<Duration>,
    /// HTTP/2 PING interval on quiet connections.
    pub keepalive: Duration,
    /// The bounds of AWAIT (`--max-await`, `--min-await-interval`).
    pub awaiting: AwaitLimits,
    /// Who may connect and write.
    pub auth: AuthOptions,
    /// TLS (and mutual TLS); `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// Concurrent queries, query timeout, SQL, message and header sizes.
    pub limits: ServerLimits,
}

impl ServerOptions {
    /// Options for `listen` with everything else at its default.
    pub fn new(listen: SocketAddr) -> Self {
        ServerOptions {
            listen,
            aws: AwsConfig::default(),
            regions: Regions::Default,
            read_only: false,
            metrics_listen: None,
            slow_query: Some(Duration::from_secs(5)),
            keepalive: DEFAULT_KEEPALIVE,
            awaiting: AwaitLimits::default(),
            auth: AuthOptions::default(),
            tls: None,
            limits: ServerLimits::default(),
        }
    }
}

/// How often a quiet connection gets an HTTP/2 PING (CLIENT-COMPAT: at most ~5 s of silence).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(4);
/// How long a PING may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Flight SQL server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: Arc<RpcState>,
    health: HealthReporter,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    metrics_task: Option<JoinHandle<()>>,
    tls: bool,
    writes: Arc<WriteGate>,
}

impl Server {
    /// Loads the AWS configuration, binds `options.listen` and starts serving.
    pub async fn start(options: ServerOptions) -> anyhow::Result<Server> {
        // One registry: the server's RPC metrics and the AWS side's, which its clients count.
        let metrics = Arc::new(Metrics::new(Arc::clone(&options.aws.metrics)));
        // Refusals first: no AWS configuration is loaded for a server that cannot start.
        let authenticator = Arc::new(
            options
                .auth
                .authenticator(options.listen)?
                .with_metrics(Arc::clone(&metrics)),
        );
        let tls = options
            .tls
            .as_ref()
            .map(TlsFiles::server_config)
            .transpose()?;
        let clients = Ec2Clients::load(&options.aws).await;
        let writes = clients.writes();
        let limits = &options.limits;
        let catalog = Catalog::new(clients, options.regions, options.read_only)?
            .with_max_memory(limits.max_memory)?
            .with_max_aws_calls_per_query(
                (limits.max_aws_calls_per_query > 0).then_some(limits.max_aws_calls_per_query),
            )
            .with_max_watch(limits.max_watch)
            .with_await_limits(options.awaiting);
        let handler = FlightSqlHandler::new(catalog, options.read_only)
            .with_metrics(Arc::clone(&metrics))
            .with_slow_query_log(options.slow_query)
            .with_limits(&options.limits);
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        let (metrics_addr, metrics_task) = match options.metrics_listen {
            Some(at) => {
                let (bound, task) = crate::metrics::serve(Arc::clone(&metrics), at).await?;
                tracing::info!(addr = %bound, "Prometheus metrics at /metrics");
                (Some(bound), Some(task))
            }
            None => (None, None),
        };
        let state = Arc::new(RpcState::new(metrics));
        let (health, health_service) = tonic_health::server::health_reporter();
        let flight = handler.into_server();
        let (tx, rx) = oneshot::channel::<()>();
        let with_tls = tls.is_some();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("invalid TLS certificate or key")?;
        }
        if !authenticator.enabled() {
            tracing::warn!(%addr, "no users file: every client that reaches the server may query and INSERT");
        }
        let task = tokio::spawn(
            builder
                .http2_max_header_list_size(options.limits.max_header_bytes)
                // Something goes over the connection at least every few seconds while a
                // stream waits on slow AWS pages, so proxies do not drop it as idle.
                .http2_keepalive_interval(Some(options.keepalive))
                .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
                .layer(RpcLayer(Observe(Arc::clone(&state))))
                .layer(RpcLayer(Authenticate(authenticator)))
                .layer(RpcLayer(
                    QueryLimiter::new(options.limits.queries)
                        .with_metrics(Arc::clone(&state.metrics)),
                ))
                .add_service(health_service)
                .add_service(flight)
                .serve_with_incoming_shutdown(connections(listener), async {
                    let _ = rx.await;
                }),
        );
        // Ready: the listener is bound and the services are in place.
        for service in ["", FLIGHT_SERVICE] {
            health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        tracing::info!(%addr, "Flight SQL server listening");
        Ok(Server {
            addr,
            metrics_addr,
            state,
            health,
            shutdown: Some(tx),
            task,
            metrics_task,
            tls: with_tls,
            writes,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's metrics (what `--metrics-listen` serves), the AWS side's included.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// The bound address of the metrics endpoint, when it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The Flight SQL URI clients connect to, e.g. `grpc://127.0.0.1:50051`, or
    /// `grpc+tls://...` when the server serves TLS.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "grpc+tls" } else { "grpc" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets running calls finish, and waits for the server to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown_within(Duration::MAX).await
    }

    /// Resolves once no RPC runs and no INSERT finished in the last [`COUNT_FETCH_TIME`]:
    /// an INSERT that ran as a query just handed its client a ticket of its count, served
    /// while draining, and the server stays for that fetch or the outcome would be lost.
    async fn drained(&self) {
        loop {
            while self.state.metrics.in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            match self.writes.last_finished() {
                Some(at) if at.elapsed() < COUNT_FETCH_TIME => {
                    tokio::time::sleep_until((at + COUNT_FETCH_TIME).into()).await;
                }
                _ => return,
            }
        }
    }

    /// Shuts down gracefully: reports NOT_SERVING and refuses new RPCs (health checks
    /// excepted), lets running ones finish for up to `grace`, then stops; RPCs still running
    /// then are cancelled, and with them their AWS paging.
    pub async fn shutdown_within(mut self, grace: Duration) -> anyhow::Result<()> {
        for service in ["", FLIGHT_SERVICE] {
            self.health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        self.state.start_draining();
        let deadline = tokio::time::Instant::now() + grace.min(Duration::from_secs(86_400));
        let mut drained = tokio::time::timeout_at(deadline, self.drained())
            .await
            .is_ok();
        if !drained {
            // An INSERT cut off halfway would lose its report: no create is sent from now
            // on, the running INSERTs finish the creates in flight and send their reports
            // (what they created, what they did not send), then the server stops.
            self.writes.stop();
            if self.writes.running() > 0 {
                tracing::warn!(
                    inserts = self.writes.running(),
                    "shutdown grace period over: no more creates are sent; waiting for the \
                     running INSERTs to report"
                );
                if tokio::time::timeout(WRITE_REPORT_TIME, self.writes.idle())
                    .await
                    .is_err()
                {
                    tracing::error!(
                        "INSERTs still running {WRITE_REPORT_TIME:?} after the grace period: \
                         stopping them; their creates may have been applied (check with SELECT)"
                    );
                }
                // The reports (and count tickets) are on their way: a moment for them to
                // leave and be fetched, not for the queries that still stream.
                drained = tokio::time::timeout(CLOSE_TIME + COUNT_FETCH_TIME, self.drained())
                    .await
                    .is_ok();
            }
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(metrics) = self.metrics_task.take() {
            metrics.abort();
        }
        // Closing the connections needs the clients' cooperation (HTTP/2 GOAWAY and PING):
        // a client that does not answer must not hold the server up past the grace period.
        let close_by = deadline.max(tokio::time::Instant::now() + CLOSE_TIME);
        let finished = if drained {
            tokio::time::timeout_at(close_by, &mut self.task).await.ok()
        } else {
            None
        };
        let finished = match finished {
            Some(finished) => finished,
            None => {
                tracing::warn!(
                    running = self.state.metrics.in_flight(),
                    "shutdown grace period over: cancelling what is still running"
                );
                self.task.abort();
                (&mut self.task).await
            }
        };
        match finished {
            Ok(result) => result?,
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// How long INSERTs still running when the grace ends may take to finish the creates in
/// flight and report (each create attempt has its own timeout; no new one is sent).
const WRITE_REPORT_TIME: Duration = Duration::from_secs(30);

/// How long a drained server waits, after an INSERT finished, for its client to fetch the
/// ticket that carries the count.
const COUNT_FETCH_TIME: Duration = Duration::from_secs(2);

/// Time allowed to close idle connections once nothing runs any more.
const CLOSE_TIME: Duration = Duration::from_secs(2);

/// The health-check name of the Flight service.
const FLIGHT_SERVICE: &str = "arrow.flight.protocol.FlightService";

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(metrics) = self.metrics_task.take() {
            metrics.abort();
        }
    }
}

/// The accepted connections, with TCP_NODELAY: `serve_with_incoming` ignores the builder's
/// `tcp_nodelay`, and without it every small gRPC reply waits out Nagle and the client's
/// delayed ACK (~40 ms per unary RPC).
fn connections(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_tcp_nodelay() {
        use futures::StreamExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = connections(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
