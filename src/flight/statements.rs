//! The statement family: a SQL statement's FlightInfo (where an INSERT runs, exactly once,
//! and a `SET`/`RESET` changes the session), its DoGet (where a query runs and streams,
//! cancellable by its query id, with a slow-query line), and a statement run as an update
//! (DoPut). Admission is checked by [`FlightSqlHandler::plan`] before anything runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightDescriptor, FlightInfo};
use datafusion::dataframe::DataFrame;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::{StreamExt, TryStreamExt};
use tonic::Status;

use super::admit;
use super::call::Call;
use super::placeholders::number_question_marks;
use super::report;
use super::respond::{one_batch, statement_info, stream_error, DoGetStream};
use super::service::FlightSqlHandler;
use super::session;
use super::statement::{self, Planned};
use super::tickets::{self, Settings, StatementTicket};
use crate::auth::Caller;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::table::{
    dry_run_note, dry_run_schema, insert_result, is_awaiting, report_schema, AwaitedTasks,
    AwsOptions, DryRunRows, SkippedAccounts,
};

impl FlightSqlHandler {
    /// Admits and plans `sql` for `caller` in a fresh session with `settings`, binding
    /// `parameters`. A write by a caller who may not write is refused here, once the
    /// statement is known and before anything runs.
    pub(super) async fn plan(
        &self,
        caller: &Caller,
        sql: &str,
        settings: &Settings,
        parameters: &[RecordBatch],
    ) -> Result<Planned, Error> {
        // For the log line of a statement that fails (see crate::observe).
        crate::observe::note_statement(sql);
        let ctx = session::open(&self.catalog, settings)?;
        admit::check_sql(&self.sql_limits, sql, &ctx)?;
        let sql = number_question_marks(sql);
        let planned = statement::plan(&self.catalog, &ctx, &sql, parameters).await?;
        admit::check_write(caller, &planned)?;
        Ok(planned)
    }

    /// The session settings after a `SET`/`RESET` (checked), or `None` for other statements.
    pub(super) fn changed_settings(
        &self,
        planned: &Planned,
        settings: &Settings,
    ) -> Result<Option<Settings>, Error> {
        let (name, value) = match planned {
            Planned::Set { name, value } => (name, Some(value.clone())),
            Planned::Reset { name } => (name, None),
            Planned::Plan(_) => return Ok(None),
        };
        session::with_option(&self.catalog, settings, name, value).map(Some)
    }

    /// Applies a `SET`/`RESET` to the session of `call`.
    fn change_session(&self, planned: &Planned, call: &Call) -> Result<(), Error> {
        if let Some(next) = self.changed_settings(planned, call.session.settings())? {
            call.session.set(next);
        }
        Ok(())
    }

