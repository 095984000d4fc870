//! The `sql` subcommand's client: runs one statement over Flight SQL and prints the result
//! as a table, CSV or JSON.

use std::io::Write;

use anyhow::{anyhow, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::cli::Format;

/// Connects to `uri` (`grpc://host:port`).
pub async fn connect(uri: &str) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    let http = if let Some(rest) = uri
        .strip_prefix("grpc://")
        .or(uri.strip_prefix("grpc+tcp://"))
    {
        format!("http://{rest}")
    } else if uri.starts_with("http://") {
        uri.to_owned()
    } else {
        return Err(anyhow!(
            "unsupported URI `{uri}`: use grpc://host:port (for example grpc://127.0.0.1:50051)"
        ));
    };
    let channel = Endpoint::from_shared(http)
        .with_context(|| format!("invalid URI `{uri}`"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {uri}"))?;
    Ok(FlightSqlServiceClient::new(channel))
}

/// Runs `sql` and returns its schema and batches.
pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
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
            batches.push(batch);
        }
    }
    Ok((schema, batches))
}

/// The `sql` subcommand.
pub async fn run(uri: &str, sql: &str, format: Format) -> anyhow::Result<()> {
    let mut client = connect(uri).await?;
    let (schema, batches) = query(&mut client, sql).await.map_err(|e| match e {
        FlightError::Tonic(status) => anyhow!("{:?}: {}", status.code(), status.message()),
        other => anyhow!(other),
    })?;
    let mut out = std::io::stdout().lock();
    write_batches(&mut out, &schema, &batches, format)?;
    out.flush()?;
    Ok(())
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
