//! SELECT on aws.ec2.store_image_tasks through a real Flight SQL client, against the real
//! server and the EC2 emulator.

mod common;

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
async fn a_failing_region_fails_the_whole_query() {
    let fx = Fixture::start(5).await;
    // A region the emulator does not serve answers AuthFailure: no partial result.
    let err = fx
        .query("SELECT * FROM store_image_tasks WHERE region IN ('us-east-1', 'ap-south-1')")
        .await
        .unwrap_err();
    assert!(err.message().contains("ap-south-1"), "{}", err.message());
    assert!(err.message().contains("AuthFailure"), "{}", err.message());
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
    assert_eq!(cols[..2], ["region", "amiId"]);
    assert_eq!(cols.len(), 8);
}
