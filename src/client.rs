//! The `sql` subcommand's client: runs one statement over Flight SQL and prints the result
//! as a table, CSV or JSON. It connects over `grpc://` or `grpc+tls://` and, for servers
//! with a users file, authenticates with a Flight handshake.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use anyhow::{anyhow, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::cli::Format;
use crate::tls::ClientTls;

/// How to connect, beyond the URI.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// TLS options for `grpc+tls://` URIs.
    pub tls: ClientTls,
    /// User name and password, sent in a Flight handshake; the bearer token it returns
    /// authenticates the calls that follow.
    pub credentials: Option<(String, String)>,
}

/// Connects to `uri` (`grpc://host:port`, or `grpc+tls://host:port` trusting the system's
/// CA certificates).
pub async fn connect(uri: &str) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    connect_with(uri, &ConnectOptions::default()).await
}

/// Connects to `uri` with `options`, and authenticates when they carry credentials.
pub async fn connect_with(
    uri: &str,
    options: &ConnectOptions,
) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    let mut client = FlightSqlServiceClient::new(channel(uri, &options.tls).await?);
    if let Some((user, password)) = &options.credentials {
        client
            .handshake(user, password)
            .await
            .map_err(|e| anyhow!("cannot authenticate as `{user}`: {}", arrow_message(e)))?;
    }
    Ok(client)
}

/// The server's message in an error from the Flight client.
fn arrow_message(e: FlightError) -> String {
    match e {
        FlightError::Tonic(status) => format!("{:?}: {}", status.code(), status.message()),
        other => other.to_string(),
    }
}

/// A gRPC channel to `uri`.
pub async fn channel(uri: &str, tls: &ClientTls) -> anyhow::Result<Channel> {
    let (http, secure) = if let Some(rest) = uri
        .strip_prefix("grpc://")
        .or(uri.strip_prefix("grpc+tcp://"))
    {
        (format!("http://{rest}"), false)
    } else if let Some(rest) = uri.strip_prefix("grpc+tls://") {
        (format!("https://{rest}"), true)
    } else if uri.starts_with("http://") {
        (uri.to_owned(), false)
    } else if uri.starts_with("https://") {
        (uri.to_owned(), true)
    } else {
        return Err(anyhow!(
            "unsupported URI `{uri}`: use grpc://host:port or grpc+tls://host:port (for \
             example grpc://127.0.0.1:50051)"
        ));
    };
    let mut endpoint =
        Endpoint::from_shared(http).with_context(|| format!("invalid URI `{uri}`"))?;
    if secure {
        let host = endpoint.uri().host().unwrap_or_default().to_owned();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        endpoint = endpoint
            .tls_config(tls.config(host)?)
            .with_context(|| format!("cannot set up TLS for {uri}"))?;
    } else if tls.ca.is_some() || tls.identity.is_some() {
        return Err(anyhow!(
            "TLS options were given but `{uri}` is not a TLS URI: use grpc+tls://"
        ));
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| anyhow!("cannot connect to {uri}: {}", error_chain(&e)))?;
    Ok(channel)
}

/// An error and its sources on one line (TLS failures hide in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Runs `sql` and returns its schema and batches.
pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    query_with(client, sql, |_| ()).await
}

/// Runs `sql`, calling `on_batch` as each batch arrives.
pub async fn query_with(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
    mut on_batch: impl FnMut(&RecordBatch),
) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    let info = client.execute(sql.to_owned(), None).await?;
    let schema = info.clone().try_decode_schema()?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| FlightError::ProtocolError("endpoint without a ticket".into()))?;
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            on_batch(&batch);
            batches.push(batch);
        }
    }
    Ok((schema, batches))
}

/// The `sql` subcommand: runs `sql`, shows a live progress line on stderr when it is a
/// terminal and the statement takes over a second, prints the result, then the row count
/// and the time taken on stderr.
pub async fn run(
    uri: &str,
    options: &ConnectOptions,
    sql: &str,
    format: Format,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut client = connect_with(uri, options).await?;
    let progress = Progress::start();
    let result = query_with(&mut client, sql, |batch| progress.batch(batch.num_rows())).await;
    progress.finish();
    let (schema, batches) = result.map_err(|e| match e {
        FlightError::Tonic(status) => anyhow!("{:?}: {}", status.code(), status.message()),
        other => anyhow!(other),
    })?;
    let mut out = std::io::stdout().lock();
    write_batches(&mut out, &schema, &batches, format)?;
    out.flush()?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    eprintln!(
        "{rows} row{} in {:.2}s",
        if rows == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `health` subcommand: exit 0 when the server's gRPC health service says SERVING.
pub async fn health(uri: &str, tls: &ClientTls) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let channel = channel(uri, tls).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| anyhow!("{:?}: {}", s.code(), s.message()))?;
    let status = response.into_inner().status();
    if status == ServingStatus::Serving {
        println!("SERVING");
        Ok(())
    } else {
        Err(anyhow!("the server is {}", status.as_str_name()))
    }
}

/// A progress line (rows, batches, elapsed) shown on a terminal after the first second.
struct Progress {
    bar: ProgressBar,
    reveal: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        bar.set_message("waiting for the first batch");
        let shown = bar.clone();
        let reveal = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::io::stderr().is_terminal() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress { bar, reveal }
    }

    fn batch(&self, rows: usize) {
        self.bar.inc(rows as u64);
        self.bar.inc_length(1);
        self.bar.set_message(format!(
            "{} rows, {} batches",
            self.bar.position(),
            self.bar.length().unwrap_or_default()
        ));
    }

    fn finish(self) {
        self.reveal.abort();
        self.bar.finish_and_clear();
    }
}

/// Writes `batches` in `format`.
pub fn write_batches(
    out: &mut impl Write,
    schema: &Schema,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let table = if batches.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    schema.clone().into(),
                )])?
            } else {
                arrow::util::pretty::pretty_format_batches(batches)?
            };
            writeln!(out, "{table}")?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone().into()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}
