//! Flight SQL metadata commands and prepared statements through a real Flight SQL client.

use crate::common;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use common::{fetch, table_schema, to_status, Fixture};
use std::sync::Arc;
use tonic::transport::Channel;

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let col = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..col.len()).map(|i| col.value(i).to_owned()).collect()
}

#[tokio::test]
async fn catalogs_schemas_and_tables() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;

    let info = client.get_catalogs().await.unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(strings(&batches[0], "catalog_name"), ["aws"]);

    // DBeaver's getSchemas(null, null): no filters means all.
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(
        strings(&batches[0], "db_schema_name"),
        ["ec2", "information_schema", "organizations"]
    );

    // Every table: store_image_tasks and the organization's accounts.
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec!["TABLE".into()],
            include_schema: false,
        })
        .await
        .unwrap();
    let batches = fetch(&mut client, info).await;
    let mut tables: Vec<(String, String)> = batches
        .iter()
        .flat_map(|b| {
            strings(b, "db_schema_name")
                .into_iter()
                .zip(strings(b, "table_name"))
        })
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            ("ec2".to_owned(), "store_image_tasks".to_owned()),
            ("organizations".to_owned(), "accounts".to_owned())
        ]
    );

    let request = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: Some("e_2".into()),
        table_name_filter_pattern: Some("store%".into()),
        table_types: vec!["TABLE".into()],
        include_schema: true,
    };
    let info = client.get_tables(request).await.unwrap();
    let advertised = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches[0].schema().as_ref(), &advertised);
    assert_eq!(strings(&batches[0], "table_name"), ["store_image_tasks"]);
    assert_eq!(strings(&batches[0], "table_type"), ["TABLE"]);
    let schema = table_schema(&batches[0], 0);
    assert_eq!(schema.field(0).name(), "account");
    assert_eq!(schema.field(2).name(), "amiId");
    assert_eq!(schema.field(3).data_type(), &DataType::Utf8);

    let info = client.get_table_types().await.unwrap();
    let batches = fetch(&mut client, info).await;
    assert!(strings(&batches[0], "table_type").contains(&"TABLE".to_string()));
}

#[tokio::test]
async fn sql_info_answers_what_clients_ask_at_connect() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerTransaction,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::SqlIdentifierQuoteChar,
            SqlInfo::SqlKeywords,
        ])
        .await
        .unwrap();
    let batches = fetch(&mut client, info).await;
    let ids = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>();
    let ids: Vec<u32> = ids.values().to_vec();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(ids.contains(&(SqlInfo::FlightSqlServerTransaction as u32)));
}

#[tokio::test]
async fn prepared_statements_without_and_with_parameters() {
    let fx = Fixture::start(20).await;
    let mut client = fx.client().await;

    let mut prepared = client
        .prepare(
            "SELECT amiId FROM store_image_tasks WHERE region = 'us-west-2'".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(prepared.dataset_schema().unwrap().field(0).name(), "amiId");
    assert_eq!(prepared.parameter_schema().unwrap().fields().len(), 0);
    let info = prepared.execute().await.unwrap();
    let batches = fetch(&mut client, info).await;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, fx.emulator.tasks("us-west-2").len());
    prepared.close().await.unwrap();

    let ami = fx.emulator.tasks("eu-west-1")[0].ami_id.clone();
    let mut prepared = client
        .prepare(
            "SELECT amiId, region FROM store_image_tasks WHERE region = 'eu-west-1' AND amiId = $1"
                .into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(prepared.parameter_schema().unwrap().field(0).name(), "$1");
    let params =
        RecordBatch::try_from_iter([("$1", Arc::new(StringArray::from(vec![ami.clone()])) as _)])
            .unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.map_err(to_status).unwrap();
    let batches = fetch(&mut client, info).await;
    let got: Vec<String> = batches.iter().flat_map(|b| strings(b, "amiId")).collect();
    let want = fx
        .emulator
        .tasks("eu-west-1")
        .iter()
        .filter(|t| t.ami_id == ami)
        .count();
    assert_eq!(got.len(), want);
    assert!(got.iter().all(|a| a == &ami));
    prepared.close().await.unwrap();
}

#[tokio::test]
async fn a_ticket_can_be_fetched_twice() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;
    let info = client
        .execute("SELECT count(*) FROM store_image_tasks".into(), None)
        .await
        .unwrap();
    let a = fetch(&mut client, info.clone()).await;
    let b = fetch(&mut client, info).await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn garbage_tickets_are_invalid_argument() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;
    let bad = arrow_flight::sql::TicketStatementQuery {
        statement_handle: vec![0xff, 0x01].into(),
    };
    use arrow_flight::sql::ProstMessageExt;
    use prost::Message;
    let ticket = arrow_flight::Ticket::new(bad.as_any().encode_to_vec());
    let err = client
        .do_get(ticket)
        .await
        .map_err(to_status)
        .err()
        .unwrap();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
}

