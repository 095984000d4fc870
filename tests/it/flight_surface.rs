//! The Flight SQL surface beyond plain queries, through arrow-flight's own clients
//! (`FlightSqlServiceClient`, and the raw `FlightServiceClient` where the response headers
//! matter): GetSchema, PollFlightInfo, sessions (cookie, SET/RESET, Set/Get/CloseSession),
//! column metadata, XDBC types, keys, refusals, ingest, cancellation and limits.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Schema};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, Any, CommandGetCrossReference,
    CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandPreparedStatementQuery, CommandStatementIngest, CommandStatementUpdate,
    DoPutUpdateResult, ProstMessageExt, SqlInfo, TableDefinitionOptions, TableExistsOption,
    TableNotExistOption,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Empty, FlightData,
    FlightDescriptor, FlightInfo,
};
use aws_flightsql::flight::session::proto::{
    session_option_value::OptionValue, CloseSessionRequest, CloseSessionResult, CloseSessionStatus,
    GetSessionOptionsRequest, GetSessionOptionsResult, SessionOptionValue,
    SetSessionOptionsErrorValue, SetSessionOptionsRequest, SetSessionOptionsResult, CLOSE_SESSION,
    GET_SESSION_OPTIONS, SET_SESSION_OPTIONS,
};
use aws_flightsql::flight::SESSION_COOKIE;
use common::{statement, to_status, Fixture};
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

async fn channel(fx: &Fixture) -> Channel {
    common::channel(&fx.server.uri()).await
}

/// The raw Flight client, with room for large messages.
async fn raw(fx: &Fixture) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(channel(fx).await)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024)
}

/// A request carrying the session cookie, if any.
fn with_cookie<T>(message: T, cookie: Option<&str>) -> Request<T> {
    common::with_metadata(message, "cookie", cookie)
}

/// The `name=value` of the session cookie a response set, or `None`.
fn session_cookie<T>(response: &tonic::Response<T>) -> Option<String> {
    let header = response.metadata().get("set-cookie")?.to_str().unwrap();
    assert!(header.starts_with(SESSION_COOKIE), "{header}");
    Some(header.split(';').next().unwrap().to_owned())
}

/// Fetches every endpoint of `info`, in order.
async fn fetch(client: &mut FlightServiceClient<Channel>, info: &FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for endpoint in &info.endpoint {
        let stream = client
            .do_get(endpoint.ticket.clone().unwrap())
            .await
            .unwrap()
            .into_inner()
            .map_err(arrow_flight::error::FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
                .try_collect()
                .await
                .unwrap();
        out.extend(batches);
    }
    out
}

/// The schema DoGet sends first for `info`'s first endpoint, and the rows that follow.
async fn fetch_schema_and_rows(
    client: &mut FlightServiceClient<Channel>,
    info: &FlightInfo,
) -> (Schema, usize) {
    let data: Vec<FlightData> = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let schema = Schema::try_from(&data[0]).unwrap();
    let rows = fetch(client, info)
        .await
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    (schema, rows)
}

/// Runs `sql` in the session of `cookie` and returns the rows as strings.
async fn query_strings(
    client: &mut FlightServiceClient<Channel>,
    sql: &str,
    cookie: Option<&str>,
) -> Vec<Vec<String>> {
    let info = client
        .get_flight_info(with_cookie(statement(sql), cookie))
        .await
        .unwrap()
        .into_inner();
    let batches = fetch(client, &info).await;
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        let c = arrow::compute::cast(c, &DataType::Utf8).unwrap();
                        c.as_string::<i32>().value(i).to_owned()
                    })
                    .collect(),
            );
        }
    }
    rows
}

async fn action<M: Message + Default>(
    client: &mut FlightServiceClient<Channel>,
    kind: &str,
    body: impl Message,
    cookie: Option<&str>,
) -> (M, Option<String>) {
    let action = Action::new(kind, body.encode_to_vec());
    let response = client
        .do_action(with_cookie(action, cookie))
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let cookie = session_cookie(&response);
    let results: Vec<_> = response.into_inner().try_collect().await.unwrap();
    assert_eq!(results.len(), 1, "{kind} answers one result");
    (M::decode(results[0].body.as_ref()).unwrap(), cookie)
}

