//! The `sql` subcommand's client: runs SQL statements over Flight SQL, one after the other in
//! one session, and prints each result as a table, CSV or JSON ([`Format`]). It connects
//! over `grpc://` or `grpc+tls://` and, for servers with a users file, authenticates with a
//! Flight handshake. The `watch` subcommand's client ([`watch`]) follows store image tasks
//! through `watch_store_image_tasks` with a progress bar per task; `sql` draws the same bars
//! while an awaiting INSERT (`/*+ AWAIT */`, `aws.await`) waits, from a watch on a second
//! connection (`Follower`), and then says how the tasks ended.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use anyhow::{anyhow, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightDescriptor, FlightInfo};
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

pub use crate::catalog::await_hint;
use crate::flight::report::SKIPPED_HEADER;
use crate::table::SKIPPED_ACCOUNTS_KEY;
use crate::tls::ClientTls;

/// How the `sql` command prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row, in a JSON array.
    Json,
}

/// How to connect, beyond the URI.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// TLS options for `grpc+tls://` URIs.
    pub tls: ClientTls,
    /// User name and password, sent in a Flight handshake; the bearer token it returns
    /// authenticates the calls that follow.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("ConnectOptions")
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// Connects to `uri` (`grpc://host:port`, or `grpc+tls://host:port` trusting the system's
/// CA certificates).
pub async fn connect(uri: &str) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    connect_with(uri, &ConnectOptions::default()).await
}

/// Connects to `uri` with `options`, and authenticates when they carry credentials.
pub async fn connect_with(
    uri: &str,
    options: &ConnectOptions,
) -> anyhow::Result<FlightSqlServiceClient<Channel>> {
    let mut client = FlightSqlServiceClient::new(channel(uri, &options.tls).await?);
    if let Some((user, password)) = &options.credentials {
        client
            .handshake(user, password)
            .await
            .map_err(|e| anyhow!("cannot authenticate as `{user}`: {}", arrow_message(e)))?;
    }
    Ok(client)
}

/// The server's message in an error from the Flight client.
fn arrow_message(e: FlightError) -> String {
    match e {
        FlightError::Tonic(status) => format!("{:?}: {}", status.code(), status.message()),
        other => other.to_string(),
    }
}

/// The HTTP/2 receive window of a stream: how much of a result may arrive ahead of printing.
const STREAM_WINDOW_BYTES: u32 = 4 << 20;

/// A gRPC channel to `uri`.
pub async fn channel(uri: &str, tls: &ClientTls) -> anyhow::Result<Channel> {
    let (http, secure) = if let Some(rest) = uri
        .strip_prefix("grpc://")
        .or(uri.strip_prefix("grpc+tcp://"))
    {
        (format!("http://{rest}"), false)
    } else if let Some(rest) = uri.strip_prefix("grpc+tls://") {
        (format!("https://{rest}"), true)
    } else if uri.starts_with("http://") {
        (uri.to_owned(), false)
    } else if uri.starts_with("https://") {
        (uri.to_owned(), true)
    } else {
        return Err(anyhow!(
            "unsupported URI `{uri}`: use grpc://host:port or grpc+tls://host:port (for \
             example grpc://127.0.0.1:50051)"
        ));
    };
    // Windows of a few MB: the server sends the next batches while the client prints the
    // last (with HTTP/2's 64 KB default a batch is about one window, and the two take
    // turns), and what arrives ahead stays bounded.
    let mut endpoint = Endpoint::from_shared(http)
        .with_context(|| format!("invalid URI `{uri}`"))?
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(2 * STREAM_WINDOW_BYTES);
    if secure {
        let host = endpoint.uri().host().unwrap_or_default().to_owned();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        endpoint = endpoint
            .tls_config(tls.config(host)?)
            .with_context(|| format!("cannot set up TLS for {uri}"))?;
    } else if tls.ca.is_some() || tls.identity.is_some() {
        return Err(anyhow!(
            "TLS options were given but `{uri}` is not a TLS URI: use grpc+tls://"
        ));
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| anyhow!("cannot connect to {uri}: {}", error_chain(&e)))?;
    Ok(channel)
}

/// An error and its sources on one line (TLS failures hide in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Runs `sql` and returns its schema and batches.
pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    query_with(client, sql, |_| ()).await
}

/// Runs `sql`, calling `on_batch` as each batch arrives.
pub async fn query_with(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
    mut on_batch: impl FnMut(&RecordBatch),
) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    let info = client.execute(sql.to_owned(), None).await?;
    let schema = info.clone().try_decode_schema()?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| FlightError::ProtocolError("endpoint without a ticket".into()))?;
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            on_batch(&batch);
            batches.push(batch);
        }
    }
    Ok((schema, batches))
}

/// A connection and its session: the cookie the server sets (after `SET`, `--set`,
/// `--dry-run`) goes back with every later call, so the statements of one `sql` call share
/// their settings, as a JDBC or ADBC connection does.
pub struct Session {
    client: FlightSqlServiceClient<Channel>,
    /// Cookies the server set, by name.
    cookies: std::collections::BTreeMap<String, String>,
    /// The accounts the last fetches skipped, one line each, from the trailers.
    skipped: Vec<String>,
}

impl Session {
    /// A session over `client` (connected, and authenticated when it must be).
    pub fn new(client: FlightSqlServiceClient<Channel>) -> Self {
        Session {
            client,
            cookies: Default::default(),
            skipped: Vec::new(),
        }
    }

    /// The Flight SQL client, which sends the session's cookie with every call (updates,
    /// prepared statements, fetches).
    pub fn client_mut(&mut self) -> &mut FlightSqlServiceClient<Channel> {
        &mut self.client
    }

    /// The `cookie` header to send, if any.
    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Keeps the cookies a response set (and drops the ones it expired).
    fn keep_cookies(&mut self, metadata: &tonic::metadata::MetadataMap) {
        for value in metadata.get_all("set-cookie") {
            let Ok(value) = value.to_str() else { continue };
            let mut attributes = value.split(';');
            let Some((name, cookie)) = attributes.next().and_then(|p| p.trim().split_once('='))
            else {
                continue;
            };
            let expired = attributes.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || cookie.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), cookie.trim().to_owned());
            }
        }
        if let Some(cookie) = self.cookie_header() {
            self.client.set_header("cookie", cookie);
        }
    }

    /// GetFlightInfo of `sql`, in this session.
    pub async fn flight_info(&mut self, sql: &str) -> Result<FlightInfo, FlightError> {
        use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
        use prost::Message;
        let command = CommandStatementQuery {
            query: sql.to_owned(),
            transaction_id: None,
        };
        let mut request =
            tonic::Request::new(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()));
        let metadata = request.metadata_mut();
        if let Some(token) = self.client.token() {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| FlightError::ProtocolError("invalid token".into()))?;
            metadata.insert("authorization", value);
        }
        if let Some(cookie) = self.cookie_header() {
            let value = cookie
                .parse()
                .map_err(|_| FlightError::ProtocolError("invalid cookie".into()))?;
            metadata.insert("cookie", value);
        }
        let response = self
            .client
            .inner_mut()
            .get_flight_info(request)
            .await
            .map_err(|status| FlightError::Tonic(Box::new(status)))?;
        self.keep_cookies(response.metadata());
        Ok(response.into_inner())
    }

    /// Runs `sql` in this session, calling `on_batch` as each batch arrives; the FlightInfo,
    /// the result's schema and its batches.
    pub async fn query_with(
        &mut self,
        sql: &str,
        mut on_batch: impl FnMut(&RecordBatch),
    ) -> Result<(FlightInfo, Schema, Vec<RecordBatch>), FlightError> {
        let info = self.flight_info(sql).await?;
        let schema = info.clone().try_decode_schema()?;
        let mut batches = Vec::new();
        self.fetch(&info, |batch| {
            on_batch(&batch);
            batches.push(batch);
            Ok::<_, FlightError>(())
        })
        .await?;
        Ok((info, schema, batches))
    }

    /// Fetches the result `info` describes, endpoint after endpoint, handing each batch to
    /// `on_batch` as it arrives and keeping none; the first error (of the fetch or of
    /// `on_batch`) stops it.
    pub async fn fetch<E: From<FlightError>>(
        &mut self,
        info: &FlightInfo,
        mut on_batch: impl FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        for endpoint in &info.endpoint {
            let ticket = endpoint
                .ticket
                .clone()
                .ok_or_else(|| FlightError::ProtocolError("endpoint without a ticket".into()))?;
            let mut stream = self.client.do_get(ticket).await?;
            while let Some(batch) = stream.try_next().await? {
                on_batch(batch)?;
            }
            let listed = stream.trailers().and_then(|t| {
                t.get(SKIPPED_HEADER)
                    .and_then(|v| v.to_str().ok().map(skip_lines))
            });
            for line in listed.into_iter().flatten() {
                if !self.skipped.contains(&line) {
                    self.skipped.push(line);
                }
            }
        }
        Ok(())
    }

    /// The accounts the fetches so far skipped (`aws.on_account_error = 'skip'`), one line
    /// each, as the server's trailers listed them; forgotten once taken.
    pub fn take_skipped(&mut self) -> Vec<String> {
        std::mem::take(&mut self.skipped)
    }
}

