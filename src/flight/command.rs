//! Decode: the Flight SQL request a client sent, as a typed value. A FlightDescriptor's
//! command, a Ticket, the descriptor of a DoPut's first message and an Action's body are
//! decoded here into [`Command`], [`PutCommand`] or [`ActionRequest`] (and a DoPut's data
//! into record batches, [`read_batches`]), and everything that does not decode is an
//! [`Error`] saying what was wrong: no status is recovered from the text of another one.
//!
//! The protobuf messages are arrow-flight's; the dispatch is ours (arrow-flight's default
//! `FlightSqlService` dispatch reports a command that does not decode as INTERNAL, with the
//! Debug text of its error, where it is the client's mistake).

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{
    self, ActionCancelQueryRequest, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, ProstMessageExt,
};
use arrow_flight::{Action, CancelFlightInfoRequest, FlightData};
use futures::stream::Peekable;
use futures::TryStreamExt;
use prost::Message;
use tonic::Streaming;

use super::session::proto as session_proto;
use super::tickets::{self, StatementTicket};
use crate::error::Error;

/// The action type of CancelFlightInfo.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// Flight SQL's action types (arrow-flight keeps its own constants private).
pub mod action_type {
    /// Plans a statement and answers a handle.
    pub const CREATE_PREPARED_STATEMENT: &str = "CreatePreparedStatement";
    /// Closes a prepared statement.
    pub const CLOSE_PREPARED_STATEMENT: &str = "ClosePreparedStatement";
    /// Prepares a Substrait plan (not supported).
    pub const CREATE_PREPARED_SUBSTRAIT_PLAN: &str = "CreatePreparedSubstraitPlan";
    /// Transactions and savepoints (not supported).
    pub const BEGIN_TRANSACTION: &str = "BeginTransaction";
    /// See [`BEGIN_TRANSACTION`].
    pub const END_TRANSACTION: &str = "EndTransaction";
    /// See [`BEGIN_TRANSACTION`].
    pub const BEGIN_SAVEPOINT: &str = "BeginSavepoint";
    /// See [`BEGIN_TRANSACTION`].
    pub const END_SAVEPOINT: &str = "EndSavepoint";
    /// The older way to cancel a query.
    pub const CANCEL_QUERY: &str = "CancelQuery";
}

/// What a FlightDescriptor (GetFlightInfo, PollFlightInfo, GetSchema) or a Ticket (DoGet)
/// asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// A SQL query (or INSERT, SET, RESET) to plan.
    Statement(CommandStatementQuery),
    /// A prepared statement to run, by its handle.
    PreparedStatement(CommandPreparedStatementQuery),
    /// A ticket this server handed out for a statement (DoGet only), decoded.
    StatementTicket(StatementTicket),
    /// A metadata command (its ticket is the command itself).
    Metadata(Metadata),
}

/// The metadata commands (see `metadata`).
#[derive(Debug, Clone)]
pub enum Metadata {
    /// GetCatalogs.
    Catalogs(CommandGetCatalogs),
    /// GetDbSchemas.
    Schemas(CommandGetDbSchemas),
    /// GetTables.
    Tables(CommandGetTables),
    /// GetTableTypes.
    TableTypes(CommandGetTableTypes),
    /// GetSqlInfo.
    SqlInfo(CommandGetSqlInfo),
    /// GetXdbcTypeInfo.
    XdbcTypeInfo(CommandGetXdbcTypeInfo),
    /// GetPrimaryKeys.
    PrimaryKeys(CommandGetPrimaryKeys),
    /// GetExportedKeys.
    ExportedKeys(CommandGetExportedKeys),
    /// GetImportedKeys.
    ImportedKeys(CommandGetImportedKeys),
    /// GetCrossReference.
    CrossReference(CommandGetCrossReference),
}

/// Which RPC a command came with: what it may carry, and how a refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// GetFlightInfo (and PollFlightInfo, GetSchema): a FlightDescriptor's command.
    GetFlightInfo,
    /// DoGet: a Ticket.
    DoGet,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::GetFlightInfo => "get_flight_info",
            Rpc::DoGet => "do_get",
        }
    }
}