fn string_value(s: &str) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::StringValue(s.into())),
    }
}

fn bool_value(b: bool) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::BoolValue(b)),
    }
}

#[tokio::test]
async fn get_schema_and_poll_flight_info_give_what_get_flight_info_gives() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let sql = "SELECT amiId, taskStartTime FROM store_image_tasks WHERE region = 'us-east-1'";

    let info = client
        .get_flight_info(statement(sql))
        .await
        .unwrap()
        .into_inner();
    let schema = client
        .get_schema(statement(sql))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(schema.schema, info.schema);
    let decoded = Schema::try_from(&schema).unwrap();
    assert_eq!(decoded.field(0).name(), "amiId");

    let poll = client
        .poll_flight_info(statement(sql))
        .await
        .unwrap()
        .into_inner();
    assert!(poll.flight_descriptor.is_none(), "complete at once");
    assert_eq!(poll.progress, Some(1.0));
    let polled = poll.info.unwrap();
    assert_eq!(polled.schema, info.schema);
    assert_eq!(
        fetch(&mut client, &polled).await,
        fetch(&mut client, &info).await
    );

    // A prepared statement's descriptor, with a parameter.
    let request = arrow_flight::sql::ActionCreatePreparedStatementRequest {
        query: "SELECT amiId, progressPercentage FROM store_image_tasks WHERE amiId = $1".into(),
        transaction_id: None,
    };
    let (created, _): (Any, _) = action(
        &mut client,
        "CreatePreparedStatement",
        request.as_any(),
        None,
    )
    .await;
    let created = created
        .unpack::<arrow_flight::sql::ActionCreatePreparedStatementResult>()
        .unwrap()
        .unwrap();
    let dataset = Schema::try_from(arrow_flight::IpcMessage(created.dataset_schema)).unwrap();
    assert_eq!(dataset.field(0).name(), "amiId");
    let handle = created.prepared_statement_handle;
    let descriptor = FlightDescriptor::new_cmd(
        CommandPreparedStatementQuery {
            prepared_statement_handle: handle,
        }
        .as_any()
        .encode_to_vec(),
    );
    let schema = client.get_schema(descriptor).await.unwrap().into_inner();
    assert_eq!(Schema::try_from(&schema).unwrap(), dataset);
}

#[tokio::test]
async fn result_columns_carry_flight_sql_metadata_in_flight_info_and_do_get() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let info = client
        .get_flight_info(statement(
            "SELECT t.amiId, t.taskStartTime, t.progressPercentage + 1 AS next \
             FROM aws.ec2.store_image_tasks t WHERE region = 'eu-west-1'",
        ))
        .await
        .unwrap()
        .into_inner();
    let advertised = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut client, &info).await;
    assert!(!batches.is_empty());
    for b in &batches {
        assert_eq!(
            b.schema().as_ref(),
            &advertised,
            "same schema, same metadata"
        );
    }
    let ami = advertised.field(0).metadata();
    assert_eq!(ami["ARROW:FLIGHT:SQL:CATALOG_NAME"], "aws");
    assert_eq!(ami["ARROW:FLIGHT:SQL:DB_SCHEMA_NAME"], "ec2");
    assert_eq!(ami["ARROW:FLIGHT:SQL:TABLE_NAME"], "store_image_tasks");
    assert_eq!(ami["ARROW:FLIGHT:SQL:TYPE_NAME"], "VARCHAR");
    assert_eq!(ami["ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE"], "1");
    let start = advertised.field(1);
    assert_eq!(
        start.data_type(),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(start.metadata()["ARROW:FLIGHT:SQL:PRECISION"], "23");
    assert_eq!(start.metadata()["ARROW:FLIGHT:SQL:SCALE"], "3");
    let next = advertised.field(2).metadata();
    assert_eq!(next["ARROW:FLIGHT:SQL:TYPE_NAME"], "BIGINT");
    assert!(
        !next.contains_key("ARROW:FLIGHT:SQL:TABLE_NAME"),
        "a computed column has no table"
    );
}