/// The lines of a list of skipped accounts (the JSON of a result's schema metadata
/// `aws_flightsql.skipped_accounts` or of the `aws-flightsql-skipped-accounts` trailer).
pub fn skip_lines(json: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    list.iter()
        .map(|skip| {
            let field = |name: &str| skip.get(name).and_then(|v| v.as_str()).unwrap_or("");
            let region = match field("region") {
                "" => String::new(),
                region => format!(" region {region}"),
            };
            format!(
                "warning: account {}{region} skipped ({}): {}",
                field("account"),
                field("reason"),
                field("message")
            )
        })
        .collect()
}

/// What one statement of the `sql` command is, as far as printing its result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// `SET name = value`.
    Set {
        /// The setting.
        name: String,
        /// Its value, as written (quotes removed).
        value: String,
    },
    /// `RESET name`.
    Reset {
        /// The setting.
        name: String,
    },
    /// `INSERT`.
    Insert,
    /// Anything else (a query, or something the server will explain it does not run).
    Other,
}

/// Splits `sql` into its statements at the `;` between them (not those in strings, quoted
/// names or comments), each as written; empty ones (`;;`, a trailing `;`) are dropped. SQL
/// the tokenizer cannot read is one statement: the server says what is wrong with it.
pub fn split_statements(sql: &str) -> Vec<&str> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return vec![sql.trim()];
    };
    // Byte offsets of the tokenizer's (line, column) positions, columns counted in chars.
    let mut line_starts = vec![0usize];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        Some(
            sql[start..]
                .char_indices()
                .nth(column)
                .map_or(sql.len(), |(i, _)| start + i),
        )
    };
    let mut statements = Vec::new();
    let mut from = 0;
    for token in &tokens {
        if token.token == Token::SemiColon {
            let Some(at) = offset(token.span.start.line, token.span.start.column) else {
                return vec![sql.trim()];
            };
            statements.push(&sql[from..at]);
            from = at + 1;
        }
    }
    statements.push(&sql[from..]);
    statements
        .into_iter()
        .map(str::trim)
        .filter(|s| {
            Tokenizer::new(&GenericDialect {}, s)
                .tokenize()
                .map(|tokens| {
                    tokens
                        .iter()
                        .any(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
                })
                .unwrap_or(true)
        })
        .collect()
}

/// What `statement` is (see [`StatementKind`]).
pub fn statement_kind(statement: &str) -> StatementKind {
    use datafusion::sql::parser::{DFParser, ResetStatement, Statement as DFStatement};
    use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
    let Ok(mut parsed) = DFParser::parse_sql(statement) else {
        return StatementKind::Other;
    };
    if parsed.len() != 1 {
        return StatementKind::Other;
    }
    match parsed.pop_front() {
        Some(DFStatement::Statement(s)) => match *s {
            Statement::Insert(_) => StatementKind::Insert,
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) => StatementKind::Set {
                name: variable.to_string(),
                value: values
                    .iter()
                    .map(|v| match v {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                                s.clone()
                            }
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            _ => StatementKind::Other,
        },
        Some(DFStatement::Reset(ResetStatement::Variable(name))) => StatementKind::Reset {
            name: name.to_string(),
        },
        _ => StatementKind::Other,
    }
}

/// The `SET` statement of `--set name=value` (or `--dry-run`): the name must be a setting's
/// name (letters, digits, `_` and `.`), the value is sent as a string.
pub fn set_statement(name_value: &str) -> anyhow::Result<String> {
    let Some((name, value)) = name_value.split_once('=') else {
        return Err(anyhow!(
            "--set takes name=value (for example --set aws.cache=off), not `{name_value}`"
        ));
    };
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(anyhow!(
            "--set {name_value}: `{name}` is not a setting's name (for example aws.dry_run, \
             datafusion.execution.time_zone)"
        ));
    }
    Ok(format!(
        "SET {name} = '{}'",
        value.trim().replace('\'', "''")
    ))
}

/// How the `sql` command prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printing {
    /// The format.
    pub format: Format,
    /// Most rows one table holds (`--max-table-rows`): a longer result is printed as it
    /// arrives, in tables of at most this many rows.
    pub max_table_rows: usize,
}

impl Printing {
    /// `format`, with the default table size.
    pub fn new(format: Format) -> Printing {
        Printing {
            format,
            max_table_rows: DEFAULT_MAX_TABLE_ROWS,
        }
    }
}

/// The default of `--max-table-rows`.
pub const DEFAULT_MAX_TABLE_ROWS: usize = 10_000;

/// The `sql` subcommand: applies `settings` (`SET` statements) to the session, then runs
/// the statements of `sql` one after the other in it (split at `;`), stopping at the first
/// that fails. Each result is printed as its batches arrive, nothing held but a table's
/// window ([`ResultWriter`]): a table (CSV, JSON) for a query, a line for `SET`/`RESET`
/// and for an INSERT (`N tasks created in REGION`; a dry run prints its rows, then how
/// many would have been created). On a terminal a live progress line shows once a
/// statement takes over a second; a query ends with one line, its row count and the time
/// taken (on stdout after a table, on stderr after CSV and JSON). An awaiting INSERT shows
/// its tasks while it waits (bars on a terminal, change lines on stderr otherwise, a spinner
/// when its tasks are unknown or the watch cannot run) and its line adds how they ended
/// (`; awaited: 2 completed, 1 failed`), each failure on stderr; when one failed, the
/// statements after it still run and the command fails at the end (exit 1).
pub async fn run(
    uri: &str,
    options: &ConnectOptions,
    settings: &[String],
    sql: &str,
    printing: Printing,
) -> anyhow::Result<()> {
    let statements = split_statements(sql);
    if statements.is_empty() {
        return Err(anyhow!("no SQL statement given"));
    }
    let mut session = Session::new(connect_with(uri, options).await?);
    let mut run_settings = RunSettings::default();
    for set in settings {
        session
            .flight_info(set)
            .await
            .map_err(|e| anyhow!("{set}: {}", arrow_message(e)))?;
        run_settings.note(set);
    }
    let several = statements.len() > 1;
    let mut failed_tasks = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        let follow = FollowPlan {
            uri: uri.to_owned(),
            options: options.clone(),
            settings: run_settings.clone(),
            tasks: named_tasks(statement),
        };
        let outcome = run_one(&mut session, statement, printing, follow)
            .await
            .map_err(|e| {
                if several {
                    anyhow!(
                        "statement {} of {} failed (the ones before it ran): {e}",
                        i + 1,
                        statements.len()
                    )
                } else {
                    e
                }
            })?;
        run_settings.note(statement);
        match outcome {
            Printed::All => {}
            // `| head` read what it wanted: the rest is not fetched, and that is no error.
            Printed::ReaderGone => break,
            Printed::TasksFailed(message) if several => failed_tasks.push(format!(
                "statement {} of {}: {message}",
                i + 1,
                statements.len()
            )),
            Printed::TasksFailed(message) => failed_tasks.push(message),
        }
    }
    if !failed_tasks.is_empty() {
        return Err(anyhow!(failed_tasks.join("; ")));
    }
    Ok(())
}

/// How printing a statement's result ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Printed {
    /// Whole.
    All,
    /// Standard output was closed (`| head`): the rest was not fetched.
    ReaderGone,
    /// Whole, from an awaiting INSERT (which succeeded) some of whose tasks failed: what
    /// the command ends with (exit 1) after the statements that follow it.
    TasksFailed(String),
}

