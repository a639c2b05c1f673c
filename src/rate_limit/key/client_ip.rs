//! [`ClientIp`]: the client's address (the peer, or trusted proxies' `X-Forwarded-For`), counted
//! per network.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Extensions;

use super::{Key, KeyExtractor};
use crate::rate_limit::ConfigError;
use crate::rejection::RequestHead;

type PeerFn = Arc<dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync>;

/// The client's IP address: the peer of the connection, or, only behind proxies you list, the
/// right-most address in `X-Forwarded-For` that is not one of them. IPv6 clients are counted
/// per /64 network by default ([`ipv6_prefix`](ClientIp::ipv6_prefix)), IPv4 clients per
/// address ([`ipv4_prefix`](ClientIp::ipv4_prefix)).
///
/// # Where the peer address comes from
///
/// By default from the request extensions, where servers put it:
///
/// - a `std::net::SocketAddr` or `std::net::IpAddr` (insert the accepted socket's address
///   with plain hyper);
/// - **axum** (feature `axum`): `ConnectInfo<SocketAddr>`, when served with
///   `into_make_service_with_connect_info::<SocketAddr>()`;
/// - **tonic** (feature `tonic`): `TcpConnectInfo`, which tonic's server inserts.
///
/// Elsewhere, [`peer_from`](ClientIp::peer_from) says where to look. A request with no address
/// at all has no key (the limiter's missing-key policy decides); the first one is logged at
/// ERROR with the cause (`tracing` feature), since it means every request goes that way.
///
/// # Deployment caveat: proxies
///
/// `X-Forwarded-For` is written by whoever sends the request. It is read only when the peer is
/// one of the [trusted proxies](ClientIp::trust_proxies), and then walked from the right: each
/// trusted hop is skipped and the first address that is not a trusted proxy is the client. What a
/// client wrote at the left of the header is never reached unless every hop after it is
/// trusted, so it cannot pick its own bucket. Behind a proxy you did not list, every client
/// shares the proxy's bucket; list exactly your own proxies.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use tollgate::rate_limit::{ClientIp, KeyExtractor, Key, RequestHead};
///
/// let ip = ClientIp::peer().trust_proxies(["10.0.0.0/8"])?;
/// let mut request = http::Request::builder()
///     .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
///     .body(())?;
/// request.extensions_mut().insert("10.1.2.3:443".parse::<SocketAddr>()?);
/// let client: IpAddr = "203.0.113.7".parse()?;
/// assert_eq!(ip.resolve(&RequestHead::of(&request)), Some(client));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientIp {
    peer: Option<PeerFn>,
    trusted: Arc<[IpRange]>,
    v4_prefix: u8,
    v6_prefix: u8,
}

/// The peer address where servers put it: a `SocketAddr` or `IpAddr`, axum's `ConnectInfo`,
/// tonic's `TcpConnectInfo`. The first request without any is logged.
fn default_peer(extensions: &Extensions) -> Option<IpAddr> {
    let found = extensions
        .get::<SocketAddr>()
        .map(SocketAddr::ip)
        .or_else(|| extensions.get::<IpAddr>().copied());
    #[cfg(feature = "axum")]
    let found = found.or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    });
    #[cfg(feature = "tonic")]
    let found = found.or_else(|| {
        extensions
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.ip())
    });
    if found.is_none() {
        static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            log_error!(
                "ClientIp::peer found no peer address in the request: serve axum with \
                 into_make_service_with_connect_info::<SocketAddr>(), insert the peer's \
                 SocketAddr with hyper, or say where it is with ClientIp::peer_from; until then \
                 every request has no client-IP key"
            );
        }
    }
    found
}

/// One IPv6 host commonly holds a whole /64 (and can pick any address in it per request):
/// counted per /64 by default.
const DEFAULT_V6_PREFIX: u8 = 64;