#[tokio::test]
async fn set_statements_persist_in_the_session_cookie() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let show = "SELECT value FROM information_schema.df_settings \
                WHERE name = 'datafusion.execution.batch_size'";
    assert_eq!(query_strings(&mut client, show, None).await, [["8192"]]);

    // SET as a query (ADBC execute, GetFlightInfo): nothing to fetch, a new cookie.
    let response = client
        .get_flight_info(statement("SET datafusion.execution.batch_size = 1234"))
        .await
        .unwrap();
    let cookie = session_cookie(&response).expect("SET answers with the session cookie");
    let info = response.into_inner();
    assert!(info.endpoint.is_empty());
    assert_eq!(
        query_strings(&mut client, show, Some(&cookie)).await,
        [["1234"]]
    );
    // Without the cookie, a request is in a fresh session.
    assert_eq!(query_strings(&mut client, show, None).await, [["8192"]]);

    // RESET as an update (DoPut): the session is empty again, the cookie expires.
    let update = CommandStatementUpdate {
        query: "RESET datafusion.execution.batch_size".into(),
        transaction_id: None,
    };
    let descriptor = FlightDescriptor::new_cmd(update.as_any().encode_to_vec());
    let data = FlightData::new().with_descriptor(descriptor);
    let mut request = Request::new(futures::stream::iter([data]));
    request
        .metadata_mut()
        .insert("cookie", cookie.parse().unwrap());
    let response = client.do_put(request).await.unwrap();
    let header = response
        .metadata()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("Max-Age=0"), "{header}");
    let results: Vec<_> = response.into_inner().try_collect().await.unwrap();
    let count = DoPutUpdateResult::decode(results[0].app_metadata.as_ref()).unwrap();
    assert_eq!(count.record_count, 0);

    // SET is never silently ignored: an unknown setting is an error that names it.
    let err = client
        .get_flight_info(statement("SET aws.nope = 1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("nope"), "{}", err.message());
}

#[tokio::test]
async fn dry_run_set_in_the_session_reaches_insert() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let response = client
        .get_flight_info(statement("SET aws.dry_run = true"))
        .await
        .unwrap();
    let cookie = session_cookie(&response).unwrap();
    let ami = fx.emulator.storable_amis("us-east-1")[0].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let mut sql = FlightSqlServiceClient::new(channel(&fx).await);
    sql.set_header("cookie", cookie);
    let n = sql
        .execute_update(
            format!(
                "INSERT INTO store_image_tasks (region, amiId, bucket) \
                 VALUES ('us-east-1', '{ami}', '{bucket}')"
            ),
            None,
        )
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(n, 0, "a dry run creates nothing: no row affected");
    assert!(fx.tasks_of("us-east-1", &ami).is_empty(), "nothing created");
}

#[tokio::test]
async fn session_options_set_get_and_close() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let request = SetSessionOptionsRequest {
        session_options: [
            ("catalog".to_owned(), string_value("aws")),
            ("schema".to_owned(), string_value("ec2")),
            ("aws.dry_run".to_owned(), bool_value(true)),
            ("no.such_option".to_owned(), string_value("x")),
            (
                "datafusion.execution.batch_size".to_owned(),
                string_value("many"),
            ),
        ]
        .into(),
    };
    let (result, cookie): (SetSessionOptionsResult, _) =
        action(&mut client, SET_SESSION_OPTIONS, request, None).await;
    assert_eq!(result.errors.len(), 2, "{result:?}");
    assert_eq!(
        result.errors["no.such_option"].value,
        SetSessionOptionsErrorValue::InvalidName as i32
    );
    assert_eq!(
        result.errors["datafusion.execution.batch_size"].value,
        SetSessionOptionsErrorValue::InvalidValue as i32
    );
    let cookie = cookie.expect("a session cookie");

    let (options, _): (GetSessionOptionsResult, _) = action(
        &mut client,
        GET_SESSION_OPTIONS,
        GetSessionOptionsRequest {},
        Some(&cookie),
    )
    .await;
    let get = |name: &str| options.session_options[name].option_value.clone();
    assert_eq!(get("catalog"), Some(OptionValue::StringValue("aws".into())));
    assert_eq!(get("schema"), Some(OptionValue::StringValue("ec2".into())));
    assert_eq!(get("aws.dry_run"), Some(OptionValue::BoolValue(true)));

    // An unknown schema is refused and the session keeps its settings.
    let (result, changed): (SetSessionOptionsResult, _) = action(
        &mut client,
        SET_SESSION_OPTIONS,
        SetSessionOptionsRequest {
            session_options: [("schema".to_owned(), string_value("nope"))].into(),
        },
        Some(&cookie),
    )
    .await;
    assert_eq!(
        result.errors["schema"].value,
        SetSessionOptionsErrorValue::InvalidValue as i32
    );
    assert!(changed.is_none());

    let (closed, expired): (CloseSessionResult, _) = action(
        &mut client,
        CLOSE_SESSION,
        CloseSessionRequest {},
        Some(&cookie),
    )
    .await;
    assert_eq!(closed.status, CloseSessionStatus::Closed as i32);
    assert_eq!(expired.as_deref(), Some(&format!("{SESSION_COOKIE}=")[..]));

    let actions: Vec<String> = client
        .list_actions(Empty {})
        .await
        .unwrap()
        .into_inner()
        .map_ok(|a| a.r#type)
        .try_collect()
        .await
        .unwrap();
    for name in [
        SET_SESSION_OPTIONS,
        GET_SESSION_OPTIONS,
        CLOSE_SESSION,
        "CancelFlightInfo",
        "CreatePreparedStatement",
    ] {
        assert!(actions.iter().any(|a| a == name), "{name} in {actions:?}");
    }
}

