//! The tower layer that authenticates every RPC. It reads the `authorization` header
//! (`Bearer <token>` or `Basic <base64 user:password>`), refuses a call without good
//! credentials with UNAUTHENTICATED, answers a successful Flight handshake with
//! `authorization: Bearer <token>`, removes the credentials from the request, and attaches
//! the [`Caller`] for the services. The gRPC health service needs no credentials. Password
//! checks go through the login throttle (`throttle`), keyed by the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderValue;
use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::throttle::{LoginLimits, Refusal, Throttle};
use super::token::Tokens;
use super::users::Users;
use super::{Caller, Role};
use crate::error::Error;
use crate::metrics::Metrics;
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
    throttle: Throttle,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// Checks credentials against `users` and `tokens`; with no users, every call is let
    /// through as [`Caller::anonymous`]. Password checks are throttled with the default
    /// [`LoginLimits`].
    pub fn new(users: Option<Users>, tokens: Tokens) -> Authenticator {
        Authenticator {
            users: users.map(Arc::new),
            tokens,
            checks: Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
            throttle: Throttle::new(LoginLimits::default()),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Throttles password checks with `limits` (checked with [`LoginLimits::check`]).
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Authenticator {
        self.throttle = Throttle::new(limits);
        self
    }

    /// Counts throttled logins in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Authenticator {
        self.metrics = metrics;
        self
    }

    /// Whether calls need credentials.
    pub fn enabled(&self) -> bool {
        self.users.is_some()
    }

    /// The caller named by an `authorization` header value, sent from `peer`.
    async fn authenticate(
        self: &Arc<Self>,
        users: &Arc<Users>,
        header: Option<&HeaderValue>,
        peer: Option<SocketAddr>,
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
            // flightsql-dbapi (Superset) sends `Bearer None` when no credentials were given.
            if value.is_empty() || value == "None" || value == "null" {
                return Err(format!(
                    "this server requires authentication, and the client sent no credentials \
                     (`Bearer {value}`): give a user name and password (Superset: \
                     datafusion://USER:PASSWORD@HOST:PORT)"
                ));
            }
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
        // Without a peer address (not a TCP connection), clients share one throttle key.
        let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
        let role = self.check_password(users, user, password, client).await?;
        Ok(Caller {
            user: Some(user.to_owned()),
            role,
        })
    }

    /// Checks `user`'s password through the login throttle: refused unchecked when the
    /// (user, client) pair is locked out or the client has spent its failure budget; a
    /// failure is answered after the throttle's delay. The check runs to its end in a task
    /// of its own: a client that goes away mid-check (a cancelled stream, a short deadline)
    /// has its failure counted all the same.
    async fn check_password(
        self: &Arc<Self>,
        users: &Arc<Users>,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Role, String> {
        let (auth, users) = (Arc::clone(self), Arc::clone(users));
        let (user, password) = (user.to_owned(), password.to_owned());
        tokio::spawn(async move { auth.throttled_check(&users, &user, &password, client).await })
            .await
            .unwrap_or_else(|_| Err("wrong user name or password".to_owned()))
    }

    async fn throttled_check(
        &self,
        users: &Arc<Users>,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Role, String> {
        // An unknown name is never logged: it is often a password typed in the wrong field.
        let known = users.role(user).is_some();
        let shown = if known { user } else { "(unknown user name)" };
        let refused = |refusal: Refusal| {
            self.metrics.login_throttled(refusal.reason());
            tracing::warn!(
                user = shown,
                address = %client,
                reason = refusal.reason(),
                retry_after = %refusal.retry_after(),
                "login refused unchecked: too many failed logins"
            );
            refusal.message()
        };
        let mut attempt = self.throttle.admit(user, client).await.map_err(refused)?;
        let role = {
            let _permit = self.checks.acquire().await.ok();
            // Other attempts from the client may have spent its budget while this one waited.
            attempt.recheck().await.map_err(refused)?;
            let (users, user, password) = (Arc::clone(users), user.to_owned(), password.to_owned());
            tokio::task::spawn_blocking(move || users.verify(&user, &password))
                .await
                .ok()
                .flatten()
        };
        if let Some(role) = role {
            attempt.succeeded();
            return Ok(role);
        }
        let failed = attempt.failed().await;
        let delay_ms = failed.delay.as_millis() as u64;
        if known {
            tracing::info!(
                user,
                address = %client,
                failures = failed.count,
                delay_ms,
                "authentication failed: wrong password"
            );
        } else {
            tracing::info!(
                address = %client,
                failures = failed.count,
                delay_ms,
                "authentication failed: unknown user name"
            );
        }
        if failed.locked_out {
            tracing::warn!(
                user = shown,
                address = %client,
                failures = failed.count,
                lockout = %humantime::format_duration(self.throttle.limits().lockout),
                "login locked out: too many failed logins for this user name from this address"
            );
        }
        if failed.address_spent {
            tracing::warn!(
                address = %client,
                "too many failed logins from this address: its password checks are refused \
                 unchecked until its budget comes back"
            );
        }
        Err("wrong user name or password".to_owned())
    }
}

/// The client's address, as tonic's transport records it for the connection (plaintext or
/// TLS).
fn peer_addr(request: &http::Request<Body>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
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
        let peer = peer_addr(&request);
        Box::pin(async move {
            // The credentials stop here: nothing further in (logs included) sees them.
            let header = request.headers_mut().remove(AUTHORIZATION);
            let caller = match auth.authenticate(&users, header.as_ref(), peer).await {
                Ok(caller) => caller,
                Err(message) => {
                    return Ok(tonic::Status::from(Error::Unauthenticated(message)).into_http());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_password;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_check_cut_short_by_the_client_still_counts_as_a_failure() {
        let hash = hash_password("alice-password").unwrap();
        let users = Users::parse(&format!(
            "[[users]]\nname = \"alice\"\npassword_hash = '{hash}'\nrole = \"read\"\n"
        ))
        .unwrap();
        let auth = Arc::new(
            Authenticator::new(Some(users), Tokens::random(Duration::from_secs(60)))
                .with_login_limits(LoginLimits {
                    max_failures: 1,
                    first_delay: Duration::ZERO,
                    ..LoginLimits::default()
                }),
        );
        let users = auth.users.clone().unwrap();
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // The client gives up long before argon2 answers.
        let cut_short = tokio::time::timeout(
            Duration::from_micros(1),
            auth.check_password(&users, "alice", "a guess", client),
        )
        .await;
        assert!(cut_short.is_err(), "the check finished at once");
        // The check went on without it, and its failure locked alice out from here.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match auth.throttle.admit("alice", client).await {
                Err(Refusal::LockedOut { .. }) => break,
                _ => {
                    assert!(Instant::now() < deadline, "the failure was never counted");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        let refusal = auth
            .check_password(&users, "alice", "alice-password", client)
            .await
            .unwrap_err();
        assert!(refusal.contains("too many failed logins"), "{refusal}");
    }
}
