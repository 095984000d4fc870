//! Test fixture: an EC2 emulator and a Flight SQL server, both on 127.0.0.1:0, and a
//! Flight SQL client connected to the server. Both servers stop when the fixture drops.

#![allow(dead_code)]

pub mod secure;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Schema, TimestampMillisecondType};
use arrow_flight::sql::client::FlightSqlServiceClient;
use aws_flightsql::ec2::{AwsConfig, Credentials};
use aws_flightsql::server::{Regions, Server, ServerOptions};
use ec2_emulator::{Emulator, EmulatorOptions, TaskView};
use tonic::transport::Channel;

pub const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];

pub struct Fixture {
    pub emulator: Emulator,
    pub server: Server,
}

impl Fixture {
    /// The three regions with `tasks_per_region` tasks each, on a frozen clock.
    pub async fn start(tasks_per_region: usize) -> Fixture {
        Self::start_with(EmulatorOptions {
            regions: REGIONS.iter().map(|r| r.to_string()).collect(),
            tasks_per_region,
            freeze_time: true,
            ..EmulatorOptions::default()
        })
        .await
    }

    pub async fn start_with(options: EmulatorOptions) -> Fixture {
        Self::start_full(options, false).await
    }

    /// Like `start_with`, with the server's `--read-only` setting.
    pub async fn start_full(options: EmulatorOptions, read_only: bool) -> Fixture {
        Self::start_configured(options, |server| server.read_only = read_only).await
    }

    /// Like `start_with`, with the server's options changed by `configure` (auth, TLS,
    /// limits).
    pub async fn start_configured(
        options: EmulatorOptions,
        configure: impl FnOnce(&mut ServerOptions),
    ) -> Fixture {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let emulator = Emulator::start(any_port, options)
            .await
            .expect("emulator starts");
        let mut server_options = ServerOptions {
            listen: any_port,
            aws: AwsConfig {
                endpoint_url: Some(emulator.endpoint_url()),
                credentials: Credentials::Static {
                    access_key_id: "AKIDTEST".into(),
                    secret_access_key: "test-secret".into(),
                },
                default_region: Some("us-east-1".into()),
                ..AwsConfig::default()
            },
            regions: Regions::List(emulator.regions()),
            ..ServerOptions::new(any_port)
        };
        configure(&mut server_options);
        let server = Server::start(server_options).await.expect("server starts");
        Fixture { emulator, server }
    }

    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        aws_flightsql::client::connect(&self.server.uri())
            .await
            .expect("client connects")
    }

    /// Runs `sql`, returning the FlightInfo schema and the batches as DoGet sent them.
    pub async fn query(&self, sql: &str) -> Result<(Schema, Vec<RecordBatch>), tonic::Status> {
        let mut client = self.client().await;
        aws_flightsql::client::query(&mut client, sql)
            .await
            .map_err(to_status)
    }

    /// The plan text `sql` (an `EXPLAIN` or `EXPLAIN ANALYZE` statement) answers: its `plan`
    /// column, a line per row.
    pub async fn explain(&self, sql: &str) -> String {
        let (_, batches) = self.query(sql).await.unwrap();
        let mut lines = Vec::new();
        for b in &batches {
            let plans = b.column(1).as_string::<i32>();
            lines.extend((0..b.num_rows()).map(|i| plans.value(i).to_owned()));
        }
        lines.join("\n")
    }

    /// Runs a data-changing statement (DoPut CommandStatementUpdate).
    pub async fn update(&self, sql: &str) -> Result<i64, tonic::Status> {
        let mut client = self.client().await;
        client
            .execute_update(sql.to_owned(), None)
            .await
            .map_err(to_status)
    }

    /// How many requests of `action` the emulator received.
    pub fn calls(&self, action: &str) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|r| r.action == action)
            .count()
    }

    /// The tasks the emulator lists for `ami` in `region`.
    pub fn tasks_of(&self, region: &str, ami: &str) -> Vec<TaskView> {
        self.emulator
            .tasks(region)
            .into_iter()
            .filter(|t| t.ami_id == ami)
            .collect()
    }

    /// The DescribeStoreImageTasks requests the emulator received, per region.
    pub fn describe_calls(&self) -> BTreeMap<String, usize> {
        let mut calls = BTreeMap::new();
        for r in self.emulator.requests() {
            if r.action == "DescribeStoreImageTasks" {
                *calls.entry(r.region.unwrap_or_default()).or_default() += 1;
            }
        }
        calls
    }
}

/// `INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ...`, a row per
/// (region, AMI, bucket).
pub fn insert_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    let values = rows
        .into_iter()
        .map(|(region, ami, bucket)| format!("('{region}', '{ami}', '{bucket}')"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO store_image_tasks (region, amiId, bucket) VALUES {values}")
}

pub fn to_status(e: arrow_flight::error::FlightError) -> tonic::Status {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => *s,
        other => tonic::Status::unknown(other.to_string()),
    }
}