/// An error of one statement: the server's message for a Flight error.
struct Failed(anyhow::Error);

impl From<FlightError> for Failed {
    fn from(e: FlightError) -> Self {
        Failed(anyhow!(arrow_message(e)))
    }
}

/// Runs one statement in `session` and prints its result; an INSERT that awaits its tasks
/// shows them while it waits ([`Follower`], set up by `follow`).
async fn run_one(
    session: &mut Session,
    sql: &str,
    printing: Printing,
    follow: FollowPlan,
) -> anyhow::Result<Printed> {
    let started = Instant::now();
    let mut progress = Progress::start();
    let follower = if statement_kind(sql) == StatementKind::Insert && follow.settings.awaits(sql) {
        // The follower's display replaces the progress line.
        progress.clear();
        Some(Follower::start(follow).await)
    } else {
        None
    };
    let info = session.flight_info(sql).await;
    if let Some(follower) = follower {
        follower.stop().await;
    }
    let info = info.map_err(|e| anyhow!(arrow_message(e)))?;
    let schema = Arc::new(
        info.clone()
            .try_decode_schema()
            .map_err(|e| anyhow!("the server's result schema cannot be read: {e}"))?,
    );
    let kind = statement_kind(sql);
    if kind == StatementKind::Other {
        return print_query(session, &info, schema, printing, progress, started).await;
    }
    // SET, RESET and INSERT answer a line, or a dry run's rows (at most an INSERT's 1,000).
    let mut batches = Vec::new();
    session
        .fetch(&info, |batch| {
            progress.batch(batch.num_rows());
            batches.push(batch);
            Ok::<_, Failed>(())
        })
        .await
        .map_err(|e| e.0)?;
    progress.clear();
    let mut out = std::io::stdout().lock();
    let format = printing.format;
    let table = format == Format::Table;
    // A line that is not data goes to stdout with a table, to stderr with CSV and JSON
    // (which stay machine-readable).
    let say = |out: &mut dyn Write, line: &str| -> std::io::Result<()> {
        if table {
            writeln!(out, "{line}")
        } else {
            eprintln!("{line}");
            Ok(())
        }
    };
    match kind {
        StatementKind::Set { name, value } => say(&mut out, &format!("SET {name} = {value}"))?,
        StatementKind::Reset { name } => say(&mut out, &format!("RESET {name}"))?,
        StatementKind::Insert if schema.column_with_name("outcome").is_some() => {
            // A dry run: its rows, then what they mean.
            write_batches(&mut out, &schema, &batches, format)?;
            let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let would_create = count_text(&batches, "outcome", "would_create");
            say(
                &mut out,
                &format!(
                    "dry run: nothing was created; {would_create} of {total} rows would be \
                     created"
                ),
            )?;
        }
        StatementKind::Insert => {
            let created = sum_column(&batches, "count")?;
            if !table {
                write_batches(&mut out, &schema, &batches, format)?;
            }
            let line = insert_line(created, &batches, names_region(sql));
            let Some(awaited) = Awaited::of(&batches)? else {
                say(&mut out, &line)?;
                out.flush()?;
                return Ok(Printed::All);
            };
            say(
                &mut out,
                &format!(
                    "{line}; awaited: {} completed, {} failed",
                    awaited.completed, awaited.failed
                ),
            )?;
            out.flush()?;
            for failure in &awaited.failures {
                eprintln!("{failure}");
            }
            if awaited.failed > 0 {
                return Ok(Printed::TasksFailed(format!(
                    "{} of {} stored task{} failed (the INSERT itself succeeded: every task \
                     was created once and awaited)",
                    awaited.failed,
                    created,
                    if created == 1 { "" } else { "s" }
                )));
            }
        }
        StatementKind::Other => unreachable!("queries are printed as they stream"),
    }
    out.flush()?;
    Ok(Printed::All)
}

/// Streams the result of a query to standard output as its batches arrive, then its one
/// summary line (`N rows in 1.23s`).
async fn print_query(
    session: &mut Session,
    info: &FlightInfo,
    schema: arrow::datatypes::SchemaRef,
    printing: Printing,
    mut progress: Progress,
    started: Instant,
) -> anyhow::Result<Printed> {
    let reader_gone = Arc::new(AtomicBool::new(false));
    let stdout = ReaderGoneWatch {
        out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        gone: Arc::clone(&reader_gone),
    };
    // On a terminal each batch is written at once, the progress line moved out of its way.
    let stdout_tty = std::io::stdout().is_terminal();
    let mut writer = ResultWriter::new(stdout, schema, printing);
    let fetched = session
        .fetch(info, |batch| {
            progress.batch(batch.num_rows());
            progress
                .around_output(stdout_tty, || {
                    writer.write(&batch)?;
                    if stdout_tty {
                        writer.flush()?;
                    }
                    Ok(())
                })
                .map_err(Failed)
        })
        .await;
    let table = printing.format == Format::Table;
    if table {
        // The last table and the count line follow at once: the line goes now.
        progress.clear();
    }
    let finished = match fetched {
        Ok(()) => progress.around_output(stdout_tty, || writer.finish()),
        Err(e) => Err(e.0),
    };
    if reader_gone.load(Ordering::Relaxed) {
        progress.clear();
        return Ok(Printed::ReaderGone);
    }
    let rows = finished?;
    // Accounts skipped under aws.on_account_error = 'skip': those the FlightInfo named,
    // then any the trailers add (regions refused during the scan).
    let mut skipped = info
        .clone()
        .try_decode_schema()
        .ok()
        .and_then(|s| {
            s.metadata()
                .get(SKIPPED_ACCOUNTS_KEY)
                .map(|v| skip_lines(v))
        })
        .unwrap_or_default();
    for line in session.take_skipped() {
        if !skipped.contains(&line) {
            skipped.push(line);
        }
    }
    for line in &skipped {
        eprintln!("{line}");
    }
    let summary = format!(
        "{rows} row{} in {:.2}s",
        if rows == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    if table {
        println!("{summary}");
    } else {
        progress.finish_with(summary);
    }
    Ok(Printed::All)
}

/// The line of an INSERT that created `created` tasks: how many, and in which region(s)
/// when its result names them (`regions`), saying when that was the server's default
/// because the INSERT named no region (`names_region` false).
fn insert_line(created: u64, batches: &[RecordBatch], names_region: bool) -> String {
    let plural = if created == 1 { "" } else { "s" };
    let regions = batches
        .iter()
        .filter_map(|b| b.column_by_name(INSERT_REGIONS_COLUMN))
        .filter_map(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .find_map(|c| c.iter().flatten().next().map(str::to_owned));
    match regions {
        Some(regions) if created > 0 && !names_region => format!(
            "{created} task{plural} created in {regions} (the server's default region: the \
             INSERT named none)"
        ),
        Some(regions) if created > 0 => format!("{created} task{plural} created in {regions}"),
        _ => format!("{created} task{plural} created"),
    }
}

/// Whether the INSERT `statement` gives its rows a region: it lists a `region` column, or
/// no columns at all (its values then fill every column, the region first).
pub fn names_region(statement: &str) -> bool {
    use datafusion::sql::parser::{DFParser, Statement as DFStatement};
    use datafusion::sql::sqlparser::ast::Statement;
    let Ok(mut parsed) = DFParser::parse_sql(statement) else {
        return true;
    };
    match parsed.pop_front() {
        Some(DFStatement::Statement(s)) => match *s {
            Statement::Insert(insert) => {
                insert.columns.is_empty()
                    || insert.columns.iter().any(|c| {
                        let name = c.to_string();
                        let last = name.rsplit('.').next().unwrap_or_default();
                        last.trim_matches('"').eq_ignore_ascii_case("region")
                    })
            }
            _ => true,
        },
        _ => true,
    }
}

/// The column of an INSERT's result that says where its tasks were created.
const INSERT_REGIONS_COLUMN: &str = "regions";

/// A writer that notes when the reader of standard output went away (`| head`), so that
/// the command stops quietly instead of failing on a broken pipe.
struct ReaderGoneWatch<W: Write> {
    out: W,
    gone: Arc<AtomicBool>,
}

impl<W: Write> ReaderGoneWatch<W> {
    fn note<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.gone.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

impl<W: Write> Write for ReaderGoneWatch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.out.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.out.flush();
        self.note(result)
    }
}

/// How many rows of `batches` have `value` in the text column `column`.
fn count_text(batches: &[RecordBatch], column: &str, value: &str) -> usize {
    batches
        .iter()
        .filter_map(|b| b.column_by_name(column))
        .filter_map(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
        .map(|c| c.iter().filter(|v| *v == Some(value)).count())
        .sum()
}

/// The sum of the integer column `column` over `batches`.
fn sum_column(batches: &[RecordBatch], column: &str) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for batch in batches {
        let Some(values) = batch.column_by_name(column) else {
            return Err(anyhow!("the INSERT's result has no `{column}` column"));
        };
        let values = arrow::compute::cast(values, &arrow::datatypes::DataType::UInt64)?;
        total += values
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>()
            .map_or(0, |a| a.iter().flatten().sum::<u64>());
    }
    Ok(total)
}

/// The `health` subcommand: exit 0 when the server's gRPC health service says SERVING.
pub async fn health(uri: &str, tls: &ClientTls) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let channel = channel(uri, tls).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| anyhow!("{:?}: {}", s.code(), s.message()))?;
    let status = response.into_inner().status();
    if status == ServingStatus::Serving {
        println!("SERVING");
        Ok(())
    } else {
        Err(anyhow!("the server is {}", status.as_str_name()))
    }
}

