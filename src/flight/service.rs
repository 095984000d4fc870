//! The Flight SQL RPCs. Each one decodes its command, asks the catalog for a session and a
//! plan, and streams the result; nothing here knows about EC2. The transport around it
//! ([`super::grpc`]) adds GetSchema, PollFlightInfo and the session cookie.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TableExistsOption, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::catalog::MemoryCatalogProvider;
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::{stream, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::boundary::{boundary_schema, to_boundary, TimestampStyle};
use super::cancel::{new_query_id, RunningQueries};
use super::columns::{describe_result, describe_table, Origin};
use super::grpc::GrpcService;
use super::keys::{no_keys, FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA};
use super::placeholders::number_question_marks;
use super::session::{self, proto as session_proto, SessionSlot};
use super::sql_info::{canonical_batch, canonical_schema, sql_info};
use super::statement::{self, Planned};
use super::status::ServiceError;
use super::tickets::{self, PreparedStatementHandle, Settings, StatementTicket};
use super::type_info::xdbc_type_info;
use crate::auth::Caller;
use crate::catalog::{Catalog, MetadataFilter};
use crate::metrics::Metrics;
use crate::observe::Draining;
use crate::table::{report_schema, AwsOptions, DryRunRows};

type DoGetStream = <FlightSqlHandler as FlightService>::DoGetStream;
type DoActionStream = <FlightSqlHandler as FlightService>::DoActionStream;

/// Largest gRPC message the server decodes by default (parameter batches, ingest): clients
/// send up to 64 MB.
pub const MAX_DECODING_MESSAGE_SIZE: usize = crate::limits::DEFAULT_MAX_MESSAGE_BYTES;

/// `ActionCancelQueryResult.CancelResult.CANCEL_RESULT_CANCELLED`.
const CANCEL_RESULT_CANCELLED: i32 = 1;

/// The action type of CancelFlightInfo.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// The catalog, schema and table the rows of a bulk ingest are read from, in the ingest's
/// own session only.
const INGEST_CATALOG: &str = "__flight_sql_ingest";
const INGEST_SCHEMA: &str = "data";
const INGEST_TABLE: &str = "rows";

/// Marks a GetFlightInfo made to answer GetSchema: plan only, run nothing.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOnly;

/// The Flight SQL service over a [`Catalog`].
#[derive(Clone)]
pub struct FlightSqlHandler {
    catalog: Catalog,
    /// GetSqlInfo's answers for callers who may write.
    sql_info: Arc<SqlInfoData>,
    /// ... and for callers who may only read (a `read` user, or every caller of a
    /// `--read-only` server): read-only, no bulk ingestion.
    sql_info_read_only: Arc<SqlInfoData>,
    /// The server refuses every INSERT (`--read-only`).
    read_only: bool,
    xdbc_types: Arc<XdbcTypeInfoData>,
    queries: RunningQueries,
    metrics: Arc<Metrics>,
    slow_query: Option<Duration>,
    sql_limits: crate::sql_limits::SqlLimits,
    max_message_bytes: usize,
}

impl std::fmt::Debug for FlightSqlHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlHandler")
            .field("catalog", &self.catalog)
            .finish_non_exhaustive()
    }
}

impl FlightSqlHandler {
    /// GetSqlInfo's answers as `caller` sees them.
    fn sql_info_for(&self, caller: &Caller) -> &SqlInfoData {
        if caller.may_write() {
            &self.sql_info
        } else {
            &self.sql_info_read_only
        }
    }

    /// Whether `caller` may write on this server: what GetSqlInfo's read-only flag and the
    /// columns' `IS_READ_ONLY` tell them.
    fn may_write(&self, caller: &Caller) -> bool {
        caller.may_write() && !self.read_only
    }

    /// The schema `caller` receives for a plan: boundary types, each column described.
    fn result_schema(&self, caller: &Caller, df: &DataFrame, style: TimestampStyle) -> SchemaRef {
        describe_result(
            df,
            &boundary_schema(df.schema().as_arrow(), style),
            self.may_write(caller),
        )
    }

    /// A service answering from `catalog`; `read_only` is what GetSqlInfo reports to users
    /// who may write (it reports read-only to users who may not).
    pub fn new(catalog: Catalog, read_only: bool) -> Self {
        FlightSqlHandler {
            catalog,
            sql_info: Arc::new(sql_info(read_only)),
            sql_info_read_only: Arc::new(sql_info(true)),
            read_only,
            xdbc_types: Arc::new(xdbc_type_info()),
            queries: RunningQueries::default(),
            metrics: Arc::default(),
            slow_query: None,
            sql_limits: crate::limits::ServerLimits::default().sql(),
            max_message_bytes: MAX_DECODING_MESSAGE_SIZE,
        }
    }