#[tokio::test]
async fn statements_the_table_cannot_do_are_refused_naming_what_it_does() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let copy_to = dir.path().join("aws-flightsql-copy.csv");
    let copy = format!("COPY (SELECT 1) TO '{}'", copy_to.display());
    for sql in [
        "UPDATE store_image_tasks SET bucket = 'x'",
        "DELETE FROM store_image_tasks",
        "CREATE TABLE t (a INT)",
        "BEGIN TRANSACTION",
        &copy,
    ] {
        let err = client.get_flight_info(statement(sql)).await.unwrap_err();
        assert!(
            matches!(err.code(), Code::Unimplemented | Code::InvalidArgument),
            "{sql}: {err}"
        );
        assert!(
            err.message().contains("SELECT and INSERT"),
            "{sql}: {}",
            err.message()
        );
    }
    assert!(!copy_to.exists(), "a COPY wrote {}", copy_to.display());
}

#[tokio::test]
async fn key_and_type_metadata_answer_in_the_spec_shapes() {
    let fx = Fixture::start(5).await;
    let mut client = FlightSqlServiceClient::new(channel(&fx).await);
    let mut raw_client = raw(&fx).await;
    let table = |t: &str| (Some("aws".to_owned()), Some("ec2".to_owned()), t.to_owned());

    let (c, s, t) = table("store_image_tasks");
    let infos = [
        client
            .get_primary_keys(CommandGetPrimaryKeys {
                catalog: c.clone(),
                db_schema: s.clone(),
                table: t.clone(),
            })
            .await
            .unwrap(),
        client
            .get_exported_keys(CommandGetExportedKeys {
                catalog: c.clone(),
                db_schema: s.clone(),
                table: t.clone(),
            })
            .await
            .unwrap(),
        client
            .get_imported_keys(CommandGetImportedKeys {
                catalog: c.clone(),
                db_schema: s.clone(),
                table: t.clone(),
            })
            .await
            .unwrap(),
        client
            .get_cross_reference(CommandGetCrossReference {
                pk_catalog: c.clone(),
                pk_db_schema: s.clone(),
                pk_table: t.clone(),
                fk_catalog: c,
                fk_db_schema: s,
                fk_table: t,
            })
            .await
            .unwrap(),
    ];
    for (i, info) in infos.iter().enumerate() {
        let schema = info.clone().try_decode_schema().unwrap();
        let first = schema.field(0).name().as_str();
        assert_eq!(
            first,
            if i == 0 {
                "catalog_name"
            } else {
                "pk_catalog_name"
            }
        );
        let (sent, rows) = fetch_schema_and_rows(&mut raw_client, info).await;
        assert_eq!(sent, schema);
        assert_eq!(rows, 0);
    }

    let info = client.get_xdbc_type_info(Default::default()).await.unwrap();
    let batches = fetch(&mut raw_client, &info).await;
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("type_name").unwrap().as_string::<i32>();
            (0..c.len())
                .map(|i| c.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for want in ["VARCHAR", "INTEGER", "TIMESTAMP WITH TIME ZONE", "BIGINT"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }

    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerCancel,
            SqlInfo::FlightSqlServerBulkIngestion,
        ])
        .await
        .unwrap();
    let batches = fetch(&mut raw_client, &info).await;
    assert_eq!(batches[0].num_rows(), 2);
}

