//! The Flight SQL handler: its state (the catalog, the GetSqlInfo answers, the running
//! queries, limits, metrics) and the delegation of each decoded command to the file of its
//! family. Nothing here plans or runs anything; see the flow in [`super`].

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::{DoPutUpdateResult, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{ActionType, FlightDescriptor, FlightInfo};
use datafusion::dataframe::DataFrame;
use futures::stream::Peekable;
use tonic::Streaming;

use super::admit::sql_shape::SqlLimits;
use super::boundary::boundary_schema;
use super::call::Call;
use super::cancel::RunningQueries;
use super::columns::describe_result;
use super::command::{action_type, ActionRequest, Command, PutCommand, CANCEL_FLIGHT_INFO};
use super::respond::{
    action_result, no_action_result, put_result, DoActionStream, DoGetStream, DoPutStream,
};
use super::session::proto as session_proto;
use super::sql_info::sql_info;
use super::type_info::xdbc_type_info;
use crate::auth::Caller;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::metrics::Metrics;

/// Largest gRPC message the server decodes by default (parameter batches, ingest): clients
/// send up to 64 MB.
pub const MAX_DECODING_MESSAGE_SIZE: usize = crate::limits::DEFAULT_MAX_MESSAGE_BYTES;

/// The Flight SQL service over a [`Catalog`].
#[derive(Clone)]
pub struct FlightSqlHandler {
    pub(super) catalog: Catalog,
    /// GetSqlInfo's answers for callers who may write.
    pub(super) sql_info: Arc<SqlInfoData>,
    /// ... and for callers who may only read (a `read` user, or every caller of a
    /// `--read-only` server): read-only, no bulk ingestion.
    pub(super) sql_info_read_only: Arc<SqlInfoData>,
    /// The server refuses every INSERT (`--read-only`).
    pub(super) read_only: bool,
    pub(super) xdbc_types: Arc<XdbcTypeInfoData>,
    pub(super) queries: RunningQueries,
    pub(super) metrics: Arc<Metrics>,
    pub(super) slow_query: Option<Duration>,
    pub(super) sql_limits: SqlLimits,
    pub(super) max_message_bytes: usize,
}

impl std::fmt::Debug for FlightSqlHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlHandler")
            .field("catalog", &self.catalog)
            .finish_non_exhaustive()
    }
}