/// A progress line (elapsed, rows, batches) shown on a terminal after the first second.
/// A query's summary replaces it on stderr ([`Progress::finish_with`]); anything else
/// clears it.
struct Progress {
    bar: ProgressBar,
    /// Whether the line was closed: the reveal task then leaves it hidden.
    closed: Arc<Mutex<bool>>,
    reveal: tokio::task::JoinHandle<()>,
    rows: u64,
    batches: u64,
}

impl Progress {
    fn start() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        bar.set_message("waiting for the first rows");
        let closed = Arc::new(Mutex::new(false));
        let (shown, still_open) = (bar.clone(), Arc::clone(&closed));
        let reveal = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let closed = still_open.lock().expect("progress lock");
            if !*closed && std::io::stderr().is_terminal() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            bar,
            closed,
            reveal,
            rows: 0,
            batches: 0,
        }
    }

    /// Counts a batch of `rows` rows.
    fn batch(&mut self, rows: usize) {
        self.rows += rows as u64;
        self.batches += 1;
        self.bar.set_message(format!(
            "{} rows, {} batch{}",
            HumanCount(self.rows),
            HumanCount(self.batches),
            if self.batches == 1 { "" } else { "es" }
        ));
    }

    /// Runs `write`, which writes to standard output, with the line out of its way when
    /// both are on the terminal.
    fn around_output<R>(&self, stdout_tty: bool, write: impl FnOnce() -> R) -> R {
        if stdout_tty && !self.bar.is_hidden() {
            self.bar.suspend(write)
        } else {
            write()
        }
    }

    /// Stops the line; whether it was on screen.
    fn close(&mut self) -> bool {
        let mut closed = self.closed.lock().expect("progress lock");
        if *closed {
            return false;
        }
        *closed = true;
        self.reveal.abort();
        !self.bar.is_hidden()
    }

    /// Clears the line.
    fn clear(&mut self) {
        if self.close() {
            self.bar.finish_and_clear();
        }
    }

    /// Replaces the line with `summary` (printed on stderr when the line was not shown).
    fn finish_with(&mut self, summary: String) {
        if self.close() {
            self.bar
                .set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
            self.bar.finish_with_message(summary);
        } else {
            eprintln!("{summary}");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Writes a result in a [`Format`] as its batches arrive, keeping none of them: CSV with a
/// header row, JSON as one array of objects (both written batch by batch), or aligned
/// tables. A table holds at most `max_table_rows` rows: when a row beyond them arrives,
/// the rows held are printed as a table with a note saying so, and the rest follows in
/// tables of at most that many rows, each aligned on its own (as psql's `FETCH_COUNT`).
pub struct ResultWriter<W: Write> {
    rows: usize,
    sink: Sink<W>,
}

enum Sink<W: Write> {
    Table(TableWindow<W>),
    Csv {
        writer: Box<arrow::csv::Writer<W>>,
        schema: arrow::datatypes::SchemaRef,
        started: bool,
    },
    Json(arrow::json::ArrayWriter<W>),
}

/// The rows of the table being filled.
struct TableWindow<W: Write> {
    out: W,
    schema: arrow::datatypes::SchemaRef,
    max_rows: usize,
    held: Vec<RecordBatch>,
    held_rows: usize,
    tables: usize,
}

impl<W: Write> TableWindow<W> {
    fn push(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.held_rows == self.max_rows {
                self.print(true)?;
            }
            let take = (self.max_rows - self.held_rows).min(batch.num_rows() - offset);
            self.held.push(batch.slice(offset, take));
            self.held_rows += take;
            offset += take;
        }
        Ok(())
    }

    /// Prints the rows held as a table; `more` when a row beyond them arrived.
    fn print(&mut self, more: bool) -> anyhow::Result<()> {
        let table = if self.held.is_empty() {
            arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(Arc::clone(
                &self.schema,
            ))])?
        } else {
            arrow::util::pretty::pretty_format_batches(&self.held)?
        };
        writeln!(self.out, "{table}")?;
        if more && self.tables == 0 {
            writeln!(
                self.out,
                "(more than {max} rows: the rest follows as it arrives, in tables of at most \
                 {max} rows, each aligned on its own; --max-table-rows sets the size, \
                 --format csv or json prints one result of any size)",
                max = self.max_rows
            )?;
        }
        self.tables += 1;
        self.held.clear();
        self.held_rows = 0;
        Ok(())
    }
}

impl<W: Write> ResultWriter<W> {
    /// A writer of a result of `schema` to `out`.
    pub fn new(out: W, schema: arrow::datatypes::SchemaRef, printing: Printing) -> Self {
        let sink = match printing.format {
            Format::Table => Sink::Table(TableWindow {
                out,
                schema,
                max_rows: printing.max_table_rows.max(1),
                held: Vec::new(),
                held_rows: 0,
                tables: 0,
            }),
            Format::Csv => Sink::Csv {
                writer: Box::new(
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(out),
                ),
                schema,
                started: false,
            },
            Format::Json => Sink::Json(arrow::json::ArrayWriter::new(out)),
        };
        ResultWriter { rows: 0, sink }
    }

    /// Writes `batch` (a table may hold it until its window is full or the result ends).
    pub fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        self.rows += batch.num_rows();
        match &mut self.sink {
            Sink::Table(window) => window.push(batch)?,
            Sink::Csv {
                writer, started, ..
            } => {
                writer.write(batch)?;
                *started = true;
            }
            Sink::Json(writer) => writer.write(batch)?,
        }
        Ok(())
    }

    /// Flushes what was written to the output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(window) => window.out.flush(),
            // arrow's CSV writer flushes through to the output after each batch.
            Sink::Csv { .. } => Ok(()),
            Sink::Json(writer) => writer.get_mut().flush(),
        }
    }

    /// Ends the result (the last table, the CSV header of an empty result, the JSON
    /// array's end) and flushes; how many rows were written.
    pub fn finish(mut self) -> anyhow::Result<usize> {
        match &mut self.sink {
            Sink::Table(window) => {
                if window.held_rows > 0 || window.tables == 0 {
                    window.print(false)?;
                }
            }
            Sink::Csv {
                writer,
                schema,
                started,
            } => {
                if !*started {
                    writer.write(&RecordBatch::new_empty(Arc::clone(schema)))?;
                }
            }
            Sink::Json(writer) => {
                writer.finish()?;
                writeln!(writer.get_mut())?;
            }
        }
        self.flush()?;
        Ok(self.rows)
    }
}