/// Java clients (the JDBC driver, user agent grpc-java) get timestamps without a zone, the
/// UTC wall-clock time, in every schema they see and in the data; other clients get
/// `Timestamp(ms, "UTC")`; the `timestamps` header (a JDBC URL property) chooses either.
#[tokio::test]
async fn timestamps_reach_java_clients_without_a_zone() {
    use arrow::datatypes::TimeUnit;
    let fx = Fixture::start(5).await;
    let sql = "SELECT amiId, taskStartTime FROM store_image_tasks WHERE region = 'eu-west-1' \
               ORDER BY taskStartTime, amiId";
    let zoned = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let wall = DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut want: Vec<i64> = fx
        .emulator
        .tasks("eu-west-1")
        .iter()
        .map(|t| t.task_start_time.timestamp_millis())
        .collect();
    want.sort();

    for (agent, header, expected) in [
        ("tonic/0.14", None, &zoned),
        ("grpc-java-netty/1.73.0", None, &wall),
        ("grpc-java-netty/1.73.0", Some("with_time_zone"), &zoned),
        ("grpc-go/1.75.0", Some("without_time_zone"), &wall),
    ] {
        let mut client = fx.client().await;
        client.set_header("user-agent", agent);
        if let Some(header) = header {
            client.set_header("timestamps", header);
        }
        let case = format!("{agent} timestamps={header:?}");
        let info = client.execute(sql.into(), None).await.unwrap();
        let advertised = info.clone().try_decode_schema().unwrap();
        assert_eq!(advertised.field(1).data_type(), expected, "{case}");
        let batches = fetch(&mut client, info).await;
        let mut got = Vec::new();
        for batch in &batches {
            assert_eq!(batch.schema().field(1).data_type(), expected, "{case}");
            let column = batch
                .column(1)
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
            got.extend(column.values().iter().copied());
        }
        assert_eq!(
            got, want,
            "{case}: the same instants, as UTC wall-clock time"
        );

        let prepared = client.prepare(sql.into(), None).await.unwrap();
        assert_eq!(
            prepared.dataset_schema().unwrap().field(1).data_type(),
            expected,
            "{case}"
        );
        let info = client
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: Some("ec2".into()),
                table_name_filter_pattern: Some("store_image_tasks".into()),
                table_types: vec![],
                include_schema: true,
            })
            .await
            .unwrap();
        let schema = table_schema(&fetch(&mut client, info).await[0], 0);
        let start = schema.field_with_name("taskStartTime").unwrap();
        assert_eq!(start.data_type(), expected, "{case}");
    }

    let mut client = fx.client().await;
    client.set_header("timestamps", "local");
    let err = client.execute(sql.into(), None).await.map_err(to_status);
    let status = err.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("with_time_zone") && status.message().contains("`local`"),
        "{}",
        status.message()
    );
}

/// The table schema GetTables sends for `store_image_tasks`.
async fn tasks_table_schema(client: &mut FlightSqlServiceClient<Channel>) -> Schema {
    let request = CommandGetTables {
        catalog: Some("aws".into()),
        db_schema_filter_pattern: Some("ec2".into()),
        table_name_filter_pattern: Some("store_image_tasks".into()),
        table_types: vec![],
        include_schema: true,
    };
    let info = client.get_tables(request).await.unwrap();
    table_schema(&fetch(client, info).await[0], 0)
}

/// `key` of every field of `schema`, in order ("-" where absent).
fn each(schema: &Schema, key: &str) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| f.metadata().get(key).cloned().unwrap_or_else(|| "-".into()))
        .collect()
}

const READ_ONLY: &str = "ARROW:FLIGHT:SQL:IS_READ_ONLY";
const REMARKS: &str = "ARROW:FLIGHT:SQL:REMARKS";
/// INSERT takes account, region, amiId and bucket; AWS fills in the rest.
const WRITABLE: [&str; 9] = ["0", "0", "0", "0", "1", "1", "1", "1", "1"];

