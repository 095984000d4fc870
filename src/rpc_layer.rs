//! The plumbing the server's per-RPC tower layers share (observe, auth, limits): each says
//! what it does around one RPC by implementing [`RpcMiddleware`], and is installed as an
//! [`RpcLayer`], which owns the tower `Layer`/`Service` boilerplate and tower's readiness
//! contract.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::{Layer, Service};

/// The future an [`RpcMiddleware`] returns.
pub type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The next service inside a layer, as a middleware calls it.
pub trait Inner:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Future: Send + 'static,
        Error: Send + 'static,
    > + Send
    + 'static
{
}

impl<S> Inner for S where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Future: Send + 'static,
            Error: Send + 'static,
        > + Send
        + 'static
{
}

/// What a layer does around one RPC.
pub trait RpcMiddleware: Clone + Send + Sync + 'static {
    /// Answers `request`, calling `inner` (already ready) when and as it decides.
    fn handle<S: Inner>(
        &self,
        inner: S,
        request: http::Request<Body>,
    ) -> BoxFuture<http::Response<Body>, S::Error>;
}

/// Installs an [`RpcMiddleware`] as a tower layer.
#[derive(Debug, Clone)]
pub struct RpcLayer<M>(pub M);

impl<S, M: Clone> Layer<S> for RpcLayer<M> {
    type Service = RpcService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            middleware: self.0.clone(),
        }
    }
}

/// The service an [`RpcLayer`] wraps around the next one.
#[derive(Debug, Clone)]
pub struct RpcService<S, M> {
    inner: S,
    middleware: M,
}

impl<S: Inner + Clone, M: RpcMiddleware> Service<http::Request<Body>> for RpcService<S, M> {
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone that was made ready is the one to call (tower's readiness contract).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        self.middleware.handle(inner, request)
    }
}
