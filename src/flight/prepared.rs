//! The prepared-statement family: CreatePreparedStatement (plans the statement, answers a
//! self-contained handle and the dataset and parameter schemas), binding parameters
//! (DoPut of a query's handle: answers a new handle that carries them), and running a
//! prepared query (GetFlightInfo, DoGet) or update (DoPut). Closing frees nothing.

use arrow::datatypes::{Field, Schema};
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, DoPutPreparedStatementResult,
};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo};
use datafusion::dataframe::DataFrame;
use futures::stream::Peekable;
use prost::Message;
use tonic::Streaming;

use super::boundary::{boundary_schema, TimestampStyle};
use super::call::Call;
use super::command::read_batches;
use super::respond::{ipc_schema, DoGetStream};
use super::service::FlightSqlHandler;
use super::statement::Planned;
use super::statements::Query;
use super::tickets::{self, PreparedStatementHandle};
use crate::error::Error;

impl FlightSqlHandler {
    /// CreatePreparedStatement: plans the statement (so that a bad one fails now) and
    /// answers its handle and schemas.
    pub(super) async fn create_prepared_statement(
        &self,
        call: &Call,
        query: ActionCreatePreparedStatementRequest,
    ) -> Result<ActionCreatePreparedStatementResult, Error> {
        let settings = call.session.settings().clone();
        let style = call.style()?;
        let planned = self
            .plan(&call.caller, &query.query, &settings, &[])
            .await?;
        // A statement without a result set (INSERT, SET) has an empty dataset schema: the
        // JDBC driver then runs it as an update.
        let (dataset_schema, parameter_schema) = match &planned {
            Planned::Plan(df) if !planned.is_write() => (
                self.result_schema(call, df)?.as_ref().clone(),
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

    /// GetFlightInfo of a prepared statement: as a statement, with its bound parameters.
    pub(super) async fn prepared_flight_info(
        &self,
        call: &Call,
        query: CommandPreparedStatementQuery,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Error> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        self.statement_flight_info(
            call,
            handle.sql,
            handle.settings.unwrap_or_default(),
            handle.parameters,
            descriptor,
        )
        .await
    }

    /// DoGet of a prepared query's handle: runs it.
    pub(super) async fn do_get_prepared(
        &self,
        call: &Call,
        query: CommandPreparedStatementQuery,
    ) -> Result<DoGetStream, Error> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let parameters = tickets::decode_parameters(&handle.parameters)?;
        call.style()?;
        let query = Query {
            sql: &handle.sql,
            settings: &handle.settings.unwrap_or_default(),
            parameters: &parameters,
            cancellable: false,
            count_only: false,
        };
        self.execute(call, query).await
    }

    /// DoPut of a prepared query's handle: checks that the parameters that follow fit the
    /// statement and answers a handle that carries them.
    pub(super) async fn bind_parameters(
        &self,
        call: &Call,
        query: CommandPreparedStatementQuery,
        data: Peekable<Streaming<FlightData>>,
    ) -> Result<DoPutPreparedStatementResult, Error> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let batches = read_batches(data, "parameter batch").await?;
        self.plan(
            &call.caller,
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

    /// DoPut of a prepared update: runs it with the parameters that follow, or those bound
    /// earlier when none follow.
    pub(super) async fn do_put_prepared_update(
        &self,
        call: &Call,
        command: CommandPreparedStatementUpdate,
        data: Peekable<Streaming<FlightData>>,
    ) -> Result<i64, Error> {
        let handle = tickets::decode_prepared(&command.prepared_statement_handle)?;
        let mut parameters = read_batches(data, "parameter batch").await?;
        if parameters.iter().all(|b| b.num_rows() == 0) {
            parameters = tickets::decode_parameters(&handle.parameters)?;
        }
        self.execute_update(
            call,
            &handle.sql,
            &handle.settings.unwrap_or_default(),
            &parameters,
        )
        .await
    }
}

/// The Arrow schema of a statement's placeholders (`$1`, `$2`, ...), empty when it has none;
/// timestamps in `style`, as the results are (JDBC binds either kind alike).
fn parameter_schema(df: &DataFrame, style: TimestampStyle) -> Result<Schema, Error> {
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