#[tokio::test]
async fn get_tables_describes_nullability_writability_and_remarks_of_every_column() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;
    let schema = tasks_table_schema(&mut client).await;

    let nullable: Vec<bool> = schema.fields().iter().map(|f| f.is_nullable()).collect();
    assert_eq!(
        nullable,
        [false, false, true, true, true, true, true, true, true]
    );
    // What the ADBC driver's GetObjects reads for xdbc_nullable / xdbc_is_nullable.
    assert_eq!(
        each(&schema, "XDBC_NULLABLE"),
        ["0", "0", "1", "1", "1", "1", "1", "1", "1"]
    );
    assert_eq!(
        each(&schema, "XDBC_IS_NULLABLE"),
        ["NO", "NO", "YES", "YES", "YES", "YES", "YES", "YES", "YES"]
    );
    assert_eq!(each(&schema, READ_ONLY), WRITABLE);

    // One sentence per column, under the spec's key (JDBC) and the key ADBC reads.
    let remarks = each(&schema, REMARKS);
    assert_eq!(remarks, each(&schema, "REMARKS"));
    for (field, remark) in schema.fields().iter().zip(&remarks) {
        assert!(
            remark.len() > 20 && remark.ends_with('.') && !remark.contains("&lt;"),
            "{}: {remark}",
            field.name()
        );
    }
    assert!(
        remarks[0].starts_with("The 12-digit id of the AWS account"),
        "{}",
        remarks[0]
    );
    assert!(
        remarks[2].starts_with("The ID of the AMI"),
        "{}",
        remarks[2]
    );
    assert!(
        remarks[7].contains("InProgress, Completed or Failed"),
        "{}",
        remarks[7]
    );
    assert!(remarks[6].contains("null unless"), "{}", remarks[6]);
    // The table's own remark, and no key of the table layer's own.
    assert!(schema.metadata()[REMARKS].starts_with("Tasks that store an AMI"));
    assert!(!schema.metadata().contains_key("comment"));
    assert_eq!(each(&schema, "comment"), ["-"; 9]);
    assert_eq!(each(&schema, "insertable"), ["-"; 9]);
}

#[tokio::test]
async fn result_schemas_say_which_columns_insert_takes_and_carry_no_remarks() {
    let fx = Fixture::start(5).await;
    let mut client = fx.client().await;
    let info = client
        .execute(
            "SELECT * FROM store_image_tasks WHERE region = 'eu-west-1'".into(),
            None,
        )
        .await
        .unwrap();
    let advertised = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(batches[0].schema().as_ref(), &advertised);
    assert_eq!(each(&advertised, READ_ONLY), WRITABLE);
    assert!(!advertised.field(0).is_nullable());
    // JDBC 18.3 would make a remark the column's label (its header, and the name
    // getObject(String) looks for): result columns carry none.
    for key in [REMARKS, "REMARKS", "XDBC_NULLABLE", "comment", "insertable"] {
        assert_eq!(each(&advertised, key), ["-"; 9], "{key}");
    }
    assert!(
        advertised.metadata().is_empty(),
        "{:?}",
        advertised.metadata()
    );

    // A computed column and a literal are read-only; an aliased table keeps
    // its columns' flags.
    let prepared = client
        .prepare(
            "SELECT t.bucket, upper(t.amiId) AS ami, t.storeTaskState, 1 AS one \
             FROM store_image_tasks t"
                .into(),
            None,
        )
        .await
        .unwrap();
    let schema = prepared.dataset_schema().unwrap().clone();
    assert_eq!(each(&schema, READ_ONLY), ["0", "1", "1", "1"]);
    prepared.close().await.unwrap();
}

#[tokio::test]
async fn on_a_read_only_server_every_column_is_read_only() {
    let fx = Fixture::start_full(
        ec2_emulator::EmulatorOptions {
            regions: common::REGIONS.iter().map(|r| r.to_string()).collect(),
            tasks_per_region: 3,
            freeze_time: true,
            ..ec2_emulator::EmulatorOptions::default()
        },
        true,
    )
    .await;
    let mut client = fx.client().await;
    let schema = tasks_table_schema(&mut client).await;
    assert_eq!(each(&schema, READ_ONLY), ["1"; 9]);
    let (advertised, _) = fx
        .query("SELECT region, amiId FROM store_image_tasks")
        .await
        .unwrap();
    assert_eq!(each(&advertised, READ_ONLY), ["1", "1"]);
}
