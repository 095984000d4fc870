//! The tower layer that authenticates every RPC. It reads the `authorization` header
//! (`Bearer <token>` or `Basic <base64 user:password>`), refuses a call without good
//! credentials with UNAUTHENTICATED, answers a successful Flight handshake with
//! `authorization: Bearer <token>`, removes the credentials from the request, and attaches
//! the [`Caller`] for the services. The gRPC health service needs no credentials.

use std::sync::Arc;

use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderValue;
use tokio::sync::Semaphore;
use tonic::body::Body;

use super::token::Tokens;
use super::users::Users;
use super::{Caller, Role};
use crate::flight::ServiceError;
use crate::rpc_layer::{BoxFuture, Inner, RpcMiddleware};

/// The path of the Flight handshake.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";
/// Calls that need no credentials: the gRPC health service (load balancers, probes).
const OPEN_PREFIX: &str = "/grpc.health.v1.Health/";
/// Password checks running at once: each takes tens of milliseconds of CPU and ~19 MiB of
/// memory, so a flood of bad credentials queues here instead of exhausting the machine.
const CONCURRENT_PASSWORD_CHECKS: usize = 4;

/// Basic credentials' base64, with or without padding: the Go Flight client (ADBC) leaves
/// it out.
const BASIC_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// What the layer checks credentials against.
#[derive(Debug)]
pub struct Authenticator {
    users: Option<Arc<Users>>,
    tokens: Tokens,
    checks: Semaphore,
}

impl Authenticator {
    /// Checks credentials against `users` and `tokens`; with no users, every call is let
    /// through as [`Caller::anonymous`].
    pub fn new(users: Option<Users>, tokens: Tokens) -> Authenticator {
        Authenticator {
            users: users.map(Arc::new),
            tokens,
            checks: Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
        }
    }

    /// Whether calls need credentials.
    pub fn enabled(&self) -> bool {
        self.users.is_some()
    }

    /// The caller named by an `authorization` header value.
    async fn authenticate(
        &self,
        users: &Arc<Users>,
        header: Option<&HeaderValue>,
    ) -> Result<Caller, String> {
        let Some(header) = header else {
            return Err(
                "this server requires authentication: connect with a user name and \
                        password (Basic credentials, in a Flight handshake or on each call) or \
                        send the bearer token a handshake returned"
                    .to_owned(),
            );
        };
        let malformed = || {
            "malformed authorization header: expected `Basic <base64 of user:password>` or \
             `Bearer <token>`"
                .to_owned()
        };
        let header = header.to_str().map_err(|_| malformed())?;
        let (scheme, value) = header.split_once(' ').ok_or_else(malformed)?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let user = self.tokens.verify(value).map_err(|e| e.to_string())?;
            let role = users.role(&user).ok_or_else(|| {
                "the bearer token names a user this server does not know; authenticate again"
                    .to_owned()
            })?;
            return Ok(Caller {
                user: Some(user),
                role,
            });
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(malformed());
        }
        let decoded = BASIC_BASE64.decode(value).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
        let role = self.check_password(users, user, password).await;
        match role {
            Some(role) => Ok(Caller {
                user: Some(user.to_owned()),
                role,
            }),
            None => {
                // An unknown name is not logged: it is often a password typed in the wrong
                // field.
                if users.role(user).is_some() {
                    tracing::info!(user, "authentication failed: wrong password");
                } else {
                    tracing::info!("authentication failed: unknown user name");
                }
                Err("wrong user name or password".to_owned())
            }
        }
    }

    async fn check_password(&self, users: &Arc<Users>, user: &str, password: &str) -> Option<Role> {
        let _permit = self.checks.acquire().await.ok()?;
        let (users, user, password) = (Arc::clone(users), user.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || users.verify(&user, &password))
            .await
            .ok()
            .flatten()
    }
}

/// The middleware, installed as `RpcLayer(Authenticate(authenticator))`.
#[derive(Debug, Clone)]
pub struct Authenticate(pub Arc<Authenticator>);

impl RpcMiddleware for Authenticate {
    fn handle<S: Inner>(
        &self,
        mut inner: S,
        mut request: http::Request<Body>,
    ) -> BoxFuture<http::Response<Body>, S::Error> {
        let path = request.uri().path();
        let (open, is_handshake) = (path.starts_with(OPEN_PREFIX), path == HANDSHAKE_PATH);
        if open {
            return Box::pin(inner.call(request));
        }
        let Some(users) = self.0.users.clone() else {
            request.extensions_mut().insert(Caller::anonymous());
            return Box::pin(inner.call(request));
        };
        let auth = Arc::clone(&self.0);
        Box::pin(async move {
            // The credentials stop here: nothing further in (logs included) sees them.
            let header = request.headers_mut().remove(AUTHORIZATION);
            let caller = match auth.authenticate(&users, header.as_ref()).await {
                Ok(caller) => caller,
                Err(message) => {
                    return Ok(
                        tonic::Status::from(ServiceError::Unauthenticated(message)).into_http()
                    );
                }
            };
            let token = match (&caller.user, is_handshake) {
                (Some(user), true) => Some(auth.tokens.issue(user)),
                _ => None,
            };
            request.extensions_mut().insert(caller);
            let mut response = inner.call(request).await?;
            if let Some(token) = token {
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    response.headers_mut().insert(AUTHORIZATION, value);
                }
            }
            Ok(response)
        })
    }
}
