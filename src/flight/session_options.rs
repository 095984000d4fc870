//! The session-options family: the SetSessionOptions, GetSessionOptions and CloseSession
//! actions. The session itself (settings carried in a cookie) is `session`'s.

use std::collections::{HashMap, HashSet};

use super::service::FlightSqlHandler;
use super::session::{self, proto as session_proto, SessionSlot};
use crate::error::Error;

impl FlightSqlHandler {
    /// SetSessionOptions: applies each option it can, in name order (`catalog` before
    /// `schema`: a schema is looked up in the catalog), and answers an error for each it
    /// cannot.
    pub(super) fn set_session_options(
        &self,
        request: session_proto::SetSessionOptionsRequest,
        slot: &SessionSlot,
    ) -> Result<session_proto::SetSessionOptionsResult, Error> {
        use session_proto::{SetSessionOptionsError, SetSessionOptionsErrorValue as E};
        let known: HashSet<String> = session::open(&self.catalog, slot.settings())?
            .state()
            .config_options()
            .entries()
            .into_iter()
            .map(|e| e.key)
            .collect();
        let mut settings = slot.settings().clone();
        let mut errors = HashMap::new();
        let mut names: Vec<_> = request.session_options.into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in names {
            let outcome = session::option_text(&value)
                .map_err(Error::bad_request)
                .and_then(|text| session::with_option(&self.catalog, &settings, &name, text));
            match outcome {
                Ok(next) => settings = next,
                Err(err) => {
                    let value = if name == "catalog" || name == "schema" || known.contains(&name) {
                        E::InvalidValue
                    } else {
                        E::InvalidName
                    };
                    tracing::info!(option = %name, error = %err, "session option refused");
                    errors.insert(
                        name,
                        SetSessionOptionsError {
                            value: value as i32,
                        },
                    );
                }
            }
        }
        if &settings != slot.settings() {
            slot.set(settings);
        }
        Ok(session_proto::SetSessionOptionsResult { errors })
    }

    /// GetSessionOptions: the options in force.
    pub(super) fn get_session_options(
        &self,
        slot: &SessionSlot,
    ) -> Result<session_proto::GetSessionOptionsResult, Error> {
        let session_options = session::options_in_force(&self.catalog, slot.settings())?
            .into_iter()
            .map(|(k, v)| (k, session::option_value(v)))
            .collect();
        Ok(session_proto::GetSessionOptionsResult { session_options })
    }

    /// CloseSession: the client drops the cookie.
    pub(super) fn close_session(&self, slot: &SessionSlot) -> session_proto::CloseSessionResult {
        slot.close();
        session_proto::CloseSessionResult {
            status: session_proto::CloseSessionStatus::Closed as i32,
        }
    }
}
