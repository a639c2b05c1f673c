//! Real servers on 127.0.0.1 and clients that talk to them over the socket.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// Serves `router` on a fresh loopback port, with peer addresses available to extractors.
pub async fn serve_axum(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// An answer from a server: status, headers and the whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// An HTTP/1.1 client over loopback.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl HttpClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// A request builder for `path` on this server.
    pub fn request(&self, method: http::Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &[u8])]) -> Answer {
        let mut builder = self.request(http::Method::GET, path);
        for (name, value) in headers {
            builder = builder.header(*name, http::HeaderValue::from_bytes(value).unwrap());
        }
        self.send(builder.body(Full::default()).unwrap()).await
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Answer {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.client.request(request),
        )
        .await
        .expect("server answered within 10 s")
        .expect("request reached the server");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

// ---------------------------------------------------------------------------------------
// A hand-written tonic service (no protoc): `test.Probe/Whoami` answers with whatever the
// test's `describe` function reads from the request extensions.
// ---------------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoamiRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoamiReply {
    #[prost(string, tag = "1")]
    pub caller: String,
}

pub type Describe = Arc<dyn Fn(&http::Extensions) -> String + Send + Sync>;

/// The gRPC server side of `test.Probe`.
#[derive(Clone)]
pub struct ProbeServer {
    describe: Describe,
}

impl ProbeServer {
    pub fn new(describe: impl Fn(&http::Extensions) -> String + Send + Sync + 'static) -> Self {
        Self {
            describe: Arc::new(describe),
        }
    }
}

impl tonic::server::NamedService for ProbeServer {
    const NAME: &'static str = "test.Probe";
}

impl tower::Service<Request<tonic::body::Body>> for ProbeServer {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = futures_boxed::BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let describe = self.describe.clone();
        match request.uri().path() {
            "/test.Probe/Whoami" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Whoami(describe), request).await)
            }),
            _ => Box::pin(
                async move { Ok(tonic::Status::unimplemented("no such method").into_http()) },
            ),
        }
    }
}

struct Whoami(Describe);

impl tonic::server::UnaryService<WhoamiRequest> for Whoami {
    type Response = WhoamiReply;
    type Future = futures_boxed::BoxFuture<Result<tonic::Response<WhoamiReply>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<WhoamiRequest>) -> Self::Future {
        let caller = (self.0)(request.extensions());
        Box::pin(async move { Ok(tonic::Response::new(WhoamiReply { caller })) })
    }
}

mod futures_boxed {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// Serves `ProbeServer` behind `layer` with tonic's own server on a fresh loopback port.
pub async fn serve_tonic<L, ResBody>(layer: L, probe: ProbeServer) -> SocketAddr
where
    L: tower::Layer<tonic::service::Routes> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request<tonic::body::Body>, Response = Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<Request<tonic::body::Body>>>::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(probe)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// A tonic client for `test.Probe` that sends `metadata` with each call.
pub async fn call_whoami(
    addr: SocketAddr,
    metadata: &[(&'static str, &str)],
) -> Result<String, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(WhoamiRequest {});
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    let response: tonic::Response<WhoamiReply> = grpc
        .unary(
            request,
            http::uri::PathAndQuery::from_static("/test.Probe/Whoami"),
            tonic_prost::ProstCodec::default(),
        )
        .await?;
    Ok(response.into_inner().caller)
}
