//! The context of one RPC, built once when the request is decoded: who calls
//! ([`Caller`]), the session its cookie carries, how it receives timestamps, whether the
//! server is draining, whether the call only asks for a schema, its query id, and the
//! accounts its statement skipped. Every
//! command family takes a [`Call`] instead of the request.

use std::sync::Arc;

use tonic::Request;

use super::boundary::TimestampStyle;
use super::session::SessionSlot;
use crate::auth::Caller;
use crate::error::Error;
use crate::limits::ExtraTime;
use crate::observe::Draining;
use crate::table::SkippedAccounts;

/// One RPC's context.
#[derive(Debug, Clone)]
pub struct Call {
    /// Who calls, and whether they may write.
    pub caller: Caller,
    /// The session the call's cookie carries; a changed one is answered with `set-cookie`.
    pub session: SessionSlot,
    /// How the client receives timestamps, or what is wrong with its `timestamps` header
    /// (an error only for the commands whose results carry timestamps).
    style: Result<TimestampStyle, String>,
    /// The server is shutting down (a DoGet that arrived while it drains).
    pub draining: bool,
    /// A GetSchema: plan only, run nothing, change no session.
    pub schema_only: bool,
    /// The query this call is about: made at GetFlightInfo, carried in the ticket, read
    /// back at DoGet and CancelFlightInfo. Empty for calls that are about no query.
    pub query_id: String,
    /// Lengthens a DoGet's query timeout (a watch), when the query limiter set one.
    pub extra_time: Option<ExtraTime>,
    /// The accounts the call's statement skipped (`aws.on_account_error = 'skip'`), told
    /// to the client in the answer's schema, headers and trailers.
    pub skipped: Arc<SkippedAccounts>,
}

impl Call {
    /// The context of `request`: its caller (attached by the auth layer), its session
    /// (from its cookie: a cookie that does not decode is an error) and its headers.
    pub fn of<T>(request: &Request<T>) -> Result<Call, Error> {
        Ok(Call {
            caller: Caller::of(request),
            session: SessionSlot::from_metadata(request.metadata())?,
            style: TimestampStyle::of(request.metadata()),
            draining: request.extensions().get::<Draining>().is_some(),
            schema_only: false,
            query_id: String::new(),
            extra_time: request.extensions().get::<ExtraTime>().cloned(),
            skipped: Arc::default(),
        })
    }

    /// How the client receives timestamps (a bad `timestamps` header is an error).
    pub fn style(&self) -> Result<TimestampStyle, Error> {
        self.style.clone().map_err(Error::BadRequest)
    }

    /// Sets the call's query id and names it in the RPC's log lines and `x-query-id`
    /// response header.
    pub fn set_query_id(&mut self, query_id: String) {
        crate::observe::note_query_id(&query_id);
        self.query_id = query_id;
    }
}