impl Command {
    /// Decodes the command of a FlightDescriptor or the bytes of a Ticket.
    pub fn decode(bytes: &[u8], rpc: Rpc) -> Result<Command, Error> {
        use sql::Command as C;
        let command = decode_any(bytes)?;
        Ok(match command {
            C::CommandStatementQuery(c) => Command::Statement(c),
            C::CommandPreparedStatementQuery(c) => Command::PreparedStatement(c),
            C::TicketStatementQuery(t) if rpc == Rpc::DoGet => {
                Command::StatementTicket(tickets::decode_statement(&t.statement_handle)?)
            }
            C::CommandGetCatalogs(c) => Command::Metadata(Metadata::Catalogs(c)),
            C::CommandGetDbSchemas(c) => Command::Metadata(Metadata::Schemas(c)),
            C::CommandGetTables(c) => Command::Metadata(Metadata::Tables(c)),
            C::CommandGetTableTypes(c) => Command::Metadata(Metadata::TableTypes(c)),
            C::CommandGetSqlInfo(c) => Command::Metadata(Metadata::SqlInfo(c)),
            C::CommandGetXdbcTypeInfo(c) => Command::Metadata(Metadata::XdbcTypeInfo(c)),
            C::CommandGetPrimaryKeys(c) => Command::Metadata(Metadata::PrimaryKeys(c)),
            C::CommandGetExportedKeys(c) => Command::Metadata(Metadata::ExportedKeys(c)),
            C::CommandGetImportedKeys(c) => Command::Metadata(Metadata::ImportedKeys(c)),
            C::CommandGetCrossReference(c) => Command::Metadata(Metadata::CrossReference(c)),
            other => return Err(not_here(rpc.name(), other.type_url())),
        })
    }
}

/// What the first message of a DoPut asks for.
#[derive(Debug, Clone)]
pub enum PutCommand {
    /// A SQL update (INSERT, SET, RESET) without parameters.
    StatementUpdate(CommandStatementUpdate),
    /// Rows to append to a table (bulk ingest).
    StatementIngest(CommandStatementIngest),
    /// Parameters to bind to a prepared query: answers a new handle.
    PreparedStatementQuery(CommandPreparedStatementQuery),
    /// A prepared update to run, with the parameter rows that follow.
    PreparedStatementUpdate(CommandPreparedStatementUpdate),
}

impl PutCommand {
    /// Decodes the FlightDescriptor of a DoPut's first message: `None` when there was no
    /// message at all.
    pub fn decode(
        descriptor: Option<Option<&arrow_flight::FlightDescriptor>>,
    ) -> Result<PutCommand, Error> {
        use sql::Command as C;
        let descriptor = match descriptor {
            None => {
                return Err(Error::bad_request(
                    "DoPut needs a Flight SQL command in the descriptor of its first message",
                ))
            }
            Some(None) => {
                return Err(Error::Unsupported(
                    "Unhandled Error: Flight descriptor is missing.".into(),
                ))
            }
            Some(Some(descriptor)) => descriptor,
        };
        Ok(match decode_any(&descriptor.cmd)? {
            C::CommandStatementUpdate(c) => PutCommand::StatementUpdate(c),
            C::CommandStatementIngest(c) => PutCommand::StatementIngest(c),
            C::CommandPreparedStatementQuery(c) => PutCommand::PreparedStatementQuery(c),
            C::CommandPreparedStatementUpdate(c) => PutCommand::PreparedStatementUpdate(c),
            other => return Err(not_here("do_put", other.type_url())),
        })
    }
}

