//! Reads the next page's `NextToken` from a `DescribeStoreImageTasks` response as soon as
//! its body has arrived, before the page is decoded (the SDK's decoder took about a
//! millisecond of CPU for 200 tasks, the server's one-pass decoder about half that), so the pager
//! can ask for the next page while this one is being decoded.
//!
//! An SDK interceptor wraps the body of a successful (HTTP 200) answer; when the body ends,
//! the token is found by searching from the end for `<nextToken>` (no other element of
//! this response has that name, and text content cannot contain `<`) and unescaped by
//! aws-smithy-xml, the SDK's own XML decoder, then sent over a oneshot channel. The pager
//! still checks it against the token the decoder reads and asks again with that token
//! if they differ, so this is only ever a head start, never the source of truth.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_sdk_ec2::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ec2::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// What the body said about the next page: `Some(token)`, or `None` on the last page.
pub(crate) type NextToken = Option<String>;

/// Where the token goes: taken by the first 200 answer whose body is read to its end (an
/// attempt whose body breaks leaves it for the retry).
type Slot = Arc<Mutex<Option<oneshot::Sender<NextToken>>>>;

/// Sends the next page's token, read from the raw body of the first complete 200 answer.
#[derive(Debug)]
pub(crate) struct EarlyToken(Slot);

impl EarlyToken {
    /// The interceptor and the receiving end. The receiver errs if no complete successful
    /// body was read (error answers, broken connections only).
    pub(crate) fn channel() -> (Self, oneshot::Receiver<NextToken>) {
        let (tx, rx) = oneshot::channel();
        (EarlyToken(Arc::new(Mutex::new(Some(tx)))), rx)
    }
}

impl Intercept for EarlyToken {
    fn name(&self) -> &'static str {
        "EarlyToken"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let sent = self.0.lock().expect("early token poisoned").is_none();
        if context.response().status().as_u16() != 200 || sent {
            return Ok(());
        }
        let body = context.response_mut().body_mut();
        let inner = std::mem::replace(body, SdkBody::taken());
        *body = SdkBody::from_body_1_x(TokenTap::new(inner, Arc::clone(&self.0)));
        Ok(())
    }
}

/// A response body that keeps (reference-counted) handles on its chunks and, at its end,
/// sends the token found in them.
struct TokenTap {
    inner: SdkBody,
    chunks: Vec<Bytes>,
    /// `None` once the body has ended (or failed).
    slot: Option<Slot>,
}

impl TokenTap {
    fn new(inner: SdkBody, slot: Slot) -> Self {
        TokenTap {
            inner,
            chunks: Vec::new(),
            slot: Some(slot),
        }
    }
}

impl Body for TokenTap {
    type Data = Bytes;
    type Error = <SdkBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.chunks.push(data.clone());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                let Some(slot) = this.slot.take() else {
                    return Poll::Ready(None);
                };
                let body = concat(std::mem::take(&mut this.chunks));
                if let Some(tx) = slot.lock().expect("early token poisoned").take() {
                    // The receiver may be gone (the consumer stopped); nothing to do then.
                    let _ = tx.send(next_token(&body));
                }
                // Yield once before the page is decoded: the pager, woken by the send,
                // lands in this worker's next-task slot, where no other worker can take it;
                // yielding lets it send the next request first instead of after the decoding.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Some(Err(e))) => {
                // This attempt's body broke: a retry's may still send the token.
                this.slot = None;
                this.chunks.clear();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not over until the token has been sent.
        self.slot.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().expect("one chunk");
    }
    let mut all = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in chunks {
        all.extend_from_slice(&chunk);
    }
    all.freeze()
}

/// The `nextToken` of a `DescribeStoreImageTasks` response body, unescaped; `None` when it
/// has none (or an empty one: the last page).
fn next_token(body: &[u8]) -> NextToken {
    const OPEN: &[u8] = b"<nextToken>";
    const CLOSE: &[u8] = b"</nextToken>";
    let start = memchr::memmem::rfind(body, OPEN)?;
    let end = start + OPEN.len() + memchr::memmem::find(&body[start + OPEN.len()..], CLOSE)?;
    let element = std::str::from_utf8(&body[start..end + CLOSE.len()]).ok()?;
    let mut doc = aws_smithy_xml::decode::Document::new(element);
    let mut root = doc.root_element().ok()?;
    let token = aws_smithy_xml::decode::try_data(&mut root).ok()?;
    (!token.is_empty()).then(|| token.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_unescapes_the_token() {
        let body = b"<DescribeStoreImageTasksResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n\
            <requestId>r</requestId>\n<storeImageTaskResultSet><item><amiId>ami-1</amiId></item>\
            </storeImageTaskResultSet>\n<nextToken>a+b/c=&amp;d</nextToken>\n\
            </DescribeStoreImageTasksResponse>";
        assert_eq!(next_token(body).as_deref(), Some("a+b/c=&d"));
    }

    #[test]
    fn the_last_page_has_none() {
        assert_eq!(next_token(b"<R><storeImageTaskResultSet/></R>"), None);
        assert_eq!(next_token(b"<R><nextToken></nextToken></R>"), None);
        assert_eq!(next_token(b"<R><nextToken/></R>"), None);
        // Cut off: no token rather than a wrong one.
        assert_eq!(next_token(b"<R><nextToken>abc"), None);
    }

    use http_body_util::BodyExt;

    /// A body arriving in these chunks, then failing if `fail` is set.
    fn chunked(chunks: &[&'static str], fail: bool) -> SdkBody {
        let frames = chunks
            .iter()
            .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c.as_bytes()))))
            .chain(fail.then(|| Err(std::io::Error::other("connection reset"))));
        SdkBody::from_body_1_x(http_body_util::StreamBody::new(futures::stream::iter(
            frames.collect::<Vec<_>>(),
        )))
    }

    #[tokio::test]
    async fn the_token_is_sent_when_the_body_ends_and_the_bytes_pass_unchanged() {
        let (early, rx) = EarlyToken::channel();
        // The token is split across chunks, as a network read may split it.
        let parts = ["<R><items/><nextTo", "ken>t1</next", "Token></R>"];
        let tap = TokenTap::new(chunked(&parts, false), Arc::clone(&early.0));
        assert!(!tap.is_end_stream());
        let bytes = tap.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, parts.concat().as_bytes());
        assert_eq!(rx.await.unwrap().as_deref(), Some("t1"));
    }

    #[tokio::test]
    async fn a_broken_body_leaves_the_token_to_the_retry() {
        let (early, rx) = EarlyToken::channel();
        let broken = TokenTap::new(chunked(&["<R><nextToken>t"], true), Arc::clone(&early.0));
        assert!(broken.collect().await.is_err());
        let retry = TokenTap::new(
            chunked(&["<R><nextToken>t2</nextToken></R>"], false),
            Arc::clone(&early.0),
        );
        retry.collect().await.unwrap();
        assert_eq!(rx.await.unwrap().as_deref(), Some("t2"));
    }
}
