//! The gRPC `FlightService` the server serves. It hands every Flight SQL RPC to
//! [`FlightSqlHandler`] (through arrow-flight's dispatch) and adds what that dispatch lacks:
//! GetSchema and PollFlightInfo for statements, prepared statements and metadata commands,
//! and the session: the cookie is decoded into a [`SessionSlot`] before each call and a
//! changed session is answered with `set-cookie`.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Request, Response, Status, Streaming};

use super::service::{FlightSqlHandler, SchemaOnly};
use super::session::SessionSlot;
use super::status::{dispatch_status, ServiceError};

type Handler = FlightSqlHandler;

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
}

/// Refuses a path descriptor: Flight SQL requests are commands.
fn command_only(request: &Request<FlightDescriptor>) -> Result<(), Status> {
    if request.get_ref().r#type == arrow_flight::flight_descriptor::DescriptorType::Path as i32 {
        return Err(ServiceError::bad_request(
            "this server takes Flight SQL commands; a path descriptor names no dataset here",
        )
        .into());
    }
    Ok(())
}

/// Attaches the session of `request`'s cookies to it.
fn attach<T>(mut request: Request<T>) -> Result<(Request<T>, SessionSlot), Status> {
    let slot = SessionSlot::from_metadata(request.metadata())?;
    request.extensions_mut().insert(slot.clone());
    Ok((request, slot))
}

/// Answers with the session's cookie when the call changed it.
fn answer<T>(
    response: Result<Response<T>, Status>,
    slot: &SessionSlot,
) -> Result<Response<T>, Status> {
    let mut response = response.map_err(dispatch_status)?;
    slot.answer(response.metadata_mut());
    Ok(response)
}

#[tonic::async_trait]
impl FlightService for GrpcService {
    type HandshakeStream = <Handler as FlightService>::HandshakeStream;
    type ListFlightsStream = <Handler as FlightService>::ListFlightsStream;
    type DoGetStream = <Handler as FlightService>::DoGetStream;
    type DoPutStream = <Handler as FlightService>::DoPutStream;
    type DoActionStream = <Handler as FlightService>::DoActionStream;
    type ListActionsStream = <Handler as FlightService>::ListActionsStream;
    type DoExchangeStream = <Handler as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.handler, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.handler, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_only(&request)?;
        let (request, slot) = attach(request)?;
        answer(
            FlightService::get_flight_info(&self.handler, request).await,
            &slot,
        )
    }

    /// The query is planned when its FlightInfo is asked for, and runs when a ticket is
    /// fetched, so the first answer is already complete.
    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        command_only(&request)?;
        let (request, slot) = attach(request)?;
        let info = FlightService::get_flight_info(&self.handler, request)
            .await
            .map_err(dispatch_status)?
            .into_inner();
        let poll = PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        };
        answer(Ok(Response::new(poll)), &slot)
    }

    /// The schema GetFlightInfo would advertise, without its effects: an INSERT asked about
    /// here does not run, a `SET` does not change the session.
    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        command_only(&request)?;
        let (mut request, _slot) = attach(request)?;
        request.extensions_mut().insert(SchemaOnly);
        let info = FlightService::get_flight_info(&self.handler, request)
            .await
            .map_err(dispatch_status)?
            .into_inner();
        Ok(Response::new(SchemaResult {
            schema: info.schema,
        }))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let (request, slot) = attach(request)?;
        answer(FlightService::do_get(&self.handler, request).await, &slot)
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let (request, slot) = attach(request)?;
        answer(FlightService::do_put(&self.handler, request).await, &slot)
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let (request, slot) = attach(request)?;
        answer(
            FlightService::do_action(&self.handler, request).await,
            &slot,
        )
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&self.handler, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.handler, request).await
    }
}
