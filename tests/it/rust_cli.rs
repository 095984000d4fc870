//! The `flight_sql_client` command line that ships with arrow-flight (feature `cli`), as a
//! user runs it against the server. scripts/test.sh installs it into
//! `~/.cache/aws-flightsql/tools` (or `$AWS_FLIGHTSQL_TOOLS_DIR`) with
//! `cargo install --debug arrow-flight --version 59.3.2 --features "cli flight-sql tls-ring"
//! --root <that folder>`.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{prepared_path, stdout, Fixture, REGIONS};

fn cli_binary() -> PathBuf {
    let root = prepared_path("AWS_FLIGHTSQL_TOOLS_DIR", "tools");
    let path = root.join("bin").join("flight_sql_client");
    assert!(
        path.exists(),
        "{} is missing: cargo install --debug arrow-flight --version 59.3.2 --features \"cli flight-sql tls-ring\" --root {} \
         (scripts/test.sh does this)",
        path.display(),
        root.display()
    );
    path
}

/// Runs the CLI against the fixture's server, off the runtime the servers run on.
async fn cli(fx: &Fixture, args: &[&str]) -> Output {
    let mut command = Command::new(cli_binary());
    command
        .args(["--host", "127.0.0.1", "--port"])
        .arg(fx.server.local_addr().port().to_string())
        .args(args);
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("flight_sql_client runs")
}

/// The cells of the table row that contains `key`.
fn row<'a>(table: &'a str, key: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.split('|').any(|c| c.trim() == key))
        .unwrap_or_else(|| panic!("no row {key}:\n{table}"));
    line.split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test]
async fn statements_and_prepared_statements_with_parameters() {
    let fx = Fixture::start(230).await;
    let out = cli(
        &fx,
        &[
            "statement-query",
            "SELECT region, count(*) AS tasks FROM store_image_tasks GROUP BY region",
        ],
    )
    .await;
    let table = stdout(&out);
    for region in REGIONS {
        let want = fx.emulator.tasks(region).len().to_string();
        assert_eq!(row(&table, region), [region, want.as_str()], "{table}");
    }

    let ami = fx.emulator.tasks("eu-west-1")[0].ami_id.clone();
    let out = cli(
        &fx,
        &[
            "prepared-statement-query",
            "SELECT region, count(*) AS n FROM store_image_tasks \
             WHERE region = $1 AND amiId = $2 GROUP BY region",
            "-p",
            "$1=eu-west-1",
            "-p",
            &format!("$2={ami}"),
        ],
    )
    .await;
    let table = stdout(&out);
    let want = fx
        .emulator
        .tasks("eu-west-1")
        .iter()
        .filter(|t| t.ami_id == ami)
        .count()
        .to_string();
    assert_eq!(row(&table, "eu-west-1"), ["eu-west-1", want.as_str()]);
}

#[tokio::test]
async fn metadata_commands() {
    let fx = Fixture::start(5).await;
    let table = stdout(&cli(&fx, &["catalogs"]).await);
    assert_eq!(row(&table, "aws"), ["aws"]);
    let table = stdout(&cli(&fx, &["db-schemas", "aws"]).await);
    assert_eq!(row(&table, "ec2"), ["aws", "ec2"]);
    let table = stdout(
        &cli(
            &fx,
            &[
                "tables",
                "aws",
                "--db-schema-filter",
                "ec2",
                "--table-filter",
                "store%",
            ],
        )
        .await,
    );
    assert_eq!(
        row(&table, "store_image_tasks"),
        ["aws", "ec2", "store_image_tasks", "TABLE"]
    );
    let table = stdout(&cli(&fx, &["table-types"]).await);
    assert_eq!(row(&table, "TABLE"), ["TABLE"]);
}

#[tokio::test]
async fn errors_exit_non_zero_with_the_server_message() {
    let fx = Fixture::start(5).await;
    let out = cli(
        &fx,
        &["statement-query", "SELECT nope FROM store_image_tasks"],
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}
