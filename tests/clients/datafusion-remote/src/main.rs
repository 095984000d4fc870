//! A DataFusion program of its own that reads aws-flightsql's `store_image_tasks` through a
//! Flight SQL table provider (`datafusion-table-providers-flightsql`) and joins it with a
//! local table: which team owns each S3 bucket. Prints the result as CSV.
//!
//! ```text
//! datafusion-remote --url http://127.0.0.1:50051                  # the demo's owners
//! datafusion-remote --url http://127.0.0.1:50051 --owners owners.csv \
//!     "SELECT team, count(*) FROM store_image_tasks JOIN owners USING (bucket) GROUP BY team"
//! ```

use std::collections::HashMap;
use std::error::Error as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use datafusion_table_providers_flightsql::sql::{FlightSqlDriver, PASSWORD, QUERY, USERNAME};
use datafusion_table_providers_flightsql::FlightTableFactory;

/// The demo's report: tasks per owning team and state (`unowned` for buckets no team owns).
const DEFAULT_SQL: &str = "\
SELECT coalesce(o.team, 'unowned') AS team, t.storeTaskState, count(*) AS tasks
FROM store_image_tasks t LEFT JOIN owners o ON t.bucket = o.bucket
GROUP BY 1, 2
ORDER BY 1, 2";

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Joins aws-flightsql's store_image_tasks, read over Flight SQL, with a local \
             table of bucket owners in DataFusion; prints CSV"
)]
struct Args {
    /// The server: http://host:port (grpc://, grpc+tcp:// and grpc+tls:// are accepted too).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// A user of the server's users file (Flight handshake with Basic credentials).
    #[arg(long)]
    user: Option<String>,
    /// The user's password.
    #[arg(long, env = "AWS_FLIGHTSQL_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The query the server runs for the remote table `store_image_tasks`: DataFusion
    /// reads its whole result (filters of the local SQL are not sent to the server).
    #[arg(long, default_value = "SELECT * FROM aws.ec2.store_image_tasks")]
    remote_query: String,
    /// A CSV file (any extension) with a header and the columns `bucket` and `team`,
    /// registered as the local table `owners`; without it, the owners of `serve --demo`'s buckets.
    #[arg(long)]
    owners: Option<PathBuf>,
    /// The query to run over `store_image_tasks` and `owners` (identifiers are case
    /// sensitive: storeTaskState, amiId). Defaults to tasks per team and state.
    sql: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("datafusion-remote: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    // The table's columns are camelCase (amiId): keep identifiers as written.
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);

    // The remote table: the provider sends `remote_query` as a Flight SQL statement
    // (GetFlightInfo) and streams its endpoints with DoGet when DataFusion scans it.
    let url = origin(&args.url)?;
    let mut options = HashMap::from([(QUERY.to_owned(), args.remote_query.clone())]);
    if let Some(user) = &args.user {
        options.insert(USERNAME.to_owned(), user.clone());
        options.insert(
            PASSWORD.to_owned(),
            args.password.clone().unwrap_or_default(),
        );
    }
    let tasks = FlightTableFactory::new(Arc::new(FlightSqlDriver::new()))
        .open_table(url.clone(), options)
        .await
        .map_err(|e| e.context(format!("cannot read store_image_tasks from {url}")))?;
    ctx.register_table("store_image_tasks", Arc::new(tasks))?;

    // The local table.
    match &args.owners {
        Some(path) => {
            let path = path.to_str().ok_or_else(|| {
                DataFusionError::Configuration(format!("{} is not UTF-8", path.display()))
            })?;
            // DataFusion checks a CSV path's extension against the options': take the file's own.
            let extension = std::path::Path::new(path)
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| format!(".{e}"))
                .unwrap_or_default();
            let options = CsvReadOptions::new().file_extension(&extension);
            ctx.register_csv("owners", path, options)
                .await
                .map_err(|e| e.context(format!("cannot read the owners file {path}")))?;
        }
        None => {
            ctx.register_batch("owners", demo_owners()?)?;
        }
    }

    let sql = args.sql.as_deref().unwrap_or(DEFAULT_SQL);
    let frame = ctx.sql(sql).await?;
    let schema = Arc::clone(frame.schema().inner());
    let batches = frame.collect().await?;
    let mut writer = WriterBuilder::new()
        .with_header(true)
        .build(std::io::stdout().lock());
    if batches.is_empty() {
        // The header alone: an empty result still says which columns it has.
        writer.write(&RecordBatch::new_empty(schema))?;
    }
    for batch in &batches {
        writer.write(batch)?;
    }
    Ok(())
}

/// The URL for tonic: Flight SQL URIs (`grpc://`, `grpc+tcp://`, `grpc+tls://`) become
/// `http://` and `https://`.
fn origin(url: &str) -> Result<String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        DataFusionError::Configuration(format!(
            "--url {url:?} is not a URL: expected http://host:port"
        ))
    })?;
    let scheme = match scheme {
        "http" | "grpc" | "grpc+tcp" => "http",
        "https" | "grpc+tls" => "https",
        other => {
            return Err(DataFusionError::Configuration(format!(
                "--url {url:?}: unsupported scheme {other:?} (use http, https, grpc, grpc+tls)"
            )))
        }
    };
    Ok(format!("{scheme}://{rest}"))
}

/// Who owns the buckets of `aws-flightsql serve --demo`.
fn demo_owners() -> Result<RecordBatch> {
    let mut buckets = Vec::new();
    let mut teams = Vec::new();
    for region in ["us-east-1", "us-west-2", "eu-west-1"] {
        for (stem, team) in [
            ("ami-archive", "platform"),
            ("ami-backup", "platform"),
            ("golden-images", "security"),
        ] {
            buckets.push(format!("{stem}-{region}"));
            teams.push(team);
        }
    }
    Ok(RecordBatch::try_from_iter([
        ("bucket", Arc::new(StringArray::from(buckets)) as _),
        ("team", Arc::new(StringArray::from(teams)) as _),
    ])?)
}

/// The error and its sources on one line ("transport error" alone says little; its
/// source says "Connection refused").
fn describe(err: &DataFusionError) -> String {
    let mut text = err.to_string().replace("\ncaused by\n", ": ");
    let mut source = err.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = e.source();
    }
    text
}
