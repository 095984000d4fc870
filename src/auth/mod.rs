//! Who may connect and who may write. Users come from a users file ([`users`]); a Flight
//! handshake with their Basic credentials answers with a signed, expiring bearer token
//! ([`token`]); every RPC must carry that token or the Basic credentials themselves, which
//! the tower layer ([`layer`]) checks before any service sees the call (the gRPC health
//! service excepted). The layer puts the [`Caller`] into the request's extensions, and the
//! Flight layer refuses a write by a `read` caller after planning the statement, before any
//! AWS call: a value the client can `SET` never decides it.

mod layer;
pub mod token;
pub mod users;

use serde::{Deserialize, Serialize};

pub use layer::{AuthLayer, Authenticator};
pub use token::Tokens;
pub use users::{hash_password, Users};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries, metadata, session settings.
    Read,
    /// Also INSERT (SQL, prepared, bulk ingest).
    Write,
}

/// Who made a call, as the auth layer established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user, or `None` on a server without authentication.
    pub user: Option<String>,
    /// What they may do.
    pub role: Role,
}

impl Caller {
    /// The caller of a server without authentication: anyone reaching it may write (unless
    /// the server is `--read-only`).
    pub fn anonymous() -> Caller {
        Caller {
            user: None,
            role: Role::Write,
        }
    }

    /// The caller the auth layer attached to `request`. A request that did not pass through
    /// the layer has none and may only read.
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller {
                user: None,
                role: Role::Read,
            })
    }

    /// Whether this caller may run INSERT (and bulk ingest).
    pub fn may_write(&self) -> bool {
        self.role == Role::Write
    }

    /// Why a write is refused, for the PERMISSION_DENIED message.
    pub fn write_refusal(&self) -> String {
        match &self.user {
            Some(user) => format!(
                "user `{user}` has role `read`: INSERT and bulk ingest need role `write` in the \
                 server's users file; nothing was sent to AWS"
            ),
            None => "this call may only read; nothing was sent to AWS".to_owned(),
        }
    }
}