    /// The FlightInfo of a statement: SET/RESET change the session here and have nothing to
    /// fetch; anything else gets one endpoint whose ticket carries everything needed to run
    /// it, and the call's query id. A write (INSERT) runs here, exactly once, and its
    /// ticket carries only its outcome (the row count, or a dry run's rows): a client that
    /// never fetches, or fetches twice, neither loses nor repeats it.
    /// For GetSchema nothing runs and the session does not change.
    pub(super) async fn statement_flight_info(
        &self,
        call: &Call,
        sql: String,
        settings: Settings,
        parameters: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Error> {
        call.style()?;
        let bound = tickets::decode_parameters(&parameters)?;
        let planned = self.plan(&call.caller, &sql, &settings, &bound).await?;
        if planned.is_write() && !call.schema_only {
            let Planned::Plan(df) = planned else {
                unreachable!("writes are plans")
            };
            require_bound(&df)?;
            if is_dry_run(&df) {
                return dry_run_info(call, *df, descriptor).await;
            }
            // The INSERT leaves its rows, for the regions its result names, and under AWAIT
            // how its tasks ended.
            let rows = Arc::new(DryRunRows::default());
            let awaited = Arc::new(AwaitedTasks::default());
            let (mut state, plan) = df.into_parts();
            state.config_mut().set_extension(Arc::clone(&rows));
            state.config_mut().set_extension(Arc::clone(&awaited));
            let count = affected_rows(&DataFrame::new(state, plan).collect().await?)?.max(0) as u64;
            let result = insert_result(count, rows.take().as_ref(), awaited.take().as_ref())?;
            let statement = StatementTicket {
                sql: String::new(),
                settings: Some(Settings::default()),
                parameters: Vec::new(),
                query_id: call.query_id.clone(),
                affected_rows: Some(count),
                report: tickets::encode_parameters(std::slice::from_ref(&result))?,
            };
            // The rows created, where ADBC reads an update's row count (`rowcount`); the
            // ticket answers the result row itself (`count`, `regions`).
            return statement_info(&result.schema(), &statement, descriptor)
                .map(|info| info.with_total_records(count as i64));
        }
        let planned_write = planned.is_write();
        let Planned::Plan(df) = planned else {
            if !call.schema_only {
                self.change_session(&planned, call)?;
            }
            return Ok(FlightInfo::new()
                .try_with_schema(&Schema::empty())?
                .with_descriptor(descriptor));
        };
        if !call.schema_only {
            require_bound(&df)?;
        }
        let schema = if planned_write && is_dry_run(&df) {
            dry_run_schema(
                report_schema(),
                is_awaiting(df.task_ctx().session_config().options()),
            )
        } else {
            self.result_schema(call, &df)?
        };
        // Under `aws.on_account_error = 'skip'` the query is planned now, so that the
        // FlightInfo tells which accounts it skips (ADBC and JDBC read the result's schema
        // and app_metadata from here); the roles assumed are kept for the DoGet.
        // The DoGet that runs it logs and counts its skips: here they are only collected.
        let mut skipped = Vec::new();
        if !planned_write && !call.schema_only && skips_accounts(&df) {
            let described = Arc::new(SkippedAccounts::quiet());
            let (mut state, logical) = (*df).clone().into_parts();
            state.config_mut().set_extension(Arc::clone(&described));
            state.create_physical_plan(&logical).await?;
            skipped = described.list();
        }
        let schema = report::with_skips(schema, &skipped);
        let statement = StatementTicket {
            sql,
            settings: Some(settings),
            parameters,
            query_id: call.query_id.clone(),
            affected_rows: None,
            report: Vec::new(),
        };
        statement_info(&schema, &statement, descriptor)
            .map(|info| info.with_app_metadata(report::app_metadata(&skipped)))
    }

    /// Runs a data-changing statement and returns the number of rows it affected. SET and
    /// RESET change the session and affect no row.
    pub(super) async fn execute_update(
        &self,
        call: &Call,
        sql: &str,
        settings: &Settings,
        parameters: &[RecordBatch],
    ) -> Result<i64, Error> {
        let planned = self.plan(&call.caller, sql, settings, parameters).await?;
        if planned.is_write() {
            if let Planned::Plan(df) = planned {
                require_bound(&df)?;
                let batches = df.collect().await?;
                return affected_rows(&batches);
            }
        }
        self.change_session(&planned, call)?;
        match planned {
            Planned::Plan(_) => Err(Error::bad_request(
                "only INSERT runs as an update; run queries with executeQuery / execute",
            )),
            Planned::Set { .. } | Planned::Reset { .. } => Ok(0),
        }
    }

    /// DoGet of a statement ticket: the rows of a dry run or the result row of an INSERT
    /// that ran (served as they are, even while draining), or the query, run now.
    pub(super) async fn do_get_statement(
        &self,
        call: &Call,
        statement: StatementTicket,
    ) -> Result<DoGetStream, Error> {
        call.style()?;
        if !statement.report.is_empty() {
            let batch = tickets::decode_parameters(&statement.report)
                .map_err(|_| {
                    Error::bad_request(
                        "this ticket's INSERT result cannot be read: it was not made by this \
                         server (run the INSERT again to get a new one)",
                    )
                })?
                .into_iter()
                .next()
                .unwrap_or_else(|| RecordBatch::new_empty(report_schema()));
            return Ok(one_batch(batch.schema(), Ok(batch)));
        }
        match statement.affected_rows {
            // The count of an INSERT that ran: only the number counts (whatever else a
            // ticket carries), and it is served while draining.
            Some(count) => {
                let query = Query {
                    sql: &count_sql(count),
                    settings: &Settings::default(),
                    parameters: &[],
                    cancellable: false,
                    count_only: true,
                };
                self.execute(call, query).await
            }
            None => {
                let parameters = tickets::decode_parameters(&statement.parameters)?;
                let query = Query {
                    sql: &statement.sql,
                    settings: &statement.settings.unwrap_or_default(),
                    parameters: &parameters,
                    cancellable: true,
                    count_only: false,
                };
                self.execute(call, query).await
            }
        }
    }

    /// Runs a query and streams it as Flight data; a cancellable one is tracked under the
    /// call's query id. While the server drains, only a ticket that reports an INSERT's
    /// count (`count_only`) is served: a new query goes to another replica, the outcome of
    /// a write never gets lost.
    pub(super) async fn execute(
        &self,
        call: &Call,
        query: Query<'_>,
    ) -> Result<DoGetStream, Error> {
        if call.draining && !query.count_only {
            return Err(Error::ShuttingDown(
                crate::observe::SHUTTING_DOWN.to_owned(),
            ));
        }
        let planned = self
            .plan(&call.caller, query.sql, query.settings, query.parameters)
            .await?;
        if planned.is_write() {
            // The server's tickets never carry a write (it runs at GetFlightInfo or DoPut,
            // exactly once); a ticket that does was not made by this server.
            return Err(Error::bad_request(
                "this ticket carries an INSERT, which tickets never do: run INSERT with \
                 GetFlightInfo (execute) or DoPut (executeUpdate)",
            ));
        }
        let Planned::Plan(df) = planned else {
            return Err(Error::bad_request(
                "SET and RESET change the session when executed; there is nothing to fetch",
            ));
        };
        require_bound(&df)?;
        let schema = self.result_schema(call, &df)?;
        let (mut state, logical) = df.into_parts();
        // The accounts the scan skips (`aws.on_account_error = 'skip'`) are told to the
        // client: those of the planning in the schema and headers, all in the trailers.
        state.config_mut().set_extension(Arc::clone(&call.skipped));
        let physical = state.create_physical_plan(&logical).await?;
        // A watch runs for its own timeout (capped by --max-watch) beyond the query timeout.
        if let (Some(watch), Some(extra)) = (
            crate::table::watch_timeout(&physical),
            call.extra_time.as_ref(),
        ) {
            extra.grant(watch);
        }
        let schema = report::with_skips(schema, &call.skipped.list());
        let batches = execute_stream(Arc::clone(&physical), state.task_ctx())?;
        let target = Arc::clone(&schema);
        let mut log = QueryLog {
            sql: query.sql.to_owned(),
            query_id: call.query_id.clone(),
            started: Instant::now(),
            plan: physical,
            rows: 0,
            slow: self.slow_query,
            metrics: Arc::clone(&self.metrics),
        };
        let batches = batches.map(move |batch| {
            let batch = batch.map_err(|e| stream_error(Error::from(e)))?;
            log.rows(batch.num_rows());
            super::boundary::to_boundary(batch, &target).map_err(|e| stream_error(Error::from(e)))
        });
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        if query.cancellable && !call.query_id.is_empty() {
            return Ok(Box::pin(self.queries.track(&call.query_id, flight)?));
        }
        Ok(Box::pin(flight))
    }
}

/// A query to run and stream.
pub(super) struct Query<'a> {
    /// Its SQL.
    pub sql: &'a str,
    /// The session settings it runs with.
    pub settings: &'a Settings,
    /// Its bound parameters.
    pub parameters: &'a [RecordBatch],
    /// Whether CancelFlightInfo may stop it (by the call's query id).
    pub cancellable: bool,
    /// It only reports an INSERT's count: served while the server drains.
    pub count_only: bool,
}

