//! The gRPC `FlightService` the server serves, and the one place a request turns into a
//! typed call: each RPC builds its [`Call`] (caller, session cookie, headers, query id),
//! decodes its command (`command`), hands both to the [`FlightSqlHandler`], and answers
//! with the session's `set-cookie` when the call changed it. GetSchema and PollFlightInfo
//! are GetFlightInfo, answered differently. Errors become statuses here, through the
//! crate's one mapping ([`crate::error`]).

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, SchemaResult, Ticket,
};
use futures::{stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::call::Call;
use super::cancel::new_query_id;
use super::command::{ActionRequest, Command, PutCommand, Rpc};
use super::report::{self, SkipTrailers, WithSkipTrailers};
use super::respond::{
    DoActionStream, DoGetStream, DoPutStream, HandshakeStream, ListActionsStream, ListFlightsStream,
};
use super::service::FlightSqlHandler;
use crate::error::Error;

/// The Flight service: Flight SQL plus GetSchema, PollFlightInfo and sessions.
#[derive(Debug, Clone)]
pub struct GrpcService {
    handler: FlightSqlHandler,
}

impl GrpcService {
    /// Serves `handler`.
    pub fn new(handler: FlightSqlHandler) -> Self {
        GrpcService { handler }
    }

    /// GetFlightInfo, for GetFlightInfo, PollFlightInfo and (`schema_only`) GetSchema.
    /// A statement's call gets its query id here.
    async fn flight_info(
        &self,
        request: Request<FlightDescriptor>,
        schema_only: bool,
    ) -> Result<(FlightInfo, Call), Error> {
        command_only(&request)?;
        let mut call = Call::of(&request)?;
        call.schema_only = schema_only;
        let descriptor = request.into_inner();
        let command = Command::decode(&descriptor.cmd, Rpc::GetFlightInfo)?;
        if matches!(
            command,
            Command::Statement(_) | Command::PreparedStatement(_)
        ) {
            call.set_query_id(new_query_id());
        }
        let info = self.handler.flight_info(&call, command, descriptor).await?;
        Ok((info, call))
    }
}

impl FlightSqlHandler {
    /// The gRPC service: the Flight SQL RPCs plus GetSchema, PollFlightInfo, sessions and
    /// cancellation, with message limits that fit Flight SQL clients.
    /// A DoGet's trailers list the accounts its query skipped (see `report`).
    pub fn into_server(self) -> WithSkipTrailers<FlightServiceServer<GrpcService>> {
        let max_message_bytes = self.max_message_bytes;
        WithSkipTrailers(
            FlightServiceServer::new(GrpcService::new(self))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }
}

/// Refuses a path descriptor: Flight SQL requests are commands.
fn command_only(request: &Request<FlightDescriptor>) -> Result<(), Error> {
    if request.get_ref().r#type == arrow_flight::flight_descriptor::DescriptorType::Path as i32 {
        return Err(Error::bad_request(
            "this server takes Flight SQL commands; a path descriptor names no dataset here",
        ));
    }
    Ok(())
}

/// The answer of a call, with the session's cookie when the call changed it.
fn answer<T>(message: T, call: &Call) -> Response<T> {
    let mut response = Response::new(message);
    call.session.answer(response.metadata_mut());
    response
}

#[tonic::async_trait]
impl FlightService for GrpcService {
    type HandshakeStream = HandshakeStream;
    type ListFlightsStream = ListFlightsStream;
    type DoGetStream = DoGetStream;
    type DoPutStream = DoPutStream;
    type DoActionStream = DoActionStream;
    type ListActionsStream = ListActionsStream;
    type DoExchangeStream = DoGetStream;

    /// Authentication is the auth layer's (basic or bearer on every call): every handshake
    /// that reaches the service succeeds.
    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(stream::iter([Ok(response)]))))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("Not yet implemented"))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let (info, call) = self.flight_info(request, false).await?;
        Ok(answer(info, &call))
    }

    /// The query is planned when its FlightInfo is asked for, and runs when a ticket is
    /// fetched, so the first answer is already complete.
    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        let (info, call) = self.flight_info(request, false).await?;
        let poll = PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        };
        Ok(answer(poll, &call))
    }

    /// The schema GetFlightInfo would advertise, without its effects: an INSERT asked about
    /// here does not run, a `SET` does not change the session.
    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let (info, _call) = self.flight_info(request, true).await?;
        Ok(Response::new(SchemaResult {
            schema: info.schema,
        }))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let mut call = Call::of(&request)?;
        let command = Command::decode(&request.get_ref().ticket, Rpc::DoGet)?;
        if let Command::StatementTicket(statement) = &command {
            // The query id its GetFlightInfo made.
            if !statement.query_id.is_empty() {
                call.set_query_id(statement.query_id.clone());
            }
        }
        let stream = self.handler.do_get(&call, command).await?;
        let mut response = answer(stream, &call);
        // The accounts skipped while the query was planned now, every skip at the end.
        report::answer_headers(response.metadata_mut(), &call.skipped.list());
        response
            .extensions_mut()
            .insert(SkipTrailers(std::sync::Arc::clone(&call.skipped)));
        Ok(response)
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let call = Call::of(&request)?;
        let mut data = request.into_inner().peekable();
        let first = match std::pin::Pin::new(&mut data).peek().await {
            None => None,
            Some(Err(status)) => return Err(status.clone()),
            Some(Ok(first)) => Some(first.flight_descriptor.clone()),
        };
        let command = PutCommand::decode(first.as_ref().map(Option::as_ref))?;
        let results = self.handler.do_put(&call, command, data).await?;
        Ok(answer(results, &call))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let call = Call::of(&request)?;
        let action = ActionRequest::decode(request.get_ref())?;
        let results = self.handler.do_action(&call, action).await?;
        Ok(answer(results, &call))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let actions: Vec<Result<ActionType, Status>> = FlightSqlHandler::list_actions()
            .into_iter()
            .map(Ok)
            .collect();
        Ok(Response::new(Box::pin(stream::iter(actions))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("Not yet implemented"))
    }
}