/// Writes `batches` of a result of `schema` in `format`, as one table when it is a table.
pub fn write_batches(
    out: &mut impl Write,
    schema: &Schema,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    let printing = Printing {
        format,
        max_table_rows: usize::MAX,
    };
    let mut writer = ResultWriter::new(out, Arc::new(schema.clone()), printing);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_strings_names_and_comments() {
        assert_eq!(
            split_statements("SET aws.dry_run = true; INSERT INTO t VALUES ('a;b');"),
            vec!["SET aws.dry_run = true", "INSERT INTO t VALUES ('a;b')"]
        );
        assert_eq!(
            split_statements("SELECT \"x;y\" -- a; comment\nFROM t;;  \n SELECT 'é';"),
            vec!["SELECT \"x;y\" -- a; comment\nFROM t", "SELECT 'é'"]
        );
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert!(split_statements(" ; -- nothing\n").is_empty());
        // Unreadable SQL stays whole: the server says what is wrong with it.
        assert_eq!(split_statements("SELECT 'open; x"), vec!["SELECT 'open; x"]);
    }

    #[test]
    fn statement_kinds() {
        assert_eq!(
            statement_kind("SET aws.dry_run = 'true'"),
            StatementKind::Set {
                name: "aws.dry_run".into(),
                value: "true".into()
            }
        );
        assert_eq!(
            statement_kind("RESET aws.dry_run"),
            StatementKind::Reset {
                name: "aws.dry_run".into()
            }
        );
        assert_eq!(
            statement_kind("INSERT INTO t (a) VALUES (1)"),
            StatementKind::Insert
        );
        assert_eq!(statement_kind("SELECT 1"), StatementKind::Other);
        assert!(!names_region(
            "INSERT INTO t (amiId, bucket) VALUES ('a', 'b')"
        ));
        assert!(names_region(
            "INSERT INTO t (Region, amiId) VALUES ('a', 'b')"
        ));
        assert!(names_region("INSERT INTO t VALUES ('us-east-1', 'a', 'b')"));
        assert_eq!(statement_kind("not sql"), StatementKind::Other);
    }

    #[test]
    fn set_flags_become_set_statements_with_the_value_quoted() {
        assert_eq!(
            set_statement("aws.cache=off").unwrap(),
            "SET aws.cache = 'off'"
        );
        assert_eq!(
            set_statement("datafusion.format.null=it's").unwrap(),
            "SET datafusion.format.null = 'it''s'"
        );
        assert!(set_statement("novalue").is_err());
        assert!(set_statement("x; DROP=1").is_err());
    }

    fn numbers(from: i64, to: i64) -> RecordBatch {
        let values = arrow::array::Int64Array::from_iter_values(from..to);
        RecordBatch::try_from_iter([("n", Arc::new(values) as arrow::array::ArrayRef)]).unwrap()
    }

    fn written(format: Format, max_table_rows: usize, batches: &[RecordBatch]) -> String {
        let mut out = Vec::new();
        let printing = Printing {
            format,
            max_table_rows,
        };
        let mut writer = ResultWriter::new(&mut out, numbers(0, 0).schema(), printing);
        for batch in batches {
            writer.write(batch).unwrap();
        }
        let rows = writer.finish().unwrap();
        assert_eq!(
            rows,
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_table_holds_at_most_its_window() {
        // 5 rows in batches of 3 and 2, windows of 2: three tables, the note once.
        let text = written(Format::Table, 2, &[numbers(0, 3), numbers(3, 5)]);
        assert_eq!(text.matches("| n |").count(), 3, "{text}");
        assert_eq!(text.matches("more than 2 rows").count(), 1, "{text}");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains(" n "))
            .map(|l| l.trim_matches(|c| c == '|' || c == ' '))
            .collect();
        assert_eq!(rows, ["0", "1", "2", "3", "4"], "{text}");
        // Exactly a window: one table, no note; nothing: the header.
        let text = written(Format::Table, 2, &[numbers(0, 2)]);
        assert_eq!(text.matches("| n |").count(), 1, "{text}");
        assert!(!text.contains("more than"), "{text}");
        let text = written(Format::Table, 2, &[]);
        assert_eq!(text.matches("| n |").count(), 1, "{text}");
    }

    #[test]
    fn csv_and_json_are_written_batch_by_batch_and_stay_valid() {
        let batches = [numbers(0, 2), numbers(2, 2), numbers(2, 3)];
        assert_eq!(written(Format::Csv, 1, &batches), "n\n0\n1\n2\n");
        assert_eq!(written(Format::Csv, 1, &[]), "n\n");
        let json = written(Format::Json, 1, &batches);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(rows.len(), 3, "{json}");
        assert_eq!(written(Format::Json, 1, &[]), "[]\n");
        assert_eq!(written(Format::Json, 1, &[numbers(0, 0)]), "[]\n");
    }

    #[test]
    fn the_await_hint_is_read_as_the_server_reads_it() {
        assert!(await_hint("INSERT /*+ AWAIT */ INTO t (a) VALUES (1)"));
        assert!(await_hint(
            "  insert/*+await*/into aws.ec2.t (a) VALUES (1)"
        ));
        assert!(await_hint(
            "Insert\n  /*+   Await  */\n INTO t (a) VALUES (1)"
        ));
        assert!(await_hint(
            "INSERT /* a note */ /*+ PARALLEL, AWAIT */ INTO t (a) VALUES (1)"
        ));
        assert!(!await_hint("INSERT /* AWAIT */ INTO t (a) VALUES (1)"));
        assert!(!await_hint("INSERT /*+ AWAITING */ INTO t (a) VALUES (1)"));
        assert!(!await_hint("INSERT INTO t (a) /*+ AWAIT */ VALUES (1)"));
        assert!(!await_hint("INSERT INTO t (a) VALUES ('/*+ AWAIT */')"));
        assert!(!await_hint("SELECT /*+ AWAIT */ 1"));
        assert!(!await_hint("-- INSERT /*+ AWAIT */\nSELECT 1"));
    }

    #[test]
    fn an_insert_names_its_tasks_only_in_a_values_list_of_literals() {
        let task = |region: Option<&str>, ami: &str| NamedTask {
            region: region.map(str::to_owned),
            ami: ami.to_owned(),
        };
        assert_eq!(
            named_tasks(
                "INSERT /*+ AWAIT */ INTO store_image_tasks (Region, amiId, bucket) \
                 VALUES ('us-east-1', 'ami-1', 'b'), ('eu-west-1', 'ami-2', 'b')"
            ),
            Some(vec![
                task(Some("us-east-1"), "ami-1"),
                task(Some("eu-west-1"), "ami-2")
            ])
        );
        assert_eq!(
            named_tasks(
                "INSERT INTO aws.ec2.store_image_tasks (Bucket, ImageId) VALUES ('b', 'ami-3')"
            ),
            Some(vec![task(None, "ami-3")])
        );
        for unknown in [
            "INSERT INTO t (amiId, bucket) SELECT 'ami-1', 'b'",
            "INSERT INTO t (amiId, bucket) VALUES ($1, 'b')",
            "INSERT INTO t (amiId, bucket) VALUES (concat('ami-', '1'), 'b')",
            "INSERT INTO t VALUES ('us-east-1', 'ami-1', 'b')",
            "INSERT INTO t (bucket) VALUES ('b')",
            "SELECT 1",
        ] {
            assert_eq!(named_tasks(unknown), None, "{unknown}");
        }
    }

    fn watched(region: &str, ami: &str, started_ms: Option<i64>) -> Watched {
        Watched {
            account: "123456789012".into(),
            region: region.into(),
            ami: ami.into(),
            bucket: "b".into(),
            progress: 0,
            state: "InProgress".into(),
            reason: None,
            started_ms,
            observed_ms: 0,
        }
    }

    #[test]
    fn the_baseline_leaves_out_the_older_tasks_of_each_region_and_ami() {
        let ms = arrow::datatypes::DataType::Timestamp(
            arrow::datatypes::TimeUnit::Millisecond,
            Some("UTC".into()),
        );
        let started = arrow::compute::cast(
            &arrow::array::Int64Array::from(vec![Some(1_000), None]),
            &ms,
        )
        .unwrap();
        let batch = RecordBatch::try_from_iter([
            (
                "region",
                Arc::new(arrow::array::StringArray::from(vec![
                    "us-east-1",
                    "us-east-1",
                ])) as arrow::array::ArrayRef,
            ),
            (
                "amiId",
                Arc::new(arrow::array::StringArray::from(vec!["ami-1", "ami-2"])),
            ),
            ("started", started),
        ])
        .unwrap();
        let baseline = Baseline::of(&[batch]).unwrap();
        // The task that was the newest before the INSERT, and an older one: left out.
        assert!(!baseline.is_new(&watched("us-east-1", "ami-1", Some(1_000))));
        assert!(!baseline.is_new(&watched("us-east-1", "ami-1", Some(10))));
        assert!(!baseline.is_new(&watched("us-east-1", "ami-1", None)));
        // A later one, the same AMI in another region, an AMI without a task before.
        assert!(baseline.is_new(&watched("us-east-1", "ami-1", Some(1_001))));
        assert!(baseline.is_new(&watched("eu-west-1", "ami-1", Some(10))));
        assert!(baseline.is_new(&watched("us-east-1", "ami-2", Some(10))));
        assert!(baseline.is_new(&watched("us-east-1", "ami-3", None)));
        let sql = Baseline::sql(&[
            NamedTask {
                region: Some("us-east-1".into()),
                ami: "ami-1".into(),
            },
            NamedTask {
                region: None,
                ami: "ami-'2".into(),
            },
        ]);
        assert!(sql.contains("amiId IN ('ami-1', 'ami-''2')"), "{sql}");
        assert!(!sql.contains("region IN"), "{sql}");
    }

    #[test]
    fn failures_become_one_line_a_task() {
        assert_eq!(
            failure_lines(
                "ami-1 in us-east-1: Access Denied; see the bucket; ami-2 in eu-west-1 \
                 (account 210987654321): no reason given"
            ),
            vec![
                "ami-1 in us-east-1 failed: Access Denied; see the bucket",
                "ami-2 in eu-west-1 (account 210987654321) failed: no reason given",
            ]
        );
    }

    #[test]
    fn settings_say_whether_an_insert_awaits_and_for_how_long() {
        let mut settings = RunSettings::default();
        let insert = "INSERT INTO t (amiId, bucket) VALUES ('ami-1', 'b')";
        assert!(!settings.awaits(insert));
        assert!(settings.awaits("INSERT /*+ AWAIT */ INTO t (amiId) VALUES ('ami-1')"));
        assert_eq!(
            settings.await_times(),
            (Duration::from_secs(5), Duration::from_secs(3600))
        );
        settings.note("SET aws.await = 'true'");
        settings.note("SET AWS.AWAIT_INTERVAL = 0.5");
        settings.note("SET aws.await_timeout = '2 minutes'");
        settings.note("SELECT 1");
        assert!(settings.awaits(insert));
        assert_eq!(
            settings.await_times(),
            (Duration::from_millis(500), Duration::from_secs(120))
        );
        assert_eq!(settings.statements.len(), 3);
        settings.note("SET aws.dry_run = true");
        assert!(
            !settings.awaits(insert),
            "a dry run creates nothing to watch"
        );
        settings.note("RESET aws.dry_run");
        settings.note("RESET aws.await");
        assert!(!settings.awaits(insert));
    }

    #[tokio::test]
    async fn the_progress_line_counts_batches_and_rows() {
        let mut progress = Progress::start();
        progress.batch(1000);
        progress.batch(500);
        assert_eq!(progress.bar.message(), "1,500 rows, 2 batches");
        progress.clear();
    }
}

/// What the `watch` command follows.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Only these regions (none: the server's).
    pub regions: Vec<String>,
    /// Only the tasks of these AMIs, whatever their state (none: the tasks in progress).
    pub amis: Vec<String>,
    /// Time between two polls.
    pub interval: Duration,
    /// The longest the watch runs.
    pub timeout: Duration,
    /// Whether it ends once every watched task is Completed or Failed (`until => 'done'`);
    /// otherwise it runs to its timeout, and a task of a named AMI that starts meanwhile
    /// joins it (`until => 'timeout'`).
    pub until_done: bool,
}

