//! The `sql` subcommand's client: runs SQL statements over Flight SQL, one after the other in
//! one session, and prints each result as a table, CSV or JSON ([`Format`]). It connects
//! over `grpc://` or `grpc+tls://` and, for servers with a users file, authenticates with a
//! Flight handshake.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use anyhow::{anyhow, Context};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightDescriptor, FlightInfo};
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

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
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// TLS options for `grpc+tls://` URIs.
    pub tls: ClientTls,
    /// User name and password, sent in a Flight handshake; the bearer token it returns
    /// authenticates the calls that follow.
    pub credentials: Option<(String, String)>,
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
    let mut endpoint =
        Endpoint::from_shared(http).with_context(|| format!("invalid URI `{uri}`"))?;
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
}

impl Session {
    /// A session over `client` (connected, and authenticated when it must be).
    pub fn new(client: FlightSqlServiceClient<Channel>) -> Self {
        Session {
            client,
            cookies: Default::default(),
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
        for endpoint in &info.endpoint {
            let ticket = endpoint
                .ticket
                .clone()
                .ok_or_else(|| FlightError::ProtocolError("endpoint without a ticket".into()))?;
            let mut stream = self.client.do_get(ticket).await?;
            while let Some(batch) = stream.try_next().await? {
                on_batch(&batch);
                batches.push(batch);
            }
        }
        Ok((info, schema, batches))
    }
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

/// The `sql` subcommand: applies `settings` (`SET` statements) to the session, then runs
/// the statements of `sql` one after the other in it (split at `;`), stopping at the first
/// that fails. Each result is printed as it comes: a table (CSV, JSON) for a query, a line
/// for `SET`/`RESET` and for an INSERT (`N tasks created`; a dry run prints its rows, then
/// how many would have been created). On a terminal a live progress line shows once a
/// statement takes over a second; the row count and the time taken go to stderr.
pub async fn run(
    uri: &str,
    options: &ConnectOptions,
    settings: &[String],
    sql: &str,
    format: Format,
) -> anyhow::Result<()> {
    let statements = split_statements(sql);
    if statements.is_empty() {
        return Err(anyhow!("no SQL statement given"));
    }
    let mut session = Session::new(connect_with(uri, options).await?);
    for set in settings {
        session
            .flight_info(set)
            .await
            .map_err(|e| anyhow!("{set}: {}", arrow_message(e)))?;
    }
    let several = statements.len() > 1;
    for (i, statement) in statements.iter().enumerate() {
        run_one(&mut session, statement, format)
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
    }
    Ok(())
}

/// Runs one statement in `session` and prints its result.
async fn run_one(session: &mut Session, sql: &str, format: Format) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Progress::start();
    let result = session
        .query_with(sql, |batch| progress.batch(batch.num_rows()))
        .await;
    progress.finish();
    let (_info, schema, batches) = result.map_err(|e| anyhow!(arrow_message(e)))?;
    let mut out = std::io::stdout().lock();
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
    match statement_kind(sql) {
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
            let plural = if created == 1 { "" } else { "s" };
            say(&mut out, &format!("{created} task{plural} created"))?;
        }
        StatementKind::Other => {
            write_batches(&mut out, &schema, &batches, format)?;
            out.flush()?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            eprintln!(
                "{rows} row{} in {:.2}s",
                if rows == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    out.flush()?;
    Ok(())
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

/// A progress line (rows, batches, elapsed) shown on a terminal after the first second.
struct Progress {
    bar: ProgressBar,
    reveal: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        bar.set_message("waiting for the first batch");
        let shown = bar.clone();
        let reveal = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if std::io::stderr().is_terminal() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress { bar, reveal }
    }

    fn batch(&self, rows: usize) {
        self.bar.inc(rows as u64);
        self.bar.inc_length(1);
        self.bar.set_message(format!(
            "{} rows, {} batches",
            self.bar.position(),
            self.bar.length().unwrap_or_default()
        ));
    }

    fn finish(self) {
        self.reveal.abort();
        self.bar.finish_and_clear();
    }
}

/// Writes `batches` in `format`.
pub fn write_batches(
    out: &mut impl Write,
    schema: &Schema,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let table = if batches.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    schema.clone().into(),
                )])?
            } else {
                arrow::util::pretty::pretty_format_batches(batches)?
            };
            writeln!(out, "{table}")?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone().into()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
    }
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
}