    /// Refuses SQL longer, deeper or bigger than `limits` allow, and gRPC messages larger.
    pub fn with_limits(mut self, limits: &crate::limits::ServerLimits) -> Self {
        self.sql_limits = limits.sql();
        self.max_message_bytes = limits.max_message_bytes;
        self
    }

    /// Counts streamed rows into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Logs a slow-query line (SQL, duration, AWS calls) for queries slower than `threshold`.
    pub fn with_slow_query_log(mut self, threshold: Option<Duration>) -> Self {
        self.slow_query = threshold;
        self
    }

    /// The gRPC service: the Flight SQL RPCs plus GetSchema, PollFlightInfo, sessions and
    /// cancellation, with message limits that fit Flight SQL clients.
    pub fn into_server(self) -> FlightServiceServer<GrpcService> {
        let max_message_bytes = self.max_message_bytes;
        FlightServiceServer::new(GrpcService::new(self))
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    /// Plans `sql` for `caller` in a fresh session with `settings`, binding `parameters`.
    /// A write by a caller who may not write is refused here, once the statement is known
    /// and before anything runs; the session's settings have no say in it.
    async fn plan(
        &self,
        caller: &Caller,
        sql: &str,
        settings: &Settings,
        parameters: &[RecordBatch],
    ) -> Result<Planned, ServiceError> {
        // For the log line of a statement that fails (see crate::observe).
        crate::observe::note_statement(sql);
        let ctx = session::open(&self.catalog, settings)?;
        {
            let dialect = ctx.state().config().options().sql_parser.dialect;
            let dialect = datafusion::sql::sqlparser::dialect::dialect_from_str(dialect)
                .unwrap_or_else(|| {
                    Box::new(datafusion::sql::sqlparser::dialect::GenericDialect {})
                });
            self.sql_limits
                .check(sql, dialect.as_ref())
                .map_err(ServiceError::BadRequest)?;
        }
        let sql = number_question_marks(sql);
        let planned = statement::plan(&self.catalog, &ctx, &sql, parameters).await?;
        if planned.is_write() && !caller.may_write() {
            return Err(ServiceError::PermissionDenied(caller.write_refusal()));
        }
        Ok(planned)
    }

    /// The session settings after a `SET`/`RESET` (checked), or `None` for other statements.
    fn changed_settings(
        &self,
        planned: &Planned,
        settings: &Settings,
    ) -> Result<Option<Settings>, ServiceError> {
        let (name, value) = match planned {
            Planned::Set { name, value } => (name, Some(value.clone())),
            Planned::Reset { name } => (name, None),
            Planned::Plan(_) => return Ok(None),
        };
        session::with_option(&self.catalog, settings, name, value).map(Some)
    }

    /// Applies a `SET`/`RESET` to the session of this call.
    fn change_session(&self, planned: &Planned, slot: &SessionSlot) -> Result<(), ServiceError> {
        if let Some(next) = self.changed_settings(planned, slot.settings())? {
            slot.set(next);
        }
        Ok(())
    }

    /// The FlightInfo of a statement: SET/RESET change the session here and have nothing to
    /// fetch; anything else gets one endpoint whose ticket carries everything needed to run
    /// it. A write (INSERT) runs here, exactly once, and its ticket carries only its outcome
    /// (the row count, or a dry run's rows): a client that never fetches, or fetches twice,
    /// neither loses nor repeats it.
    /// With `schema_only` (GetSchema) nothing runs and the session does not change.
    #[allow(clippy::too_many_arguments)]
    async fn statement_flight_info(
        &self,
        caller: &Caller,
        sql: String,
        settings: Settings,
        parameters: Vec<u8>,
        slot: &SessionSlot,
        descriptor: FlightDescriptor,
        schema_only: bool,
        style: TimestampStyle,
    ) -> Result<Response<FlightInfo>, ServiceError> {
        let bound = tickets::decode_parameters(&parameters)?;
        let planned = self.plan(caller, &sql, &settings, &bound).await?;
        if planned.is_write() && !schema_only {
            let Planned::Plan(df) = planned else {
                unreachable!("writes are plans")
            };
            require_bound(&df)?;
            if is_dry_run(&df) {
                return dry_run_info(*df, descriptor).await;
            }
            let count = affected_rows(&df.collect().await?)?.max(0) as u64;
            let result_sql = count_sql(count);
            let Planned::Plan(result) = self
                .plan(caller, &result_sql, &Settings::default(), &[])
                .await?
            else {
                unreachable!("a SELECT is a plan")
            };
            let statement = StatementTicket {
                sql: result_sql,
                settings: Some(Settings::default()),
                parameters: Vec::new(),
                query_id: new_query_id(),
                affected_rows: Some(count),
                report: Vec::new(),
            };
            // The rows created, where ADBC reads an update's row count (`rowcount`); the
            // ticket still answers the `count` row.
            return statement_info(
                &self.result_schema(caller, &result, style),
                &statement,
                descriptor,
            )
            .map(|info| info.map(|info| info.with_total_records(count as i64)));
        }
        let planned_write = planned.is_write();
        let Planned::Plan(df) = planned else {
            if !schema_only {
                self.change_session(&planned, slot)?;
            }
            let info = FlightInfo::new()
                .try_with_schema(&Schema::empty())?
                .with_descriptor(descriptor);
            return Ok(Response::new(info));
        };
        if !schema_only {
            require_bound(&df)?;
        }
        let schema = if planned_write && is_dry_run(&df) {
            report_schema()
        } else {
            self.result_schema(caller, &df, style)
        };
        let statement = StatementTicket {
            sql,
            settings: Some(settings),
            parameters,
            query_id: new_query_id(),
            affected_rows: None,
            report: Vec::new(),
        };
        statement_info(&schema, &statement, descriptor)
    }

    /// Runs a data-changing statement and returns the number of rows it affected. SET and
    /// RESET change the session and affect no row.
    async fn execute_update(
        &self,
        caller: &Caller,
        sql: &str,
        settings: &Settings,
        parameters: &[RecordBatch],
        slot: &SessionSlot,
    ) -> Result<i64, ServiceError> {
        let planned = self.plan(caller, sql, settings, parameters).await?;
        if planned.is_write() {
            if let Planned::Plan(df) = planned {
                require_bound(&df)?;
                let batches = df.collect().await?;
                return affected_rows(&batches);
            }
        }
        self.change_session(&planned, slot)?;
        match planned {
            Planned::Plan(_) => Err(ServiceError::bad_request(
                "only INSERT runs as an update; run queries with executeQuery / execute",
            )),
            Planned::Set { .. } | Planned::Reset { .. } => Ok(0),
        }
    }

    /// Runs a statement and streams it as Flight data; a `query_id` makes it cancellable.
    /// While the server drains, only a ticket that reports an INSERT's count (`count_only`)
    /// is served: a new query goes to another replica, the outcome of a write never gets
    /// lost.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        caller: &Caller,
        sql: &str,
        settings: &Settings,
        parameters: &[RecordBatch],
        query_id: Option<&str>,
        draining: bool,
        count_only: bool,
        style: TimestampStyle,
    ) -> Result<DoGetStream, ServiceError> {
        if draining && !count_only {
            return Err(ServiceError::ShuttingDown(
                crate::observe::SHUTTING_DOWN.to_owned(),
            ));
        }
        let planned = self.plan(caller, sql, settings, parameters).await?;
        if planned.is_write() {
            // The server's tickets never carry a write (it runs at GetFlightInfo or DoPut,
            // exactly once); a ticket that does was not made by this server.
            return Err(ServiceError::bad_request(
                "this ticket carries an INSERT, which tickets never do: run INSERT with \
                 GetFlightInfo (execute) or DoPut (executeUpdate)",
            ));
        }
        let Planned::Plan(df) = planned else {
            return Err(ServiceError::bad_request(
                "SET and RESET change the session when executed; there is nothing to fetch",
            ));
        };
        require_bound(&df)?;
        let schema = self.result_schema(caller, &df, style);
        let (state, logical) = df.into_parts();
        let physical = state.create_physical_plan(&logical).await?;
        let batches = execute_stream(Arc::clone(&physical), state.task_ctx())?;
        let target = Arc::clone(&schema);
        let mut log = QueryLog {
            sql: sql.to_owned(),
            started: Instant::now(),
            plan: physical,
            rows: 0,
            slow: self.slow_query,
            metrics: Arc::clone(&self.metrics),
        };
        let batches = batches.map(move |batch| {
            let batch = batch.map_err(|e| status_error(ServiceError::from(e)))?;
            log.rows(batch.num_rows());
            to_boundary(batch, &target).map_err(|e| status_error(ServiceError::from(e)))
        });
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        match query_id {
            Some(id) if !id.is_empty() => Ok(Box::pin(self.queries.track(id, flight)?)),
            _ => Ok(Box::pin(flight)),
        }
    }

