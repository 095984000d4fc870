//! Embedding: a DataFusion application registers `StoreImageTasksTable` in its own
//! `SessionContext`, next to a table of its own, and joins them; no Flight SQL server involved.
//!
//! ```text
//! cargo run --example datafusion_embedded                     # an in-process EC2 emulator
//! cargo run --example datafusion_embedded -- --endpoint-url http://127.0.0.1:PORT \
//!     --regions us-east-1,eu-west-1                           # any EC2 endpoint (or AWS)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use aws_flightsql::ec2::{AwsConfig, Credentials, Ec2Clients};
use aws_flightsql::table::{RegionSet, StoreImageTasksTable};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{SessionConfig, SessionContext};
use ec2_emulator::{Emulator, EmulatorOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };

    // Where EC2 is: the given endpoint, or an emulator with sample data started here.
    let mut emulator = None;
    let (endpoint, regions) = match flag("--endpoint-url") {
        Some(url) => {
            let regions = flag("--regions").unwrap_or_else(|| "us-east-1".into());
            (url, regions.split(',').map(str::to_owned).collect())
        }
        None => {
            let emu = Emulator::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                EmulatorOptions::default(),
            )
            .await?;
            let found = (emu.endpoint_url(), emu.regions());
            emulator = Some(emu);
            found
        }
    };
    let regions: Vec<String> = regions;
    let clients = Ec2Clients::load(&AwsConfig {
        endpoint_url: Some(endpoint),
        credentials: Credentials::Static {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID")
                .unwrap_or_else(|_| "AKIDEXAMPLE".into()),
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
                .unwrap_or_else(|_| "example-secret".into()),
        },
        default_region: regions.first().cloned(),
        ..AwsConfig::default()
    })
    .await;

    // The application's own session. The table's columns are camelCase (amiId): keep
    // identifiers as written instead of lower-casing them (or quote them: "amiId").
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table(
        "store_image_tasks",
        Arc::new(StoreImageTasksTable::new(
            clients,
            RegionSet::List(regions.clone()),
        )),
    )?;

    // A local table of the application: which team owns each region.
    let teams = RecordBatch::try_from_iter([
        ("region", Arc::new(StringArray::from(regions.clone())) as _),
        (
            "team",
            Arc::new(StringArray::from(
                (0..regions.len())
                    .map(|i| format!("team-{}", i + 1))
                    .collect::<Vec<_>>(),
            )) as _,
        ),
    ])?;
    ctx.register_batch("region_owners", teams)?;

    let batches = ctx
        .sql(
            "SELECT o.team, t.region, t.storeTaskState, count(*) AS tasks, \
                    max(t.taskStartTime) AS latest \
             FROM store_image_tasks t JOIN region_owners o ON t.region = o.region \
             GROUP BY o.team, t.region, t.storeTaskState \
             ORDER BY o.team, t.storeTaskState",
        )
        .await?
        .collect()
        .await?;
    println!("{}", pretty_format_batches(&batches)?);

    let total = ctx
        .sql("SELECT count(*) FROM store_image_tasks")
        .await?
        .collect()
        .await?;
    let total = datafusion::arrow::compute::cast(
        total[0].column(0),
        &datafusion::arrow::datatypes::DataType::Int64,
    )?;
    let total = total
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .map(|a| a.value(0))
        .unwrap_or_default();
    println!("total tasks: {total}");

    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    Ok(())
}
