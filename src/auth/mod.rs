//! Who may connect and who may write. Users come from a users file ([`users`]); a Flight
//! handshake with their Basic credentials answers with a signed, expiring bearer token
//! ([`token`]); every RPC must carry that token or the Basic credentials themselves, which
//! the tower layer (`layer`) checks before any service sees the call (the gRPC health
//! service excepted). The layer puts the [`Caller`] into the request's extensions, and the
//! Flight layer refuses a write by a `read` caller after planning the statement, before any
//! AWS call: a value the client can `SET` never decides it. Password checks are throttled
//! per (user name, client address) and per client address ([`LoginLimits`]).

mod layer;
mod throttle;
pub mod token;
pub mod users;

use serde::{Deserialize, Serialize};

pub use layer::{Authenticate, Authenticator};
pub use throttle::{
    LoginLimits, DEFAULT_ADDRESS_FAILURES_PER_MINUTE, DEFAULT_LOCKOUT, DEFAULT_MAX_FAILURES,
};
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

/// How the server authenticates, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// The users file; `None` = no authentication (loopback only, unless allowed).
    pub users_file: Option<std::path::PathBuf>,
    /// The file holding the token signing key; `None` = a random key per start.
    pub token_secret_file: Option<std::path::PathBuf>,
    /// How long a bearer token stays valid.
    pub token_ttl: std::time::Duration,
    /// Serve a non-loopback address without authentication.
    pub allow_unauthenticated: bool,
    /// How failed logins are slowed down and locked out.
    pub login: LoginLimits,
}

/// Default bearer token lifetime.
pub const DEFAULT_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            users_file: None,
            token_secret_file: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            allow_unauthenticated: false,
            login: LoginLimits::default(),
        }
    }
}

impl AuthOptions {
    /// Refuses to serve `listen` without authentication unless it is a loopback address or
    /// `allow_unauthenticated` says so: this server holds AWS credentials that can create
    /// resources.
    pub fn check_exposure(&self, listen: std::net::SocketAddr) -> anyhow::Result<()> {
        if self.users_file.is_none() && !listen.ip().is_loopback() && !self.allow_unauthenticated {
            anyhow::bail!(
                "refusing to listen on {listen} without authentication: anyone who reaches \
                 this address could use the server's AWS credentials. Give a users file \
                 (--users-file, AWS_FLIGHTSQL_USERS_FILE; see `aws-flightsql hash-password`), \
                 listen on a loopback address such as 127.0.0.1, or pass \
                 --allow-unauthenticated (AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED=true) if \
                 something in front of the server already restricts who reaches it"
            );
        }
        Ok(())
    }

    /// Loads the users and the token key, after checking the exposure of `listen`.
    pub fn authenticator(&self, listen: std::net::SocketAddr) -> anyhow::Result<Authenticator> {
        self.check_exposure(listen)?;
        let users = self.users_file.as_deref().map(Users::load).transpose()?;
        let tokens = match &self.token_secret_file {
            Some(path) => Tokens::from_file(path, self.token_ttl)?,
            None => Tokens::random(self.token_ttl),
        };
        if self.token_ttl.is_zero() {
            anyhow::bail!("token_ttl must be more than 0s");
        }
        self.login.check()?;
        Ok(Authenticator::new(users, tokens).with_login_limits(self.login.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_servers_stay_on_loopback_unless_allowed() {
        let options = AuthOptions::default();
        assert!(options
            .check_exposure("127.0.0.1:0".parse().unwrap())
            .is_ok());
        assert!(options.check_exposure("[::1]:0".parse().unwrap()).is_ok());
        let err = options
            .check_exposure("0.0.0.0:50051".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--users-file") && err.contains("--allow-unauthenticated"),
            "{err}"
        );
        let allowed = AuthOptions {
            allow_unauthenticated: true,
            ..AuthOptions::default()
        };
        assert!(allowed
            .check_exposure("0.0.0.0:50051".parse().unwrap())
            .is_ok());
        let with_users = AuthOptions {
            users_file: Some("users.toml".into()),
            ..AuthOptions::default()
        };
        assert!(with_users
            .check_exposure("0.0.0.0:50051".parse().unwrap())
            .is_ok());
    }
}