/// A row of the full table, comparable with the emulator's view.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub region: String,
    pub ami_id: Option<String>,
    pub bucket: Option<String>,
    pub progress: Option<i32>,
    pub key: Option<String>,
    pub reason: Option<String>,
    pub state: Option<String>,
    pub start_ms: Option<i64>,
}

impl From<&TaskView> for Row {
    fn from(t: &TaskView) -> Row {
        Row {
            region: t.region.clone(),
            ami_id: Some(t.ami_id.clone()),
            bucket: Some(t.bucket.clone()),
            progress: Some(t.progress_percentage),
            key: Some(t.s3_object_key.clone()),
            reason: t.store_task_failure_reason.clone(),
            state: Some(t.store_task_state.clone()),
            start_ms: Some(t.task_start_time.timestamp_millis()),
        }
    }
}

fn string(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let col = batch.column_by_name(name).expect(name).as_string::<i32>();
    (!col.is_null(i)).then(|| col.value(i).to_owned())
}

/// The rows of `SELECT *` batches.
pub fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let progress = b
                .column_by_name("progressPercentage")
                .unwrap()
                .as_primitive::<Int32Type>();
            let start = b
                .column_by_name("taskStartTime")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            out.push(Row {
                region: string(b, "region", i).expect("region is never null"),
                ami_id: string(b, "amiId", i),
                bucket: string(b, "bucket", i),
                progress: (!progress.is_null(i)).then(|| progress.value(i)),
                key: string(b, "s3objectKey", i),
                reason: string(b, "storeTaskFailureReason", i),
                state: string(b, "storeTaskState", i),
                start_ms: (!start.is_null(i)).then(|| start.value(i)),
            });
        }
    }
    out
}

/// A catalog reading from `emulator` and a session with `options` set (for tests that plan
/// through the library, as a DataFusion application would).
pub async fn catalog_for(
    emulator: &Emulator,
    options: &[(&str, &str)],
) -> (
    datafusion::prelude::SessionContext,
    aws_flightsql::catalog::Catalog,
) {
    let clients = aws_flightsql::ec2::Ec2Clients::load(&AwsConfig {
        endpoint_url: Some(emulator.endpoint_url()),
        credentials: Credentials::Static {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "test-secret".into(),
        },
        default_region: Some("us-east-1".into()),
        ..AwsConfig::default()
    })
    .await;
    let catalog = aws_flightsql::catalog::Catalog::new(
        clients,
        aws_flightsql::table::RegionSet::List(emulator.regions()),
        false,
    )
    .unwrap();
    let ctx = catalog
        .session(None, None, options.iter().copied())
        .unwrap();
    (ctx, catalog)
}

/// The stdout of a command that must succeed; on failure, the assertion shows both streams.
pub fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path that `scripts/test.sh` prepares: `$env` when set, else `~/.cache/aws-flightsql/`
/// joined with `default`.
pub fn prepared_path(env: &str, default: &str) -> std::path::PathBuf {
    std::env::var_os(env)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/aws-flightsql")
                .join(default)
        })
}

/// A raw gRPC channel to a server's `grpc://` URI.
pub async fn channel(uri: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(uri.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The Flight descriptor of a `CommandStatementQuery` for `sql`.
pub fn statement(sql: &str) -> arrow_flight::FlightDescriptor {
    use arrow_flight::sql::ProstMessageExt;
    use prost::Message;
    arrow_flight::FlightDescriptor::new_cmd(
        arrow_flight::sql::CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec(),
    )
}

/// `message` as a request carrying the metadata `key: value`, when there is a value.
pub fn with_metadata<T>(message: T, key: &'static str, value: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = value {
        request.metadata_mut().insert(key, value.parse().unwrap());
    }
    request
}

/// Every batch of every endpoint of `info`, fetched with `client`.
pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    use futures::TryStreamExt;
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        let batches: Vec<RecordBatch> = client
            .do_get(endpoint.ticket.expect("an endpoint has a ticket"))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.extend(batches);
    }
    out
}

/// The `table_schema` of row `row` of a GetTables answer (`include_schema`).
pub fn table_schema(batch: &RecordBatch, row: usize) -> Schema {
    let ipc = batch
        .column_by_name("table_schema")
        .expect("GetTables with include_schema")
        .as_binary::<i32>()
        .value(row)
        .to_vec();
    Schema::try_from(arrow_flight::IpcMessage(ipc.into())).unwrap()
}

/// The first value of `column` of `batch` as an i64 (an INSERT's `count`, a `count(*)`).
pub fn first_count(batch: &RecordBatch, column: usize) -> i64 {
    let count = arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Int64)
        .expect("a count casts to Int64");
    count.as_primitive::<arrow::datatypes::Int64Type>().value(0)
}
