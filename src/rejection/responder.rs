use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Extensions, HeaderMap, HeaderValue, Method, Response, Uri, Version};

use super::{Rejection, render};

/// A borrowed view of a request's head: what a [`RejectionResponder`], a rate-limit key
/// extractor or a cost function may look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    version: Version,
}

impl<'a> RequestHead<'a> {
    /// Borrows the head of `request`.
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
            version: request.version(),
        }
    }

    /// The request's HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (identities, connection info).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// Whether the request is a gRPC call: HTTP/2 with a `content-type` of
    /// `application/grpc` or `application/grpc+…` (gRPC runs on HTTP/2 only), or gRPC-Web
    /// (`application/grpc-web…`, any version: browsers speak HTTP/1.1 too). A plain HTTP/1.1
    /// request that merely claims `application/grpc` is not one, so it gets the HTTP answer.
    pub fn is_grpc(&self) -> bool {
        let Some(ct) = self.headers.get(CONTENT_TYPE) else {
            return false;
        };
        let ct = ct.as_bytes();
        let Some(rest) = ct.strip_prefix(b"application/grpc") else {
            return false;
        };
        if rest.starts_with(b"-web") {
            return true;
        }
        self.version == Version::HTTP_2 && matches!(rest.first(), None | Some(b'+' | b';'))
    }
}

/// Turns a [`Rejection`] into a response.
///
/// Implemented by [`DefaultResponder`] and by any
/// `Fn(&Rejection, &RequestHead<'_>) -> http::Response<Bytes>`. The middleware calls it only
/// for refused requests, and adds the rejection to the response's extensions afterwards.
///
/// ```
/// use bytes::Bytes;
/// use tollgate::rejection::{Rejection, RejectionResponder, RequestHead};
///
/// let plain_text = |rejection: &Rejection, _: &RequestHead<'_>| {
///     let mut response = http::Response::new(Bytes::from(rejection.kind().code()));
///     *response.status_mut() = rejection.kind().status();
///     response
/// };
/// # fn assert_responder(_: impl RejectionResponder) {}
/// assert_responder(plain_text);
/// ```
pub trait RejectionResponder {
    /// Renders `rejection` for the refused `request`.
    fn respond(&self, rejection: &Rejection, request: &RequestHead<'_>) -> Response<Bytes>;
}

impl<F> RejectionResponder for F
where
    F: Fn(&Rejection, &RequestHead<'_>) -> Response<Bytes>,
{
    fn respond(&self, rejection: &Rejection, request: &RequestHead<'_>) -> Response<Bytes> {
        self(rejection, request)
    }
}

/// Which wire form the [`DefaultResponder`] answers in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// gRPC for gRPC requests ([`RequestHead::is_grpc`]: HTTP/2 and `application/grpc`, or
    /// gRPC-Web), HTTP otherwise. Right for servers that serve axum and tonic on one port.
    /// Both forms carry `Cache-Control: no-store`.
    #[default]
    Auto,
    /// Always problem+json over HTTP.
    Http,
    /// Always a gRPC trailers-only response. A plain HTTP 429 would reach a gRPC client as
    /// `UNAVAILABLE` under the gRPC HTTP-to-status mapping; this form says `RESOURCE_EXHAUSTED`.
    Grpc,
}

/// The standard rendering: RFC 9457 problem+json and `WWW-Authenticate` for HTTP, trailers-only
/// `grpc-status` for gRPC. See the [module docs](super).
#[derive(Debug, Clone, Default)]
pub struct DefaultResponder {
    flavor: Flavor,
    realm: Option<Arc<str>>,
}

impl DefaultResponder {
    /// Detects gRPC from the request's content type.
    pub fn new() -> Self {
        Self::default()
    }

    /// Always answers in the HTTP form.
    pub fn for_http() -> Self {
        Self::new().flavor(Flavor::Http)
    }

    /// Always answers in the gRPC form.
    pub fn for_grpc() -> Self {
        Self::new().flavor(Flavor::Grpc)
    }

    /// Sets the wire form.
    #[must_use]
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Sets the `realm` parameter of `WWW-Authenticate` challenges.
    #[must_use]
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.realm = Some(Arc::from(realm.as_ref()));
        self
    }
}

impl RejectionResponder for DefaultResponder {
    fn respond(&self, rejection: &Rejection, request: &RequestHead<'_>) -> Response<Bytes> {
        let grpc = match self.flavor {
            Flavor::Auto => request.is_grpc(),
            Flavor::Http => false,
            Flavor::Grpc => true,
        };
        if grpc {
            let grpc_web = request
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc-web"));
            let content_type = if grpc_web {
                HeaderValue::from_static("application/grpc-web")
            } else {
                HeaderValue::from_static("application/grpc")
            };
            render::grpc(rejection, content_type)
        } else {
            render::http(rejection, self.realm.as_deref())
        }
    }
}
