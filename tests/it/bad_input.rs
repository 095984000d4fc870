//! The bad-input corpus: malformed and hostile requests through the raw `FlightServiceClient`
//! and arrow-flight's Flight SQL client. Each gets a clear error with the right status code
//! (or, for injection attempts, is treated as the plain value it is), nothing reaches AWS's
//! write API, and afterwards the server still answers a normal query. The count of cases is
//! the figure the README gives.
//!
//! The corpus is a table: [`corpus`] lists every [`Case`] (its name, the [`Input`] sent and
//! what it must get back), and one runner sends each to one server and emulator and reports
//! every case that failed, by name.

use crate::common;

use std::path::PathBuf;
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
const CORPUS_CASES: usize = 110;

const SQL_TYPE: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// One entry of the corpus.
struct Case {
    /// What the case is, as the failure report names it.
    name: String,
    /// What is sent.
    request: Input,
    /// What must come back.
    expect: Expect,
}

/// What a case must get back.
#[derive(Debug)]
enum Expect {
    /// An error with this code whose message contains this text (and is not empty).
    Error(Code, &'static str),
    /// An answer: the hostile input was taken as a plain value, with this many rows.
    Rows(usize),
}

/// What a case sends.
enum Input {
    /// DoGet of a ticket.
    Ticket(Vec<u8>),
    /// GetFlightInfo of a descriptor, then DoGet of every endpoint.
    Descriptor(FlightDescriptor),
    /// Like `Descriptor`, the request carrying this `cookie` header.
    WithCookie(FlightDescriptor, String),
    /// DoAction of this type with this body.
    Action(&'static str, Vec<u8>),
    /// DoPut of these messages.
    Put(Vec<FlightData>),
    /// A prepared query (arrow-flight's client) run with these parameters.
    Prepared(String, RecordBatch),
    /// A prepared update (arrow-flight's client) run with these parameters.
    PreparedUpdate(String, RecordBatch),
}

fn case(name: impl Into<String>, request: Input, expect: Expect) -> Case {
    Case {
        name: name.into(),
        request,
        expect,
    }
}

/// A statement query's descriptor for `sql`, as an input.
fn sql(sql: &str) -> Input {
    Input::Descriptor(statement(sql))
}

/// A Flight SQL command, encoded, as a descriptor input.
fn cmd(command: Vec<u8>) -> Input {
    Input::Descriptor(FlightDescriptor::new_cmd(command))
}

/// A DoPut of one message carrying only a descriptor of `command`.
fn put_command(command: Vec<u8>) -> Input {
    Input::Put(vec![FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(command)),
        ..Default::default()
    }])
}

/// A raw Flight client and a Flight SQL client on one channel, which send inputs.
struct Client {
    raw: FlightServiceClient<Channel>,
    sql: FlightSqlServiceClient<Channel>,
}