/// A DoAction request.
#[derive(Debug, Clone)]
pub enum ActionRequest {
    /// Plans a statement and answers its handle and schemas.
    CreatePreparedStatement(ActionCreatePreparedStatementRequest),
    /// Closes a prepared statement (handles are self-contained: nothing to free, so the
    /// request, once decoded, says nothing more).
    ClosePreparedStatement,
    /// The older way to cancel a query.
    CancelQuery(ActionCancelQueryRequest),
    /// Cancels the queries of a FlightInfo.
    CancelFlightInfo(CancelFlightInfoRequest),
    /// Sets session options.
    SetSessionOptions(session_proto::SetSessionOptionsRequest),
    /// Reads the session options in force.
    GetSessionOptions(session_proto::GetSessionOptionsRequest),
    /// Ends the session.
    CloseSession(session_proto::CloseSessionRequest),
}

impl ActionRequest {
    /// Decodes `action` by its type. Flight SQL's own actions carry an `Any`; the session
    /// and cancel actions of Flight carry their message as it is.
    pub fn decode(action: &Action) -> Result<ActionRequest, Error> {
        let body = action.body.as_ref();
        Ok(match action.r#type.as_str() {
            action_type::CREATE_PREPARED_STATEMENT => {
                ActionRequest::CreatePreparedStatement(unpack(body)?)
            }
            action_type::CLOSE_PREPARED_STATEMENT => {
                let _: ActionClosePreparedStatementRequest = unpack(body)?;
                ActionRequest::ClosePreparedStatement
            }
            action_type::CANCEL_QUERY => ActionRequest::CancelQuery(unpack(body)?),
            CANCEL_FLIGHT_INFO => ActionRequest::CancelFlightInfo(plain(action)?),
            session_proto::SET_SESSION_OPTIONS => ActionRequest::SetSessionOptions(plain(action)?),
            session_proto::GET_SESSION_OPTIONS => ActionRequest::GetSessionOptions(plain(action)?),
            session_proto::CLOSE_SESSION => ActionRequest::CloseSession(plain(action)?),
            action_type::CREATE_PREPARED_SUBSTRAIT_PLAN => {
                return Err(Error::Unsupported(
                    "Substrait plans are not supported: send SQL (CreatePreparedStatement)".into(),
                ))
            }
            action_type::BEGIN_TRANSACTION
            | action_type::END_TRANSACTION
            | action_type::BEGIN_SAVEPOINT
            | action_type::END_SAVEPOINT => {
                return Err(Error::Unsupported(format!(
                    "{}: transactions are not supported: every statement commits on its own",
                    action.r#type
                )))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "unknown action type '{other}'; ListActions lists the supported ones"
                )))
            }
        })
    }
}

/// The record batches that follow the command of a DoPut (parameters, or rows to ingest):
/// `what` names them in the error of data that does not decode.
pub async fn read_batches(
    data: Peekable<Streaming<FlightData>>,
    what: &str,
) -> Result<Vec<RecordBatch>, Error> {
    // A DoPut that only carries the command (an update without new parameters) has a
    // message with an empty header: nothing to decode.
    let flight_data = data
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    FlightRecordBatchStream::new_from_flight_data(flight_data)
        .try_collect()
        .await
        .map_err(|e| Error::bad_request(format!("could not read the {what}: {e}")))
}

/// The `Any` in `bytes`, decoded into arrow-flight's command message.
fn decode_any(bytes: &[u8]) -> Result<sql::Command, Error> {
    let any = Any::decode(bytes).map_err(not_protobuf)?;
    if any.type_url.is_empty() {
        return Err(Error::bad_request(
            "the request carries no Flight SQL command (an empty ticket or descriptor)",
        ));
    }
    sql::Command::try_from(any).map_err(invalid_message)
}

/// The Flight SQL message of type `M` in the `Any` of an action body.
fn unpack<M: ProstMessageExt>(body: &[u8]) -> Result<M, Error> {
    let any = Any::decode(body).map_err(not_protobuf)?;
    any.unpack::<M>().map_err(invalid_message)?.ok_or_else(|| {
        let name = M::type_url().rsplit('.').next().unwrap_or_default();
        Error::bad_request(format!("Unable to unpack {name}."))
    })
}

