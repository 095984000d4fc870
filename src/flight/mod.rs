//! The Flight SQL layer. Every request goes through four steps, each in its own place:
//!
//! 1. **Decode** (`grpc`, `command`, `call`): the transport builds the RPC's `Call`
//!    context (caller, session cookie, timestamp style, draining, query id) and decodes the
//!    descriptor, ticket, DoPut descriptor or action body into a typed `Command`,
//!    `PutCommand` or `ActionRequest`; bytes that do not decode are a typed error.
//! 2. **Admit** (`admit`, with `admit::sql_shape` measuring a statement's text): SQL size
//!    and shape limits, what the server does not do (DDL, COPY, UPDATE, ...), write
//!    permission, all before anything runs.
//! 3. **Plan** (`statement`, with `placeholders` numbering JDBC's `?` as `$1`, ...): a
//!    statement becomes a DataFusion plan, or a `SET`/`RESET` of the session.
//! 4. **Respond** (`respond`, `boundary`, `columns`): FlightInfos and their self-contained
//!    tickets (`tickets`), Flight data in the Arrow types clients read, column metadata.
//!
//! `service` holds the handler's state and hands each decoded command to its family:
//!
//! - `statements`: SQL statements (GetFlightInfo, where an INSERT runs once; DoGet; DoPut
//!   updates) and the slow-query line;
//! - `prepared`: prepared statements (create, bind, run);
//! - `metadata`: catalogs, schemas, tables, table types, SQL info (`sql_info`), XDBC type
//!   info (`type_info`) and keys (`keys`);
//! - `ingest`: bulk ingest;
//! - `session_options`: the session-option actions (sessions themselves: `session`);
//! - `cancel`: CancelFlightInfo and CancelQuery, and the registry of running queries.
//!
//! One query id, made at GetFlightInfo, travels in the ticket: DoGet, cancel, the log
//! lines of both RPCs (field `query_id`, header `x-query-id`) and the slow-query line use
//! it. Errors are the crate's [`crate::error::Error`], mapped to a status in one place.

mod admit;
mod boundary;
mod call;
mod cancel;
mod columns;
mod command;
#[doc(hidden)]
pub mod fuzzing;
mod grpc;
mod ingest;
mod keys;
mod metadata;
mod placeholders;
mod prepared;
pub mod report;
mod respond;
mod service;
pub mod session;
mod session_options;
mod sql_info;
mod statement;
mod statements;
mod tickets;
mod type_info;

/// The crate's error type, by its former name here (see [`crate::error::Error`]).
pub use crate::error::Error as ServiceError;
/// Limits on a statement's text (admission's), also at their former path
/// [`crate::sql_limits`].
pub use admit::sql_shape as sql_limits;
pub use grpc::GrpcService;
pub use service::FlightSqlHandler;
pub use session::SESSION_COOKIE;
