//! The server's Prometheus metrics (prometheus-client, one registry per server, no global
//! state): Flight RPCs by method and status with latency, RPCs in flight, bytes and rows
//! streamed, AWS API calls by region, action and outcome, cache hits and misses, store
//! tasks created, queries the server stopped early (query timeout, stalled client), logins
//! refused by the login throttle, and accounts queries skipped (`aws.on_account_error`).
//! Served as OpenMetrics text on `--metrics-listen` (`GET /metrics`). The AWS side's counters
//! (calls, cache, created tasks, skipped accounts) are its own crate's
//! ([`crate::ec2::metrics`]), registered here in the same registry.
//!
//! A query id would be an unbounded label (one series per query), so it is an exemplar
//! instead: each bucket of `flight_rpc_seconds` names the query id (`x-query-id`, the
//! logs' `query_id`) of the last RPC it counted, which leads from a slow bucket to that
//! query's log lines.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::{Metric, Registry};

pub use crate::ec2::metrics::{AwsLabels, AwsMetrics, CacheLabels, SkipLabels};

/// Labels of a Flight RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// The gRPC method, e.g. `DoGet`.
    pub method: String,
    /// The gRPC status code name, e.g. `Ok`, `InvalidArgument`.
    pub status: String,
}

/// The exemplar of an RPC's latency: the query it was about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryExemplar {
    /// The query id, as in `x-query-id` and the logs' `query_id`.
    pub query_id: String,
}

/// Labels of a query the server stopped early.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamEndLabels {
    /// `timeout` (`--query-timeout`) or `stalled` (the client took no data for
    /// `--client-stall-timeout`).
    pub reason: String,
}

/// Labels of a login refused by the login throttle.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    /// `locked_out` (the user name failed too often from the address) or `address` (the
    /// address failed too often, all user names together).
    pub reason: String,
}

/// All metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    rpcs: Family<RpcLabels, Counter>,
    rpc_seconds: Family<RpcLabels, HistogramWithExemplars<QueryExemplar>>,
    rpcs_in_flight: Gauge,
    bytes_streamed: Counter,
    rows_streamed: Counter,
    streams_ended: Family<StreamEndLabels, Counter>,
    logins_throttled: Family<ThrottleLabels, Counter>,
    aws: Arc<AwsMetrics>,
}

/// `metric`, registered in `registry` under `name` (after the prefix) with `help`.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Arc::default())
    }
}

impl Metrics {
    /// The server's metrics, the AWS side's `aws` among them (counted where the server's
    /// AWS clients count, [`crate::ec2::AwsConfig::metrics`]).
    pub fn new(aws: Arc<AwsMetrics>) -> Self {
        let mut r = Registry::with_prefix("aws_flightsql");
        let rpc_seconds =
            Family::<RpcLabels, HistogramWithExemplars<QueryExemplar>>::new_with_constructor(
                || HistogramWithExemplars::new(exponential_buckets(0.001, 2.0, 16)),
            );
        Metrics {
            rpcs: registered(
                &mut r,
                "flight_rpcs",
                "Flight RPCs by method and status",
                Family::default(),
            ),
            rpc_seconds: registered(
                &mut r,
                "flight_rpc_seconds",
                "Flight RPC latency, to the end of the response stream",
                rpc_seconds,
            ),
            rpcs_in_flight: registered(
                &mut r,
                "flight_rpcs_in_flight",
                "Flight RPCs (queries included) being served",
                Gauge::default(),
            ),
            bytes_streamed: registered(
                &mut r,
                "streamed_bytes",
                "Bytes of Flight response bodies sent",
                Counter::default(),
            ),
            rows_streamed: registered(
                &mut r,
                "streamed_rows",
                "Result rows sent",
                Counter::default(),
            ),
            streams_ended: registered(
                &mut r,
                "streams_ended",
                "Queries the server stopped early, by reason: timeout (--query-timeout) or \
                 stalled (the client took no data for --client-stall-timeout)",
                Family::default(),
            ),
            logins_throttled: registered(
                &mut r,
                "logins_throttled",
                "Password checks refused unchecked by the login throttle, by reason",
                Family::default(),
            ),
            registry: {
                aws.register(&mut r);
                Mutex::new(r)
            },
            aws,
        }
    }

    /// The AWS side's counters (API calls, cache lookups, created tasks, skipped accounts).
    pub fn aws(&self) -> &Arc<AwsMetrics> {
        &self.aws
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(
            &mut text,
            &self.registry.lock().expect("registry"),
        )
        .expect("writing to a String cannot fail");
        text
    }

    /// An RPC started (see `rpc_finished`).
    pub(crate) fn rpc_started(&self) {
        self.rpcs_in_flight.inc();
    }

    /// An RPC about query `query_id` ended, with this status, after this long.
    pub(crate) fn rpc_finished(&self, method: &str, status: &str, seconds: f64, query_id: &str) {
        self.rpcs_in_flight.dec();
        let labels = RpcLabels {
            method: method.to_owned(),
            status: status.to_owned(),
        };
        self.rpcs.get_or_create(&labels).inc();
        let exemplar = (!query_id.is_empty()).then(|| QueryExemplar {
            query_id: query_id.to_owned(),
        });
        self.rpc_seconds
            .get_or_create(&labels)
            .observe(seconds, exemplar, None);
    }

    /// Response body bytes sent.
    pub(crate) fn bytes_streamed(&self, n: u64) {
        self.bytes_streamed.inc_by(n);
    }

    /// Result rows sent.
    pub fn rows_streamed(&self, n: u64) {
        self.rows_streamed.inc_by(n);
    }

    /// The server stopped a query early for `reason` (`timeout` or `stalled`).
    pub(crate) fn stream_ended(&self, reason: &str) {
        self.streams_ended
            .get_or_create(&StreamEndLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A login was refused unchecked by the login throttle.
    pub(crate) fn login_throttled(&self, reason: &str) {
        self.logins_throttled
            .get_or_create(&ThrottleLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// RPCs being served now.
    pub fn in_flight(&self) -> i64 {
        self.rpcs_in_flight.get()
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped; returns the bound address.
pub async fn serve(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format() {
        let m = Metrics::default();
        m.rpc_finished("DoGet", "Ok", 0.01, "q-1");
        m.aws()
            .aws_call("us-east-1", "DescribeStoreImageTasks", "ok");
        m.aws().cache_lookup(true);
        m.stream_ended("stalled");
        m.login_throttled("locked_out");
        let text = m.encode();
        assert!(
            text.contains("aws_flightsql_flight_rpcs_total{method=\"DoGet\",status=\"Ok\"} 1"),
            "{text}"
        );
        assert!(
            text.lines().any(
                |l| l.starts_with("aws_flightsql_flight_rpc_seconds_bucket{")
                    && l.contains("method=\"DoGet\"")
                    && l.ends_with("# {query_id=\"q-1\"} 0.01")
            ),
            "{text}"
        );
        assert!(text.contains("aws_flightsql_aws_calls_total{region=\"us-east-1\",action=\"DescribeStoreImageTasks\",outcome=\"ok\"} 1"), "{text}");
        assert!(
            text.contains("aws_flightsql_cache_lookups_total{result=\"hit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("aws_flightsql_streams_ended_total{reason=\"stalled\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("aws_flightsql_logins_throttled_total{reason=\"locked_out\"} 1"),
            "{text}"
        );
    }
}
