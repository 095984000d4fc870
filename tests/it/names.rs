//! Names as BI tools send them, and SQL errors in words: unquoted names in any case resolve
//! to the real (camelCase) ones in every kind of statement and in the metadata commands,
//! quoted names stay exact, and unknown names, syntax errors, several statements and
//! duplicate select names get answers a user can act on. All through a real Flight SQL
//! client against the server and the EC2 emulator.

use crate::common;

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use common::{fetch, table_schema, to_status, Fixture};
use tonic::Code;

fn names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap().as_string::<i32>();
            (0..col.len())
                .map(|i| col.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn unquoted_names_match_in_any_case_and_results_keep_the_real_names() {
    let fx = Fixture::start(10).await;
    let eu = fx.emulator.tasks("eu-west-1");

    // SELECT, WHERE, ORDER BY, in upper, lower and mixed case.
    let (schema, batches) = fx
        .query(
            "SELECT AMIID, amiid, Region, STORETASKSTATE FROM STORE_IMAGE_TASKS \
             WHERE REGION = 'eu-west-1' AND progresspercentage >= 0 ORDER BY AmiId",
        )
        .await
        .unwrap();
    assert_eq!(
        names(&schema),
        ["amiId", "amiId_2", "region", "storeTaskState"]
    );
    let mut want: Vec<String> = eu.iter().map(|t| t.ami_id.clone()).collect();
    want.sort();
    assert_eq!(strings(&batches, "amiId"), want);
    assert_eq!(strings(&batches, "amiId_2"), want);

    // GROUP BY and ORDER BY an alias in another case; a fully qualified name in mixed case.
    let (schema, batches) = fx
        .query(
            "SELECT REGION, COUNT(*) AS Tasks FROM Aws.Ec2.Store_Image_Tasks \
             GROUP BY Region ORDER BY TASKS DESC, region",
        )
        .await
        .unwrap();
    assert_eq!(names(&schema), ["region", "Tasks"]);
    assert_eq!(row_count(&batches), 3);
    let counts = batches[0]
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!(counts.iter().flatten().sum::<i64>(), 30);

    // information_schema, its views and columns in upper case.
    let (_, batches) = fx
        .query("SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'ec2'")
        .await
        .unwrap();
    assert_eq!(strings(&batches, "table_name"), ["store_image_tasks"]);

    // EXPLAIN plans the same resolved statement.
    let (_, batches) = fx
        .query("EXPLAIN SELECT AMIID FROM STORE_IMAGE_TASKS WHERE REGION = 'us-west-2'")
        .await
        .unwrap();
    let plans = strings(&batches, "plan").join("\n");
    assert!(plans.contains("projection=[amiId]"), "{plans}");
    assert!(
        plans.contains("us-west-2: DescribeStoreImageTasks"),
        "{plans}"
    );

    // The report function's name resolves too (the id is unknown, so its own error).
    let err = fx
        .query("SELECT OUTCOME FROM INSERT_REPORT('no-such-report')")
        .await
        .unwrap_err();
    assert!(
        err.message().contains("no INSERT report"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn quoted_names_stay_exact_and_unknown_names_get_a_suggestion() {
    let fx = Fixture::start(3).await;

    let err = fx
        .query("SELECT \"AMIID\" FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let m = err.message();
    assert!(
        m.starts_with("column \"AMIID\" not found; did you mean amiId?"),
        "{m}"
    );
    assert!(
        m.contains("region, amiId, bucket, progressPercentage"),
        "{m}"
    );
    assert!(!m.contains("normalization"), "{m}");

    let err = fx
        .query("SELECT TASKSTARTTIM FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("did you mean taskStartTime?"),
        "{}",
        err.message()
    );

    let err = fx
        .query("SELECT * FROM \"STORE_IMAGE_TASKS\"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = fx
        .query("SELECT * FROM store_image_task")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().starts_with(
            "table aws.ec2.store_image_task not found; did you mean aws.ec2.store_image_tasks?"
        ),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn insert_and_prepared_statements_take_names_in_any_case() {
    let fx = Fixture::start(3).await;
    let ami = fx.emulator.storable_amis("us-east-1")[0].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let n = fx
        .update(&format!(
            "INSERT INTO STORE_IMAGE_TASKS (REGION, AMIID, BUCKET) \
             VALUES ('us-east-1', '{ami}', '{bucket}')"
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(fx.tasks_of("us-east-1", &ami).len(), 1);

    let mut client = fx.client().await;
    let mut prepared = client
        .prepare(
            "SELECT AMIID, BUCKET FROM STORE_IMAGE_TASKS WHERE REGION = ? AND AMIID = ?".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        names(&prepared.dataset_schema().unwrap().clone()),
        ["amiId", "bucket"]
    );
    let params = RecordBatch::try_from_iter([
        ("$1", Arc::new(StringArray::from(vec!["us-east-1"])) as _),
        ("$2", Arc::new(StringArray::from(vec![ami.clone()])) as _),
    ])
    .unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.map_err(to_status).unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(strings(&batches, "amiId"), [ami]);
    assert_eq!(strings(&batches, "bucket"), [bucket]);
    prepared.close().await.unwrap();
}

#[tokio::test]
async fn every_session_setting_resolves_names_the_same_way() {
    let fx = Fixture::start(3).await;
    let sql =
        "SELECT AMIID, amiId, storetaskstate FROM STORE_IMAGE_TASKS WHERE REGION = 'us-west-2'";
    for options in [
        vec![("datafusion.sql_parser.enable_ident_normalization", "true")],
        vec![("datafusion.sql_parser.dialect", "PostgreSQL")],
        vec![("datafusion.sql_parser.dialect", "MySQL")],
    ] {
        let (ctx, catalog) = common::catalog_for(&fx.emulator, &options).await;
        let df = catalog.plan(&ctx, sql, &[]).await.unwrap();
        let schema = df.schema().as_arrow().clone();
        assert_eq!(
            names(&schema),
            ["amiId", "amiId_2", "storeTaskState"],
            "{options:?}"
        );
        let batches = df.collect().await.unwrap();
        assert_eq!(row_count(&batches), 3, "{options:?}");
    }
}

#[tokio::test]
async fn metadata_commands_match_names_in_any_case() {
    let fx = Fixture::start(3).await;
    let mut client = fx.client().await;

    // What the JDBC driver sends for sqlline's `!columns store_image_tasks`:
    // getColumns(null, null, "STORE_IMAGE_TASKS", "%") is GetTables with the schema.
    for (catalog, schema, table) in [
        (None, None, "STORE_IMAGE_TASKS"),
        (Some("AWS"), Some("EC2"), "STORE%"),
        (Some("aws"), Some("E_2"), "store\\_image\\_tasks"),
    ] {
        let info = client
            .get_tables(CommandGetTables {
                catalog: catalog.map(Into::into),
                db_schema_filter_pattern: schema.map(Into::into),
                table_name_filter_pattern: Some(table.into()),
                table_types: vec![],
                include_schema: true,
            })
            .await
            .unwrap();
        let batches = fetch(&mut client, info).await;
        assert_eq!(
            strings(&batches, "table_name"),
            ["store_image_tasks"],
            "{table}"
        );
        let columns = table_schema(&batches[0], 0);
        assert_eq!(columns.fields().len(), 9);
        assert_eq!(columns.field(2).name(), "amiId");
    }
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("INFORMATION_SCHEMA".into()),
            table_name_filter_pattern: Some("COLUMNS".into()),
            table_types: vec![],
            include_schema: false,
        })
        .await
        .unwrap();
    assert_eq!(
        strings(&fetch(&mut client, info).await, "table_name"),
        ["columns"]
    );

    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("AWS".into()),
            db_schema_filter_pattern: Some("EC%".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        strings(&fetch(&mut client, info).await, "db_schema_name"),
        ["ec2"]
    );

    // Identifier case, as GetSqlInfo tells it: unquoted case-insensitive (1), quoted
    // exact (0: the spec has no "case-sensitive"; Arrow's ODBC driver reads it as such).
    let info = client
        .get_sql_info(vec![
            SqlInfo::SqlIdentifierCase,
            SqlInfo::SqlQuotedIdentifierCase,
        ])
        .await
        .unwrap();
    let batches = fetch(&mut client, info).await;
    let ids = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>();
    let values = batches[0].column(1).as_union();
    let mut seen = Vec::new();
    for i in 0..batches[0].num_rows() {
        let value = values.value(i);
        let value = value.as_primitive::<arrow::datatypes::Int32Type>().value(0);
        seen.push((ids.value(i), value));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (SqlInfo::SqlIdentifierCase as u32, 1),
            (SqlInfo::SqlQuotedIdentifierCase as u32, 0)
        ]
    );
}

#[tokio::test]
async fn sql_errors_read_as_sentences() {
    let fx = Fixture::start(3).await;

    let err = fx
        .query("SELECT amiId\nFROM store_image_tasks WHERE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("SQL syntax error: expected an expression, found EOF"),
        "{}",
        err.message()
    );
    let err = fx
        .query("SELEC amiId FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "SQL syntax error: expected an SQL statement, found SELEC at line 1, column 1"
    );
    // Positions are the user's, even after names were resolved (to longer quoted ones).
    let sql = "SELECT AMIID, STORETASKSTATE FROM STORE_IMAGE_TASKS WHERE REGION = = 1";
    let err = fx.query(sql).await.unwrap_err();
    let column = sql.rfind('=').unwrap() + 1;
    assert_eq!(
        err.message(),
        format!("SQL syntax error: expected an expression, found = at line 1, column {column}")
    );

    let err = fx
        .query("SET aws.dry_run = true; INSERT INTO store_image_tasks (amiId, bucket) VALUES ('a', 'b')")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with(
            "one statement per request: this request holds 2 statements (SET, INSERT)"
        ),
        "{}",
        err.message()
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 0);
}

#[tokio::test]
async fn duplicate_select_names_get_an_alias() {
    let fx = Fixture::start(3).await;
    let (schema, batches) = fx
        .query(
            "SELECT region, CAST(region AS VARCHAR), region, bucket::VARCHAR, bucket \
             FROM store_image_tasks WHERE region = 'us-east-1'",
        )
        .await
        .unwrap();
    assert_eq!(
        names(&schema),
        [
            "region",
            "CAST(region AS VARCHAR)",
            "region_2",
            "bucket::VARCHAR",
            "bucket"
        ]
    );
    assert_eq!(row_count(&batches), 3);
    assert_eq!(strings(&batches, "region_2"), ["us-east-1"; 3]);
    // A list without repeats keeps DataFusion's own names, whatever they are.
    let (schema, _) = fx
        .query("SELECT CAST(region AS VARCHAR), count(*) FROM store_image_tasks GROUP BY 1")
        .await
        .unwrap();
    assert_eq!(names(&schema), ["store_image_tasks.region", "count(*)"]);
}

#[tokio::test]
async fn a_datafusion_application_resolves_names_with_sql_any_case() {
    let fx = Fixture::start(3).await;
    // A session with DataFusion's default normalization, as an application's own would be.
    let (ctx, _) = common::catalog_for(
        &fx.emulator,
        &[("datafusion.sql_parser.enable_ident_normalization", "true")],
    )
    .await;
    let sql = "SELECT AMIID FROM STORE_IMAGE_TASKS WHERE REGION = 'us-west-2'";
    assert!(ctx.sql(sql).await.is_err(), "DataFusion's own rules");
    let df = aws_flightsql::catalog::sql_any_case(&ctx, sql)
        .await
        .unwrap();
    assert_eq!(names(df.schema().as_arrow()), ["amiId"]);
    let batches = df.collect().await.unwrap();
    let mut want: Vec<String> = fx
        .emulator
        .tasks("us-west-2")
        .iter()
        .map(|t| t.ami_id.clone())
        .collect();
    want.sort();
    let mut got = strings(&batches, "amiId");
    got.sort();
    assert_eq!(got, want);
}