/// Follows one streamed query: counts its rows, and when it ends (or is dropped) logs a
/// slow-query line if it took longer than the threshold.
struct QueryLog {
    sql: String,
    query_id: String,
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
                query_id = %self.query_id,
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

/// The query whose one row is an INSERT's count, as the FlightInfo of the INSERT describes
/// it.
fn count_sql(count: u64) -> String {
    format!("SELECT arrow_cast({count}, 'UInt64') AS \"count\"")
}

/// Whether `df` runs with `aws.on_account_error = 'skip'`.
fn skips_accounts(df: &DataFrame) -> bool {
    AwsOptions::of(df.task_ctx().session_config().options()).skip_account_errors()
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
    call: &Call,
    df: DataFrame,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Error> {
    let rows = Arc::new(DryRunRows::default());
    let awaiting = is_awaiting(df.task_ctx().session_config().options());
    let (mut state, plan) = df.into_parts();
    state.config_mut().set_extension(Arc::clone(&rows));
    let affected = affected_rows(&DataFrame::new(state, plan).collect().await?)?;
    let batch = rows
        .take()
        .unwrap_or_else(|| RecordBatch::new_empty(report_schema()));
    // Under AWAIT the rows say there is nothing to await: a dry run creates no task.
    let batch = dry_run_note(batch, awaiting)?;
    let statement = StatementTicket {
        sql: String::new(),
        settings: Some(Settings::default()),
        parameters: Vec::new(),
        query_id: call.query_id.clone(),
        affected_rows: Some(affected.max(0) as u64),
        report: tickets::encode_parameters(std::slice::from_ref(&batch))?,
    };
    statement_info(&batch.schema(), &statement, descriptor)
        .map(|info| info.with_total_records(affected))
}

/// The row count of a DML result: one row with one `count` column.
pub(super) fn affected_rows(batches: &[RecordBatch]) -> Result<i64, Error> {
    let mut total = 0i64;
    for batch in batches {
        let counts = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Int64)?;
        let counts = counts.as_primitive::<arrow::datatypes::Int64Type>();
        total += counts.iter().flatten().sum::<i64>();
    }
    Ok(total)
}

/// Refuses a statement about to run whose placeholders (`$1`, `?`) have no value.
fn require_bound(df: &DataFrame) -> Result<(), Error> {
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
    Err(Error::bad_request(format!(
        "the statement's parameter(s) {} have no value: prepare it and bind the values \
         (JDBC PreparedStatement.setString, ADBC execute(sql, parameters=...), \
         flight_sql_client prepared-statement-query -p), or write the values in the SQL",
        unbound.join(", ")
    )))
}
