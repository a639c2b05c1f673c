//! Response bodies: how a rejection's bytes become the service's own body type.
//!
//! A rejection needs a body of its own (problem+json) while the inner service's response keeps
//! its body untouched. Every tollgate middleware answers with the inner service's body type, so
//! stacked layers and the frameworks around them see one body type, not a wrapper per layer
//! (axum's `Body::new` and tonic's `Body::new` box any body that is not their own). What a
//! middleware needs of that type is [`RejectionBody`]: a way to hold a rejection's bytes.
//!
//! It is implemented for `axum::body::Body` (feature `axum`), `tonic::body::Body` (feature
//! `tonic`), `http_body_util::Full`, `BoxBody` and `UnsyncBoxBody`, `String`, and for
//! [`ResponseBody`], the wrapper that fits any other body: map the inner service's responses
//! with [`ResponseBody::new`] (for example with tower-http's `MapResponseBodyLayer`).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tollgate::body::RejectionBody;
//!
//! let body: Full<Bytes> = RejectionBody::from_rejection(Bytes::from_static(b"{}"));
//! # let _ = body;
//! ```

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::{BoxBody, MapErr, UnsyncBoxBody};
use http_body_util::{BodyExt, Full};
use pin_project_lite::pin_project;

/// A response body type that can hold a rejection's bytes.
///
/// Every tollgate middleware answers `Response<B>` for its inner service's body type `B`, so
/// `B` must implement this trait. See the [module docs](self) for the implementations and for
/// the wrapper that fits any other body.
#[diagnostic::on_unimplemented(
    message = "tollgate cannot put a rejection's bytes into response bodies of type `{Self}`",
    label = "the inner service answers with this body type",
    note = "with axum or tonic, enable tollgate's `axum` or `tonic` feature; for any other body, \
            map the inner service's responses into `tollgate::body::ResponseBody::new`"
)]
pub trait RejectionBody: Sized {
    /// A complete body holding `bytes` (empty when `bytes` is).
    fn from_rejection(bytes: Bytes) -> Self;
}

impl<B> RejectionBody for ResponseBody<B> {
    fn from_rejection(bytes: Bytes) -> Self {
        Self::full(bytes)
    }
}

impl<D> RejectionBody for Full<D>
where
    D: Buf + From<Bytes>,
{
    fn from_rejection(bytes: Bytes) -> Self {
        Full::new(D::from(bytes))
    }
}

/// `bytes` as a complete body with any error type: it never fails.
fn never_failing<D, E>(bytes: Bytes) -> MapErr<Full<D>, fn(Infallible) -> E>
where
    D: Buf + From<Bytes>,
{
    Full::new(D::from(bytes)).map_err(|never| match never {})
}

impl<D, E> RejectionBody for BoxBody<D, E>
where
    D: Buf + From<Bytes> + Send + Sync + 'static,
    E: 'static,
{
    fn from_rejection(bytes: Bytes) -> Self {
        never_failing(bytes).boxed()
    }
}

impl<D, E> RejectionBody for UnsyncBoxBody<D, E>
where
    D: Buf + From<Bytes> + Send + 'static,
    E: 'static,
{
    fn from_rejection(bytes: Bytes) -> Self {
        never_failing(bytes).boxed_unsync()
    }
}

/// Bytes that are not UTF-8 (only a custom responder can make them) are replaced as by
/// [`String::from_utf8_lossy`].
impl RejectionBody for String {
    fn from_rejection(bytes: Bytes) -> Self {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(feature = "axum")]
impl RejectionBody for axum_core::body::Body {
    fn from_rejection(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Self::empty()
        } else {
            Self::from(bytes)
        }
    }
}

#[cfg(feature = "tonic")]
impl RejectionBody for tonic::body::Body {
    fn from_rejection(bytes: Bytes) -> Self {
        // `Body::new` answers its own empty body for one that has ended (no bytes): no box.
        Self::new(Full::new(bytes))
    }
}

pin_project! {
    /// Either the inner service's body or a rejection's: the [`RejectionBody`] that fits any
    /// body type. See the [module docs](self).
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Rejection { bytes: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A complete body holding `bytes`.
    pub fn full(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        Self {
            kind: Kind::Rejection { bytes },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Rejection { bytes } => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Rejection { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Rejection { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test]
    async fn inner_body_passes_through_and_rejection_body_is_exact() {
        let inner = ResponseBody::new(Full::new(Bytes::from_static(b"hello")));
        assert_eq!(inner.size_hint().exact(), Some(5));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "hello");

        let rejection: ResponseBody<Full<Bytes>> = ResponseBody::full(Bytes::from_static(b"no"));
        assert_eq!(rejection.size_hint().exact(), Some(2));
        assert!(!rejection.is_end_stream());
        assert_eq!(rejection.collect().await.unwrap().to_bytes(), "no");

        let empty: ResponseBody<Full<Bytes>> = ResponseBody::full(Bytes::new());
        assert!(empty.is_end_stream());
    }

    async fn holds<B>(bytes: &'static [u8]) -> Bytes
    where
        B: RejectionBody + Body,
        B::Error: std::fmt::Debug,
    {
        let body = B::from_rejection(Bytes::from_static(bytes));
        assert_eq!(body.size_hint().exact(), Some(bytes.len() as u64));
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn every_rejection_body_holds_exactly_the_rejection_bytes() {
        const JSON: &[u8] = br#"{"type":"about:blank","status":401}"#;
        for bytes in [JSON, b""] {
            assert_eq!(holds::<Full<Bytes>>(bytes).await, bytes);
            assert_eq!(holds::<ResponseBody<Full<Bytes>>>(bytes).await, bytes);
            assert_eq!(holds::<BoxBody<Bytes, std::io::Error>>(bytes).await, bytes);
            assert_eq!(
                holds::<UnsyncBoxBody<Bytes, std::io::Error>>(bytes).await,
                bytes
            );
            assert_eq!(holds::<String>(bytes).await, bytes);
            #[cfg(feature = "axum")]
            assert_eq!(holds::<axum_core::body::Body>(bytes).await, bytes);
            #[cfg(feature = "tonic")]
            assert_eq!(holds::<tonic::body::Body>(bytes).await, bytes);
        }
        // Only a custom responder can make bytes that are not UTF-8; a `String` body replaces them.
        let text = String::from_rejection(Bytes::from_static(b"a\xffb"));
        assert_eq!(text, "a\u{fffd}b");
    }
}
