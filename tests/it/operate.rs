//! Running it in production: configuration, health, metrics, query ids in logs and
//! response metadata, graceful shutdown on SIGTERM.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::FlightDescriptor;
use aws_flightsql::ec2::{AwsConfig, Credentials};
use aws_flightsql::server::{Regions, Server, ServerOptions};
use common::Fixture;
use ec2_emulator::{ConfigUpdate, Emulator, EmulatorOptions};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn emulator(tasks: usize) -> Emulator {
    Emulator::start(any_port(), EmulatorOptions::one_frozen_region(tasks))
        .await
        .unwrap()
}

fn options(emulator: &Emulator, metrics: bool) -> ServerOptions {
    ServerOptions {
        listen: any_port(),
        aws: AwsConfig {
            endpoint_url: Some(emulator.endpoint_url()),
            credentials: Credentials::Static {
                access_key_id: "AKIDOPS".into(),
                secret_access_key: "ops-secret".into(),
            },
            default_region: Some("us-east-1".into()),
            ..AwsConfig::default()
        },
        regions: Regions::List(emulator.regions()),
        metrics_listen: metrics.then(any_port),
        ..ServerOptions::new(any_port())
    }
}

async fn health(server: &Server) -> Result<ServingStatus, tonic::Status> {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.local_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status())
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in\n{text}"))
}