impl Client {
    /// A client of `uri` (`http://...`).
    async fn connect(uri: &str) -> Client {
        let channel = Endpoint::from_shared(uri.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap();
        Client {
            raw: FlightServiceClient::new(channel.clone()),
            sql: FlightSqlServiceClient::new(channel),
        }
    }

    /// Sends `input`; the rows (or results) that came back, or the error.
    async fn send(&mut self, input: Input) -> Result<usize, Status> {
        match input {
            Input::Ticket(ticket) => self.fetch(Ticket::new(ticket)).await,
            Input::Descriptor(descriptor) => self.run(descriptor).await,
            Input::WithCookie(descriptor, cookie) => {
                let mut request = Request::new(descriptor);
                request
                    .metadata_mut()
                    .insert("cookie", cookie.parse().unwrap());
                self.run_request(request).await
            }
            Input::Action(kind, body) => self.action(kind, body).await,
            Input::Put(messages) => self.put(messages).await,
            Input::Prepared(sql, params) => self.prepared(&sql, params).await,
            Input::PreparedUpdate(sql, params) => self.prepared_update(&sql, params).await,
        }
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

/// What some cases are made from, asked of the server and the emulator before the run: a
/// storable AMI and a bucket, a real ticket to cut, prepared-statement handles to cut or
/// leave unbound, and a file path that a COPY must not write.
struct Material {
    ami: String,
    bucket: String,
    /// The ticket of `SELECT * FROM store_image_tasks`.
    ticket: Vec<u8>,
    /// The handle of `SELECT amiId FROM store_image_tasks`.
    select_handle: Vec<u8>,
    /// The handle of `... WHERE region = $1`.
    region_handle: Vec<u8>,
    /// The handle of `... WHERE region = ?`.
    unbound_handle: Vec<u8>,
    copy_to: PathBuf,
}

impl Material {
    async fn ask(fx: &Fixture, c: &mut Client, dir: &tempfile::TempDir) -> Material {
        let ticket = c
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
        Material {
            ami: fx.emulator.storable_amis("us-east-1")[0].clone(),
            bucket: fx.emulator.buckets("us-east-1")[0].clone(),
            ticket,
            select_handle: c.handle("SELECT amiId FROM store_image_tasks").await,
            region_handle: c
                .handle("SELECT amiId FROM store_image_tasks WHERE region = $1")
                .await,
            unbound_handle: c
                .handle("SELECT amiId FROM store_image_tasks WHERE region = ?")
                .await,
            copy_to: dir.path().join("aws-flightsql-copy.csv"),
        }
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

/// DoGet of the server's own ticket message, forged.
fn statement_ticket(ticket: StatementTicket) -> Input {
    Input::Ticket(
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

/// Every case, in the order they run.
async fn corpus(m: &Material) -> Vec<Case> {
    use Expect::{Error, Rows};
    let (ami, bucket) = (&m.ami, &m.bucket);
    let mut cases = Vec::new();

    // --- Tickets -------------------------------------------------------------------------
    cases.push(case(
        "empty ticket",
        Input::Ticket(Vec::new()),
        Error(Code::InvalidArgument, "no Flight SQL command"),
    ));
    cases.push(case(
        "garbage ticket",
        Input::Ticket(vec![0xff; 64]),
        Error(Code::InvalidArgument, "not valid protobuf"),
    ));
    let good = &m.ticket;
    for cut in [1, good.len() / 2, good.len() - 1] {
        cases.push(case(
            format!("ticket truncated to {cut} bytes"),
            Input::Ticket(good[..cut].to_vec()),
            Error(Code::InvalidArgument, ""),
        ));
    }
    cases.push(case(
        "ticket with a truncated inner message",
        Input::Ticket(any("TicketStatementQuery", vec![0x0a, 0x05, 0xff, 0xff])),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "garbage statement handle",
        Input::Ticket(
            TicketStatementQuery {
                statement_handle: vec![0xff, 0x00, 0x13, 0x37].into(),
            }
            .as_any()
            .encode_to_vec(),
        ),
        Error(Code::InvalidArgument, "invalid statement ticket"),
    ));
    let handle = Any::decode(good.as_slice())
        .unwrap()
        .unpack::<TicketStatementQuery>()
        .unwrap()
        .unwrap()
        .statement_handle;
    cases.push(case(
        "truncated statement handle",
        Input::Ticket(
            TicketStatementQuery {
                statement_handle: handle.slice(..handle.len() - 3),
            }
            .as_any()
            .encode_to_vec(),
        ),
        Error(Code::InvalidArgument, "invalid statement ticket"),
    ));
    cases.push(case(
        "ticket of an unknown command type",
        Input::Ticket(
            Any {
                type_url: "type.googleapis.com/evil.DropEverything".into(),
                value: vec![1, 2, 3].into(),
            }
            .encode_to_vec(),
        ),
        Error(Code::Unimplemented, "evil.DropEverything"),
    ));
    cases.push(case(
        "statement ticket with non-UTF-8 SQL",
        Input::Ticket(
            TicketStatementQuery {
                statement_handle: non_utf8_field1().into(),
            }
            .as_any()
            .encode_to_vec(),
        ),
        Error(Code::InvalidArgument, "invalid statement ticket"),
    ));
    cases.push(case(
        "statement ticket with garbage parameters",
        statement_ticket(StatementTicket {
            sql: "SELECT * FROM store_image_tasks WHERE amiId = $1".into(),
            parameters: vec![0xde, 0xad, 0xbe, 0xef],
            query_id: String::new(),
        }),
        Error(Code::InvalidArgument, "invalid parameters"),
    ));
    // Found by the fuzzer: parameters declaring 2 GiB made the IPC reader allocate it.
    cases.push(case(
        "statement ticket whose parameters declare 2 GiB",
        statement_ticket(StatementTicket {
            sql: "SELECT $1".into(),
            parameters: vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0],
            query_id: String::new(),
        }),
        Error(Code::InvalidArgument, "bytes of metadata"),
    ));
    cases.push(case(
        "forged ticket naming an unknown table",
        statement_ticket(StatementTicket {
            sql: "SELECT * FROM secrets.passwords".into(),
            parameters: Vec::new(),
            query_id: String::new(),
        }),
        Error(Code::NotFound, "not found"),
    ));
    cases.push(case(
        "forged ticket carrying an INSERT",
        statement_ticket(StatementTicket {
            sql: format!(
                "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"
            ),
            parameters: Vec::new(),
            query_id: String::new(),
        }),
        Error(Code::InvalidArgument, "tickets never"),
    ));
    cases.push(case(
        "garbage prepared handle in a ticket",
        Input::Ticket(
            CommandPreparedStatementQuery {
                prepared_statement_handle: vec![0xff; 8].into(),
            }
            .as_any()
            .encode_to_vec(),
        ),
        Error(Code::InvalidArgument, "prepared statement handle"),
    ));

    // --- Descriptors and commands --------------------------------------------------------
    cases.push(case(
        "descriptor with invalid protobuf",
        cmd(vec![0xff; 16]),
        Error(Code::InvalidArgument, "not valid protobuf"),
    ));
    cases.push(case(
        "descriptor with an empty command",
        cmd(Vec::new()),
        Error(Code::InvalidArgument, "no Flight SQL command"),
    ));
    cases.push(case(
        "descriptor of an unknown command type",
        cmd(Any {
            type_url: "type.googleapis.com/evil.Command".into(),
            value: vec![].into(),
        }
        .encode_to_vec()),
        Error(Code::Unimplemented, "evil.Command"),
    ));
    cases.push(case(
        "path descriptor",
        Input::Descriptor(FlightDescriptor::new_path(vec![
            "etc".into(),
            "passwd".into(),
        ])),
        Error(Code::InvalidArgument, "path descriptor"),
    ));
    cases.push(case(
        "statement with non-UTF-8 SQL",
        cmd(any("CommandStatementQuery", non_utf8_field1())),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "statement with a truncated string",
        cmd(any("CommandStatementQuery", vec![0x0a, 0x7f, 0x41])),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "garbage prepared handle",
        cmd(CommandPreparedStatementQuery {
            prepared_statement_handle: vec![0x12, 0xff, 0x01].into(),
        }
        .as_any()
        .encode_to_vec()),
        Error(Code::InvalidArgument, "prepared statement handle"),
    ));
    let handle = &m.select_handle;
    cases.push(case(
        "truncated prepared handle",
        cmd(CommandPreparedStatementQuery {
            prepared_statement_handle: handle[..handle.len() / 2].to_vec().into(),
        }
        .as_any()
        .encode_to_vec()),
        Error(Code::InvalidArgument, "prepared statement handle"),
    ));
    cases.push(case(
        "GetTables with a non-UTF-8 catalog",
        cmd(any("CommandGetTables", non_utf8_field1())),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "GetTables with an injection in its pattern",
        cmd(CommandGetTables {
            table_name_filter_pattern: Some("%'; DROP TABLE x; --".into()),
            ..Default::default()
        }
        .as_any()
        .encode_to_vec()),
        Rows(0),
    ));

    // --- Actions ------------------------------------------------------------------------
    cases.push(case(
        "unknown action type",
        Input::Action("DropAllTables", vec![]),
        Error(Code::Unimplemented, "unknown action type"),
    ));
    cases.push(case(
        "CreatePreparedStatement with invalid protobuf",
        Input::Action("CreatePreparedStatement", vec![0xff; 10]),
        Error(Code::InvalidArgument, "not valid protobuf"),
    ));
    cases.push(case(
        "CreatePreparedStatement with non-UTF-8 SQL",
        Input::Action(
            "CreatePreparedStatement",
            any("ActionCreatePreparedStatementRequest", non_utf8_field1()),
        ),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "CancelFlightInfo with invalid protobuf",
        Input::Action("CancelFlightInfo", vec![0xff; 10]),
        Error(Code::InvalidArgument, "invalid CancelFlightInfo"),
    ));
    cases.push(case(
        "SetSessionOptions with invalid protobuf",
        Input::Action("SetSessionOptions", vec![0x0a, 0xff]),
        Error(Code::InvalidArgument, "invalid SetSessionOptions"),
    ));
    cases.push(case(
        "CancelQuery with a garbage FlightInfo",
        Input::Action(
            "CancelQuery",
            any("ActionCancelQueryRequest", vec![0x0a, 0x03, 1, 2, 3]),
        ),
        Error(Code::InvalidArgument, "invalid FlightInfo"),
    ));

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
        cases.push(case(
            what,
            Input::WithCookie(statement("SELECT 1"), cookie),
            Error(Code::InvalidArgument, "cookie"),
        ));
    }

    // --- SQL ----------------------------------------------------------------------------
    let ors = (0..3000)
        .map(|i| format!("amiId = 'ami-{i:017x}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql_cases: Vec<(&str, String, Expect)> = vec![
        (
            "2 MiB of SQL",
            format!("SELECT '{}' AS s", "x".repeat(2 * 1024 * 1024)),
            Error(Code::InvalidArgument, "--max-sql-bytes"),
        ),
        (
            "5000 nested parentheses",
            format!("SELECT {}", nested(5000, "(", "1", ")")),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "60 nested parentheses (the parser's limit)",
            format!("SELECT {}", nested(60, "(", "1", ")")),
            Error(Code::InvalidArgument, "nests deeper than the parser allows"),
        ),
        (
            "2000 nested function calls",
            format!("SELECT {}", nested(2000, "abs(", "1", ")")),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "60 nested subqueries (the parser's limit)",
            nested(60, "SELECT * FROM (", "SELECT 1 AS a", ") AS t"),
            Error(Code::InvalidArgument, "nests deeper than the parser allows"),
        ),
        (
            "1200 nested subqueries",
            nested(1200, "SELECT * FROM (", "SELECT 1 AS a", ") AS t"),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "3000 nested NOTs",
            format!("SELECT 1 WHERE {}", vec!["NOT"; 3000].join(" ") + " true"),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "a 20000-term sum",
            format!("SELECT {}", vec!["1"; 20_000].join(" + ")),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "3000 ORs",
            format!("SELECT * FROM store_image_tasks WHERE {ors}"),
            Error(Code::InvalidArgument, "IN lists"),
        ),
        (
            "1500 nested CASEs",
            format!(
                "SELECT {} 1 {}",
                "CASE WHEN true THEN ".repeat(1500),
                " END".repeat(1500)
            ),
            Error(Code::InvalidArgument, "--max-expression-depth"),
        ),
        (
            "syntax error",
            "SELEC amiId FROM store_image_tasks".into(),
            Error(
                Code::InvalidArgument,
                "SQL syntax error: expected an SQL statement, found SELEC at line 1, column 1",
            ),
        ),
        (
            "empty SQL",
            "".into(),
            Error(Code::InvalidArgument, "no SQL statement"),
        ),
        (
            "SQL that is only a comment",
            "-- only a comment".into(),
            Error(Code::InvalidArgument, "no SQL statement"),
        ),
        (
            "two statements",
            "SELECT 1; SELECT 2".into(),
            Error(Code::InvalidArgument, "one statement per request"),
        ),
        (
            "unknown table",
            "SELECT * FROM store_image_tasks_backup".into(),
            Error(Code::NotFound, "store_image_tasks_backup"),
        ),
        (
            "unknown schema",
            "SELECT * FROM aws.iam.users".into(),
            Error(Code::NotFound, "iam"),
        ),
        (
            "unknown column",
            "SELECT password FROM store_image_tasks".into(),
            Error(Code::InvalidArgument, "column password not found"),
        ),
        (
            "table name with a NUL character",
            "SELECT * FROM \"store_image_tasks\u{0}\"".into(),
            Error(Code::NotFound, "not found"),
        ),
        (
            "string literal with control characters",
            "SELECT 'a\u{202e}b\u{0}c' AS s".into(),
            Rows(1),
        ),
        (
            "classic injection written into the SQL itself",
            "SELECT * FROM store_image_tasks WHERE amiId = '' OR 1=1 --'".into(),
            Rows(9),
        ),
        (
            "COPY TO a server file",
            format!("COPY (SELECT 1) TO '{}'", m.copy_to.display()),
            Error(Code::InvalidArgument, "COPY"),
        ),
        (
            "external table over a server file",
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'".into(),
            Error(Code::InvalidArgument, ""),
        ),
        (
            "DELETE",
            "DELETE FROM store_image_tasks".into(),
            Error(Code::InvalidArgument, "DELETE"),
        ),
        (
            "DROP TABLE",
            "DROP TABLE store_image_tasks".into(),
            Error(Code::InvalidArgument, ""),
        ),
        (
            "an INSERT inside a CTE",
            "WITH x AS (SELECT 1) INSERT INTO store_image_tasks (amiId, bucket) \
             SELECT 'ami-0123456789abcdef0', 'b' FROM x"
                .into(),
            Error(
                Code::InvalidArgument,
                "this form of statement is not supported (DataFusion: Query INSERT",
            ),
        ),
        (
            "SET of an unknown option",
            "SET aws.no_such_option = 1".into(),
            Error(Code::InvalidArgument, "no_such_option"),
        ),
        (
            "SET with a value of the wrong type",
            "SET datafusion.execution.batch_size = 'lots'".into(),
            Error(Code::InvalidArgument, "batch_size"),
        ),
        (
            "division by zero",
            "SELECT 1/0".into(),
            Error(Code::InvalidArgument, "Divide by zero"),
        ),
    ];
    for (name, text, expect) in sql_cases {
        cases.push(case(name, sql(&text), expect));
    }

    // --- Parameters ---------------------------------------------------------------------
    let two = "SELECT amiId FROM store_image_tasks WHERE region = $1 AND amiId = $2";
    cases.push(case(
        "one parameter where two are needed",
        Input::Prepared(two.into(), strings("$1", &["us-east-1"])),
        Error(Code::InvalidArgument, ""),
    ));
    let three = RecordBatch::try_from_iter([
        (
            "$1",
            Arc::new(StringArray::from(vec!["us-east-1"])) as ArrayRef,
        ),
        ("$2", Arc::new(StringArray::from(vec!["ami-1"])) as ArrayRef),
        ("$3", Arc::new(StringArray::from(vec!["extra"])) as ArrayRef),
    ])
    .unwrap();
    cases.push(case(
        "three parameters where two are needed",
        Input::Prepared(two.into(), three),
        Error(Code::InvalidArgument, ""),
    ));
    cases.push(case(
        "a string parameter for an integer",
        Input::Prepared(
            "SELECT amiId FROM store_image_tasks WHERE progressPercentage > $1".into(),
            strings("$1", &["a lot"]),
        ),
        Error(Code::InvalidArgument, ""),
    ));
    cases.push(case(
        "two parameter rows for a query",
        Input::Prepared(
            "SELECT amiId FROM store_image_tasks WHERE region = $1".into(),
            strings("$1", &["us-east-1", "eu-west-1"]),
        ),
        Error(Code::InvalidArgument, ""),
    ));
    let injections = [
        "' OR '1'='1",
        "x'; DROP TABLE store_image_tasks; --",
        "us-east-1' UNION SELECT * FROM information_schema.tables --",
        "$2",
        "\\'; SELECT 1; --",
    ];
    for (i, injection) in injections.iter().enumerate() {
        // A value that is not a region name is refused, not asked of AWS.
        cases.push(case(
            format!("SQL injection {i} through a region parameter"),
            Input::Prepared(
                "SELECT amiId FROM store_image_tasks WHERE region = $1".into(),
                strings("$1", &[injection]),
            ),
            Error(Code::InvalidArgument, "not an AWS region name"),
        ));
        cases.push(case(
            format!("SQL injection {i} through an AMI parameter"),
            Input::Prepared(
                "SELECT region FROM store_image_tasks WHERE amiId = $1".into(),
                strings("$1", &[injection]),
            ),
            Rows(0),
        ));
    }
    let bind = |batch: RecordBatch| {
        put_messages(
            CommandPreparedStatementQuery {
                prepared_statement_handle: m.region_handle.clone().into(),
            }
            .as_any()
            .encode_to_vec(),
            vec![batch],
        )
    };
    cases.push(case(
        "a non-UTF-8 string parameter",
        Input::Put(corrupt_utf8(bind(strings("$1", &[MARKER])).await)),
        Error(Code::InvalidArgument, "parameter batch"),
    ));
    let mut corrupt = bind(strings("$1", &["us-east-1"])).await;
    for data in corrupt.iter_mut().skip(1) {
        data.data_body = vec![0xee; data.data_body.len()].into();
        data.data_header = data.data_header.slice(..data.data_header.len() / 2);
    }
    cases.push(case(
        "a corrupt parameter batch",
        Input::Put(corrupt),
        Error(Code::InvalidArgument, "parameter batch"),
    ));

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
        ("INSERT of a NULL region", insert(&format!("(NULL, '{ami}', '{bucket}')")), "leave `region` out"),
        (
            "INSERT of a NULL account",
            format!("INSERT INTO store_image_tasks (account, region, amiId, bucket) VALUES (NULL, 'us-east-1', '{ami}', '{bucket}')"),
            "`account` out of the column list",
        ),
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
        cases.push(case(
            what,
            put_command(update(sql)),
            Error(Code::InvalidArgument, says),
        ));
    }
    cases.push(case(
        "an update with non-UTF-8 SQL",
        put_command(any("CommandStatementUpdate", non_utf8_field1())),
        Error(Code::InvalidArgument, "invalid request"),
    ));
    cases.push(case(
        "prepared INSERT with an integer AMI id",
        Input::PreparedUpdate(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)".into(),
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
        ),
        Error(Code::InvalidArgument, ""),
    ));
    let ingest = |table: &str| {
        CommandStatementIngest {
            table: table.into(),
            ..Default::default()
        }
        .as_any()
        .encode_to_vec()
    };
    let rows = RecordBatch::try_from_iter([
        ("amiId", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        (
            "bucket",
            Arc::new(StringArray::from(vec![bucket.clone(), bucket.clone()])) as ArrayRef,
        ),
    ])
    .unwrap();
    cases.push(case(
        "ingest of integer AMI ids",
        Input::Put(put_messages(ingest("store_image_tasks"), vec![rows.clone()]).await),
        Error(Code::InvalidArgument, ""),
    ));
    cases.push(case(
        "ingest into an unknown table",
        Input::Put(put_messages(ingest("no_such_table"), vec![rows]).await),
        Error(Code::NotFound, "no_such_table"),
    ));
    let not_utf8 = RecordBatch::try_from_iter([
        (
            "amiId",
            Arc::new(StringArray::from(vec![MARKER])) as ArrayRef,
        ),
        (
            "bucket",
            Arc::new(StringArray::from(vec![bucket.clone()])) as ArrayRef,
        ),
    ])
    .unwrap();
    cases.push(case(
        "ingest of non-UTF-8 strings",
        Input::Put(corrupt_utf8(
            put_messages(ingest("store_image_tasks"), vec![not_utf8]).await,
        )),
        Error(Code::InvalidArgument, "rows to ingest"),
    ));
    cases.push(case(
        "ingest of garbage IPC",
        Input::Put(vec![FlightData {
            flight_descriptor: Some(FlightDescriptor::new_cmd(ingest("store_image_tasks"))),
            data_header: vec![0xff; 32].into(),
            data_body: vec![0x00; 32].into(),
            ..Default::default()
        }]),
        Error(Code::InvalidArgument, "rows to ingest"),
    ));
    cases.push(case(
        "prepared update with a garbage handle",
        put_command(
            CommandPreparedStatementUpdate {
                prepared_statement_handle: vec![0xff; 5].into(),
            }
            .as_any()
            .encode_to_vec(),
        ),
        Error(Code::InvalidArgument, "prepared statement handle"),
    ));
    cases.push(case(
        "DoPut without any message",
        Input::Put(vec![]),
        Error(Code::InvalidArgument, "needs a Flight SQL command"),
    ));
    cases.push(case(
        "DoPut with an invalid command",
        put_command(vec![0xff; 9]),
        Error(Code::InvalidArgument, "not valid protobuf"),
    ));

    // --- Hardening: hidden writes, plan size, settings, budgets, unbound parameters ------
    let hostile: [(&str, String, Code, &str); 11] = [
        (
            "EXPLAIN ANALYZE of a COPY TO a file",
            format!(
                "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{}'",
                m.copy_to.display()
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
    for (name, text, code, says) in hostile {
        cases.push(case(name, sql(&text), Error(code, says)));
    }
    cases.push(case(
        "a prepared query run without binding its parameter",
        cmd(CommandPreparedStatementQuery {
            prepared_statement_handle: m.unbound_handle.clone().into(),
        }
        .as_any()
        .encode_to_vec()),
        Error(Code::InvalidArgument, "have no value"),
    ));
    cases
}

/// Whether `outcome` is what `expect` asks for.
fn meets(expect: &Expect, outcome: &Result<usize, Status>) -> bool {
    match (expect, outcome) {
        (Expect::Error(code, says), Err(status)) => {
            status.code() == *code
                && status.message().contains(says)
                && !status.message().is_empty()
        }
        (Expect::Rows(n), Ok(rows)) => rows == n,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_a_clear_error_and_the_server_keeps_answering() {
    let fx = Fixture::start(3).await;
    let channel = Endpoint::from_shared(fx.server.uri().replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = Client {
        raw: FlightServiceClient::new(channel.clone())
            .max_encoding_message_size(usize::MAX)
            .max_decoding_message_size(usize::MAX),
        sql: FlightSqlServiceClient::new(channel),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let material = Material::ask(&fx, &mut c, &dir).await;
    let cases = corpus(&material).await;
    let ran = cases.len();

    // Every case runs, whatever the others got; the report names each that failed.
    let mut failures = Vec::new();
    for Case {
        name,
        request,
        expect,
    } in cases.into_iter()
    {
        let outcome = c.send(request).await;
        if !meets(&expect, &outcome) {
            failures.push(format!("{name}: expected {expect:?}, got {outcome:?}"));
        }
        let got = match &outcome {
            Ok(rows) => format!("{rows} rows"),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        println!("{name} → {}", got.chars().take(160).collect::<String>());
    }
    println!("bad-input corpus: {ran} cases");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        ran,
        failures.join("\n")
    );
    assert_eq!(ran, CORPUS_CASES, "update CORPUS_CASES (and the README)");
    assert!(
        !material.copy_to.exists(),
        "a COPY wrote {}",
        material.copy_to.display()
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

/// Long chains of every shape that makes DataFusion recurse or grow (UNION, VALUES, CTE,
/// JOIN, comma joins, nested subqueries, CASE, sums, ORs, IN lists), at lengths around and
/// far past the limits, sent to the server binary (a stack overflow aborts the process, a
/// quadratic plan takes the machine's memory): each is answered or refused with
/// INVALID_ARGUMENT, and the server is still there afterwards.
#[tokio::test]
async fn long_chains_of_every_shape_are_answered_or_refused_and_the_server_lives() {
    let (mut server, uri) = start_binary(&[]);
    let mut c = Client::connect(&uri).await;
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
    let mut c = Client::connect(&uri).await;
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
    let mut c = Client::connect(&uri).await;
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