impl Watch {
    /// The `watch_store_image_tasks` query of the watch.
    pub fn sql(&self) -> String {
        let list = |values: &[String]| {
            values
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut predicates = Vec::new();
        if !self.regions.is_empty() {
            predicates.push(format!("region IN ({})", list(&self.regions)));
        }
        if self.amis.is_empty() {
            predicates.push("storeTaskState = 'InProgress'".to_owned());
        } else {
            predicates.push(format!("amiId IN ({})", list(&self.amis)));
        }
        format!(
            "SELECT account, region, amiId, bucket, progressPercentage, storeTaskState, \
             storeTaskFailureReason, taskStartTime, observedAt \
             FROM watch_store_image_tasks(interval => '{}', until => '{}', timeout => '{}') \
             WHERE {}",
            humantime::format_duration(self.interval),
            if self.until_done { "done" } else { "timeout" },
            humantime::format_duration(self.timeout),
            predicates.join(" AND ")
        )
    }

    /// What the watch covers, for messages.
    fn scope(&self) -> String {
        let regions = match self.regions.as_slice() {
            [] => "the server's regions".to_owned(),
            list => list.join(", "),
        };
        match self.amis.as_slice() {
            [] => format!("in progress in {regions}"),
            list => format!("of {} in {regions}", list.join(", ")),
        }
    }
}

/// One task as the watch last showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    account: String,
    region: String,
    ami: String,
    bucket: String,
    progress: i32,
    state: String,
    reason: Option<String>,
    /// Start and observation instants, ms since the epoch.
    started_ms: Option<i64>,
    observed_ms: i64,
}

impl Watched {
    /// The rows of a watch batch.
    fn of(batch: &RecordBatch) -> anyhow::Result<Vec<Watched>> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{DataType, Int32Type, TimestampMillisecondType};
        let column = |name: &str, to: &DataType| -> anyhow::Result<arrow::array::ArrayRef> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| anyhow!("the watch's result has no column {name}"))?;
            Ok(arrow::compute::cast(column, to)?)
        };
        let ms = DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None);
        let (account, region, ami, bucket, state, reason) = (
            column("account", &DataType::Utf8)?,
            column("region", &DataType::Utf8)?,
            column("amiId", &DataType::Utf8)?,
            column("bucket", &DataType::Utf8)?,
            column("storeTaskState", &DataType::Utf8)?,
            column("storeTaskFailureReason", &DataType::Utf8)?,
        );
        let progress = column("progressPercentage", &DataType::Int32)?;
        let (started, observed) = (column("taskStartTime", &ms)?, column("observedAt", &ms)?);
        let text = |a: &arrow::array::ArrayRef, i: usize| {
            let a = a.as_string::<i32>();
            (!a.is_null(i)).then(|| a.value(i).to_owned())
        };
        let progress = progress.as_primitive::<Int32Type>();
        let (started, observed) = (
            started.as_primitive::<TimestampMillisecondType>(),
            observed.as_primitive::<TimestampMillisecondType>(),
        );
        Ok((0..batch.num_rows())
            .map(|i| Watched {
                account: text(&account, i).unwrap_or_default(),
                region: text(&region, i).unwrap_or_default(),
                ami: text(&ami, i).unwrap_or_default(),
                bucket: text(&bucket, i).unwrap_or_default(),
                progress: if progress.is_null(i) {
                    0
                } else {
                    progress.value(i)
                },
                state: text(&state, i).unwrap_or_else(|| "unknown".to_owned()),
                reason: text(&reason, i),
                started_ms: (!started.is_null(i)).then(|| started.value(i)),
                observed_ms: observed.value(i),
            })
            .collect())
    }

    /// Account, region and AMI: the newest task of each is shown.
    fn key(&self) -> (String, String, String) {
        (self.account.clone(), self.region.clone(), self.ami.clone())
    }

    /// Time from the task's start to when it was observed.
    fn elapsed(&self) -> String {
        let ms = self
            .started_ms
            .map_or(0, |start| (self.observed_ms - start).max(0));
        humantime::format_duration(Duration::from_secs((ms / 1000) as u64)).to_string()
    }

    /// `ami-... us-east-1 my-bucket`
    fn label(&self) -> String {
        format!("{} {} {}", self.ami, self.region, self.bucket)
    }

    /// A log line: `2026-12-01T10:00:00Z ami-... us-east-1 my-bucket 25% 2m 30s InProgress`.
    fn line(&self) -> String {
        let at = chrono::DateTime::from_timestamp_millis(self.observed_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        format!(
            "{at} {} {:>3}% {} {}",
            self.label(),
            self.progress,
            self.elapsed(),
            self.state
        )
    }
}