#[tokio::test]
async fn metrics_count_rpcs_aws_calls_cache_and_created_tasks() {
    let emu = emulator(450).await;
    let server = Server::start(options(&emu, true)).await.unwrap();
    let mut client = aws_flightsql::client::connect(&server.uri()).await.unwrap();
    let sql = "SELECT * FROM store_image_tasks";
    aws_flightsql::client::query(&mut client, sql)
        .await
        .unwrap();
    aws_flightsql::client::query(&mut client, sql)
        .await
        .unwrap();
    assert!(
        aws_flightsql::client::query(&mut client, "SELECT nope FROM store_image_tasks")
            .await
            .is_err()
    );
    let ami = emu.storable_amis("us-east-1")[0].clone();
    let bucket = emu.buckets("us-east-1")[0].clone();
    client
        .execute_update(
            format!("INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"),
            None,
        )
        .await
        .unwrap();

    let url = format!("http://{}/metrics", server.metrics_addr().unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let p = "aws_flightsql_";
    assert_eq!(
        metric(
            &text,
            &format!("{p}flight_rpcs_total{{method=\"DoGet\",status=\"Ok\"}}")
        ),
        2.0
    );
    assert!(
        metric(
            &text,
            &format!("{p}flight_rpcs_total{{method=\"GetFlightInfo\",status=\"InvalidArgument\"}}")
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{p}flight_rpc_seconds_count{{method=\"DoGet\",status=\"Ok\"}}")
        ),
        2.0
    );
    // 3 pages, once: the second query came from the cache.
    assert_eq!(
        metric(&text, &format!("{p}aws_calls_total{{region=\"us-east-1\",action=\"DescribeStoreImageTasks\",outcome=\"ok\"}}")),
        3.0 + 1.0, // and the INSERT's in-progress check
    );
    assert_eq!(
        metric(&text, &format!("{p}cache_lookups_total{{result=\"hit\"}}")),
        3.0
    );
    assert_eq!(
        metric(&text, &format!("{p}cache_lookups_total{{result=\"miss\"}}")),
        3.0
    );
    assert_eq!(
        metric(&text, &format!("{p}aws_calls_total{{region=\"us-east-1\",action=\"CreateStoreImageTask\",outcome=\"ok\"}}")),
        1.0
    );
    assert_eq!(metric(&text, &format!("{p}store_tasks_created_total")), 1.0);
    assert!(metric(&text, &format!("{p}streamed_bytes_total")) > 10_000.0);
    assert_eq!(metric(&text, &format!("{p}streamed_rows_total")), 900.0);
    assert_eq!(
        metric(&text, &format!("{p}flight_rpcs_in_flight")),
        1.0 - 1.0
    );
}

/// A bare Flight client on `uri` (`grpc://` or `http://`), for the tests that read the
/// answers' headers.
async fn raw_flight(uri: &str) -> FlightServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(uri.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FlightServiceClient::new(channel)
}

/// The GetFlightInfo answer for `sql`, headers included.
async fn statement_info(
    flight: &mut FlightServiceClient<Channel>,
    sql: &str,
) -> tonic::Response<arrow_flight::FlightInfo> {
    let cmd = CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    };
    flight
        .get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .unwrap()
}

/// The `x-query-id` header of an answer.
fn query_id_header(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get("x-query-id")
        .expect("an x-query-id header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Reads a DoGet answer to its end: the rows it carried.
async fn rows_of(response: tonic::Response<tonic::Streaming<arrow_flight::FlightData>>) -> usize {
    let batches: Vec<_> =
        FlightRecordBatchStream::new_from_flight_data(response.into_inner().map_err(Into::into))
            .try_collect()
            .await
            .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test]
async fn responses_carry_a_query_id() {
    let fx = Fixture::start(5).await;
    let mut flight = raw_flight(&format!("http://{}", fx.server.local_addr())).await;
    let response = statement_info(&mut flight, "SELECT 1").await;
    let id = query_id_header(response.metadata());
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().to_string(), id);
}

/// Starts `SELECT * FROM store_image_tasks` on the server at `uri` and waits for its first
/// batch: the client, the rest of the stream, and the first batch's row count.
async fn select_all_first_batch(
    uri: &str,
) -> (
    FlightSqlServiceClient<Channel>,
    FlightRecordBatchStream,
    usize,
) {
    let mut client = aws_flightsql::client::connect(uri).await.unwrap();
    let info = client
        .execute("SELECT * FROM store_image_tasks".into(), None)
        .await
        .unwrap();
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    let rows = stream.try_next().await.unwrap().unwrap().num_rows();
    (client, stream, rows)
}

#[tokio::test]
async fn draining_reports_not_serving_refuses_new_queries_and_lets_running_ones_finish() {
    let emu = emulator(1000).await;
    emu.update_config(ConfigUpdate {
        latency_ms: Some(150),
        ..ConfigUpdate::default()
    })
    .unwrap();
    let server = Server::start(options(&emu, false)).await.unwrap();
    assert_eq!(health(&server).await.unwrap(), ServingStatus::Serving);
    let uri = server.uri();
    let (_client, mut stream, mut rows) = select_all_first_batch(&uri).await;

    let addr = server.local_addr();
    let shutdown = tokio::spawn(server.shutdown_within(Duration::from_secs(30)));
    // Draining: health says NOT_SERVING, a new query is refused, the running one goes on.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = loop {
        let s = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if s != ServingStatus::Serving {
            break s;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(status, ServingStatus::NotServing);
    let mut other = aws_flightsql::client::connect(&uri).await.unwrap();
    let err = aws_flightsql::client::query(&mut other, "SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(common::to_status(err).code(), tonic::Code::Unavailable);
    while let Some(batch) = stream.try_next().await.unwrap() {
        rows += batch.num_rows();
    }
    assert_eq!(rows, 1000);
    shutdown.await.unwrap().unwrap();
}

/// The binary, serving an emulator; killed on drop.
struct Binary {
    child: Child,
    uri: String,
}

/// `serve` on 127.0.0.1:0 with `args`, static credentials, us-east-1, no instance metadata,
/// and both output streams piped.
fn serve_command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDBIN")
        .env("AWS_SECRET_ACCESS_KEY", "bin-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl Binary {
    fn start(args: &[&str]) -> Binary {
        let mut child = serve_command(args).env("RUST_LOG", "info").spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines() {
            if let Some(uri) = line.unwrap().strip_prefix("aws-flightsql listening on ") {
                return Binary {
                    child,
                    uri: uri.trim().to_owned(),
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server exited before it was ready");
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit; returns whether it was a success and what it logged.
    fn wait(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        let mut logs = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status.success(), logs)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query in flight on the binary: an emulator of `tasks` tasks in us-east-1 answering each
/// page in 200 ms, the binary serving it with `args`, and a `SELECT *` whose first batch
/// (of `first_rows` rows) has arrived.
struct SlowQuery {
    emu: Emulator,
    bin: Binary,
    client: FlightSqlServiceClient<Channel>,
    stream: FlightRecordBatchStream,
    first_rows: usize,
}

impl SlowQuery {
    async fn start(tasks: usize, args: &[&str]) -> SlowQuery {
        let emu = emulator(tasks).await;
        emu.update_config(ConfigUpdate {
            latency_ms: Some(200),
            ..ConfigUpdate::default()
        })
        .unwrap();
        let url = emu.endpoint_url();
        let mut all_args = vec!["--endpoint-url", &url, "--regions", "us-east-1"];
        all_args.extend_from_slice(args);
        let bin = Binary::start(&all_args);
        let (client, stream, first_rows) = select_all_first_batch(&bin.uri).await;
        SlowQuery {
            emu,
            bin,
            client,
            stream,
            first_rows,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_query_finish_then_exits_zero() {
    let SlowQuery {
        emu: _emu,
        bin,
        client,
        mut stream,
        first_rows,
    } = SlowQuery::start(1000, &["--log-format", "json"]).await;
    let mut rows = first_rows;
    bin.sigterm();
    while let Some(batch) = stream.try_next().await.unwrap() {
        rows += batch.num_rows();
    }
    assert_eq!(rows, 1000, "the running query finished");
    drop(stream);
    drop(client);
    let (ok, logs) = bin.wait();
    assert!(ok, "exit 0; logs:\n{logs}");
    // JSON log lines, each RPC's with its query id.
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "rpc finished")
        .collect();
    assert!(
        finished.iter().any(|v| v["span"]["method"] == "DoGet"),
        "{logs}"
    );
    assert!(
        finished.iter().all(|v| v["span"]["query_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_grace_period_running_queries_are_cancelled_and_paging_stops() {
    let SlowQuery {
        emu,
        bin,
        client: _client,
        mut stream,
        ..
    } = SlowQuery::start(2000, &["--shutdown-grace", "300ms"]).await;
    bin.sigterm();
    let mut failed = false;
    loop {
        match stream.try_next().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the query was cut off, not reported complete");
    let (ok, logs) = bin.wait();
    assert!(ok, "exit 0; logs:\n{logs}");
    let pages = emu
        .requests()
        .iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .count();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = emu
        .requests()
        .iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .count();
    assert_eq!(pages, later, "no page was asked after the server stopped");
    assert!(pages < 10, "{pages} of 10 pages");
}

#[test]
fn check_config_prints_the_effective_configuration_and_bad_files_name_the_key() {
    let dir = common::secure::TempDir::new();
    let file = dir.write(
        "good.toml",
        "listen = \"127.0.0.1:7001\"\ncache_ttl = \"2s\"\nslow_query_ms = 100\n",
    );
    let out = Command::new(BIN)
        .args(["serve", "--check-config", "--config"])
        .arg(&file)
        .env("AWS_FLIGHTSQL_SLOW_QUERY_MS", "250")
        .args(["--cache-ttl", "9s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:7001\""), "file: {text}");
    assert!(
        text.contains("cache_ttl = \"9s\""),
        "flag over file: {text}"
    );
    assert!(
        text.contains("slow_query_ms = 250"),
        "environment over file: {text}"
    );

    let bad = dir.write(
        "bad.toml",
        "listen = \"127.0.0.1:7001\"\ncache_tl = \"2s\"\n",
    );
    let out = Command::new(BIN)
        .args(["serve", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cache_tl"), "{err}");
}

/// Relays one TCP connection, recording when bytes go from the server to the client.
pub(crate) async fn relay(
    server: SocketAddr,
) -> (
    SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = tokio::net::TcpStream::connect(server).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut cr, &mut uw).await });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            log.lock().unwrap().push(std::time::Instant::now());
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_waiting_on_slow_pages_still_gets_traffic() {
    let emu = emulator(400).await;
    let server = Server::start(ServerOptions {
        keepalive: Duration::from_millis(300),
        ..options(&emu, false)
    })
    .await
    .unwrap();
    let (via, seen) = relay(server.local_addr()).await;
    let mut client = aws_flightsql::client::connect(&format!("grpc://{via}"))
        .await
        .unwrap();
    let info = client
        .execute("SELECT * FROM store_image_tasks".into(), None)
        .await
        .unwrap();
    // Each page now takes 1.5 s: five times the keepalive interval without data.
    emu.update_config(ConfigUpdate {
        latency_ms: Some(1500),
        ..ConfigUpdate::default()
    })
    .unwrap();
    let start = std::time::Instant::now();
    let batches: Vec<_> = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 400);
    let times: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= start)
        .collect();
    let longest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest < Duration::from_millis(1000),
        "the connection was silent for {longest:?} while pages took 1.5 s"
    );
}

/// Without any region configured the server says so once, briefly, and falls back to
/// us-east-1 for statements that name none (instead of aws-config's long IMDS warnings).
#[tokio::test]
async fn a_missing_region_is_named_once_in_the_log() {
    let emu = emulator(10).await;
    let mut child = serve_command(&["--endpoint-url", &emu.endpoint_url()])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-flightsql-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-flightsql-test/credentials",
        )
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .any(|line| line.unwrap().starts_with("aws-flightsql listening on "));
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(ready, "{logs}");
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("no AWS region configured"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains("us-east-1"), "{logs}");
}

/// The binary serving an emulator whose every call takes 100 ms, and an INSERT of `rows`
/// AMIs of us-east-1 sent as a query (GetFlightInfo), running.
struct SlowInsert {
    emu: Emulator,
    bin: Binary,
    insert: tokio::task::JoinHandle<Result<arrow_flight::FlightInfo, tonic::Status>>,
    client: FlightSqlServiceClient<Channel>,
    amis: Vec<String>,
}

impl SlowInsert {
    async fn start(rows: usize, args: &[&str]) -> SlowInsert {
        let emu = emulator(1000).await;
        let amis: Vec<String> = emu.storable_amis("us-east-1")[..rows].to_vec();
        let bucket = emu.buckets("us-east-1")[0].clone();
        let url = emu.endpoint_url();
        let mut all_args = vec!["--endpoint-url", &url, "--regions", "us-east-1"];
        all_args.extend_from_slice(args);
        let bin = Binary::start(&all_args);
        emu.update_config(ConfigUpdate {
            latency_ms: Some(100),
            ..ConfigUpdate::default()
        })
        .unwrap();
        let sql = common::insert_rows(
            amis.iter()
                .map(|ami| ("us-east-1", ami.as_str(), bucket.as_str())),
        );
        let client = aws_flightsql::client::connect(&bin.uri).await.unwrap();
        let mut inserting = client.clone();
        let insert = tokio::spawn(async move {
            inserting
                .execute(sql, None)
                .await
                .map_err(common::to_status)
        });
        // SIGTERM once the creates have started.
        for _ in 0..500 {
            if creates(&emu) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(creates(&emu) > 0, "the INSERT never started creating");
        SlowInsert {
            emu,
            bin,
            insert,
            client,
            amis,
        }
    }
}

/// In-progress tasks the emulator holds for `amis`.
fn in_progress(emu: &Emulator, amis: &[String]) -> usize {
    let tasks = emu.tasks("us-east-1");
    amis.iter()
        .filter(|ami| {
            tasks
                .iter()
                .any(|t| &t.ami_id == *ami && t.store_task_state == "InProgress")
        })
        .count()
}

fn creates(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.action == "CreateStoreImageTask")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_an_insert_lets_it_finish_and_still_serves_its_count() {
    let SlowInsert {
        emu: _emu,
        bin,
        insert,
        mut client,
        amis: _,
    } = SlowInsert::start(40, &[]).await;
    bin.sigterm();
    let info = insert
        .await
        .unwrap()
        .expect("the INSERT finishes within the grace");
    // The server drains; the ticket of the INSERT's count is still served.
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = client
        .do_get(ticket)
        .await
        .map_err(common::to_status)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(common::first_count(&batches[0], 0), 40);
    // A new query is refused while draining.
    let err = client
        .execute("SELECT 1".into(), None)
        .await
        .map_err(common::to_status)
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("shutting down"), "{err}");
    drop(client);
    let (ok, logs) = bin.wait();
    assert!(ok, "exit 0; logs:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_grace_an_insert_sends_no_new_create_and_reports_every_row() {
    let SlowInsert {
        emu,
        bin,
        insert,
        client: _client,
        amis,
    } = SlowInsert::start(160, &["--shutdown-grace", "500ms"]).await;
    bin.sigterm();
    let err = insert.await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    let headline = err.message().lines().next().unwrap().to_owned();
    let number_before = |marker: &str| -> usize {
        let at = headline
            .find(marker)
            .unwrap_or_else(|| panic!("{headline}"));
        headline[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (created, not_sent) = (number_before(" created"), number_before(" not sent"));
    assert_eq!(created + not_sent, 160, "{headline}");
    assert!(not_sent > 0 && created > 0, "{headline}");
    // What the report says is what AWS holds, and nothing was sent after the stop.
    assert_eq!(in_progress(&emu, &amis), created, "{headline}");
    assert_eq!(creates(&emu), created, "{headline}");
    let (ok, logs) = bin.wait();
    assert!(ok, "exit 0; logs:\n{logs}");
    // The log carries the whole report, every row not sent included.
    assert_eq!(
        logs.matches("not_sent: us-east-1 ami-").count(),
        not_sent,
        "{logs}"
    );
}

/// User plus system CPU time of process `pid`, from /proc.
#[cfg(target_os = "linux")]
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    Duration::from_millis(ticks * 10)
}

/// A CPU-heavy query (cross joins of the demo's 750 tasks) whose client goes away stops
/// using the server's CPU at once: DataFusion's spawned tasks are aborted and its joins
/// yield to the runtime (see `catalog::yields`), so nothing keeps computing unseen.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_cpu_heavy_query_stops_using_cpu() {
    let bin = Binary::start(&["--demo"]);
    let pid = bin.child.id();
    // A count over a 4-way cross join, and a window over a 3-way one: the window's sort
    // pulled the join's batches in one poll and kept a core busy seconds after the drop.
    let queries = [
        "SELECT count(*) FROM store_image_tasks a, store_image_tasks b, \
         store_image_tasks c, store_image_tasks d \
         WHERE a.progressPercentage + b.progressPercentage + c.progressPercentage \
         + d.progressPercentage > 1000",
        "SELECT a.amiId, row_number() OVER (ORDER BY b.amiId) \
         FROM store_image_tasks a, store_image_tasks b, store_image_tasks c",
    ];
    for sql in queries.into_iter().cycle().take(4) {
        let mut client = aws_flightsql::client::connect(&bin.uri).await.unwrap();
        let info = client.execute(sql.into(), None).await.unwrap();
        let mut stream = client
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap();
        // It computes (and yields no row) for a while; then the client goes away.
        let started = cpu_time(pid);
        let running = tokio::time::timeout(Duration::from_millis(700), stream.try_next()).await;
        assert!(running.is_err(), "the cross join ended: {running:?}");
        assert!(cpu_time(pid) > started, "the query used no CPU");
        drop(stream);
        drop(client);
        // Within a second of the cancel, the server is idle again.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = cpu_time(pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = cpu_time(pid) - before;
        assert!(
            used < Duration::from_millis(300),
            "the server used {used:?} of CPU in the 2 s after the query was dropped"
        );
    }
}

/// A statement the server refuses is logged at WARN with its status, the server's message
/// and its SQL (cut at 2 KB, access key ids masked); a dry run logs what it would create.
#[tokio::test(flavor = "multi_thread")]
async fn refused_statements_are_logged_with_their_message_and_sql() {
    let emu = emulator(10).await;
    let bin = Binary::start(&[
        "--endpoint-url",
        &emu.endpoint_url(),
        "--regions",
        "us-east-1",
    ]);
    let mut session = aws_flightsql::client::Session::new(
        aws_flightsql::client::connect(&bin.uri).await.unwrap(),
    );
    let err = session
        .query_with("SELECT nope FROM store_image_tasks", |_| ())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let long = format!(
        "SELECT nope, 'AKIAABCDEFGHIJKLMNOP' AS k, '{}' AS pad FROM store_image_tasks",
        "x".repeat(3000)
    );
    session.query_with(&long, |_| ()).await.unwrap_err();
    session.flight_info("SET aws.dry_run = true").await.unwrap();
    let ami = emu.storable_amis("us-east-1")[0].clone();
    let bucket = emu.buckets("us-east-1")[0].clone();
    session
        .query_with(
            &common::insert_rows([("us-east-1", ami.as_str(), bucket.as_str())]),
            |_| (),
        )
        .await
        .unwrap();
    drop(session);
    bin.sigterm();
    let (_, logs) = bin.wait();
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("statement refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{logs}");
    assert!(refused[0].contains("status=InvalidArgument"), "{logs}");
    // The server's message, on the line (whatever its wording, it names the column).
    let message = refused[0].split("error=").nth(1).expect(&logs);
    assert!(message.contains("nope"), "{logs}");
    assert!(
        refused[0].contains("sql=SELECT nope FROM store_image_tasks"),
        "{logs}"
    );
    let cut = long.len() - aws_flightsql::observe::MAX_LOGGED_SQL_BYTES;
    assert!(
        refused[1].contains(&format!("... ({cut} more bytes)")),
        "{logs}"
    );
    assert!(refused[1].contains("AKIA****************"), "{logs}");
    assert!(!logs.contains("AKIAABCDEFGHIJKLMNOP"), "{logs}");
    assert!(
        logs.lines().any(|l| l.contains("INFO")
            && l.contains("dry run: 1 of 1 rows would be created, nothing was created")),
        "{logs}"
    );
}

/// One query, one id: the GetFlightInfo and the DoGet of a query log the same `query_id`
/// (the one its ticket carries, and the `x-query-id` of both answers), CancelFlightInfo
/// logs it too, and the cancelled ticket then fails.
#[tokio::test(flavor = "multi_thread")]
async fn get_flight_info_do_get_and_cancel_of_one_query_share_its_query_id() {
    let emu = emulator(5).await;
    let url = emu.endpoint_url();
    let bin = Binary::start(&[
        "--endpoint-url",
        &url,
        "--regions",
        "us-east-1",
        "--log-format",
        "json",
    ]);
    let mut flight = raw_flight(&bin.uri).await;
    let response = statement_info(&mut flight, "SELECT * FROM store_image_tasks").await;
    let id = query_id_header(response.metadata());
    let info = response.into_inner();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let response = flight.do_get(ticket.clone()).await.unwrap();
    assert_eq!(query_id_header(response.metadata()), id);
    assert_eq!(rows_of(response).await, 5);
    let cancel = arrow_flight::CancelFlightInfoRequest { info: Some(info) };
    flight
        .do_action(arrow_flight::Action::new(
            "CancelFlightInfo",
            cancel.encode_to_vec(),
        ))
        .await
        .unwrap();
    let err = flight.do_get(ticket).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Cancelled, "{err}");
    drop(flight);
    bin.sigterm();
    let (_, logs) = bin.wait();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for method in ["GetFlightInfo", "DoGet"] {
        assert!(
            lines
                .iter()
                .any(|v| v["fields"]["message"] == "rpc finished"
                    && v["span"]["method"] == method
                    && v["span"]["query_id"] == id.as_str()),
            "{method} {id}: {logs}"
        );
    }
    assert!(
        lines.iter().any(
            |v| v["fields"]["message"] == "cancelled" && v["fields"]["query_id"] == id.as_str()
        ),
        "{logs}"
    );
}

#[tokio::test]
async fn the_latency_histogram_names_a_querys_id_as_its_exemplar() {
    let emu = emulator(5).await;
    let server = Server::start(options(&emu, true)).await.unwrap();
    let mut flight = raw_flight(&server.uri()).await;
    let info = statement_info(&mut flight, "SELECT * FROM store_image_tasks")
        .await
        .into_inner();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let response = flight.do_get(ticket).await.unwrap();
    let id = query_id_header(response.metadata());
    assert_eq!(rows_of(response).await, 5);

    let url = format!("http://{}/metrics", server.metrics_addr().unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let exemplar = format!("# {{query_id=\"{id}\"}}");
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("aws_flightsql_flight_rpc_seconds_bucket{")
                && l.contains("method=\"DoGet\"")
                && l.contains(&exemplar)
        })
        .collect();
    assert_eq!(buckets.len(), 1, "one DoGet bucket names {id}:\n{text}");
}
