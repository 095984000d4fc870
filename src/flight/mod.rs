//! Thin Flight SQL glue: decode the command, ask the catalog to plan it, stream the result.
//!
//! - `grpc`: the served `FlightService`; adds GetSchema, PollFlightInfo and the session
//!   cookie around `service`.
//! - `service`: the Flight SQL RPCs ([`FlightSqlHandler`]).
//! - `statement`: what a statement is (query, INSERT, SET/RESET, or refused);
//!   `placeholders`: JDBC's `?` parameters numbered as `$1`, `$2`, ...
//! - `session`: stateless sessions carried in a cookie, and the session-option actions.
//! - `cancel`: the running queries, so CancelFlightInfo can stop them.
//! - `tickets`: self-contained tickets and prepared-statement handles.
//! - `boundary`: the Arrow types clients can read; `columns`: the `ARROW:FLIGHT:SQL:*`
//!   column metadata.
//! - `sql_info`, `type_info`, `keys`: the GetSqlInfo, GetXdbcTypeInfo and key answers.
//! - `status`: the one mapping from errors to gRPC status codes.

mod boundary;
mod cancel;
mod columns;
#[doc(hidden)]
pub mod fuzzing;
mod grpc;
mod keys;
mod placeholders;
mod service;
pub mod session;
mod sql_info;
mod statement;
mod status;
mod tickets;
mod type_info;

pub use grpc::GrpcService;
pub use service::FlightSqlHandler;
pub use session::SESSION_COOKIE;
pub use status::ServiceError;