impl FlightSqlHandler {
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
            sql_limits: SqlLimits::of(&crate::limits::ServerLimits::default()),
            max_message_bytes: MAX_DECODING_MESSAGE_SIZE,
        }
    }

    /// Refuses SQL longer, deeper or bigger than `limits` allow, and gRPC messages larger.
    pub fn with_limits(mut self, limits: &crate::limits::ServerLimits) -> Self {
        self.sql_limits = SqlLimits::of(limits);
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

    /// GetSqlInfo's answers as `caller` sees them.
    pub(super) fn sql_info_for(&self, caller: &Caller) -> &SqlInfoData {
        if caller.may_write() {
            &self.sql_info
        } else {
            &self.sql_info_read_only
        }
    }

    /// Whether `caller` may write on this server: what GetSqlInfo's read-only flag and the
    /// columns' `IS_READ_ONLY` tell them.
    pub(super) fn may_write(&self, caller: &Caller) -> bool {
        caller.may_write() && !self.read_only
    }

    /// The schema the caller of `call` receives for a plan: boundary types, each column
    /// described.
    pub(super) fn result_schema(&self, call: &Call, df: &DataFrame) -> Result<SchemaRef, Error> {
        Ok(describe_result(
            df,
            &boundary_schema(df.schema().as_arrow(), call.style()?),
            self.may_write(&call.caller),
        ))
    }

    /// GetFlightInfo (and PollFlightInfo, GetSchema): the FlightInfo of `command`.
    pub(super) async fn flight_info(
        &self,
        call: &Call,
        command: Command,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Error> {
        match command {
            Command::Statement(query) => {
                let settings = call.session.settings().clone();
                self.statement_flight_info(call, query.query, settings, Vec::new(), descriptor)
                    .await
            }
            Command::PreparedStatement(query) => {
                self.prepared_flight_info(call, query, descriptor).await
            }
            Command::Metadata(metadata) => self.metadata_flight_info(call, metadata, descriptor),
            Command::StatementTicket(_) => Err(Error::Unsupported(format!(
                "get_flight_info: The defined request is invalid: {}",
                TicketStatementQuery::type_url()
            ))),
        }
    }

    /// DoGet: the Flight data of `command`.
    pub(super) async fn do_get(&self, call: &Call, command: Command) -> Result<DoGetStream, Error> {
        match command {
            Command::StatementTicket(ticket) => self.do_get_statement(call, ticket).await,
            Command::PreparedStatement(query) => self.do_get_prepared(call, query).await,
            Command::Metadata(metadata) => self.do_get_metadata(call, metadata).await,
            Command::Statement(query) => Err(Error::Unsupported(format!(
                "do_get: The defined request is invalid: {}",
                query.as_any().type_url
            ))),
        }
    }

    /// DoPut: runs `command` with the data that follows it in `data` (its first message
    /// included).
    pub(super) async fn do_put(
        &self,
        call: &Call,
        command: PutCommand,
        data: Peekable<Streaming<arrow_flight::FlightData>>,
    ) -> Result<DoPutStream, Error> {
        let record_count = match command {
            PutCommand::StatementUpdate(update) => {
                let settings = call.session.settings().clone();
                self.execute_update(call, &update.query, &settings, &[])
                    .await?
            }
            PutCommand::StatementIngest(ingest) => self.do_put_ingest(call, ingest, data).await?,
            PutCommand::PreparedStatementQuery(query) => {
                let result = self.bind_parameters(call, query, data).await?;
                return Ok(put_result(&result));
            }
            PutCommand::PreparedStatementUpdate(update) => {
                self.do_put_prepared_update(call, update, data).await?
            }
        };
        Ok(put_result(&DoPutUpdateResult { record_count }))
    }

    /// DoAction: runs `action`.
    pub(super) async fn do_action(
        &self,
        call: &Call,
        action: ActionRequest,
    ) -> Result<DoActionStream, Error> {
        Ok(match action {
            ActionRequest::CreatePreparedStatement(request) => {
                let result = self.create_prepared_statement(call, request).await?;
                action_result(&result.as_any())
            }
            // Handles are self-contained: there is nothing to free, and closing always
            // succeeds.
            ActionRequest::ClosePreparedStatement => no_action_result(),
            ActionRequest::CancelQuery(request) => {
                action_result(&self.cancel_query(request)?.as_any())
            }
            ActionRequest::CancelFlightInfo(request) => {
                action_result(&self.cancel_flight_info(request))
            }
            ActionRequest::SetSessionOptions(request) => {
                action_result(&self.set_session_options(request, &call.session)?)
            }
            ActionRequest::GetSessionOptions(_) => {
                action_result(&self.get_session_options(&call.session)?)
            }
            ActionRequest::CloseSession(_) => action_result(&self.close_session(&call.session)),
        })
    }

    /// ListActions: the actions [`Self::do_action`] takes, in the order arrow-flight lists
    /// Flight SQL's (transactions, savepoints and Substrait included: they are refused
    /// with a message that says so), then this server's own.
    pub(super) fn list_actions() -> Vec<ActionType> {
        let action = |name: &str, description: &str| ActionType {
            r#type: name.to_owned(),
            description: description.to_owned(),
        };
        vec![
            action(
                action_type::CREATE_PREPARED_STATEMENT,
                "Creates a reusable prepared statement resource on the server.\n
                Request Message: ActionCreatePreparedStatementRequest\n
                Response Message: ActionCreatePreparedStatementResult",
            ),
            action(
                action_type::CLOSE_PREPARED_STATEMENT,
                "Closes a reusable prepared statement resource on the server.\n
                Request Message: ActionClosePreparedStatementRequest\n
                Response Message: N/A",
            ),
            action(
                action_type::CREATE_PREPARED_SUBSTRAIT_PLAN,
                "Creates a reusable prepared substrait plan resource on the server.\n
                Request Message: ActionCreatePreparedSubstraitPlanRequest\n
                Response Message: ActionCreatePreparedStatementResult",
            ),
            action(
                action_type::BEGIN_TRANSACTION,
                "Begins a transaction.\n
                Request Message: ActionBeginTransactionRequest\n
                Response Message: ActionBeginTransactionResult",
            ),
            action(
                action_type::END_TRANSACTION,
                "Ends a transaction\n
                Request Message: ActionEndTransactionRequest\n
                Response Message: N/A",
            ),
            action(
                action_type::BEGIN_SAVEPOINT,
                "Begins a savepoint.\n
                Request Message: ActionBeginSavepointRequest\n
                Response Message: ActionBeginSavepointResult",
            ),
            action(
                action_type::END_SAVEPOINT,
                "Ends a savepoint\n
                Request Message: ActionEndSavepointRequest\n
                Response Message: N/A",
            ),
            action(
                action_type::CANCEL_QUERY,
                "Cancels a query\n
                Request Message: ActionCancelQueryRequest\n
                Response Message: ActionCancelQueryResult",
            ),
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
        ]
    }
}