    /// Appends the rows of a bulk ingest to a table, as `INSERT INTO table (columns) SELECT
    /// columns FROM the rows` in the session of the call: the same path as SQL INSERT.
    async fn ingest(
        &self,
        caller: &Caller,
        command: CommandStatementIngest,
        batches: Vec<RecordBatch>,
        settings: &Settings,
    ) -> Result<i64, ServiceError> {
        if command.temporary {
            return Err(ServiceError::Unsupported(
                "ingest into a temporary table is not supported: ingest appends to an \
                 existing table (mode=\"append\")"
                    .into(),
            ));
        }
        if command.transaction_id.is_some() {
            return Err(ServiceError::Unsupported(
                "transactions are not supported: every ingest commits on its own".into(),
            ));
        }
        let if_exists = command
            .table_definition_options
            .map(|o| o.if_exists)
            .unwrap_or_default();
        if if_exists != TableExistsOption::Unspecified as i32
            && if_exists != TableExistsOption::Append as i32
        {
            return Err(ServiceError::Unsupported(
                "ingest only appends to an existing table (ADBC mode=\"append\"); creating or \
                 replacing tables is not supported"
                    .into(),
            ));
        }
        let Some(first) = batches.first() else {
            return Ok(0);
        };
        let schema = first.schema();
        let ctx = session::open(&self.catalog, settings)?;
        let rows = MemTable::try_new(Arc::clone(&schema), vec![batches])?;
        let ingest_schema = MemorySchemaProvider::new();
        ingest_schema.register_table(INGEST_TABLE.into(), Arc::new(rows))?;
        let ingest_catalog = MemoryCatalogProvider::new();
        ingest_catalog.register_schema(INGEST_SCHEMA, Arc::new(ingest_schema))?;
        ctx.register_catalog(INGEST_CATALOG, Arc::new(ingest_catalog));

        let mut target = Vec::new();
        for part in [command.catalog.as_deref(), command.schema.as_deref()]
            .into_iter()
            .flatten()
        {
            target.push(quote(part));
        }
        target.push(quote(&command.table));
        let columns = schema
            .fields()
            .iter()
            .map(|f| quote(f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {}.{}.{}",
            target.join("."),
            quote(INGEST_CATALOG),
            quote(INGEST_SCHEMA),
            quote(INGEST_TABLE),
        );
        crate::observe::note_statement(&sql);
        let planned = statement::plan(&self.catalog, &ctx, &sql, &[]).await?;
        if !caller.may_write() {
            return Err(ServiceError::PermissionDenied(caller.write_refusal()));
        }
        let Planned::Plan(df) = planned else {
            unreachable!("an INSERT is a plan")
        };
        let batches = df.collect().await?;
        affected_rows(&batches)
    }

    /// The query ids in the tickets of `info`.
    fn query_ids(info: &FlightInfo) -> Vec<String> {
        info.endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .filter_map(|t| Any::decode(t.ticket.as_ref()).ok())
            .filter_map(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
            .filter_map(|t| tickets::decode_statement(&t.statement_handle).ok())
            .map(|s| s.query_id)
            .filter(|id| !id.is_empty())
            .collect()
    }

    fn set_session_options(
        &self,
        request: session_proto::SetSessionOptionsRequest,
        slot: &SessionSlot,
    ) -> Result<session_proto::SetSessionOptionsResult, ServiceError> {
        use session_proto::{SetSessionOptionsError, SetSessionOptionsErrorValue as E};
        let known: std::collections::HashSet<String> =
            session::open(&self.catalog, slot.settings())?
                .state()
                .config_options()
                .entries()
                .into_iter()
                .map(|e| e.key)
                .collect();
        let mut settings = slot.settings().clone();
        let mut errors = std::collections::HashMap::new();
        let mut names: Vec<_> = request.session_options.into_iter().collect();
        // `catalog` before `schema`: a schema is looked up in the catalog.
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in names {
            let outcome = session::option_text(&value)
                .map_err(ServiceError::bad_request)
                .and_then(|text| session::with_option(&self.catalog, &settings, &name, text));
            match outcome {
                Ok(next) => settings = next,
                Err(err) => {
                    let value = if name == "catalog" || name == "schema" || known.contains(&name) {
                        E::InvalidValue
                    } else {
                        E::InvalidName
                    };
                    tracing::info!(option = %name, error = %err, "session option refused");
                    errors.insert(
                        name,
                        SetSessionOptionsError {
                            value: value as i32,
                        },
                    );
                }
            }
        }
        if &settings != slot.settings() {
            slot.set(settings);
        }
        Ok(session_proto::SetSessionOptionsResult { errors })
    }

    fn get_session_options(
        &self,
        slot: &SessionSlot,
    ) -> Result<session_proto::GetSessionOptionsResult, ServiceError> {
        let session_options = session::options_in_force(&self.catalog, slot.settings())?
            .into_iter()
            .map(|(k, v)| (k, session::option_value(v)))
            .collect();
        Ok(session_proto::GetSessionOptionsResult { session_options })
    }
}

/// How the client of `request` receives timestamps (a bad `timestamps` header is an error).
fn timestamp_style<T>(request: &Request<T>) -> Result<TimestampStyle, ServiceError> {
    TimestampStyle::of(request.metadata()).map_err(ServiceError::BadRequest)
}

/// The batches a client sent with DoPut.
async fn read_batches(
    request: Request<PeekableFlightDataStream>,
    what: &str,
) -> Result<Vec<RecordBatch>, ServiceError> {
    // A DoPut that only carries the command (an update without new parameters) has a
    // message with an empty header: nothing to decode.
    let flight_data = request
        .into_inner()
        .into_peekable()
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data)
        .try_collect()
        .await
        .map_err(|e| ServiceError::bad_request(format!("could not read the {what}: {e}")))
}

/// Follows one streamed query: counts its rows, and when it ends (or is dropped) logs a
/// slow-query line if it took longer than the threshold.
struct QueryLog {
    sql: String,
    started: Instant,
    plan: Arc<dyn ExecutionPlan>,
    rows: u64,
    slow: Option<Duration>,
    metrics: Arc<Metrics>,
}

impl QueryLog {
    fn rows(&mut self, n: usize) {
        self.rows += n as u64;
        self.metrics.rows_streamed(n as u64);
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        if self.slow.is_some_and(|threshold| elapsed >= threshold) {
            tracing::warn!(
                sql = %self.sql,
                duration_ms = elapsed.as_millis() as u64,
                rows = self.rows,
                aws_calls = metric_sum(&self.plan, "api_calls"),
                aws_retries = metric_sum(&self.plan, "retries"),
                "slow query"
            );
        }
    }
}

/// The sum of the metric `name` over every node of `plan`.
fn metric_sum(plan: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
    let own = plan
        .metrics()
        .and_then(|m| m.sum_by_name(name))
        .map_or(0, |v| v.as_usize());
    own + plan
        .children()
        .into_iter()
        .map(|child| metric_sum(child, name))
        .sum::<usize>()
}

/// Wraps a service error so that it reaches the client with its own status code.
fn status_error(err: ServiceError) -> FlightError {
    FlightError::Tonic(Box::new(Status::from(err)))
}

/// The query whose one row is an INSERT's count, as the FlightInfo of the INSERT describes
/// it.
fn count_sql(count: u64) -> String {
    format!("SELECT arrow_cast({count}, 'UInt64') AS \"count\"")
}

/// Whether `df` runs with `aws.dry_run` on.
fn is_dry_run(df: &DataFrame) -> bool {
    AwsOptions::of(df.task_ctx().session_config().options()).dry_run
}

/// Runs a dry-run INSERT (AWS checks every row, nothing is created) and answers the
/// FlightInfo of its rows, one per row of the INSERT (`would_create`), with total_records 0
/// (ADBC's `rowcount`): nothing was created. The ticket carries the rows themselves, so any
/// replica serves it and it runs nothing. A row AWS would refuse fails the statement with
/// the whole report, as a real INSERT does.
async fn dry_run_info(
    df: DataFrame,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, ServiceError> {
    let rows = Arc::new(DryRunRows::default());
    let (mut state, plan) = df.into_parts();
    state.config_mut().set_extension(Arc::clone(&rows));
    let affected = affected_rows(&DataFrame::new(state, plan).collect().await?)?;
    let batch = rows
        .take()
        .unwrap_or_else(|| RecordBatch::new_empty(report_schema()));
    let statement = StatementTicket {
        sql: String::new(),
        settings: Some(Settings::default()),
        parameters: Vec::new(),
        query_id: new_query_id(),
        affected_rows: Some(affected.max(0) as u64),
        report: tickets::encode_parameters(std::slice::from_ref(&batch))?,
    };
    statement_info(&batch.schema(), &statement, descriptor)
        .map(|info| info.map(|info| info.with_total_records(affected)))
}

/// A SQL identifier, quoted.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The row count of a DML result: one row with one `count` column.
fn affected_rows(batches: &[RecordBatch]) -> Result<i64, ServiceError> {
    let mut total = 0i64;
    for batch in batches {
        let counts = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Int64)?;
        let counts = counts.as_primitive::<arrow::datatypes::Int64Type>();
        total += counts.iter().flatten().sum::<i64>();
    }
    Ok(total)
}

/// Refuses a statement about to run whose placeholders (`$1`, `?`) have no value.
fn require_bound(df: &DataFrame) -> Result<(), ServiceError> {
    let mut unbound: Vec<String> = df
        .logical_plan()
        .get_parameter_types()?
        .into_keys()
        .collect();
    if unbound.is_empty() {
        return Ok(());
    }
    unbound.sort_by_key(|name| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    Err(ServiceError::bad_request(format!(
        "the statement's parameter(s) {} have no value: prepare it and bind the values \
         (JDBC PreparedStatement.setString, ADBC execute(sql, parameters=...), \
         flight_sql_client prepared-statement-query -p), or write the values in the SQL",
        unbound.join(", ")
    )))
}

/// The Arrow schema of a statement's placeholders (`$1`, `$2`, ...), empty when it has none;
/// timestamps in `style`, as the results are (JDBC binds either kind alike).
fn parameter_schema(df: &DataFrame, style: TimestampStyle) -> Result<Schema, ServiceError> {
    let types = df.logical_plan().get_parameter_types()?;
    let mut names: Vec<_> = types.into_iter().collect();
    names.sort_by_key(|(name, _)| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let fields: Vec<Field> = names
        .into_iter()
        .map(|(name, data_type)| {
            let data_type = data_type.unwrap_or(arrow::datatypes::DataType::Utf8);
            let boundary = boundary_schema(
                &Schema::new(vec![Field::new(&name, data_type, true)]),
                style,
            );
            boundary.field(0).clone()
        })
        .collect();
    Ok(Schema::new(fields))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, ServiceError> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(bytes)
}

/// A FlightInfo with one endpoint whose ticket is `ticket`, to be fetched from this server.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, ServiceError> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(false))
}

/// A FlightInfo response whose ticket carries `statement`.
fn statement_info(
    schema: &Schema,
    statement: &StatementTicket,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, ServiceError> {
    let ticket = TicketStatementQuery {
        statement_handle: statement.encode_to_vec().into(),
    };
    Ok(Response::new(flight_info(
        schema,
        ticket.as_any().encode_to_vec(),
        descriptor,
    )?))
}

/// A FlightInfo response for a metadata command, whose ticket is the command itself.
fn metadata_info(
    schema: &Schema,
    command: &impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    Ok(Response::new(flight_info(
        schema,
        command.as_any().encode_to_vec(),
        request.into_inner(),
    )?))
}

/// Streams one metadata batch.
fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> DoGetStream {
    let batches = stream::once(async move { batch });
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from),
    )
}

/// One action result.
fn action_result(message: &impl Message) -> Response<DoActionStream> {
    let result = arrow_flight::Result {
        body: message.encode_to_vec().into(),
    };
    Response::new(Box::pin(stream::iter([Ok(result)])))
}

fn decode_action<M: Message + Default>(action: &Action) -> Result<M, ServiceError> {
    M::decode(action.body.as_ref())
        .map_err(|e| ServiceError::bad_request(format!("invalid {} request: {e}", action.r#type)))
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlHandler {
    type FlightService = FlightSqlHandler;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // No authentication configured: every handshake succeeds.
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(stream::iter([Ok(response)]))))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let slot = session::of(&request);
        let caller = Caller::of(&request);
        let settings = slot.settings().clone();
        let schema_only = request.extensions().get::<SchemaOnly>().is_some();
        let style = timestamp_style(&request)?;
        Ok(self
            .statement_flight_info(
                &caller,
                query.query,
                settings,
                Vec::new(),
                &slot,
                request.into_inner(),
                schema_only,
                style,
            )
            .await?)
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let slot = session::of(&request);
        let caller = Caller::of(&request);
        let handle = tickets::decode_prepared(&cmd.prepared_statement_handle)?;
        let schema_only = request.extensions().get::<SchemaOnly>().is_some();
        let style = timestamp_style(&request)?;
        Ok(self
            .statement_flight_info(
                &caller,
                handle.sql,
                handle.settings.unwrap_or_default(),
                handle.parameters,
                &slot,
                request.into_inner(),
                schema_only,
                style,
            )
            .await?)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&query.into_builder().schema(), &query, request)
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&query.clone().into_builder().schema(), &query, request)
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&query.clone().into_builder().schema(), &query, request)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&query.into_builder().schema(), &query, request)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = self.sql_info_for(&Caller::of(&request));
        let schema = canonical_schema(&query.clone().into_builder(info).schema());
        metadata_info(&schema, &query, request)
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&PRIMARY_KEYS_SCHEMA, &query, request)
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&FOREIGN_KEYS_SCHEMA, &query, request)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&FOREIGN_KEYS_SCHEMA, &query, request)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(&FOREIGN_KEYS_SCHEMA, &query, request)
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.xdbc_types).schema();
        metadata_info(&schema, &query, request)
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let statement = tickets::decode_statement(&ticket.statement_handle)?;
        let draining = request.extensions().get::<Draining>().is_some();
        let style = timestamp_style(&request)?;
        if !statement.report.is_empty() {
            // The rows of a dry-run INSERT that ran: served as they are, even while
            // draining.
            let batch = tickets::decode_parameters(&statement.report)
                .map_err(|_| {
                    ServiceError::bad_request(
                        "this ticket's dry-run rows cannot be read: it was not made by this \
                         server (run the INSERT again to get a new one)",
                    )
                })?
                .into_iter()
                .next()
                .unwrap_or_else(|| RecordBatch::new_empty(report_schema()));
            return Ok(Response::new(one_batch(batch.schema(), Ok(batch))));
        }
        let stream = match statement.affected_rows {
            // The count of an INSERT that ran: only the number counts (whatever else a
            // ticket carries), and it is served while draining.
            Some(count) => {
                self.execute(
                    &Caller::of(&request),
                    &count_sql(count),
                    &Settings::default(),
                    &[],
                    None,
                    draining,
                    true,
                    style,
                )
                .await?
            }
            None => {
                let parameters = tickets::decode_parameters(&statement.parameters)?;
                self.execute(
                    &Caller::of(&request),
                    &statement.sql,
                    &statement.settings.unwrap_or_default(),
                    &parameters,
                    Some(&statement.query_id),
                    draining,
                    false,
                    style,
                )
                .await?
            }
        };
        Ok(Response::new(stream))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let parameters = tickets::decode_parameters(&handle.parameters)?;
        let stream = self
            .execute(
                &Caller::of(&request),
                &handle.sql,
                &handle.settings.unwrap_or_default(),
                &parameters,
                None,
                request.extensions().get::<Draining>().is_some(),
                false,
                timestamp_style(&request)?,
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let tables = self.catalog.tables().await.map_err(ServiceError::from)?;
        let mut builder = query.into_builder();
        let mut catalogs: Vec<&str> = tables.iter().map(|t| t.catalog.as_str()).collect();
        catalogs.dedup();
        for catalog in catalogs {
            builder.append(catalog);
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let tables = self.catalog.tables().await.map_err(ServiceError::from)?;
        // Names match in any case, as unquoted names in SQL do (the builder's own filters
        // are case-sensitive).
        let mut query = query;
        let filter = MetadataFilter {
            catalog: query.catalog.take(),
            schema_pattern: query.db_schema_filter_pattern.take(),
            table_pattern: None,
        };
        let mut builder = query.into_builder();
        let mut schemas: Vec<(&str, &str)> = tables
            .iter()
            .filter(|t| filter.matches(&t.catalog, &t.schema, None))
            .map(|t| (t.catalog.as_str(), t.schema.as_str()))
            .collect();
        schemas.dedup();
        for (catalog, schema) in schemas {
            builder.append(catalog, schema);
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let style = timestamp_style(&request)?;
        let may_write = self.may_write(&Caller::of(&request));
        let tables = self.catalog.tables().await.map_err(ServiceError::from)?;
        // Names and LIKE patterns match in any case, as unquoted names in SQL do: the JDBC
        // driver upper-cases them (`getColumns(null, null, "STORE_IMAGE_TASKS", "%")`).
        let mut query = query;
        let filter = MetadataFilter {
            catalog: query.catalog.take(),
            schema_pattern: query.db_schema_filter_pattern.take(),
            table_pattern: query.table_name_filter_pattern.take(),
        };
        let mut builder = query.into_builder();
        for t in tables
            .iter()
            .filter(|t| filter.matches(&t.catalog, &t.schema, Some(&t.name)))
        {
            let origin = Origin {
                catalog: t.catalog.clone(),
                schema: t.schema.clone(),
                table: t.name.clone(),
                columns: Arc::clone(&t.arrow_schema),
            };
            let schema =
                describe_table(&boundary_schema(&t.arrow_schema, style), &origin, may_write);
            builder
                .append(&t.catalog, &t.schema, &t.name, &t.table_type, &schema)
                .map_err(ServiceError::from)?;
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for table_type in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
            builder.append(table_type);
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(self.sql_info_for(&Caller::of(&request)));
        let schema = canonical_schema(&builder.schema());
        let batch = builder
            .build()
            .and_then(|b| canonical_batch(b).map_err(FlightError::from));
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let schema = Arc::clone(&PRIMARY_KEYS_SCHEMA);
        Ok(Response::new(one_batch(
            Arc::clone(&schema),
            Ok(no_keys(&schema)),
        )))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let schema = Arc::clone(&FOREIGN_KEYS_SCHEMA);
        Ok(Response::new(one_batch(
            Arc::clone(&schema),
            Ok(no_keys(&schema)),
        )))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let schema = Arc::clone(&FOREIGN_KEYS_SCHEMA);
        Ok(Response::new(one_batch(
            Arc::clone(&schema),
            Ok(no_keys(&schema)),
        )))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let schema = Arc::clone(&FOREIGN_KEYS_SCHEMA);
        Ok(Response::new(one_batch(
            Arc::clone(&schema),
            Ok(no_keys(&schema)),
        )))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&self.xdbc_types);
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let caller = Caller::of(&request);
        let batches = read_batches(request, "parameter batch").await?;
        // Check that the parameters fit the statement before handing out the handle.
        self.plan(
            &caller,
            &handle.sql,
            &handle.settings.clone().unwrap_or_default(),
            &batches,
        )
        .await?;
        let bound = PreparedStatementHandle {
            parameters: tickets::encode_parameters(&batches)?,
            ..handle
        };
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode_to_vec().into()),
        })
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let slot = session::of(&request);
        let settings = slot.settings().clone();
        Ok(self
            .execute_update(&Caller::of(&request), &command.query, &settings, &[], &slot)
            .await?)
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let slot = session::of(&request);
        let caller = Caller::of(&request);
        if !caller.may_write() {
            // Before reading the rows: they would be refused anyway.
            return Err(ServiceError::PermissionDenied(caller.write_refusal()).into());
        }
        let batches = read_batches(request, "rows to ingest").await?;
        Ok(self
            .ingest(&caller, command, batches, slot.settings())
            .await?)
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let slot = session::of(&request);
        let caller = Caller::of(&request);
        let handle = tickets::decode_prepared(&command.prepared_statement_handle)?;
        let mut parameters = read_batches(request, "parameter batch").await?;
        if parameters.iter().all(|b| b.num_rows() == 0) {
            // No batch in this call: use the parameters bound earlier, if any.
            parameters = tickets::decode_parameters(&handle.parameters)?;
        }
        Ok(self
            .execute_update(
                &caller,
                &handle.sql,
                &handle.settings.unwrap_or_default(),
                &parameters,
                &slot,
            )
            .await?)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<DoActionStream>, Status> {
        let slot = session::of(&request);
        let action = request.into_inner();
        match action.r#type.as_str() {
            session_proto::SET_SESSION_OPTIONS => {
                let req: session_proto::SetSessionOptionsRequest = decode_action(&action)?;
                Ok(action_result(&self.set_session_options(req, &slot)?))
            }
            session_proto::GET_SESSION_OPTIONS => {
                let _: session_proto::GetSessionOptionsRequest = decode_action(&action)?;
                Ok(action_result(&self.get_session_options(&slot)?))
            }
            session_proto::CLOSE_SESSION => {
                let _: session_proto::CloseSessionRequest = decode_action(&action)?;
                slot.close();
                Ok(action_result(&session_proto::CloseSessionResult {
                    status: session_proto::CloseSessionStatus::Closed as i32,
                }))
            }
            CANCEL_FLIGHT_INFO => {
                let req: CancelFlightInfoRequest = decode_action(&action)?;
                let info = req.info.unwrap_or_default();
                let ids = Self::query_ids(&info);
                let cancelled = self.queries.cancel(ids.iter().map(String::as_str));
                tracing::info!(
                    queries = ids.len(),
                    streams = cancelled.stopped,
                    "cancelled"
                );
                Ok(action_result(&CancelFlightInfoResult {
                    status: CancelStatus::Cancelled as i32,
                }))
            }
            other => Err(ServiceError::Unsupported(format!(
                "unknown action type '{other}'; ListActions lists the supported ones"
            ))
            .into()),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.to_owned(),
                description: description.to_owned(),
            })
        };
        Some(vec![
            action(
                session_proto::SET_SESSION_OPTIONS,
                "Sets session options (catalog, schema, aws.*, DataFusion settings); the \
                 session travels in a cookie",
            ),
            action(
                session_proto::GET_SESSION_OPTIONS,
                "Returns the session options in force",
            ),
            action(session_proto::CLOSE_SESSION, "Ends the session"),
            action(
                CANCEL_FLIGHT_INFO,
                "Stops the running streams of a FlightInfo's query",
            ),
        ])
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let slot = session::of(&request);
        let settings = slot.settings().clone();
        let style = timestamp_style(&request)?;
        let caller = Caller::of(&request);
        let planned = self.plan(&caller, &query.query, &settings, &[]).await?;
        // A statement without a result set (INSERT, SET) has an empty dataset schema: the
        // JDBC driver then runs it as an update.
        let (dataset_schema, parameter_schema) = match &planned {
            Planned::Plan(df) if !planned.is_write() => (
                self.result_schema(&caller, df, style).as_ref().clone(),
                parameter_schema(df, style)?,
            ),
            Planned::Plan(df) => (Schema::empty(), parameter_schema(df, style)?),
            Planned::Set { .. } | Planned::Reset { .. } => {
                // Check it now, so that a bad option fails at prepare time; it takes
                // effect when executed.
                self.changed_settings(&planned, &settings)?;
                (Schema::empty(), Schema::empty())
            }
        };
        let handle = PreparedStatementHandle {
            sql: query.query,
            settings: Some(settings),
            parameters: Vec::new(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.encode_to_vec().into(),
            dataset_schema: ipc_schema(&dataset_schema)?,
            parameter_schema: ipc_schema(&parameter_schema)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are self-contained: there is nothing to free, and closing always succeeds.
        Ok(())
    }

    #[allow(deprecated)]
    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info.as_ref()).map_err(|e| {
            ServiceError::bad_request(format!("CancelQuery: invalid FlightInfo: {e}"))
        })?;
        let ids = Self::query_ids(&info);
        self.queries.cancel(ids.iter().map(String::as_str));
        Ok(ActionCancelQueryResult {
            result: CANCEL_RESULT_CANCELLED,
        })
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
