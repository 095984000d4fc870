//! SELECT on aws.ec2.store_image_tasks through a real Flight SQL client, against the real
//! server and the EC2 emulator.

use crate::common;

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, TimeUnit};
use common::{rows, Fixture, Row, REGIONS};
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use futures::TryStreamExt;
use tonic::Code;

#[tokio::test]
async fn select_star_returns_exactly_the_emulators_tasks_in_every_region() {
    let fx = Fixture::start(450).await;
    let (schema, batches) = fx
        .query("SELECT * FROM aws.ec2.store_image_tasks")
        .await
        .unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "account",
            "region",
            "amiId",
            "bucket",
            "progressPercentage",
            "s3objectKey",
            "storeTaskFailureReason",
            "storeTaskState",
            "taskStartTime"
        ]
    );
    assert_eq!(
        schema.field_with_name("taskStartTime").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        batches[0].schema().as_ref(),
        &schema,
        "FlightInfo and DoGet schemas differ"
    );
    let mut got = rows(&batches);
    got.sort();
    let mut want: Vec<Row> = REGIONS
        .iter()
        .flat_map(|r| fx.emulator.tasks(r))
        .map(|t| Row::from(&t))
        .collect();
    want.sort();
    assert_eq!(got.len(), 3 * 450);
    assert_eq!(got, want);
    let states: std::collections::BTreeSet<_> =
        got.iter().filter_map(|r| r.state.clone()).collect();
    assert_eq!(states.len(), 3, "all three states appear: {states:?}");
}

