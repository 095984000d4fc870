//! Thin Flight SQL glue: decode the command, ask the catalog to plan it, stream the result.
//! `service` implements the Flight SQL RPCs, `tickets` the self-contained tickets and
//! prepared-statement handles, `boundary` the Arrow types clients can read, `sql_info` the
//! GetSqlInfo answers, and `status` the one mapping from errors to gRPC status codes.

mod boundary;
mod service;
mod sql_info;
mod status;
mod tickets;

pub use service::FlightSqlHandler;
pub use status::ServiceError;