/// The message of an action whose body is the message itself.
fn plain<M: Message + Default>(action: &Action) -> Result<M, Error> {
    M::decode(action.body.as_ref())
        .map_err(|e| Error::bad_request(format!("invalid {} request: {e}", action.r#type)))
}

fn not_protobuf(err: prost::DecodeError) -> Error {
    Error::bad_request(format!(
        "invalid request: the ticket, command or action is not valid protobuf ({err:?})"
    ))
}

/// A known command type whose message does not decode (arrow-flight says ParseError).
fn invalid_message(err: ArrowError) -> Error {
    match err {
        ArrowError::ParseError(message) => {
            Error::bad_request(format!("invalid request: {message}"))
        }
        other => Error::bad_request(format!("invalid request: {other}")),
    }
}

/// A command this RPC does not take (an unknown type, or one that belongs elsewhere).
fn not_here(rpc: &str, type_url: &str) -> Error {
    Error::Unsupported(format!("{rpc}: The defined request is invalid: {type_url}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_flight::sql::TicketStatementQuery;
    use tonic::{Code, Status};

    fn status(err: Error) -> Status {
        Status::from(err)
    }

    #[test]
    fn bytes_that_are_no_command_are_the_clients_mistake() {
        let s = status(Command::decode(&[0xff; 16], Rpc::GetFlightInfo).unwrap_err());
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().contains("not valid protobuf"),
            "{}",
            s.message()
        );

        let s = status(Command::decode(&[], Rpc::DoGet).unwrap_err());
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().contains("no Flight SQL command"),
            "{}",
            s.message()
        );

        let any = Any {
            type_url: CommandStatementQuery::type_url().into(),
            value: vec![0x0a, 0x02, 0xff, 0xfe].into(),
        };
        let s = status(Command::decode(&any.encode_to_vec(), Rpc::GetFlightInfo).unwrap_err());
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message()
                .starts_with("invalid request: Unable to decode Any value"),
            "{}",
            s.message()
        );
    }

    #[test]
    fn unknown_commands_are_unimplemented_naming_their_type() {
        let any = Any {
            type_url: "type.googleapis.com/evil.Command".into(),
            value: Default::default(),
        };
        let s = status(Command::decode(&any.encode_to_vec(), Rpc::DoGet).unwrap_err());
        assert_eq!(s.code(), Code::Unimplemented);
        assert!(s.message().contains("evil.Command"), "{}", s.message());
        // A ticket is not a descriptor's command.
        let ticket = TicketStatementQuery {
            statement_handle: StatementTicket::default().encode_to_vec().into(),
        }
        .as_any()
        .encode_to_vec();
        assert!(Command::decode(&ticket, Rpc::GetFlightInfo).is_err());
        assert!(matches!(
            Command::decode(&ticket, Rpc::DoGet),
            Ok(Command::StatementTicket(_))
        ));
    }

    #[test]
    fn a_put_without_a_message_or_descriptor_is_refused() {
        let s = status(PutCommand::decode(None).unwrap_err());
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("needs a Flight SQL command"));
        assert!(PutCommand::decode(Some(None)).is_err());
    }

    #[test]
    fn actions_decode_by_type() {
        let action = Action::new("DropAllTables", Vec::<u8>::new());
        let s = status(ActionRequest::decode(&action).unwrap_err());
        assert_eq!(s.code(), Code::Unimplemented);
        assert!(s.message().contains("unknown action type"));

        let action = Action::new(action_type::CREATE_PREPARED_STATEMENT, vec![0xff; 10]);
        let s = status(ActionRequest::decode(&action).unwrap_err());
        assert!(
            s.message().contains("not valid protobuf"),
            "{}",
            s.message()
        );

        let action = Action::new(
            action_type::CREATE_PREPARED_STATEMENT,
            CommandStatementQuery::default().as_any().encode_to_vec(),
        );
        let s = status(ActionRequest::decode(&action).unwrap_err());
        assert_eq!(
            s.message(),
            "Unable to unpack ActionCreatePreparedStatementRequest."
        );

        let action = Action::new(CANCEL_FLIGHT_INFO, vec![0xff; 10]);
        let s = status(ActionRequest::decode(&action).unwrap_err());
        assert!(s.message().contains("invalid CancelFlightInfo"));
    }
}
