//! The real PostgreSQL and Redis servers `scripts/test.sh` starts, and names that keep tests
//! running in parallel against them apart.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn required(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: this test needs a real server. Run the suite with \
             `bash scripts/test.sh` (it installs and starts PostgreSQL and Redis and exports \
             TOLLGATE_POSTGRES_URL and TOLLGATE_REDIS_URL), or export {variable} yourself."
        )
    })
}

/// `TOLLGATE_POSTGRES_URL`; panics with directions when unset (never skips).
pub fn postgres_url() -> String {
    required("TOLLGATE_POSTGRES_URL")
}

/// `TOLLGATE_REDIS_URL`; panics with directions when unset (never skips).
pub fn redis_url() -> String {
    required("TOLLGATE_REDIS_URL")
}

/// A name no other test (in this run or an earlier one on the same server) uses.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{what}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP proxy to a server that can be cut, closing every connection through it and refusing
/// new ones, and restarted on the same port: an outage for one client without stopping the
/// server other tests use.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy to `upstream` on a fresh loopback port.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn serve(&self, listener: TcpListener) {
        let registry = Arc::clone(&self.tasks);
        let upstream = self.upstream;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(relay);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Stops listening and closes every relayed connection; returns once they are closed.
    pub async fn cut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Listens again on the same port, after [`cut`](Self::cut).
    pub async fn restore(&self) {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if attempts < 500 => {
                    let _ = error;
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(error) => panic!("cannot listen on {} again: {error}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// The real OpenID provider (`oidc-provider` from npm) `scripts/test.sh` starts: its plain
/// HTTP issuer (`TOLLGATE_OIDC_ISSUER`); panics with directions when unset (never skips).
pub fn oidc_issuer() -> String {
    required("TOLLGATE_OIDC_ISSUER")
}

/// The same provider's issuer over HTTPS (`TOLLGATE_OIDC_TLS_ISSUER`), its certificate signed
/// by the test CA at `TOLLGATE_OIDC_CA`.
pub fn oidc_tls_issuer() -> String {
    required("TOLLGATE_OIDC_TLS_ISSUER")
}

/// The PEM of the test CA that signed the provider's TLS certificate.
pub fn oidc_ca_pem() -> Vec<u8> {
    let path = required("TOLLGATE_OIDC_CA");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The client-credentials client and the audience of the provider's access tokens.
pub fn oidc_client() -> (String, String, String) {
    (
        required("TOLLGATE_OIDC_CLIENT_ID"),
        required("TOLLGATE_OIDC_CLIENT_SECRET"),
        required("TOLLGATE_OIDC_AUDIENCE"),
    )
}

/// `TOLLGATE_REDIS_CLUSTER_URLS`: every node of the Redis Cluster, comma-separated; panics with
/// directions when unset (never skips).
pub fn redis_cluster_urls() -> Vec<String> {
    required("TOLLGATE_REDIS_CLUSTER_URLS")
        .split(',')
        .map(str::to_owned)
        .collect()
}
