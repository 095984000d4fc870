//! Sessions without server state. A session's settings (default catalog and schema, the
//! `aws.*` and DataFusion options) are the `Settings` message, carried by a cookie that the
//! server sets and the clients send back (the JDBC driver always does; the ADBC driver with
//! `adbc.flight.sql.rpc.with_cookie_middleware=true`). Any replica can therefore serve any
//! request. `SET`/`RESET` statements and the SetSessionOptions / GetSessionOptions /
//! CloseSession actions change or read it.
//!
//! The transport (`flight::grpc`) decodes the cookie into a [`SessionSlot`] request
//! extension before a call and turns a changed slot into a `set-cookie` response header
//! after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::Request;

use super::tickets::Settings;
use crate::catalog::{Catalog, CATALOG, SCHEMA};
use crate::error::Error;

/// The cookie that carries the session's settings (hex of the `Settings` protobuf).
pub const SESSION_COOKIE: &str = "aws_flightsql_session";

/// The session option names for the default catalog and schema.
const CATALOG_OPTION: &str = "catalog";
const SCHEMA_OPTION: &str = "schema";

/// The session of one call: the settings it came with and, if the call changed them, the
/// settings to send back.
#[derive(Debug, Clone, Default)]
pub struct SessionSlot {
    current: Settings,
    changed: Arc<Mutex<Option<Change>>>,
}

#[derive(Debug, Clone)]
enum Change {
    Set(Settings),
    Close,
}

impl SessionSlot {
    /// The session carried by the cookies of `metadata` (an empty one when there is none).
    pub fn from_metadata(metadata: &MetadataMap) -> Result<SessionSlot, Error> {
        let mut current = Settings::default();
        for header in metadata.get_all("cookie") {
            let Ok(header) = header.to_str() else {
                continue;
            };
            for pair in header.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim() == SESSION_COOKIE && !value.trim().is_empty() {
                    current = decode_cookie(value.trim())?;
                }
            }
        }
        Ok(SessionSlot {
            current,
            changed: Arc::default(),
        })
    }

    /// The settings in force for this call.
    pub fn settings(&self) -> &Settings {
        &self.current
    }

    /// Replaces the session's settings from this call on.
    pub fn set(&self, settings: Settings) {
        *self.changed.lock().expect("session lock") = Some(Change::Set(settings));
    }

    /// Ends the session: the client drops the cookie.
    pub fn close(&self) {
        *self.changed.lock().expect("session lock") = Some(Change::Close);
    }

    /// The `set-cookie` header value to answer with, if the call changed the session.
    pub fn set_cookie(&self) -> Option<String> {
        let change = self.changed.lock().expect("session lock").clone()?;
        Some(match change {
            Change::Set(settings) if settings != Settings::default() => {
                format!("{SESSION_COOKIE}={}; Path=/", encode_cookie(&settings))
            }
            // Nothing left to carry, or the session ended: expire the cookie.
            Change::Set(_) | Change::Close => format!("{SESSION_COOKIE}=; Path=/; Max-Age=0"),
        })
    }

    /// Adds the `set-cookie` header to `metadata` if the session changed.
    pub fn answer(&self, metadata: &mut MetadataMap) {
        if let Some(cookie) = self.set_cookie() {
            if let Ok(value) = MetadataValue::try_from(cookie) {
                metadata.append("set-cookie", value);
            }
        }
    }
}

/// The session of `request`: the slot the transport attached, or an empty session when the
/// handler is called directly.
pub fn of<T>(request: &Request<T>) -> SessionSlot {
    request
        .extensions()
        .get::<SessionSlot>()
        .cloned()
        .unwrap_or_default()
}