#[tokio::test]
async fn results_are_not_compressed() {
    let fx = Fixture::start(450).await;
    let mut client = raw(&fx).await;
    let info = client
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    let data: Vec<FlightData> = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let mut batches = 0;
    for d in &data {
        let message = arrow::ipc::root_as_message(&d.data_header).unwrap();
        if let Some(batch) = message.header_as_record_batch() {
            assert!(batch.compression().is_none(), "IPC body compressed");
            batches += 1;
        }
    }
    assert!(batches >= 3, "one batch per page: {batches}");
}

#[tokio::test]
async fn large_headers_and_large_messages_are_accepted() {
    let fx = Fixture::start(5).await;
    // The JDBC driver forwards unknown URL parameters as headers.
    let mut client = FlightSqlServiceClient::new(channel(&fx).await);
    client.set_header("x-long-parameter", "a".repeat(40 * 1024));
    let info = client
        .execute("SELECT 1 AS one".into(), None)
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(info.endpoint.len(), 1);

    // A 60 MB parameter goes in (DoPut), comes back in the handle and the ticket, and runs.
    let inner = raw(&fx).await;
    let mut client = FlightSqlServiceClient::new_from_inner(inner);
    let mut prepared = client
        .prepare("SELECT length($1) AS n".into(), None)
        .await
        .unwrap();
    let big = "x".repeat(60 * 1024 * 1024);
    let params =
        RecordBatch::try_from_iter([("$1", Arc::new(StringArray::from(vec![big])) as _)]).unwrap();
    prepared.set_parameters(params).unwrap();
    let info = prepared.execute().await.map_err(to_status).unwrap();
    let mut raw_client = raw(&fx).await;
    let batches = fetch(&mut raw_client, &info).await;
    let n = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    assert_eq!(
        n.as_primitive::<arrow::datatypes::Int64Type>().value(0),
        60 * 1024 * 1024
    );
}

#[tokio::test]
async fn cancel_flight_info_stops_the_stream_and_upstream_paging() {
    // 3000 tasks: 15 pages of 200, each answered after 150 ms.
    let fx = Fixture::start_with(EmulatorOptions::one_frozen_region(3000)).await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(150),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut client = raw(&fx).await;
    let info = client
        .get_flight_info(statement(
            "SELECT * FROM store_image_tasks WHERE region = 'us-east-1'",
        ))
        .await
        .unwrap()
        .into_inner();
    fx.emulator.clear_requests();
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner();
    // Schema, then the first page.
    let mut messages = 0;
    while messages < 2 {
        stream.next().await.unwrap().unwrap();
        messages += 1;
    }

    let (result, _): (CancelFlightInfoResult, _) = action(
        &mut client,
        "CancelFlightInfo",
        CancelFlightInfoRequest {
            info: Some(info.clone()),
        },
        None,
    )
    .await;
    assert_eq!(result.status, CancelStatus::Cancelled as i32);
    let calls_at_cancel = fx.calls("DescribeStoreImageTasks");

    // The stream ends with CANCELLED (after at most the pages already buffered).
    let mut ended_with = None;
    while let Some(item) = stream.next().await {
        if let Err(status) = item {
            ended_with = Some(status.code());
            break;
        }
    }
    assert_eq!(ended_with, Some(Code::Cancelled));

    // No further page is asked for: give paging the time of several more pages.
    let deadline = Instant::now() + Duration::from_millis(5 * 150);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = fx.calls("DescribeStoreImageTasks");
    assert!(
        calls <= calls_at_cancel + 1,
        "paging went on after the cancel: {calls_at_cancel} then {calls}"
    );
    assert!(calls < 15, "the whole table was read: {calls} pages");

    // The cancelled ticket fails when fetched again; a new FlightInfo runs.
    let err = client
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .err()
        .map(|s| s.code());
    let err = match err {
        Some(code) => code,
        None => Code::Ok,
    };
    assert_eq!(err, Code::Cancelled);

    // The older CancelQuery action answers too.
    #[allow(deprecated)]
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    let (result, _): (Any, _) = action(&mut client, "CancelQuery", request.as_any(), None).await;
    #[allow(deprecated)]
    let result = result.unpack::<ActionCancelQueryResult>().unwrap().unwrap();
    assert_eq!(result.result, 1, "CANCEL_RESULT_CANCELLED");
}

