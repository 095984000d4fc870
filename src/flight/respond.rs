//! Respond: the shapes the Flight SQL answers take (FlightInfo with one endpoint, a stream
//! of Flight data, an action result, a DoPut result) and the stream types of the service.

use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use arrow_flight::{
    ActionType, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeResponse,
    IpcMessage, PutResult, SchemaAsIpc, Ticket,
};
use futures::{stream, Stream, TryStreamExt};
use prost::Message;
use tonic::Status;

use super::tickets::StatementTicket;
use crate::error::Error;

/// A stream of answers to one RPC.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;
/// DoGet's stream (and DoExchange's).
pub type DoGetStream = Answers<FlightData>;
/// DoAction's stream.
pub type DoActionStream = Answers<arrow_flight::Result>;
/// DoPut's stream.
pub type DoPutStream = Answers<PutResult>;
/// Handshake's stream.
pub type HandshakeStream = Answers<HandshakeResponse>;
/// ListFlights' stream.
pub type ListFlightsStream = Answers<FlightInfo>;
/// ListActions' stream.
pub type ListActionsStream = Answers<ActionType>;

/// A FlightInfo with one endpoint whose ticket is `ticket`, to be fetched from this server.
pub fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Error> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor)
        .with_ordered(false))
}

/// A FlightInfo whose ticket carries `statement`.
pub fn statement_info(
    schema: &Schema,
    statement: &StatementTicket,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Error> {
    let ticket = TicketStatementQuery {
        statement_handle: statement.encode_to_vec().into(),
    };
    flight_info(schema, ticket.as_any().encode_to_vec(), descriptor)
}

/// Streams one batch.
pub fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> DoGetStream {
    let batches = stream::once(async move { batch });
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from),
    )
}

/// One action result.
pub fn action_result(message: &impl Message) -> DoActionStream {
    let result = arrow_flight::Result {
        body: message.encode_to_vec().into(),
    };
    Box::pin(stream::iter([Ok(result)]))
}

/// No action result.
pub fn no_action_result() -> DoActionStream {
    Box::pin(stream::empty())
}

/// One DoPut result.
pub fn put_result(message: &impl Message) -> DoPutStream {
    let result = PutResult {
        app_metadata: message.encode_to_vec().into(),
    };
    Box::pin(stream::iter([Ok(result)]))
}

/// `schema` as an IPC message (the schemas of a prepared statement).
pub fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Error> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(bytes)
}

/// Wraps an error met while streaming so that it reaches the client with its own status.
pub fn stream_error(err: Error) -> FlightError {
    FlightError::Tonic(Box::new(Status::from(err)))
}