fn encode_cookie(settings: &Settings) -> String {
    settings
        .encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cookie(value: &str) -> Result<Settings, Error> {
    let invalid = || {
        Error::bad_request(format!(
            "the {SESSION_COOKIE} cookie is not one this server set; drop it (reconnect) to \
             start a new session"
        ))
    };
    if !value.len().is_multiple_of(2) || !value.is_ascii() {
        return Err(invalid());
    }
    let bytes = (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&value[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    Settings::decode(bytes.as_slice()).map_err(|_| invalid())
}

/// `settings` with `name` set to `value` (`None`: back to its default), checked by opening a
/// session with them: an unknown name or a bad value is an error that names it.
pub fn with_option(
    catalog: &Catalog,
    settings: &Settings,
    name: &str,
    value: Option<String>,
) -> Result<Settings, Error> {
    let mut next = settings.clone();
    match name {
        CATALOG_OPTION => next.catalog = value,
        SCHEMA_OPTION => next.schema = value,
        _ => match value {
            Some(value) => {
                next.options.insert(name.to_owned(), value);
            }
            None => {
                next.options.remove(name);
            }
        },
    }
    validate(catalog, &next)?;
    Ok(next)
}

/// Checks that `settings` open a session, and that its default catalog and schema exist.
pub fn validate(catalog: &Catalog, settings: &Settings) -> Result<(), Error> {
    let ctx = open(catalog, settings)?;
    let options = ctx.state().config_options().catalog.clone();
    let Some(found) = ctx.catalog(&options.default_catalog) else {
        return Err(Error::bad_request(format!(
            "unknown catalog '{}': this server has {}",
            options.default_catalog,
            ctx.catalog_names().join(", ")
        )));
    };
    if found.schema(&options.default_schema).is_none() {
        return Err(Error::bad_request(format!(
            "unknown schema '{}' in catalog '{}': it has {}",
            options.default_schema,
            options.default_catalog,
            found.schema_names().join(", ")
        )));
    }
    Ok(())
}

/// A DataFusion session with `settings` applied.
pub fn open(
    catalog: &Catalog,
    settings: &Settings,
) -> Result<datafusion::prelude::SessionContext, Error> {
    Ok(catalog.session(
        settings.catalog.as_deref(),
        settings.schema.as_deref(),
        settings
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// The options a client reads with GetSessionOptions: the default catalog and schema, every
/// `aws.*` setting with its value in force, and any other option the session set.
pub fn options_in_force(
    catalog: &Catalog,
    settings: &Settings,
) -> Result<HashMap<String, String>, Error> {
    let ctx = open(catalog, settings)?;
    let mut out = HashMap::new();
    out.insert(
        CATALOG_OPTION.to_owned(),
        settings
            .catalog
            .clone()
            .unwrap_or_else(|| CATALOG.to_owned()),
    );
    out.insert(
        SCHEMA_OPTION.to_owned(),
        settings.schema.clone().unwrap_or_else(|| SCHEMA.to_owned()),
    );
    for entry in ctx.state().config_options().entries() {
        if entry.key.starts_with("aws.") {
            out.insert(entry.key, entry.value.unwrap_or_default());
        }
    }
    for (key, value) in &settings.options {
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// The Flight RPC session messages (`Flight.proto`, experimental there), which the
/// arrow-flight crate does not generate.
pub mod proto {
    #![allow(missing_docs)]

    use std::collections::HashMap;

    /// The action types of the session RPCs.
    pub const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
    pub const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
    pub const CLOSE_SESSION: &str = "CloseSession";

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SessionOptionValue {
        #[prost(oneof = "session_option_value::OptionValue", tags = "1, 2, 3, 4, 5")]
        pub option_value: Option<session_option_value::OptionValue>,
    }

    pub mod session_option_value {
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct StringListValue {
            #[prost(string, repeated, tag = "1")]
            pub values: Vec<String>,
        }

        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum OptionValue {
            #[prost(string, tag = "1")]
            StringValue(String),
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            #[prost(sfixed64, tag = "3")]
            Int64Value(i64),
            #[prost(double, tag = "4")]
            DoubleValue(f64),
            #[prost(message, tag = "5")]
            StringListValue(StringListValue),
        }
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SetSessionOptionsRequest {
        #[prost(map = "string, message", tag = "1")]
        pub session_options: HashMap<String, SessionOptionValue>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct SetSessionOptionsResult {
        #[prost(map = "string, message", tag = "1")]
        pub errors: HashMap<String, SetSessionOptionsError>,
    }

    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct SetSessionOptionsError {
        #[prost(enumeration = "SetSessionOptionsErrorValue", tag = "1")]
        pub value: i32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum SetSessionOptionsErrorValue {
        Unspecified = 0,
        InvalidName = 1,
        InvalidValue = 2,
        Error = 3,
    }

    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct GetSessionOptionsRequest {}

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct GetSessionOptionsResult {
        #[prost(map = "string, message", tag = "1")]
        pub session_options: HashMap<String, SessionOptionValue>,
    }

    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct CloseSessionRequest {}

    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct CloseSessionResult {
        #[prost(enumeration = "CloseSessionStatus", tag = "1")]
        pub status: i32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum CloseSessionStatus {
        Unspecified = 0,
        Closed = 1,
        Closing = 2,
        NotCloseable = 3,
    }
}

use proto::session_option_value::OptionValue;

/// A session option value as the text `SET name = value` would give.
pub fn option_text(value: &proto::SessionOptionValue) -> Result<Option<String>, String> {
    match &value.option_value {
        None => Ok(None),
        Some(OptionValue::StringValue(s)) => Ok(Some(s.clone())),
        Some(OptionValue::BoolValue(b)) => Ok(Some(b.to_string())),
        Some(OptionValue::Int64Value(i)) => Ok(Some(i.to_string())),
        Some(OptionValue::DoubleValue(d)) => Ok(Some(d.to_string())),
        Some(OptionValue::StringListValue(_)) => {
            Err("list values are not supported; give one value".to_owned())
        }
    }
}

/// A text value as a session option value (booleans as booleans, so clients can read them).
pub fn option_value(text: String) -> proto::SessionOptionValue {
    let value = match text.as_str() {
        "true" => OptionValue::BoolValue(true),
        "false" => OptionValue::BoolValue(false),
        _ => OptionValue::StringValue(text),
    };
    proto::SessionOptionValue {
        option_value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips_and_rejects_garbage() {
        let mut settings = Settings {
            catalog: Some("aws".into()),
            ..Settings::default()
        };
        settings.options.insert("aws.dry_run".into(), "true".into());
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "cookie",
            format!("other=1; {SESSION_COOKIE}={}", encode_cookie(&settings))
                .parse()
                .unwrap(),
        );
        let slot = SessionSlot::from_metadata(&metadata).unwrap();
        assert_eq!(slot.settings(), &settings);
        assert_eq!(slot.set_cookie(), None, "unchanged sessions set no cookie");

        let mut metadata = MetadataMap::new();
        metadata.insert("cookie", format!("{SESSION_COOKIE}=zz").parse().unwrap());
        assert!(SessionSlot::from_metadata(&metadata).is_err());
    }

    #[test]
    fn empty_or_closed_sessions_expire_the_cookie() {
        let slot = SessionSlot::default();
        slot.set(Settings::default());
        assert!(slot.set_cookie().unwrap().contains("Max-Age=0"));
        slot.close();
        assert!(slot.set_cookie().unwrap().contains("Max-Age=0"));
        let mut settings = Settings::default();
        settings.options.insert("aws.dry_run".into(), "true".into());
        slot.set(settings);
        assert!(!slot.set_cookie().unwrap().contains("Max-Age"));
    }
}
