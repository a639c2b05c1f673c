//! The response body of every tollgate middleware.
//!
//! A rejection needs a body of its own (problem+json) while the inner service's response keeps
//! its body untouched. Rather than ask the user's body type for a constructor, the middleware
//! wraps it: [`ResponseBody`] is either the inner body or the rejection's bytes. `Data` is the
//! inner body's `Data`, so it works unchanged with `axum::body::Body`, `tonic::body::Body`,
//! `hyper::body::Incoming` and `http_body_util::Full<Bytes>`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's body or a rejection's. See the [module docs](self).
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
}
