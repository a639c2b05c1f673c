//! The HTTPS client discovery and JWKS fetches go through.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::jwt::{FetchError, JwksDocument, JwksFetcher};

/// An HTTP client for identity providers: HTTPS with rustls (aws-lc-rs), a timeout on every
/// fetch and a cap on every body.
///
/// - **Roots**: the Mozilla roots of `webpki-roots` by default,
///   [`native_roots`](HttpClientBuilder::native_roots) for the operating system's, and
///   [`add_root_pem`](HttpClientBuilder::add_root_pem) for a private CA.
/// - **Plain HTTP** only to loopback hosts (`localhost`, `127.0.0.0/8`, `::1`): a sidecar
///   or a test provider. Anything else needs
///   [`allow_insecure_http`](HttpClientBuilder::allow_insecure_http), and means whoever sits
///   on the network path can hand you keys that sign for anyone.
///
/// Cloning is cheap (one connection pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    settings: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    timeout: Duration,
    max_body: usize,
    insecure_http: bool,
}

/// Where trusted roots come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roots {
    Webpki,
    Native,
    None,
}

/// Configures an [`HttpClient`]; see [`HttpClient::builder`].
#[must_use]
#[derive(Debug)]
pub struct HttpClientBuilder {
    roots: Roots,
    extra: Vec<CertificateDer<'static>>,
    timeout: Duration,
    max_body: usize,
    insecure_http: bool,
}

/// Why an [`HttpClient`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// A PEM given to [`add_root_pem`](HttpClientBuilder::add_root_pem) holds no certificate
    /// or one that cannot be a root.
    InvalidRoot,
    /// No root at all: every HTTPS fetch would fail.
    NoRoots,
    /// TLS could not be set up.
    Tls(rustls::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRoot => f.write_str("the PEM holds no usable CA certificate"),
            Self::NoRoots => f.write_str("no trusted root certificate"),
            Self::Tls(error) => write!(f, "TLS setup failed: {error}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl HttpClient {
    /// A client trusting the Mozilla roots, with a 10 s timeout and a 256 KiB body cap.
    ///
    /// # Panics
    ///
    /// Never: the built-in roots always load. (Fetching needs a tokio runtime.)
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the webpki roots always make a client")
    }

    /// Starts configuring a client.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            roots: Roots::Webpki,
            extra: Vec::new(),
            timeout: Duration::from_secs(10),
            max_body: 256 * 1024,
            insecure_http: false,
        }
    }

    /// Checks that `uri` may be fetched: `https`, or `http` to a loopback host (or any host
    /// once insecure HTTP is allowed).
    ///
    /// # Errors
    ///
    /// Why not, as a [`FetchError`].
    pub fn check_uri(&self, uri: &http::Uri) -> Result<(), FetchError> {
        match uri.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if self.settings.insecure_http || is_loopback(uri) => Ok(()),
            Some("http") => Err(FetchError::new(
                "plain HTTP to a host that is not loopback (allow_insecure_http to allow it)",
            )),
            _ => Err(FetchError::new("not an http(s) URL")),
        }
    }

    /// GETs `uri`: the response headers and body of a `2xx` answer, within the timeout and
    /// the body cap.
    ///
    /// # Errors
    ///
    /// A refused URL, a connection or TLS failure, a non-`2xx` status, a body over the cap,
    /// or the timeout.
    pub async fn get(&self, uri: &http::Uri) -> Result<(http::HeaderMap, Bytes), FetchError> {
        self.check_uri(uri)?;
        let max_body = self.settings.max_body;
        let fetch = async {
            let response = self
                .client
                .get(uri.clone())
                .await
                .map_err(|e| FetchError::new(format!("GET {uri}: {}", chain(&e))))?;
            if !response.status().is_success() {
                return Err(FetchError::new(Status(response.status())));
            }
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| FetchError::new(format!("GET {uri}: {e}")))?
                .to_bytes();
            Ok((parts.headers, body))
        };
        tokio::time::timeout(self.settings.timeout, fetch)
            .await
            .map_err(|_| FetchError::new(format!("GET {uri} timed out")))?
    }

    /// A [`JwksFetcher`] for the JWKS at `uri` (without discovery).
    ///
    /// # Errors
    ///
    /// If `uri` may not be fetched ([`check_uri`](Self::check_uri)).
    pub fn jwks(&self, uri: http::Uri) -> Result<JwksUri, FetchError> {
        self.check_uri(&uri)?;
        Ok(JwksUri {
            client: self.clone(),
            uri,
        })
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A non-`2xx` answer, kept apart so discovery can tell "not here" from "down".
#[derive(Debug)]
pub(crate) struct Status(pub(crate) http::StatusCode);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered {}", self.0)
    }
}

impl std::error::Error for Status {}

/// The error and its sources on one line (hyper's own message is only "client error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

fn is_loopback(uri: &http::Uri) -> bool {
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl HttpClientBuilder {
    /// Trusts the operating system's roots instead of the built-in Mozilla ones.
    pub fn native_roots(mut self) -> Self {
        self.roots = Roots::Native;
        self
    }

    /// Trusts no public root: only the CAs added with [`add_root_pem`](Self::add_root_pem)
    /// (a private PKI).
    pub fn no_public_roots(mut self) -> Self {
        self.roots = Roots::None;
        self
    }

    /// Also trusts the CA certificates in `pem` (a private PKI, a test CA).
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRoot`] if `pem` holds no certificate.
    pub fn add_root_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, ClientError> {
        let before = self.extra.len();
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            self.extra.push(cert.map_err(|_| ClientError::InvalidRoot)?);
        }
        if self.extra.len() == before {
            return Err(ClientError::InvalidRoot);
        }
        Ok(self)
    }

    /// How long one fetch may take, connection, headers and body (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest body accepted (default 256 KiB); a larger one fails the fetch.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Allows plain HTTP to any host. Keys fetched over plain HTTP can be replaced by
    /// anyone on the path: only for a network you trust entirely.
    pub fn allow_insecure_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRoot`] for an added CA that cannot be a root,
    /// [`ClientError::NoRoots`] when no root is trusted at all, [`ClientError::Tls`] if TLS
    /// cannot be configured.
    pub fn build(self) -> Result<HttpClient, ClientError> {
        let mut roots = RootCertStore::empty();
        match self.roots {
            Roots::Webpki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Roots::Native => {
                let (added, _ignored) =
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                let _ = added;
            }
            Roots::None => {}
        }
        for cert in self.extra {
            roots.add(cert).map_err(|_| ClientError::InvalidRoot)?;
        }
        if roots.is_empty() {
            return Err(ClientError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ClientError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            settings: Arc::new(Settings {
                timeout: self.timeout,
                max_body: self.max_body,
                insecure_http: self.insecure_http,
            }),
        })
    }
}

/// A [`JwksFetcher`] for one JWKS URL on an [`HttpClient`]; see [`HttpClient::jwks`].
#[derive(Debug, Clone)]
pub struct JwksUri {
    client: HttpClient,
    uri: http::Uri,
}

impl JwksFetcher for JwksUri {
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<JwksDocument, FetchError>> + Send + 'static>>;

    fn fetch(&self) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (headers, body) = this.client.get(&this.uri).await?;
            Ok(JwksDocument::from_response(&headers, body))
        })
    }
}