impl ClientIp {
    /// The connection's peer address from a `SocketAddr` or `IpAddr` request extension.
    pub fn peer() -> Self {
        Self {
            peer: None,
            trusted: Arc::from([]),
            v4_prefix: 32,
            v6_prefix: DEFAULT_V6_PREFIX,
        }
    }

    /// The peer address as `peer` reads it from the request extensions (see the type docs for
    /// axum and tonic).
    pub fn peer_from<F>(peer: F) -> Self
    where
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        Self {
            peer: Some(Arc::new(peer)),
            trusted: Arc::from([]),
            v4_prefix: 32,
            v6_prefix: DEFAULT_V6_PREFIX,
        }
    }

    /// Counts IPv6 clients per network of this prefix length (default 64: one host commonly
    /// holds a /64 and can use a fresh address for every request, so a per-address key would
    /// give it a fresh quota each time). 48 or 56 group whole sites; 128 counts each address.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`] for a length outside 1..=128.
    pub fn ipv6_prefix(mut self, length: u8) -> Result<Self, ConfigError> {
        if !(1..=128).contains(&length) {
            return Err(ConfigError::InvalidPrefix { length });
        }
        self.v6_prefix = length;
        Ok(self)
    }

    /// Counts IPv4 clients per network of this prefix length (default 32: each address).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`] for a length outside 1..=32.
    pub fn ipv4_prefix(mut self, length: u8) -> Result<Self, ConfigError> {
        if !(1..=32).contains(&length) {
            return Err(ConfigError::InvalidPrefix { length });
        }
        self.v4_prefix = length;
        Ok(self)
    }

    /// The network `ip` is counted under: its first `ipv4_prefix` / `ipv6_prefix` bits.
    pub fn network(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.v4_prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.v6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Trusts `X-Forwarded-For` when it comes from one of `proxies` (addresses or CIDR ranges
    /// such as `"10.0.0.0/8"` or `"fd00::/8"`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidProxy`] for an entry that is not an address or a range.
    pub fn trust_proxies<I, T>(mut self, proxies: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut ranges: Vec<IpRange> = self.trusted.to_vec();
        for proxy in proxies {
            let proxy = proxy.as_ref();
            ranges.push(
                IpRange::parse(proxy).ok_or_else(|| ConfigError::InvalidProxy {
                    proxy: proxy.to_owned(),
                })?,
            );
        }
        self.trusted = ranges.into();
        Ok(self)
    }

    /// The client address of `request`, `None` without a peer address.
    pub fn resolve(&self, request: &RequestHead<'_>) -> Option<IpAddr> {
        let extensions = request.extensions();
        let peer = match &self.peer {
            Some(peer) => peer(extensions),
            None => default_peer(extensions),
        }?
        .to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        // The peer is our proxy: walk the forwarded chain from the right, skipping our proxies.
        let mut nearest = peer;
        let values = request.headers().get_all("x-forwarded-for");
        for value in values.iter().rev() {
            let Ok(value) = value.to_str() else {
                return Some(nearest);
            };
            for hop in value.rsplit(',') {
                let Some(ip) = parse_hop(hop.trim()) else {
                    // Garbage between us and the client: trust no further.
                    return Some(nearest);
                };
                if !self.is_trusted(ip) {
                    return Some(ip);
                }
                nearest = ip;
            }
        }
        Some(nearest)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|range| range.contains(ip))
    }
}

impl KeyExtractor for ClientIp {
    /// The key of the client's [network](ClientIp::network).
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        self.resolve(request).map(|ip| Key::ip(self.network(ip)))
    }
}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIp")
            .field("peer_from", &self.peer.as_ref().map(|_| "<fn>"))
            .field("trusted", &self.trusted)
            .field("ipv4_prefix", &self.v4_prefix)
            .field("ipv6_prefix", &self.v6_prefix)
            .finish()
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// An address range in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr.trim(), Some(prefix.trim().parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let addr = addr.parse::<IpAddr>().ok()?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}