#[tokio::test]
async fn a_region_with_450_tasks_arrives_as_three_batches_one_per_page() {
    let fx = Fixture::start(450).await;
    fx.emulator.clear_requests();
    let (_, batches) = fx
        .query("SELECT * FROM store_image_tasks WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, [200, 200, 50]);
    assert_eq!(fx.describe_calls(), [("us-east-1".to_string(), 3)].into());
}

#[tokio::test]
async fn projection_keeps_camel_case_names_unquoted() {
    let fx = Fixture::start(30).await;
    let (schema, batches) = fx
        .query("SELECT amiId, storeTaskState FROM store_image_tasks WHERE region = 'eu-west-1'")
        .await
        .unwrap();
    assert_eq!(schema.fields().len(), 2);
    assert_eq!(schema.field(0).name(), "amiId");
    let mut got: Vec<(String, String)> = batches
        .iter()
        .flat_map(|b| {
            let ami = b.column(0).as_string::<i32>().clone();
            let state = b.column(1).as_string::<i32>().clone();
            (0..b.num_rows()).map(move |i| (ami.value(i).to_owned(), state.value(i).to_owned()))
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = fx
        .emulator
        .tasks("eu-west-1")
        .into_iter()
        .map(|t| (t.ami_id, t.store_task_state))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn where_region_in_asks_only_those_regions() {
    let fx = Fixture::start(30).await;
    fx.emulator.clear_requests();
    let (_, batches) = fx
        .query(
            "SELECT region, count(*) AS n FROM store_image_tasks \
             WHERE region IN ('us-west-2', 'eu-west-1') GROUP BY region ORDER BY region",
        )
        .await
        .unwrap();
    let b = &batches[0];
    let regions: Vec<&str> = (0..b.num_rows())
        .map(|i| b.column(0).as_string::<i32>().value(i))
        .collect();
    assert_eq!(regions, ["eu-west-1", "us-west-2"]);
    assert_eq!(
        fx.describe_calls(),
        [("eu-west-1".to_string(), 1), ("us-west-2".to_string(), 1)].into()
    );
}

#[tokio::test]
async fn sql_errors_are_invalid_argument_and_unknown_tables_not_found() {
    let fx = Fixture::start(5).await;
    let err = fx
        .query("SELEC * FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = fx
        .query("SELECT nope FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("nope"), "{}", err.message());
    let err = fx
        .query("SELECT * FROM aws.ec2.no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = fx.query("CREATE TABLE t (a INT)").await.unwrap_err();
    assert!(
        matches!(err.code(), Code::InvalidArgument | Code::Unimplemented),
        "{err}"
    );
    assert!(err.message().contains("SELECT and INSERT"), "{err}");
    // The server keeps answering.
    fx.query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn aws_errors_name_region_code_and_request_id() {
    let fx = Fixture::start(5).await;
    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec!["DescribeStoreImageTasks".into()]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let err = fx
        .query("SELECT * FROM store_image_tasks WHERE region = 'us-west-2'")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let msg = err.message();
    assert!(msg.contains("us-west-2"), "{msg}");
    assert!(msg.contains("UnauthorizedOperation"), "{msg}");
    assert!(msg.contains("request id"), "{msg}");

    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec![]),
            fail_rate: Some(1.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let err = fx
        .query("SELECT * FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("InternalError"), "{}", err.message());
}

#[tokio::test]
async fn a_region_not_enabled_fails_the_whole_query_saying_so() {
    let fx = Fixture::start(5).await;
    // The emulator answers a region it does not serve as AWS answers one the account has
    // not enabled: AuthFailure. The query fails (no partial result) with what is wrong.
    for sql in [
        "SELECT * FROM store_image_tasks WHERE region IN ('us-east-1', 'ap-south-1')",
        "SELECT count(*) FROM store_image_tasks WHERE region = 'ap-south-1'",
    ] {
        let err = fx.query(sql).await.unwrap_err();
        let msg = err.message();
        assert_eq!(err.code(), Code::FailedPrecondition, "{sql}: {msg}");
        assert!(
            msg.starts_with(
                "region `ap-south-1` is not enabled for this account (enabled: eu-west-1, \
                 us-east-1, us-west-2)"
            ),
            "{msg}"
        );
        // AWS's own answer stays in the error: code, message, request id.
        assert!(
            msg.contains("AuthFailure: AWS was not able to validate"),
            "{msg}"
        );
        assert!(msg.contains("(request id "), "{msg}");
        assert!(!msg.contains("credentials the standard way"), "{msg}");
    }
    // DescribeRegions is asked once and its answer kept.
    fx.query("SELECT * FROM store_image_tasks WHERE region = 'ap-south-1'")
        .await
        .unwrap_err();
    assert_eq!(fx.calls("DescribeRegions"), 1);
}

#[tokio::test]
async fn a_region_predicate_naming_no_region_is_invalid_argument() {
    let fx = Fixture::start(5).await;
    for (sql, named) in [
        (
            "SELECT * FROM store_image_tasks WHERE region = 'us-east1'",
            "`us-east1` (did you mean `us-east-1`?) is not an AWS region name",
        ),
        (
            "SELECT * FROM store_image_tasks WHERE region IN ('eu-west-1', 'EU-WEST-2')",
            "`EU-WEST-2` (did you mean `eu-west-2`?) is not an AWS region name",
        ),
        (
            "SELECT * FROM store_image_tasks WHERE region IN ('nowhere', 'us_west_2')",
            "`nowhere`, `us_west_2` (did you mean `us-west-2`?) are not AWS region names",
        ),
    ] {
        let err = fx.query(sql).await.unwrap_err();
        let msg = err.message();
        assert_eq!(err.code(), Code::InvalidArgument, "{sql}: {msg}");
        assert!(msg.starts_with(named), "{msg}");
        assert!(
            msg.ends_with("Without one this server asks us-east-1, us-west-2, eu-west-1"),
            "{msg}"
        );
    }
    // Nothing was sent to AWS.
    assert_eq!(fx.calls("DescribeStoreImageTasks"), 0);
}

#[tokio::test]
async fn a_region_the_server_does_not_ask_by_default_is_asked_when_named() {
    let fx = Fixture::start_configured(
        EmulatorOptions {
            regions: vec!["us-east-1".into(), "ca-central-1".into()],
            tasks_per_region: 7,
            freeze_time: true,
            ..EmulatorOptions::default()
        },
        |server| server.regions = aws_flightsql::server::Regions::List(vec!["us-east-1".into()]),
    )
    .await;
    let (_, batches) = fx
        .query("SELECT * FROM store_image_tasks WHERE region = 'ca-central-1'")
        .await
        .unwrap();
    assert_eq!(rows(&batches).len(), 7);
    assert_eq!(
        fx.describe_calls().keys().collect::<Vec<_>>(),
        ["ca-central-1"]
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_paging() {
    // 2,000 tasks = 10 pages of 200; each call takes 20 ms, so all of them would be
    // requested within a second if paging went on.
    let fx = Fixture::start_with(EmulatorOptions::one_frozen_region(2000)).await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(20),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let mut client = fx.client().await;
    let info = client
        .execute("SELECT * FROM store_image_tasks".into(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 200);
    drop(stream);
    drop(client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = fx.describe_calls()["us-east-1"];
    // The first page, the pages buffered ahead (2) and at most one in flight.
    assert!(
        calls <= 4,
        "{calls} pages were requested after the client went away"
    );
}

#[tokio::test]
async fn trivial_queries_and_information_schema_work() {
    let fx = Fixture::start(5).await;
    let (_, b) = fx.query("SELECT 1").await.unwrap();
    assert_eq!(b[0].num_rows(), 1);
    let (_, b) = fx.query("SELECT version()").await.unwrap();
    assert!(b[0]
        .column(0)
        .as_string::<i32>()
        .value(0)
        .contains("DataFusion"));
    let (_, b) = fx
        .query(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_name = 'store_image_tasks' ORDER BY ordinal_position",
        )
        .await
        .unwrap();
    let cols: Vec<&str> = (0..b[0].num_rows())
        .map(|i| b[0].column(0).as_string::<i32>().value(i))
        .collect();
    assert_eq!(cols[..3], ["account", "region", "amiId"]);
    assert_eq!(cols.len(), 9);
}

#[tokio::test]
async fn a_region_refusing_credentials_aws_accepts_elsewhere_is_not_a_credentials_problem() {
    let fx = Fixture::start(5).await;
    // The server's credentials may not list regions (UnauthorizedOperation: AWS accepted
    // them in us-east-1), and ap-south-1 answers AuthFailure: the region is what is wrong.
    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec!["DescribeRegions".into()]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let err = fx
        .query("SELECT * FROM store_image_tasks WHERE region = 'ap-south-1'")
        .await
        .unwrap_err();
    let msg = err.message();
    assert_eq!(err.code(), Code::FailedPrecondition, "{msg}");
    assert!(
        msg.starts_with(
            "region `ap-south-1` refused the server's credentials, which AWS accepts in \
             us-east-1: the region is most likely not enabled for this account"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("DescribeRegions in region us-east-1 failed: UnauthorizedOperation"),
        "{msg}"
    );
    assert!(
        msg.contains("AuthFailure: AWS was not able to validate"),
        "{msg}"
    );
    assert!(!msg.contains("credentials the standard way"), "{msg}");
}
