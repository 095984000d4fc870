//! The Flight SQL RPCs. Each one decodes its command, asks the catalog for a session and a
//! plan, and streams the result; nothing here knows about EC2.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::dataframe::DataFrame;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::boundary::{boundary_schema, to_boundary};
use super::sql_info::sql_info;
use super::status::ServiceError;
use super::tickets::{self, PreparedStatementHandle, Settings, StatementTicket};
use crate::catalog::Catalog;

type DoGetStream = <FlightSqlHandler as FlightService>::DoGetStream;

/// Largest gRPC message the server decodes (parameter batches, ingest): clients send up to
/// 64 MB.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 128 * 1024 * 1024;

/// The Flight SQL service over a [`Catalog`].
#[derive(Clone)]
pub struct FlightSqlHandler {
    catalog: Catalog,
    sql_info: Arc<SqlInfoData>,
}

impl std::fmt::Debug for FlightSqlHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlHandler")
            .field("catalog", &self.catalog)
            .finish_non_exhaustive()
    }
}

impl FlightSqlHandler {
    /// A service answering from `catalog`; `read_only` is what GetSqlInfo reports.
    pub fn new(catalog: Catalog, read_only: bool) -> Self {
        FlightSqlHandler {
            catalog,
            sql_info: Arc::new(sql_info(read_only)),
        }
    }

    /// The gRPC service, with message limits that fit Flight SQL clients.
    pub fn into_server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    /// Plans `sql` in a fresh session with `settings`, binding `parameters` (one row).
    async fn plan(
        &self,
        sql: &str,
        settings: Option<&Settings>,
        parameters: &[RecordBatch],
    ) -> Result<DataFrame, ServiceError> {
        let ctx = self.catalog.session(
            settings.and_then(|s| s.catalog.as_deref()),
            settings.and_then(|s| s.schema.as_deref()),
            settings
                .iter()
                .flat_map(|s| s.options.iter())
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        Ok(self.catalog.plan(&ctx, sql, parameters).await?)
    }

    /// The schema a statement's result will have, as clients will receive it.
    async fn result_schema(
        &self,
        sql: &str,
        settings: Option<&Settings>,
        parameters: &[RecordBatch],
    ) -> Result<SchemaRef, ServiceError> {
        let df = self.plan(sql, settings, parameters).await?;
        Ok(boundary_schema(df.schema().as_arrow()))
    }

    /// Runs a data-changing statement and returns the number of rows it affected.
    async fn execute_update(
        &self,
        sql: &str,
        settings: Option<&Settings>,
        parameters: &[RecordBatch],
    ) -> Result<i64, ServiceError> {
        let df = self.plan(sql, settings, parameters).await?;
        if !matches!(
            df.logical_plan(),
            datafusion::logical_expr::LogicalPlan::Dml(_)
        ) {
            return Err(ServiceError::bad_request(
                "only INSERT runs as an update; run queries with executeQuery / execute",
            ));
        }
        let batches = df.collect().await?;
        affected_rows(&batches)
    }

    /// Runs a statement and streams it as Flight data.
    async fn execute(
        &self,
        sql: &str,
        settings: Option<&Settings>,
        parameters: &[RecordBatch],
    ) -> Result<DoGetStream, ServiceError> {
        let df = self.plan(sql, settings, parameters).await?;
        let schema = boundary_schema(df.schema().as_arrow());
        let batches = df.execute_stream().await?;
        let target = Arc::clone(&schema);
        let batches = batches.map(move |batch| {
            let batch = batch.map_err(|e| status_error(ServiceError::from(e)))?;
            to_boundary(batch, &target).map_err(|e| status_error(ServiceError::from(e)))
        });
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Box::pin(flight))
    }
}

/// The parameter batches a client sent with DoPut.
async fn read_parameters(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<RecordBatch>, ServiceError> {
    let flight_data = request
        .into_inner()
        .into_peekable()
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data)
        .try_collect()
        .await
        .map_err(|e| ServiceError::bad_request(format!("could not read the parameter batch: {e}")))
}

/// Wraps a service error so that it reaches the client with its own status code.
fn status_error(err: ServiceError) -> FlightError {
    FlightError::Tonic(Box::new(Status::from(err)))
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

/// The Arrow schema of a statement's placeholders (`$1`, `$2`, ...), empty when it has none.
fn parameter_schema(df: &DataFrame) -> Result<Schema, ServiceError> {
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
            let boundary = boundary_schema(&Schema::new(vec![Field::new(&name, data_type, true)]));
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
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::from(ServiceError::from(e)))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(false);
    Ok(Response::new(info))
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
        let settings = Settings::default();
        let schema = self
            .result_schema(&query.query, Some(&settings), &[])
            .await?;
        let statement = StatementTicket {
            sql: query.query,
            settings: Some(settings),
        };
        let ticket = TicketStatementQuery {
            statement_handle: statement.encode_to_vec().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = tickets::decode_prepared(&cmd.prepared_statement_handle)?;
        let parameters = tickets::decode_parameters(&handle.parameters)?;
        let schema = self
            .result_schema(&handle.sql, handle.settings.as_ref(), &parameters)
            .await?;
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let statement = tickets::decode_statement(&ticket.statement_handle)?;
        let stream = self
            .execute(&statement.sql, statement.settings.as_ref(), &[])
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let parameters = tickets::decode_parameters(&handle.parameters)?;
        let stream = self
            .execute(&handle.sql, handle.settings.as_ref(), &parameters)
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
        let mut builder = query.into_builder();
        let mut schemas: Vec<(&str, &str)> = tables
            .iter()
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
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let tables = self.catalog.tables().await.map_err(ServiceError::from)?;
        let mut builder = query.into_builder();
        for t in &tables {
            builder
                .append(
                    &t.catalog,
                    &t.schema,
                    &t.name,
                    &t.table_type,
                    &boundary_schema(&t.arrow_schema),
                )
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
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = tickets::decode_prepared(&query.prepared_statement_handle)?;
        let flight_data = request
            .into_inner()
            .into_peekable()
            .map_err(FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data)
                .try_collect()
                .await
                .map_err(|e| {
                    ServiceError::bad_request(format!("could not read the parameter batch: {e}"))
                })?;
        // Check that the parameters fit the statement before handing out the handle.
        self.plan(&handle.sql, handle.settings.as_ref(), &batches)
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
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let settings = Settings::default();
        Ok(self
            .execute_update(&command.query, Some(&settings), &[])
            .await?)
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let handle = tickets::decode_prepared(&command.prepared_statement_handle)?;
        let mut parameters = read_parameters(request).await?;
        if parameters.iter().all(|b| b.num_rows() == 0) {
            // No batch in this call: use the parameters bound earlier, if any.
            parameters = tickets::decode_parameters(&handle.parameters)?;
        }
        Ok(self
            .execute_update(&handle.sql, handle.settings.as_ref(), &parameters)
            .await?)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let settings = Settings::default();
        let df = self.plan(&query.query, Some(&settings), &[]).await?;
        let dataset_schema = boundary_schema(df.schema().as_arrow());
        let parameter_schema = parameter_schema(&df)?;
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

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