/// The `watch` command: runs [`Watch::sql`] and shows each task as its rows arrive, with an
/// indicatif progress bar per task when standard output is a terminal and a line per change
/// otherwise; then a summary line. Fails (exit 1) when a task failed (each failure's reason
/// on stderr), when tasks were still running at the timeout, or when no task matched.
pub async fn watch(uri: &str, options: &ConnectOptions, watch: &Watch) -> anyhow::Result<()> {
    let mut session = Session::new(connect_with(uri, options).await?);
    let info = session
        .flight_info(&watch.sql())
        .await
        .map_err(|e| anyhow!(arrow_message(e)))?;
    let terminal = std::io::stdout().is_terminal();
    let mut bars = TaskBars::new(terminal);
    let mut out = std::io::stdout().lock();
    session
        .fetch(&info, |batch| {
            for row in Watched::of(&batch).map_err(Failed)? {
                if let Some(shown) = bars.show(row) {
                    if !terminal {
                        writeln!(out, "{}", shown.line()).map_err(|e| Failed(e.into()))?;
                    }
                }
            }
            if !terminal {
                out.flush().map_err(|e| Failed(e.into()))?;
            }
            Ok::<_, Failed>(())
        })
        .await
        .map_err(|Failed(e)| e)?;
    drop(out);
    let tasks: Vec<&Watched> = bars.tasks().collect();
    if tasks.is_empty() {
        return Err(anyhow!(
            "no store image task matches (tasks {}): nothing to watch",
            watch.scope()
        ));
    }
    let count = |state: &str| tasks.iter().filter(|t| t.state == state).count();
    let (completed, failed) = (count("Completed"), count("Failed"));
    let running = tasks.len() - completed - failed;
    let mut summary = format!(
        "{completed} task{} completed",
        if completed == 1 { "" } else { "s" }
    );
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    if running > 0 {
        summary.push_str(&format!(
            ", {running} still running when the watch stopped after {}",
            humantime::format_duration(watch.timeout)
        ));
    }
    println!("{summary}");
    for task in tasks.iter().filter(|t| t.state == "Failed") {
        eprintln!(
            "{} in {} failed: {}",
            task.ami,
            task.region,
            task.reason.as_deref().unwrap_or("AWS gave no reason")
        );
    }
    if failed > 0 || running > 0 {
        return Err(anyhow!(summary));
    }
    Ok(())
}

/// The progress bars of watched tasks, one per account, region and AMI (the newest task of
/// each), drawn on standard output when `draw` (a terminal) and kept hidden otherwise: the
/// `watch` command's display, and an awaiting INSERT's in the `sql` command.
struct TaskBars {
    bars: indicatif::MultiProgress,
    style: ProgressStyle,
    tasks: std::collections::BTreeMap<(String, String, String), (Watched, ProgressBar)>,
}

impl TaskBars {
    fn new(draw: bool) -> TaskBars {
        TaskBars {
            bars: indicatif::MultiProgress::with_draw_target(if draw {
                ProgressDrawTarget::stdout()
            } else {
                ProgressDrawTarget::hidden()
            }),
            style: ProgressStyle::with_template("{prefix} [{bar:30}] {pos:>3}% {msg}")
                .expect("valid template")
                .progress_chars("=> "),
            tasks: Default::default(),
        }
    }

    /// Shows `row` on its task's bar (a new bar for a new task); the row as shown, or none
    /// when it is of an older task of the same AMI and region than the one shown.
    fn show(&mut self, row: Watched) -> Option<&Watched> {
        let key = row.key();
        if let Some((shown, _)) = self.tasks.get(&key) {
            if shown.started_ms > row.started_ms {
                return None;
            }
        }
        let (bars, style) = (&self.bars, &self.style);
        let (shown, bar) = self.tasks.entry(key).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(100));
            bar.set_style(style.clone());
            bar.set_prefix(row.label());
            (row.clone(), bar)
        });
        bar.set_position(row.progress.clamp(0, 100) as u64);
        bar.set_message(format!("{} {}", row.elapsed(), row.state));
        if row.state == "Completed" || row.state == "Failed" {
            bar.finish();
        }
        *shown = row;
        Some(shown)
    }

    /// The tasks as last shown.
    fn tasks(&self) -> impl Iterator<Item = &Watched> {
        self.tasks.values().map(|(task, _)| task)
    }

    /// Takes the bars off the screen.
    fn clear(&mut self) {
        for (_, bar) in self.tasks.values() {
            bar.finish_and_clear();
        }
        // Nothing to clear is no failure.
        let _ = self.bars.clear();
    }
}

/// One task an INSERT asks for, as far as its text says: the AMI, and the region when the
/// row names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTask {
    /// The row's region (none: the server's default).
    pub region: Option<String>,
    /// The row's AMI.
    pub ami: String,
}

/// The tasks of the INSERT `statement` when it lists its columns, among them `amiId` (or
/// `ImageId`), and gives its rows as a `VALUES` list of string literals in those columns;
/// none otherwise (`INSERT ... SELECT`, parameters, expressions, no column list).
pub fn named_tasks(statement: &str) -> Option<Vec<NamedTask>> {
    use datafusion::sql::parser::{DFParser, Statement as DFStatement};
    use datafusion::sql::sqlparser::ast::{Expr, SetExpr, Statement, Value};
    let mut parsed = DFParser::parse_sql(statement).ok()?;
    let Some(DFStatement::Statement(s)) = parsed.pop_front() else {
        return None;
    };
    let Statement::Insert(insert) = *s else {
        return None;
    };
    let position = |names: &[&str]| {
        insert.columns.iter().position(|c| {
            let name = c.to_string();
            let last = name
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .trim_matches('"');
            names.iter().any(|n| last.eq_ignore_ascii_case(n))
        })
    };
    let ami = position(&["amiId", "ImageId"])?;
    let region = position(&["region"]);
    let SetExpr::Values(values) = *insert.source?.body else {
        return None;
    };
    let text = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    values
        .rows
        .iter()
        .map(|row| {
            Some(NamedTask {
                ami: text(row.get(ami)?)?,
                region: match region {
                    Some(i) => Some(text(row.get(i)?)?),
                    None => None,
                },
            })
        })
        .collect()
}

/// A quoted SQL list of `values`: `'a', 'b'`.
fn sql_list<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    values
        .into_iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The start of the newest task of each region and AMI an INSERT names, taken before the
/// INSERT is sent: a watched row of a task that started no later is an older task of the
/// same AMI, which the awaiting INSERT's display leaves out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Baseline(std::collections::HashMap<(String, String), i64>);

impl Baseline {
    /// The one query that takes it (`ImageIds` pushdown; the regions when every row names
    /// one).
    fn sql(tasks: &[NamedTask]) -> String {
        let mut predicates = vec![format!(
            "amiId IN ({})",
            sql_list(tasks.iter().map(|t| t.ami.as_str()))
        )];
        if let Some(regions) = tasks
            .iter()
            .map(|t| t.region.as_deref())
            .collect::<Option<Vec<_>>>()
        {
            predicates.push(format!("region IN ({})", sql_list(regions)));
        }
        format!(
            "SELECT region, amiId, max(taskStartTime) AS started FROM store_image_tasks \
             WHERE {} GROUP BY region, amiId",
            predicates.join(" AND ")
        )
    }

    /// The baseline in the result of [`Baseline::sql`].
    fn of(batches: &[RecordBatch]) -> anyhow::Result<Baseline> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
        let mut starts = std::collections::HashMap::new();
        for batch in batches {
            let column = |i: usize, to: &DataType| arrow::compute::cast(batch.column(i), to);
            if batch.num_columns() != 3 {
                return Err(anyhow!(
                    "the baseline query returned {} columns",
                    batch.num_columns()
                ));
            }
            let (region, ami) = (column(0, &DataType::Utf8)?, column(1, &DataType::Utf8)?);
            let started = column(2, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let (region, ami) = (region.as_string::<i32>(), ami.as_string::<i32>());
            let started = started.as_primitive::<TimestampMillisecondType>();
            for i in 0..batch.num_rows() {
                if !started.is_null(i) {
                    starts.insert(
                        (region.value(i).to_owned(), ami.value(i).to_owned()),
                        started.value(i),
                    );
                }
            }
        }
        Ok(Baseline(starts))
    }

    /// Whether `row` is of a task that started after the baseline of its region and AMI (or
    /// of one that had none).
    fn is_new(&self, row: &Watched) -> bool {
        match self.0.get(&(row.region.clone(), row.ami.clone())) {
            None => true,
            Some(&before) => row.started_ms.is_some_and(|start| start > before),
        }
    }
}

/// The settings this `sql` call set (`--set`, `--dry-run`, and its `SET`/`RESET`
/// statements so far), in order: what an awaiting INSERT's watch repeats on its own
/// connection, and where the client reads `aws.await`, `aws.dry_run`, `aws.await_interval`
/// and `aws.await_timeout`.
#[derive(Debug, Default, Clone)]
struct RunSettings {
    statements: Vec<String>,
    values: std::collections::BTreeMap<String, String>,
}

