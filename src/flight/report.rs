//! Telling the client which accounts a query skipped (`SET aws.on_account_error = 'skip'`),
//! where the common clients can see it:
//!
//! - the result schema's metadata, key `aws_flightsql.skipped_accounts` (a JSON array), on
//!   the FlightInfo's schema (ADBC's `reader.schema.metadata`, arrow-flight's
//!   `FlightInfo::try_decode_schema`, the bundled CLI, which prints a warning line) and on
//!   the schema DoGet streams (pyarrow's `do_get(...).read_all().schema.metadata`): the
//!   accounts skipped while the query was planned;
//! - the FlightInfo's `app_metadata` (the same JSON, under the same key, as a JSON object):
//!   the one thing of a result the Flight SQL JDBC driver exposes
//!   (`ArrowFlightJdbcFlightStreamResultSet.getAppMetadata()`);
//! - the DoGet response header `aws-flightsql-skipped-accounts` (skipped at planning) and
//!   the trailer of the same name (everything skipped, also regions refused during the
//!   scan), with `aws-flightsql-skipped-count`.
//!
//! Headers and trailers stay small (clients cap them around 8 KB): they list the skips that
//! fit in [`MAX_HEADER_BYTES`] and always give the count.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tonic::body::Body;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::server::NamedService;
use tower::Service;

use crate::table::skips::to_json;
use crate::table::{SkippedAccount, SkippedAccounts, SKIPPED_ACCOUNTS_KEY};

/// The header and trailer listing the skipped accounts (JSON).
pub const SKIPPED_HEADER: &str = "aws-flightsql-skipped-accounts";
/// The header and trailer counting them.
pub const SKIPPED_COUNT_HEADER: &str = "aws-flightsql-skipped-count";
/// The most bytes of skips a header or trailer lists.
pub const MAX_HEADER_BYTES: usize = 4096;

/// `schema` with the skips in its metadata (unchanged when there are none).
pub fn with_skips(schema: SchemaRef, skipped: &[SkippedAccount]) -> SchemaRef {
    if skipped.is_empty() {
        return schema;
    }
    let mut metadata: HashMap<String, String> = schema.metadata().clone();
    metadata.insert(SKIPPED_ACCOUNTS_KEY.to_owned(), to_json(skipped));
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata))
}

/// The FlightInfo `app_metadata` of the skips: `{"aws_flightsql.skipped_accounts": [...]}`;
/// empty when there are none.
pub fn app_metadata(skipped: &[SkippedAccount]) -> Bytes {
    if skipped.is_empty() {
        return Bytes::new();
    }
    Bytes::from(format!(
        "{{\"{SKIPPED_ACCOUNTS_KEY}\":{}}}",
        to_json(skipped)
    ))
}

/// Adds the header (or trailer) pair of `skipped` to `map`; nothing when there are none.
pub fn insert_headers(map: &mut http::HeaderMap, skipped: &[SkippedAccount]) {
    if skipped.is_empty() {
        return;
    }
    // The skips that fit, in order.
    let mut fitting = skipped.len();
    while fitting > 0 && to_json(&skipped[..fitting]).len() > MAX_HEADER_BYTES {
        fitting -= 1;
    }
    if let Ok(value) = http::HeaderValue::from_str(&to_json(&skipped[..fitting])) {
        map.insert(SKIPPED_HEADER, value);
    }
    map.insert(SKIPPED_COUNT_HEADER, http::HeaderValue::from(skipped.len()));
}

/// Adds the response headers of the skips known now (those of the planning).
pub fn answer_headers(metadata: &mut MetadataMap, skipped: &[SkippedAccount]) {
    let mut headers = http::HeaderMap::new();
    insert_headers(&mut headers, skipped);
    for (name, value) in headers.iter() {
        if let Ok(value) = AsciiMetadataValue::try_from(value.as_bytes()) {
            if let Ok(key) = tonic::metadata::AsciiMetadataKey::from_bytes(name.as_ref()) {
                metadata.insert(key, value);
            }
        }
    }
}

/// The skips of a DoGet, put in its response's extensions for [`WithSkipTrailers`].
#[derive(Debug, Clone)]
pub struct SkipTrailers(pub Arc<SkippedAccounts>);

/// A gRPC service whose answers carry, in their trailers, the accounts their query skipped
/// (an answer with [`SkipTrailers`] in its extensions). tonic ends a successful stream with
/// `grpc-status` only; this adds the skips to that trailer frame.
#[derive(Debug, Clone)]
pub struct WithSkipTrailers<S>(pub S);

impl<S: NamedService> NamedService for WithSkipTrailers<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for WithSkipTrailers<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let Some(SkipTrailers(skipped)) = response.extensions().get::<SkipTrailers>().cloned()
            else {
                return Ok(response);
            };
            Ok(response.map(|inner| Body::new(TrailedBody { inner, skipped })))
        })
    }
}

/// A response body whose trailers get the skips.
struct TrailedBody {
    inner: Body,
    skipped: Arc<SkippedAccounts>,
}

impl HttpBody for TrailedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                insert_headers(&mut trailers, &self.skipped.list());
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::SkipReason;

    fn skip(i: usize) -> SkippedAccount {
        SkippedAccount {
            account: format!("{:012}", 100000000000u64 + i as u64),
            reason: SkipReason::AssumeRole,
            role_arn: Some(format!("arn:aws:iam::{i:012}:role/reader")),
            region: None,
            code: Some("AccessDenied".into()),
            request_id: Some(format!("req-{i}")),
            message: "x".repeat(200),
        }
    }

    #[test]
    fn headers_list_what_fits_and_always_count() {
        let many: Vec<SkippedAccount> = (1..=100).map(skip).collect();
        let mut map = http::HeaderMap::new();
        insert_headers(&mut map, &many);
        assert_eq!(map[SKIPPED_COUNT_HEADER], "100");
        let listed = map[SKIPPED_HEADER].to_str().unwrap();
        assert!(listed.len() <= MAX_HEADER_BYTES, "{}", listed.len());
        let parsed: serde_json::Value = serde_json::from_str(listed).unwrap();
        assert!(!parsed.as_array().unwrap().is_empty());
        let mut none = http::HeaderMap::new();
        insert_headers(&mut none, &[]);
        assert!(none.is_empty());
    }

    #[test]
    fn schema_metadata_and_app_metadata_carry_the_skips() {
        let schema = Arc::new(Schema::empty());
        assert!(with_skips(Arc::clone(&schema), &[]).metadata().is_empty());
        let with = with_skips(schema, &[skip(2)]);
        let listed: serde_json::Value =
            serde_json::from_str(&with.metadata()[SKIPPED_ACCOUNTS_KEY]).unwrap();
        assert_eq!(listed[0]["code"], "AccessDenied");
        let app: serde_json::Value = serde_json::from_slice(&app_metadata(&[skip(2)])).unwrap();
        assert_eq!(app[SKIPPED_ACCOUNTS_KEY][0]["request_id"], "req-2");
        assert!(app_metadata(&[]).is_empty());
    }
}
