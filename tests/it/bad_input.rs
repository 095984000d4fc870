//! The bad-input corpus: malformed and hostile requests through the raw `FlightServiceClient`
//! and arrow-flight's Flight SQL client. Each gets a clear error with the right status code
//! (or, for injection attempts, is treated as the plain value it is), nothing reaches AWS's
//! write API, and afterwards the server still answers a normal query. The count of cases is
//! the figure the README gives.

use crate::common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetTables, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementUpdate, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use aws_flightsql::flight::SESSION_COOKIE;
use common::{statement, to_status, Fixture};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// The number of cases; the README quotes it.
const CORPUS_CASES: usize = 107;

const SQL_TYPE: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// What a case must get back.
#[derive(Debug)]
enum Expect {
    /// An error with this code whose message contains this text.
    Error(Code, &'static str),
    /// An answer: the hostile input was taken as a plain value, with this many rows.
    Rows(usize),
}

struct Corpus {
    raw: FlightServiceClient<Channel>,
    sql: FlightSqlServiceClient<Channel>,
    cases: Vec<(String, Expect, Result<usize, Status>)>,
}

impl Corpus {
    fn check(&mut self, name: impl Into<String>, expect: Expect, outcome: Result<usize, Status>) {
        self.cases.push((name.into(), expect, outcome));
    }

    /// GetFlightInfo for `descriptor`, then DoGet of every endpoint; the rows fetched.
    async fn run(&mut self, descriptor: FlightDescriptor) -> Result<usize, Status> {
        self.run_request(Request::new(descriptor)).await
    }

    async fn run_request(&mut self, request: Request<FlightDescriptor>) -> Result<usize, Status> {
        let info = self.raw.get_flight_info(request).await?.into_inner();
        let mut rows = 0;
        for endpoint in info.endpoint {
            rows += self.fetch(endpoint.ticket.unwrap()).await?;
        }
        Ok(rows)
    }

    /// DoGet of a ticket, decoded; the rows fetched.
    async fn fetch(&mut self, ticket: Ticket) -> Result<usize, Status> {
        let stream = self
            .raw
            .do_get(ticket)
            .await?
            .into_inner()
            .map_err(arrow_flight::error::FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
                .try_collect()
                .await
                .map_err(to_status)?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }

    /// DoPut of `messages`; the number of results.
    async fn put(&mut self, messages: Vec<FlightData>) -> Result<usize, Status> {
        let results: Vec<_> = self
            .raw
            .do_put(futures::stream::iter(messages))
            .await?
            .into_inner()
            .try_collect()
            .await?;
        Ok(results.len())
    }

    async fn action(&mut self, kind: &str, body: Vec<u8>) -> Result<usize, Status> {
        let results: Vec<_> = self
            .raw
            .do_action(Action::new(kind, body))
            .await?
            .into_inner()
            .try_collect()
            .await?;
        Ok(results.len())
    }

    /// A prepared-statement handle made by the server for `sql`.
    async fn handle(&mut self, sql: &str) -> Vec<u8> {
        let request = ActionCreatePreparedStatementRequest {
            query: sql.into(),
            transaction_id: None,
        };
        let results: Vec<_> = self
            .raw
            .do_action(Action::new(
                "CreatePreparedStatement",
                request.as_any().encode_to_vec(),
            ))
            .await
            .unwrap()
            .into_inner()
            .try_collect()
            .await
            .unwrap();
        let any = Any::decode(results[0].body.as_ref()).unwrap();
        let result: ActionCreatePreparedStatementResult = any.unpack().unwrap().unwrap();
        result.prepared_statement_handle.to_vec()
    }

    /// A prepared statement run with `params` through arrow-flight's client.
    async fn prepared(&mut self, sql: &str, params: RecordBatch) -> Result<usize, Status> {
        let mut prepared = self
            .sql
            .prepare(sql.into(), None)
            .await
            .map_err(to_status)?;
        prepared.set_parameters(params).map_err(to_status)?;
        let info = prepared.execute().await.map_err(to_status)?;
        let mut rows = 0;
        for endpoint in info.endpoint {
            rows += self.fetch(endpoint.ticket.unwrap()).await?;
        }
        Ok(rows)
    }

    /// A prepared update run with `params`.
    async fn prepared_update(&mut self, sql: &str, params: RecordBatch) -> Result<usize, Status> {
        let mut prepared = self
            .sql
            .prepare(sql.into(), None)
            .await
            .map_err(to_status)?;
        prepared.set_parameters(params).map_err(to_status)?;
        prepared
            .execute_update()
            .await
            .map(|n| n as usize)
            .map_err(to_status)
    }
}

/// An `Any` of `type_name` (a Flight SQL message) around raw bytes.
fn any(type_name: &str, value: Vec<u8>) -> Vec<u8> {
    Any {
        type_url: format!("{SQL_TYPE}{type_name}"),
        value: value.into(),
    }
    .encode_to_vec()
}

/// A message whose field 1 is `bytes` where a string is expected (non-UTF-8 strings).
#[derive(Clone, PartialEq, prost::Message)]
struct RawField1 {
    #[prost(bytes = "vec", tag = "1")]
    field: Vec<u8>,
}

fn non_utf8_field1() -> Vec<u8> {
    RawField1 {
        field: b"SELECT '\xff\xfe\xc3\x28'".to_vec(),
    }
    .encode_to_vec()
}

/// The server's own statement ticket message, written by hand as a forger would.
#[derive(Clone, PartialEq, prost::Message)]
struct StatementTicket {
    #[prost(string, tag = "1")]
    sql: String,
    #[prost(bytes = "vec", tag = "3")]
    parameters: Vec<u8>,
    #[prost(string, tag = "4")]
    query_id: String,
}

fn statement_ticket(ticket: StatementTicket) -> Ticket {
    Ticket::new(
        TicketStatementQuery {
            statement_handle: ticket.encode_to_vec().into(),
        }
        .as_any()
        .encode_to_vec(),
    )
}

fn strings(name: &str, values: &[&str]) -> RecordBatch {
    RecordBatch::try_from_iter([(
        name,
        Arc::new(StringArray::from(values.to_vec())) as ArrayRef,
    )])
    .unwrap()
}

/// The bytes a string value is replaced with: not UTF-8.
const NOT_UTF8: [u8; 4] = [0xff, 0xfe, 0xc3, 0x28];
/// A string value of four bytes, found and replaced in the encoded body.
const MARKER: &str = "M4RK";

/// `messages` with every `MARKER` string in their bodies replaced by bytes that are not
/// UTF-8, as a hostile client would send them (Arrow's writers never do).
fn corrupt_utf8(mut messages: Vec<FlightData>) -> Vec<FlightData> {
    let mut replaced = 0;
    for data in &mut messages {
        let mut body = data.data_body.to_vec();
        let mut i = 0;
        while i + MARKER.len() <= body.len() {
            if &body[i..i + MARKER.len()] == MARKER.as_bytes() {
                body[i..i + MARKER.len()].copy_from_slice(&NOT_UTF8);
                replaced += 1;
            }
            i += 1;
        }
        data.data_body = body.into();
    }
    assert!(replaced > 0, "the marker was not in the encoded body");
    messages
}

/// FlightData for a DoPut of `command` with `batches`.
async fn put_messages(command: Vec<u8>, batches: Vec<RecordBatch>) -> Vec<FlightData> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(command)))
        .with_schema(schema)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .try_collect()
        .await
        .unwrap()
}

fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_a_clear_error_and_the_server_keeps_answering() {
    let fx = Fixture::start(3).await;
    let channel = Endpoint::from_shared(fx.server.uri().replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let raw = FlightServiceClient::new(channel.clone())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    let mut c = Corpus {
        raw,
        sql: FlightSqlServiceClient::new(channel),
        cases: Vec::new(),
    };
    let ami = fx.emulator.storable_amis("us-east-1")[0].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    use Expect::{Error, Rows};

    // --- Tickets -------------------------------------------------------------------------
    let out = c.fetch(Ticket::new(Vec::<u8>::new())).await;
    c.check(
        "empty ticket",
        Error(Code::InvalidArgument, "no Flight SQL command"),
        out,
    );
    let out = c.fetch(Ticket::new(vec![0xff; 64])).await;
    c.check(
        "garbage ticket",
        Error(Code::InvalidArgument, "not valid protobuf"),
        out,
    );
    let good = c
        .raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner()
        .endpoint[0]
        .ticket
        .clone()
        .unwrap()
        .ticket
        .to_vec();
    for cut in [1, good.len() / 2, good.len() - 1] {
        let out = c.fetch(Ticket::new(good[..cut].to_vec())).await;
        c.check(
            format!("ticket truncated to {cut} bytes"),
            Error(Code::InvalidArgument, ""),
            out,
        );
    }
    let out = c
        .fetch(Ticket::new(any(
            "TicketStatementQuery",
            vec![0x0a, 0x05, 0xff, 0xff],
        )))
        .await;
    c.check(
        "ticket with a truncated inner message",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c
        .fetch(Ticket::new(
            TicketStatementQuery {
                statement_handle: vec![0xff, 0x00, 0x13, 0x37].into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "garbage statement handle",
        Error(Code::InvalidArgument, "invalid statement ticket"),
        out,
    );
    let handle = Any::decode(good.as_slice())
        .unwrap()
        .unpack::<TicketStatementQuery>()
        .unwrap()
        .unwrap()
        .statement_handle;
    let out = c
        .fetch(Ticket::new(
            TicketStatementQuery {
                statement_handle: handle.slice(..handle.len() - 3),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "truncated statement handle",
        Error(Code::InvalidArgument, "invalid statement ticket"),
        out,
    );
    let out = c
        .fetch(Ticket::new(
            Any {
                type_url: "type.googleapis.com/evil.DropEverything".into(),
                value: vec![1, 2, 3].into(),
            }
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "ticket of an unknown command type",
        Error(Code::Unimplemented, "evil.DropEverything"),
        out,
    );
    let out = c
        .fetch(Ticket::new(
            TicketStatementQuery {
                statement_handle: non_utf8_field1().into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "statement ticket with non-UTF-8 SQL",
        Error(Code::InvalidArgument, "invalid statement ticket"),
        out,
    );
    let out = c
        .fetch(statement_ticket(StatementTicket {
            sql: "SELECT * FROM store_image_tasks WHERE amiId = $1".into(),
            parameters: vec![0xde, 0xad, 0xbe, 0xef],
            query_id: String::new(),
        }))
        .await;
    c.check(
        "statement ticket with garbage parameters",
        Error(Code::InvalidArgument, "invalid parameters"),
        out,
    );
    // Found by the fuzzer: parameters declaring 2 GiB made the IPC reader allocate it.
    let out = c
        .fetch(statement_ticket(StatementTicket {
            sql: "SELECT $1".into(),
            parameters: vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0],
            query_id: String::new(),
        }))
        .await;
    c.check(
        "statement ticket whose parameters declare 2 GiB",
        Error(Code::InvalidArgument, "bytes of metadata"),
        out,
    );
    let out = c
        .fetch(statement_ticket(StatementTicket {
            sql: "SELECT * FROM secrets.passwords".into(),
            parameters: Vec::new(),
            query_id: String::new(),
        }))
        .await;
    c.check(
        "forged ticket naming an unknown table",
        Error(Code::NotFound, "not found"),
        out,
    );
    let out = c
        .fetch(statement_ticket(StatementTicket {
            sql: format!(
                "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"
            ),
            parameters: Vec::new(),
            query_id: String::new(),
        }))
        .await;
    c.check(
        "forged ticket carrying an INSERT",
        Error(Code::InvalidArgument, "tickets never"),
        out,
    );
    let out = c
        .fetch(Ticket::new(
            CommandPreparedStatementQuery {
                prepared_statement_handle: vec![0xff; 8].into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "garbage prepared handle in a ticket",
        Error(Code::InvalidArgument, "prepared statement handle"),
        out,
    );

    // --- Descriptors and commands --------------------------------------------------------
    let out = c.run(FlightDescriptor::new_cmd(vec![0xff; 16])).await;
    c.check(
        "descriptor with invalid protobuf",
        Error(Code::InvalidArgument, "not valid protobuf"),
        out,
    );
    let out = c.run(FlightDescriptor::new_cmd(Vec::<u8>::new())).await;
    c.check(
        "descriptor with an empty command",
        Error(Code::InvalidArgument, "no Flight SQL command"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(
            Any {
                type_url: "type.googleapis.com/evil.Command".into(),
                value: vec![].into(),
            }
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "descriptor of an unknown command type",
        Error(Code::Unimplemented, "evil.Command"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_path(vec![
            "etc".into(),
            "passwd".into(),
        ]))
        .await;
    c.check(
        "path descriptor",
        Error(Code::InvalidArgument, "path descriptor"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(any(
            "CommandStatementQuery",
            non_utf8_field1(),
        )))
        .await;
    c.check(
        "statement with non-UTF-8 SQL",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(any(
            "CommandStatementQuery",
            vec![0x0a, 0x7f, 0x41],
        )))
        .await;
    c.check(
        "statement with a truncated string",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(
            CommandPreparedStatementQuery {
                prepared_statement_handle: vec![0x12, 0xff, 0x01].into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "garbage prepared handle",
        Error(Code::InvalidArgument, "prepared statement handle"),
        out,
    );
    let handle = c.handle("SELECT amiId FROM store_image_tasks").await;
    let out = c
        .run(FlightDescriptor::new_cmd(
            CommandPreparedStatementQuery {
                prepared_statement_handle: handle[..handle.len() / 2].to_vec().into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "truncated prepared handle",
        Error(Code::InvalidArgument, "prepared statement handle"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(any(
            "CommandGetTables",
            non_utf8_field1(),
        )))
        .await;
    c.check(
        "GetTables with a non-UTF-8 catalog",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c
        .run(FlightDescriptor::new_cmd(
            CommandGetTables {
                table_name_filter_pattern: Some("%'; DROP TABLE x; --".into()),
                ..Default::default()
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check("GetTables with an injection in its pattern", Rows(0), out);

    // --- Actions ------------------------------------------------------------------------
    let out = c.action("DropAllTables", vec![]).await;
    c.check(
        "unknown action type",
        Error(Code::Unimplemented, "unknown action type"),
        out,
    );
    let out = c.action("CreatePreparedStatement", vec![0xff; 10]).await;
    c.check(
        "CreatePreparedStatement with invalid protobuf",
        Error(Code::InvalidArgument, "not valid protobuf"),
        out,
    );
    let out = c
        .action(
            "CreatePreparedStatement",
            any("ActionCreatePreparedStatementRequest", non_utf8_field1()),
        )
        .await;
    c.check(
        "CreatePreparedStatement with non-UTF-8 SQL",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c.action("CancelFlightInfo", vec![0xff; 10]).await;
    c.check(
        "CancelFlightInfo with invalid protobuf",
        Error(Code::InvalidArgument, "invalid CancelFlightInfo"),
        out,
    );
    let out = c.action("SetSessionOptions", vec![0x0a, 0xff]).await;
    c.check(
        "SetSessionOptions with invalid protobuf",
        Error(Code::InvalidArgument, "invalid SetSessionOptions"),
        out,
    );
    let out = c
        .action(
            "CancelQuery",
            any("ActionCancelQueryRequest", vec![0x0a, 0x03, 1, 2, 3]),
        )
        .await;
    c.check(
        "CancelQuery with a garbage FlightInfo",
        Error(Code::InvalidArgument, "invalid FlightInfo"),
        out,
    );

    // --- Sessions -----------------------------------------------------------------------
    for (what, cookie) in [
        (
            "session cookie that is not hex",
            format!("{SESSION_COOKIE}=zz-not-hex"),
        ),
        (
            "session cookie that is not protobuf",
            format!("{SESSION_COOKIE}=ffffffff"),
        ),
        (
            "session cookie of odd length",
            format!("{SESSION_COOKIE}=abc"),
        ),
    ] {
        let mut request = Request::new(statement("SELECT 1"));
        request
            .metadata_mut()
            .insert("cookie", cookie.parse().unwrap());
        let out = c.run_request(request).await;
        c.check(what, Error(Code::InvalidArgument, "cookie"), out);
    }

    // --- SQL ----------------------------------------------------------------------------
    let huge = format!("SELECT '{}' AS s", "x".repeat(2 * 1024 * 1024));
    let out = c.run(statement(&huge)).await;
    c.check(
        "2 MiB of SQL",
        Error(Code::InvalidArgument, "--max-sql-bytes"),
        out,
    );
    let out = c
        .run(statement(&format!(
            "SELECT {}",
            nested(5000, "(", "1", ")")
        )))
        .await;
    c.check(
        "5000 nested parentheses",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let out = c
        .run(statement(&format!("SELECT {}", nested(60, "(", "1", ")"))))
        .await;
    c.check(
        "60 nested parentheses (the parser's limit)",
        Error(Code::InvalidArgument, "nests deeper than the parser allows"),
        out,
    );
    let out = c
        .run(statement(&format!(
            "SELECT {}",
            nested(2000, "abs(", "1", ")")
        )))
        .await;
    c.check(
        "2000 nested function calls",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let out = c
        .run(statement(&nested(
            60,
            "SELECT * FROM (",
            "SELECT 1 AS a",
            ") AS t",
        )))
        .await;
    c.check(
        "60 nested subqueries (the parser's limit)",
        Error(Code::InvalidArgument, "nests deeper than the parser allows"),
        out,
    );
    let out = c
        .run(statement(&nested(
            1200,
            "SELECT * FROM (",
            "SELECT 1 AS a",
            ") AS t",
        )))
        .await;
    c.check(
        "1200 nested subqueries",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let out = c
        .run(statement(&format!(
            "SELECT 1 WHERE {}",
            vec!["NOT"; 3000].join(" ") + " true"
        )))
        .await;
    c.check(
        "3000 nested NOTs",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let out = c
        .run(statement(&format!(
            "SELECT {}",
            vec!["1"; 20_000].join(" + ")
        )))
        .await;
    c.check(
        "a 20000-term sum",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let ors = (0..3000)
        .map(|i| format!("amiId = 'ami-{i:017x}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let out = c
        .run(statement(&format!(
            "SELECT * FROM store_image_tasks WHERE {ors}"
        )))
        .await;
    c.check("3000 ORs", Error(Code::InvalidArgument, "IN lists"), out);
    let cases = format!(
        "SELECT {} 1 {}",
        "CASE WHEN true THEN ".repeat(1500),
        " END".repeat(1500)
    );
    let out = c.run(statement(&cases)).await;
    c.check(
        "1500 nested CASEs",
        Error(Code::InvalidArgument, "--max-expression-depth"),
        out,
    );
    let out = c.run(statement("SELEC amiId FROM store_image_tasks")).await;
    c.check(
        "syntax error",
        Error(
            Code::InvalidArgument,
            "SQL syntax error: expected an SQL statement, found SELEC at line 1, column 1",
        ),
        out,
    );
    let out = c.run(statement("")).await;
    c.check(
        "empty SQL",
        Error(Code::InvalidArgument, "no SQL statement"),
        out,
    );
    let out = c.run(statement("-- only a comment")).await;
    c.check(
        "SQL that is only a comment",
        Error(Code::InvalidArgument, "no SQL statement"),
        out,
    );
    let out = c.run(statement("SELECT 1; SELECT 2")).await;
    c.check(
        "two statements",
        Error(Code::InvalidArgument, "one statement per request"),
        out,
    );
    let out = c
        .run(statement("SELECT * FROM store_image_tasks_backup"))
        .await;
    c.check(
        "unknown table",
        Error(Code::NotFound, "store_image_tasks_backup"),
        out,
    );
    let out = c.run(statement("SELECT * FROM aws.iam.users")).await;
    c.check("unknown schema", Error(Code::NotFound, "iam"), out);
    let out = c
        .run(statement("SELECT password FROM store_image_tasks"))
        .await;
    c.check(
        "unknown column",
        Error(Code::InvalidArgument, "column password not found"),
        out,
    );
    let out = c
        .run(statement("SELECT * FROM \"store_image_tasks\u{0}\""))
        .await;
    c.check(
        "table name with a NUL character",
        Error(Code::NotFound, "not found"),
        out,
    );
    let out = c.run(statement("SELECT 'a\u{202e}b\u{0}c' AS s")).await;
    c.check("string literal with control characters", Rows(1), out);
    let out = c
        .run(statement(
            "SELECT * FROM store_image_tasks WHERE amiId = '' OR 1=1 --'",
        ))
        .await;
    c.check(
        "classic injection written into the SQL itself",
        Rows(9),
        out,
    );
    let out = c
        .run(statement(
            "COPY (SELECT 1) TO '/tmp/aws-flightsql-pwned.csv'",
        ))
        .await;
    c.check(
        "COPY TO a server file",
        Error(Code::InvalidArgument, "COPY"),
        out,
    );
    let out = c
        .run(statement(
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        ))
        .await;
    c.check(
        "external table over a server file",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let out = c.run(statement("DELETE FROM store_image_tasks")).await;
    c.check("DELETE", Error(Code::InvalidArgument, "DELETE"), out);
    let out = c.run(statement("DROP TABLE store_image_tasks")).await;
    c.check("DROP TABLE", Error(Code::InvalidArgument, ""), out);
    let out = c.run(statement("SET aws.no_such_option = 1")).await;
    c.check(
        "SET of an unknown option",
        Error(Code::InvalidArgument, "no_such_option"),
        out,
    );
    let out = c
        .run(statement("SET datafusion.execution.batch_size = 'lots'"))
        .await;
    c.check(
        "SET with a value of the wrong type",
        Error(Code::InvalidArgument, "batch_size"),
        out,
    );
    let out = c.run(statement("SELECT 1/0")).await;
    c.check(
        "division by zero",
        Error(Code::InvalidArgument, "Divide by zero"),
        out,
    );

    // --- Parameters ---------------------------------------------------------------------
    let two = "SELECT amiId FROM store_image_tasks WHERE region = $1 AND amiId = $2";
    let out = c.prepared(two, strings("$1", &["us-east-1"])).await;
    c.check(
        "one parameter where two are needed",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let three = RecordBatch::try_from_iter([
        (
            "$1",
            Arc::new(StringArray::from(vec!["us-east-1"])) as ArrayRef,
        ),
        ("$2", Arc::new(StringArray::from(vec!["ami-1"])) as ArrayRef),
        ("$3", Arc::new(StringArray::from(vec!["extra"])) as ArrayRef),
    ])
    .unwrap();
    let out = c.prepared(two, three).await;
    c.check(
        "three parameters where two are needed",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let out = c
        .prepared(
            "SELECT amiId FROM store_image_tasks WHERE progressPercentage > $1",
            strings("$1", &["a lot"]),
        )
        .await;
    c.check(
        "a string parameter for an integer",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let out = c
        .prepared(
            "SELECT amiId FROM store_image_tasks WHERE region = $1",
            strings("$1", &["us-east-1", "eu-west-1"]),
        )
        .await;
    c.check(
        "two parameter rows for a query",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let injections = [
        "' OR '1'='1",
        "x'; DROP TABLE store_image_tasks; --",
        "us-east-1' UNION SELECT * FROM information_schema.tables --",
        "$2",
        "\\'; SELECT 1; --",
    ];
    for (i, injection) in injections.iter().enumerate() {
        let out = c
            .prepared(
                "SELECT amiId FROM store_image_tasks WHERE region = $1",
                strings("$1", &[injection]),
            )
            .await;
        // A value that is not a region name is refused, not asked of AWS.
        c.check(
            format!("SQL injection {i} through a region parameter"),
            Error(Code::InvalidArgument, "not an AWS region name"),
            out,
        );
        let out = c
            .prepared(
                "SELECT region FROM store_image_tasks WHERE amiId = $1",
                strings("$1", &[injection]),
            )
            .await;
        c.check(
            format!("SQL injection {i} through an AMI parameter"),
            Rows(0),
            out,
        );
    }
    let handle = c
        .handle("SELECT amiId FROM store_image_tasks WHERE region = $1")
        .await;
    let bind = |batch: RecordBatch| {
        put_messages(
            CommandPreparedStatementQuery {
                prepared_statement_handle: handle.clone().into(),
            }
            .as_any()
            .encode_to_vec(),
            vec![batch],
        )
    };
    let messages = corrupt_utf8(bind(strings("$1", &[MARKER])).await);
    let out = c.put(messages).await;
    c.check(
        "a non-UTF-8 string parameter",
        Error(Code::InvalidArgument, "parameter batch"),
        out,
    );
    let messages = {
        let mut m = put_messages(
            CommandPreparedStatementQuery {
                prepared_statement_handle: handle.clone().into(),
            }
            .as_any()
            .encode_to_vec(),
            vec![strings("$1", &["us-east-1"])],
        )
        .await;
        for data in m.iter_mut().skip(1) {
            data.data_body = vec![0xee; data.data_body.len()].into();
            data.data_header = data.data_header.slice(..data.data_header.len() / 2);
        }
        m
    };
    let out = c.put(messages).await;
    c.check(
        "a corrupt parameter batch",
        Error(Code::InvalidArgument, "parameter batch"),
        out,
    );

    // --- INSERT -------------------------------------------------------------------------
    let insert = |values: &str| {
        format!("INSERT INTO store_image_tasks (region, amiId, bucket) VALUES {values}")
    };
    let update = |sql: String| {
        CommandStatementUpdate {
            query: sql,
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec()
    };
    let bad_inserts = [
        ("INSERT of an integer AMI id", insert("('us-east-1', 42, 'bucket-name')"), "ami"),
        ("INSERT of a NULL AMI id", insert(&format!("('us-east-1', NULL, '{bucket}')")), "amiId"),
        ("INSERT of a bucket name with an injection", insert(&format!("('us-east-1', '{ami}', 'b''); DELETE FROM x; --')")), "bucket"),
        ("INSERT into a region that does not exist", insert(&format!("('mars-north-1', '{ami}', '{bucket}')")), "mars-north-1"),
        (
            "INSERT of a read-only column",
            format!("INSERT INTO store_image_tasks (amiId, bucket, progressPercentage) VALUES ('{ami}', '{bucket}', 100)"),
            "progressPercentage",
        ),
        (
            "INSERT of a timestamp that is not one",
            format!("INSERT INTO store_image_tasks (amiId, bucket, taskStartTime) VALUES ('{ami}', '{bucket}', 'yesterday')"),
            "",
        ),
        (
            "INSERT into an unknown column",
            format!("INSERT INTO store_image_tasks (amiId, bucket, owner) VALUES ('{ami}', '{bucket}', 'me')"),
            "owner",
        ),
        ("INSERT with more values than columns", insert(&format!("('us-east-1', '{ami}', '{bucket}', 'extra')")), ""),
        (
            "INSERT of 1001 rows",
            format!(
                "INSERT INTO store_image_tasks (amiId, bucket) SELECT 'ami-' || lpad(to_hex(v), 17, '0'), '{bucket}' FROM generate_series(1, 1001) AS t(v)"
            ),
            "1000",
        ),
    ];
    for (what, sql, says) in bad_inserts {
        let out = c
            .put(vec![FlightData {
                flight_descriptor: Some(FlightDescriptor::new_cmd(update(sql))),
                ..Default::default()
            }])
            .await;
        c.check(what, Error(Code::InvalidArgument, says), out);
    }
    let out = c
        .put(vec![FlightData {
            flight_descriptor: Some(FlightDescriptor::new_cmd(any(
                "CommandStatementUpdate",
                non_utf8_field1(),
            ))),
            ..Default::default()
        }])
        .await;
    c.check(
        "an update with non-UTF-8 SQL",
        Error(Code::InvalidArgument, "invalid request"),
        out,
    );
    let out = c
        .prepared_update(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)",
            RecordBatch::try_from_iter([
                (
                    "$1",
                    Arc::new(StringArray::from(vec!["us-east-1"])) as ArrayRef,
                ),
                ("$2", Arc::new(Int64Array::from(vec![7])) as ArrayRef),
                (
                    "$3",
                    Arc::new(StringArray::from(vec![bucket.clone()])) as ArrayRef,
                ),
            ])
            .unwrap(),
        )
        .await;
    c.check(
        "prepared INSERT with an integer AMI id",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let ingest = |table: &str| CommandStatementIngest {
        table: table.into(),
        ..Default::default()
    };
    let rows = RecordBatch::try_from_iter([
        ("amiId", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "bucket",
            Arc::new(StringArray::from(vec![bucket.clone(), bucket.clone()])) as ArrayRef,
        ),
    ])
    .unwrap();
    let out = c
        .put(
            put_messages(
                ingest("store_image_tasks").as_any().encode_to_vec(),
                vec![rows.clone()],
            )
            .await,
        )
        .await;
    c.check(
        "ingest of integer AMI ids",
        Error(Code::InvalidArgument, ""),
        out,
    );
    let out = c
        .put(put_messages(ingest("no_such_table").as_any().encode_to_vec(), vec![rows]).await)
        .await;
    c.check(
        "ingest into an unknown table",
        Error(Code::NotFound, "no_such_table"),
        out,
    );
    let messages = corrupt_utf8(
        put_messages(
            ingest("store_image_tasks").as_any().encode_to_vec(),
            vec![RecordBatch::try_from_iter([
                (
                    "amiId",
                    Arc::new(StringArray::from(vec![MARKER])) as ArrayRef,
                ),
                (
                    "bucket",
                    Arc::new(StringArray::from(vec![bucket.clone()])) as ArrayRef,
                ),
            ])
            .unwrap()],
        )
        .await,
    );
    let out = c.put(messages).await;
    c.check(
        "ingest of non-UTF-8 strings",
        Error(Code::InvalidArgument, "rows to ingest"),
        out,
    );
    let out = c
        .put(vec![FlightData {
            flight_descriptor: Some(FlightDescriptor::new_cmd(
                ingest("store_image_tasks").as_any().encode_to_vec(),
            )),
            data_header: vec![0xff; 32].into(),
            data_body: vec![0x00; 32].into(),
            ..Default::default()
        }])
        .await;
    c.check(
        "ingest of garbage IPC",
        Error(Code::InvalidArgument, "rows to ingest"),
        out,
    );
    let out = c
        .put(vec![FlightData {
            flight_descriptor: Some(FlightDescriptor::new_cmd(
                CommandPreparedStatementUpdate {
                    prepared_statement_handle: vec![0xff; 5].into(),
                }
                .as_any()
                .encode_to_vec(),
            )),
            ..Default::default()
        }])
        .await;
    c.check(
        "prepared update with a garbage handle",
        Error(Code::InvalidArgument, "prepared statement handle"),
        out,
    );
    let out = c.put(vec![]).await;
    c.check(
        "DoPut without any message",
        Error(Code::InvalidArgument, "needs a Flight SQL command"),
        out,
    );
    let out = c
        .put(vec![FlightData {
            flight_descriptor: Some(FlightDescriptor::new_cmd(vec![0xff; 9])),
            ..Default::default()
        }])
        .await;
    c.check(
        "DoPut with an invalid command",
        Error(Code::InvalidArgument, "not valid protobuf"),
        out,
    );

    // --- Hardening: hidden writes, plan size, settings, budgets, unbound parameters ------
    let copy_to =
        std::env::temp_dir().join(format!("aws-flightsql-copy-{}.csv", std::process::id()));
    let hostile: [(&str, String, Code, &str); 11] = [
        (
            "EXPLAIN ANALYZE of a COPY TO a file",
            format!(
                "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{}'",
                copy_to.display()
            ),
            Code::InvalidArgument,
            "COPY is not available",
        ),
        (
            "a closed option under a longer name",
            "SET datafusion.execution.target_partitions.x = 10000".into(),
            Code::InvalidArgument,
            "unknown session option",
        ),
        (
            "3,000 pipe operators",
            format!("SELECT 1 AS a{}", " |> EXTEND 1 AS b".repeat(3000)),
            Code::InvalidArgument,
            "--max-query-blocks",
        ),
        (
            "a CUBE of 30 columns",
            format!(
                "SELECT count(*) FROM (SELECT 1 AS c) GROUP BY CUBE({})",
                vec!["c"; 30].join(", ")
            ),
            Code::InvalidArgument,
            "CUBE of 30 columns",
        ),
        (
            "EXPLAIN ANALYZE of an INSERT",
            format!(
                "EXPLAIN ANALYZE INSERT INTO store_image_tasks (region, amiId, bucket) \
                 VALUES ('us-east-1', '{}', 'b')",
                "ami-0123456789abcdef0"
            ),
            Code::InvalidArgument,
            "EXPLAIN ANALYZE of an INSERT is refused",
        ),
        (
            "6,000 UNION ALL arms",
            vec!["SELECT 1"; 6000].join(" UNION ALL "),
            Code::InvalidArgument,
            "--max-query-blocks",
        ),
        (
            "a chain of 2,000 CTEs",
            format!(
                "WITH c0 AS (SELECT 1 AS v), {} SELECT * FROM c2000",
                (1..=2000)
                    .map(|i| format!("c{i} AS (SELECT v FROM c{})", i - 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Code::InvalidArgument,
            "--max-query-blocks",
        ),
        (
            "target_partitions = 10000",
            "SET datafusion.execution.target_partitions = 10000".into(),
            Code::InvalidArgument,
            "between 1 and 16",
        ),
        (
            "a runtime setting",
            "SET datafusion.execution.max_spill_file_size_bytes = 1".into(),
            Code::InvalidArgument,
            "cannot be set by clients",
        ),
        (
            "amiId IN 30,000 ids",
            format!(
                "SELECT * FROM store_image_tasks WHERE amiId IN ({})",
                (0..30_000)
                    .map(|i| format!("'ami-{i:017x}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Code::InvalidArgument,
            "--max-aws-calls-per-query",
        ),
        (
            "an unbound $1",
            "SELECT amiId FROM store_image_tasks WHERE region = $1".into(),
            Code::InvalidArgument,
            "have no value",
        ),
    ];
    for (name, sql, code, says) in hostile {
        let out = c.run(statement(&sql)).await;
        c.check(name, Error(code, says), out);
    }
    assert!(!copy_to.exists(), "a COPY wrote {}", copy_to.display());
    let handle = c
        .handle("SELECT amiId FROM store_image_tasks WHERE region = ?")
        .await;
    let out = c
        .run(FlightDescriptor::new_cmd(
            CommandPreparedStatementQuery {
                prepared_statement_handle: handle.into(),
            }
            .as_any()
            .encode_to_vec(),
        ))
        .await;
    c.check(
        "a prepared query run without binding its parameter",
        Error(Code::InvalidArgument, "have no value"),
        out,
    );

    // --- The verdict --------------------------------------------------------------------
    let mut failures = Vec::new();
    for (name, expect, outcome) in &c.cases {
        let ok = match (expect, outcome) {
            (Expect::Error(code, says), Err(status)) => {
                status.code() == *code
                    && status.message().contains(says)
                    && !status.message().is_empty()
            }
            (Expect::Rows(n), Ok(rows)) => rows == n,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {outcome:?}"));
        }
        let got = match outcome {
            Ok(rows) => format!("{rows} rows"),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        println!("{name} → {}", got.chars().take(160).collect::<String>());
    }
    println!("bad-input corpus: {} cases", c.cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        c.cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        c.cases.len(),
        CORPUS_CASES,
        "update CORPUS_CASES (and the README)"
    );
    assert_eq!(
        fx.calls("CreateStoreImageTask"),
        0,
        "a bad INSERT reached AWS"
    );

    // The server still answers a normal query.
    let mut client = fx.client().await;
    let (_, batches) = aws_flightsql::client::query(&mut client, "SELECT * FROM store_image_tasks")
        .await
        .unwrap();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 9);
}

/// The server binary (`serve --demo`), killed on drop.
struct Binary(std::process::Child);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server binary (`serve --demo` and `args`) on 127.0.0.1:0; its URI.
fn start_binary(args: &[&str]) -> (Binary, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aws-flightsql"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Binary(child);
    let uri = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("aws-flightsql listening on ")
                .map(str::to_owned)
        })
        .expect("the server starts");
    (server, uri.trim().replace("grpc://", "http://"))
}

async fn corpus_for(uri: &str) -> Corpus {
    let channel = Endpoint::from_shared(uri.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    Corpus {
        raw: FlightServiceClient::new(channel.clone()),
        sql: FlightSqlServiceClient::new(channel),
        cases: Vec::new(),
    }
}

/// Long chains of every shape that makes DataFusion recurse or grow (UNION, VALUES, CTE,
/// JOIN, comma joins, nested subqueries, CASE, sums, ORs, IN lists), at lengths around and
/// far past the limits, sent to the server binary (a stack overflow aborts the process, a
/// quadratic plan takes the machine's memory): each is answered or refused with
/// INVALID_ARGUMENT, and the server is still there afterwards.
#[tokio::test]
async fn long_chains_of_every_shape_are_answered_or_refused_and_the_server_lives() {
    let (mut server, uri) = start_binary(&[]);
    let mut c = corpus_for(&uri).await;
    let join = |n: usize, f: &dyn Fn(usize) -> String, sep: &str| {
        (0..n).map(f).collect::<Vec<_>>().join(sep)
    };
    type Shape = (&'static str, Box<dyn Fn(usize) -> String>);
    let shapes: Vec<Shape> = vec![
        (
            "UNION ALL",
            Box::new(move |n| join(n, &|i| format!("SELECT {i} AS v"), " UNION ALL ")),
        ),
        (
            "VALUES union",
            Box::new(move |n| join(n, &|i| format!("VALUES ({i})"), " UNION ")),
        ),
        (
            "CTE chain",
            Box::new(move |n| {
                let ctes = join(
                    n,
                    &|i| format!("c{} AS (SELECT v + 1 AS v FROM c{i})", i + 1),
                    ", ",
                );
                format!("WITH c0 AS (SELECT 1 AS v), {ctes} SELECT * FROM c{n}")
            }),
        ),
        (
            "JOIN chain",
            Box::new(move |n| {
                let joins = join(
                    n,
                    &|i| format!(" JOIN (SELECT 1 AS v) t{} ON t{}.v = t0.v", i + 1, i + 1),
                    "",
                );
                format!("SELECT count(*) FROM (SELECT 1 AS v) t0{joins}")
            }),
        ),
        (
            "comma joins",
            Box::new(move |n| {
                format!(
                    "SELECT count(*) FROM {}",
                    join(n + 1, &|i| format!("(SELECT 1) t{i}"), ", ")
                )
            }),
        ),
        (
            "nested subqueries",
            Box::new(|n| {
                (0..n).fold("SELECT 1 AS v".to_owned(), |inner, i| {
                    format!("SELECT * FROM ({inner}) t{i}")
                })
            }),
        ),
        (
            "nested CASE",
            Box::new(|n| {
                format!(
                    "SELECT {}1{}",
                    "CASE WHEN true THEN ".repeat(n),
                    " END".repeat(n)
                )
            }),
        ),
        (
            "sum",
            Box::new(move |n| format!("SELECT {}", join(n + 1, &|_| "1".into(), " + "))),
        ),
        (
            "OR chain",
            Box::new(move |n| {
                let ors = join(n, &|i| format!("amiId = 'ami-{i:017x}'"), " OR ");
                format!("SELECT count(amiId) FROM store_image_tasks WHERE {ors}")
            }),
        ),
        (
            "IN list",
            Box::new(move |n| {
                let ids = join(n, &|i| format!("'x{i}'"), ", ");
                format!("SELECT count(*) FROM (SELECT 'x' AS v) WHERE v IN ({ids})")
            }),
        ),
    ];
    for (name, make) in &shapes {
        for n in [8, 100, 300, 1_000, 6_000] {
            let sql = make(n);
            if sql.len() > 1024 * 1024 {
                continue;
            }
            let outcome = c.run(statement(&sql)).await;
            if let Err(status) = &outcome {
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{name} x {n}: {}",
                    status.message()
                );
                // Past 256 the server's own limits refuse before parsing and name their
                // setting; below, the parser's own nesting limit may refuse (50 levels).
                assert!(
                    n < 300 || status.message().contains("--max-"),
                    "{name} x {n}: the refusal names no limit: {}",
                    status.message()
                );
            }
            assert!(
                server.0.try_wait().unwrap().is_none(),
                "{name} x {n} killed the server"
            );
            assert_eq!(
                c.run(statement("SELECT 1")).await.unwrap(),
                1,
                "{name} x {n}"
            );
        }
        // Short chains of every shape run.
        c.run(statement(&make(8))).await.unwrap();
    }
    // The chains the issue reported: 6,000 union arms, 5,000 CTEs, refused before planning.
    for sql in [shapes[0].1(6_000), shapes[2].1(5_000)] {
        let err = c.run(statement(&sql)).await.unwrap_err();
        assert!(err.message().contains("--max-query-blocks"), "{err}");
    }
}

/// Session settings a client may not raise past what the server allows, and a statement
/// that needs more memory than `--max-memory` fails with RESOURCE_EXHAUSTED while the
/// server lives.
#[tokio::test]
async fn settings_are_bounded_and_memory_is_pooled() {
    let (mut server, uri) = start_binary(&["--max-memory", "32MiB"]);
    let mut c = corpus_for(&uri).await;
    for (set, says) in [
        (
            "SET datafusion.execution.target_partitions = 10000",
            "between 1 and 16",
        ),
        (
            "SET datafusion.sql_parser.recursion_limit = 100000",
            "between 1 and 1000",
        ),
        (
            "SET datafusion.execution.max_spill_file_size_bytes = 1",
            "cannot be set by clients",
        ),
    ] {
        let err = c.run(statement(set)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{set}: {err}");
        assert!(err.message().contains(says), "{set}: {}", err.message());
    }
    c.run(statement("SET datafusion.execution.target_partitions = 4"))
        .await
        .unwrap();
    let err = c
        .run(statement(
            // Five million groups in no order: the hash table must hold them all.
            "SELECT count(*) FROM (SELECT (value * 7919) % 5000011 AS k, count(*) AS n \
             FROM generate_series(1, 5000000) GROUP BY 1)",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("--max-memory"), "{err}");
    assert!(server.0.try_wait().unwrap().is_none());
    assert_eq!(c.run(statement("SELECT 1")).await.unwrap(), 1);
}

#[tokio::test]
async fn expressions_at_the_depth_limit_run_in_the_server_binary() {
    let (_server, uri) = start_binary(&[]);
    let channel = Endpoint::from_shared(uri).unwrap().connect().await.unwrap();
    let mut c = Corpus {
        raw: FlightServiceClient::new(channel.clone()),
        sql: FlightSqlServiceClient::new(channel),
        cases: Vec::new(),
    };
    // At the limit: a 257-term sum (256 operators) is planned, printed, cloned and dropped
    // on the server's 32 MiB worker stacks (a debug build needs the most; a 2 MiB stack
    // overflows).
    let sum = format!("SELECT {} AS total", vec!["1"; 257].join(" + "));
    assert_eq!(c.run(statement(&sum)).await.unwrap(), 1);
    // With the parser's own recursion limit raised by the session, 250 nested calls.
    let response = c
        .raw
        .get_flight_info(statement(
            "SET datafusion.sql_parser.recursion_limit = 1000",
        ))
        .await
        .unwrap();
    let cookie = response
        .metadata()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut request = Request::new(statement(&format!(
        "SELECT {} AS v",
        nested(250, "abs(", "-1", ")")
    )));
    request
        .metadata_mut()
        .insert("cookie", cookie.parse().unwrap());
    assert_eq!(c.run_request(request).await.unwrap(), 1);
    // Over the limit: refused, and the server is still there.
    let over = format!("SELECT {}", vec!["1"; 258].join(" + "));
    let err = c.run(statement(&over)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(c.run(statement("SELECT 1")).await.unwrap(), 1);
}