impl RunSettings {
    /// Notes `statement`, which ran, when it is a `SET` or `RESET`.
    fn note(&mut self, statement: &str) {
        match statement_kind(statement) {
            StatementKind::Set { name, value } => {
                self.values.insert(name.to_ascii_lowercase(), value);
            }
            StatementKind::Reset { name } => {
                self.values.remove(&name.to_ascii_lowercase());
            }
            _ => return,
        }
        self.statements.push(statement.to_owned());
    }

    fn is_true(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Whether the INSERT `statement` awaits its tasks and creates them (no dry run).
    fn awaits(&self, statement: &str) -> bool {
        (await_hint(statement) || self.is_true("aws.await")) && !self.is_true("aws.dry_run")
    }

    /// `aws.await_interval` and `aws.await_timeout` as set (the server's defaults
    /// otherwise; a value the server would refuse is left to it to say so).
    fn await_times(&self) -> (Duration, Duration) {
        let mut options = crate::table::AwsOptions::default();
        let defaults = (options.await_interval(), options.await_timeout());
        if let Some(interval) = self.values.get("aws.await_interval") {
            options.await_interval = interval.clone();
        }
        if let Some(timeout) = self.values.get("aws.await_timeout") {
            options.await_timeout = timeout.clone();
        }
        let interval = options.await_interval().or(defaults.0);
        let timeout = options.await_timeout().or(defaults.1);
        (
            interval.unwrap_or(Duration::from_secs(5)),
            timeout.unwrap_or(Duration::from_secs(3600)),
        )
    }
}

/// What the watch of an awaiting INSERT needs: where to connect, the settings to repeat,
/// the tasks the INSERT names (none: a spinner instead of bars) and the wait's times.
struct FollowPlan {
    uri: String,
    options: ConnectOptions,
    settings: RunSettings,
    tasks: Option<Vec<NamedTask>>,
}

/// The display of an awaiting INSERT while it waits: on a second connection, a watch of the
/// tasks it names, drawn as the `watch` command draws them (on a terminal; a line per
/// change on stderr otherwise), or a spinner when the tasks are not known or the watch
/// cannot run. Stopping it drops the watch's stream (the server stops polling) and clears
/// the bars.
struct Follower {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Starts it; returns once its baseline is taken (or the watch given up), so that the
    /// INSERT is sent after.
    async fn start(plan: FollowPlan) -> Follower {
        let (ready, started) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(follow(plan, ready, stopped));
        // A follower that ended early leaves the INSERT to run without it.
        let _ = started.await;
        Follower { stop, task }
    }

    /// Stops the watch and clears the display.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// A session on a second connection, with this run's settings, its baseline and the watch
/// to run, for `tasks`.
async fn prepare_watch(
    plan: &FollowPlan,
    tasks: &[NamedTask],
) -> anyhow::Result<(Session, Baseline, String)> {
    let mut session = Session::new(connect_with(&plan.uri, &plan.options).await?);
    for statement in &plan.settings.statements {
        session
            .flight_info(statement)
            .await
            .map_err(|e| anyhow!(arrow_message(e)))?;
    }
    let (_, _, batches) = session
        .query_with(&Baseline::sql(tasks), |_| ())
        .await
        .map_err(|e| anyhow!(arrow_message(e)))?;
    let baseline = Baseline::of(&batches)?;
    let (interval, timeout) = plan.settings.await_times();
    let mut regions: Vec<String> = tasks.iter().filter_map(|t| t.region.clone()).collect();
    if regions.len() < tasks.len() {
        // A row without a region goes to the server's default: watch the server's regions.
        regions.clear();
    }
    regions.sort();
    regions.dedup();
    let mut amis: Vec<String> = tasks.iter().map(|t| t.ami.clone()).collect();
    amis.sort();
    amis.dedup();
    let watch = Watch {
        regions,
        amis,
        interval: interval.max(crate::table::MIN_INTERVAL),
        // The INSERT's wait (it fails at its timeout), within the server's default
        // --max-watch: a server refuses a longer watch (the spinner then shows), and past
        // its end the spinner takes over.
        timeout: timeout.min(crate::table::DEFAULT_MAX_WATCH),
        until_done: false,
    };
    Ok((session, baseline, watch.sql()))
}

/// The follower's task (see [`Follower`]).
async fn follow(
    plan: FollowPlan,
    ready: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let terminal = std::io::stdout().is_terminal();
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"),
    );
    spinner.set_message("waiting for the tasks (AWAIT)");
    let spin = || {
        if std::io::stderr().is_terminal() {
            spinner.set_draw_target(ProgressDrawTarget::stderr());
            spinner.enable_steady_tick(Duration::from_millis(120));
        }
    };
    // Why the watch cannot run, said once (on the spinner's line, or stderr).
    let given_up = |reason: &anyhow::Error| {
        let note = format!("no progress bars: {reason:#}");
        if std::io::stderr().is_terminal() {
            spinner.set_message(format!("waiting for the tasks (AWAIT; {note})"));
        } else {
            eprintln!("{note}");
        }
    };
    let prepared = match &plan.tasks {
        Some(tasks) if !tasks.is_empty() => match prepare_watch(&plan, tasks).await {
            Ok(prepared) => Some(prepared),
            Err(e) => {
                given_up(&e);
                None
            }
        },
        _ => None,
    };
    let _ = ready.send(());
    let Some((mut session, baseline, sql)) = prepared else {
        spin();
        let _ = stop.await;
        spinner.finish_and_clear();
        return;
    };
    let mut bars = TaskBars::new(terminal);
    let watched = async {
        let info = session.flight_info(&sql).await?;
        session
            .fetch(&info, |batch| {
                for row in Watched::of(&batch).map_err(Failed)? {
                    if !baseline.is_new(&row) {
                        continue;
                    }
                    if let Some(shown) = bars.show(row) {
                        if !terminal {
                            eprintln!("{}", shown.line());
                        }
                    }
                }
                Ok::<_, Failed>(())
            })
            .await
    };
    let ended = tokio::select! {
        ended = watched => Some(ended),
        _ = &mut stop => None,
    };
    if let Some(ended) = ended {
        // The watch failed (or ran out) before the INSERT returned: the spinner instead.
        if let Err(Failed(e)) = ended {
            bars.clear();
            given_up(&e);
        }
        spin();
        let _ = stop.await;
    }
    bars.clear();
    spinner.finish_and_clear();
}

/// How an awaiting INSERT's tasks ended, from its result row (`completed`, `failed`,
/// `failures`); none for an INSERT that did not await.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Awaited {
    completed: u64,
    failed: u64,
    /// `ami-... in REGION failed: REASON`, one per failed task.
    failures: Vec<String>,
}

impl Awaited {
    fn of(batches: &[RecordBatch]) -> anyhow::Result<Option<Awaited>> {
        if !batches
            .iter()
            .any(|b| b.column_by_name("completed").is_some())
        {
            return Ok(None);
        }
        let failures = batches
            .iter()
            .filter_map(|b| b.column_by_name("failures"))
            .filter_map(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
            .flat_map(|c| c.iter().flatten().map(failure_lines).collect::<Vec<_>>())
            .flatten()
            .collect();
        Ok(Some(Awaited {
            completed: sum_column(batches, "completed")?,
            failed: sum_column(batches, "failed")?,
            failures,
        }))
    }
}

/// The lines of an awaiting INSERT's `failures` (`ami-1 in us-east-1: reason; ami-2 in
/// eu-west-1 (account 1234): reason`): `ami-1 in us-east-1 failed: reason`, one a task (a
/// reason may hold `; `: a task starts with `ami-`).
fn failure_lines(failures: &str) -> Vec<String> {
    let mut tasks: Vec<String> = Vec::new();
    for piece in failures.split("; ") {
        match tasks.last_mut() {
            Some(last) if !piece.starts_with("ami-") => {
                last.push_str("; ");
                last.push_str(piece);
            }
            _ => tasks.push(piece.to_owned()),
        }
    }
    tasks
        .into_iter()
        .map(|task| match task.split_once(": ") {
            Some((name, reason)) => format!("{name} failed: {reason}"),
            None => format!("{task} failed"),
        })
        .collect()
}