#[tokio::test]
async fn ingest_appends_rows_through_insert_and_refuses_other_modes() {
    let fx = Fixture::start(5).await;
    let amis = fx.emulator.storable_amis("us-west-2");
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let rows = RecordBatch::try_from_iter([
        (
            "region",
            Arc::new(StringArray::from(vec!["us-west-2", "us-west-2"])) as _,
        ),
        (
            "amiId",
            Arc::new(StringArray::from(vec![amis[0].clone(), amis[1].clone()])) as _,
        ),
        (
            "bucket",
            Arc::new(StringArray::from(vec![bucket.clone(), bucket])) as _,
        ),
    ])
    .unwrap();
    let command =
        |if_not_exist: TableNotExistOption, if_exists: TableExistsOption| CommandStatementIngest {
            table_definition_options: Some(TableDefinitionOptions {
                if_not_exist: if_not_exist as i32,
                if_exists: if_exists as i32,
            }),
            table: "store_image_tasks".into(),
            schema: Some("ec2".into()),
            catalog: Some("aws".into()),
            temporary: false,
            transaction_id: None,
            options: Default::default(),
        };
    let mut client = FlightSqlServiceClient::new(channel(&fx).await);

    let err = client
        .execute_ingest(
            command(TableNotExistOption::Create, TableExistsOption::Replace),
            futures::stream::iter([Ok(rows.clone())]),
        )
        .await
        .map_err(to_status)
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
    assert!(err.message().contains("append"), "{}", err.message());

    let n = client
        .execute_ingest(
            command(TableNotExistOption::Fail, TableExistsOption::Append),
            futures::stream::iter([Ok(rows)]),
        )
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(n, 2);
    for ami in &amis[..2] {
        assert_eq!(fx.tasks_of("us-west-2", ami).len(), 1, "{ami}");
    }
    assert_eq!(fx.calls("CreateStoreImageTask"), 2);
}

#[tokio::test]
async fn an_insert_run_as_a_query_runs_once_at_get_flight_info() {
    let fx = Fixture::start(5).await;
    let mut client = raw(&fx).await;
    let amis = fx.emulator.storable_amis("eu-west-1");
    let bucket = fx.emulator.buckets("eu-west-1")[0].clone();
    let sql = format!(
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES \
         ('eu-west-1', '{}', '{bucket}'), ('eu-west-1', '{}', '{bucket}')",
        amis[0], amis[1]
    );

    // GetSchema plans it and runs nothing.
    let schema = client
        .get_schema(statement(&sql))
        .await
        .unwrap()
        .into_inner();
    let schema = Schema::try_from(&schema).unwrap();
    assert_eq!(schema.field(0).name(), "count");
    assert_eq!(fx.calls("CreateStoreImageTask"), 0);

    // GetFlightInfo (ADBC's execute) creates the tasks, whether or not the ticket is fetched.
    let info = client
        .get_flight_info(statement(&sql))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fx.calls("CreateStoreImageTask"), 2);
    for ami in &amis[..2] {
        assert_eq!(fx.tasks_of("eu-west-1", ami).len(), 1);
    }
    // Fetching the ticket, twice, reports the count and repeats nothing.
    for _ in 0..2 {
        let batches = fetch(&mut client, &info).await;
        let count = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
        assert_eq!(
            count.as_primitive::<arrow::datatypes::Int64Type>().value(0),
            2
        );
        assert_eq!(
            batches[0].schema().as_ref(),
            &info.clone().try_decode_schema().unwrap()
        );
    }
    assert_eq!(fx.calls("CreateStoreImageTask"), 2);
}
