//! Key extractors: which bucket a request is counted in.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Extensions;

use super::ConfigError;
use crate::identity::{AppIdentity, UserIdentity};
use crate::rejection::RequestHead;

const INLINE: usize = 17;
const IP_TAG: u8 = 0xFF;
const PAIR_TAG: u8 = 0xFE;

/// A rate-limit key: opaque bytes, borrowed from the request when possible.
///
/// Keys from strings are their UTF-8 bytes; an IP address is a tag byte that never starts a
/// UTF-8 string (`0xFF`) followed by its octets, so an IP can never collide with a string key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key<'a>(Repr<'a>);

#[derive(Clone, PartialEq, Eq)]
enum Repr<'a> {
    Borrowed(&'a [u8]),
    Owned(Box<[u8]>),
    Inline { len: u8, buf: [u8; INLINE] },
}

impl<'a> Key<'a> {
    /// A key made of `bytes`.
    #[inline]
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Self(Repr::Borrowed(bytes))
    }

    /// The key for an IP address (no allocation).
    pub fn ip(ip: IpAddr) -> Key<'static> {
        let mut buf = [0; INLINE];
        buf[0] = IP_TAG;
        let len = match ip.to_canonical() {
            IpAddr::V4(v4) => {
                buf[1..5].copy_from_slice(&v4.octets());
                5
            }
            IpAddr::V6(v6) => {
                buf[1..17].copy_from_slice(&v6.octets());
                17
            }
        };
        Key(Repr::Inline { len, buf })
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Borrowed(b) => b,
            Repr::Owned(b) => b,
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
        }
    }
}

impl<'a> From<&'a str> for Key<'a> {
    #[inline]
    fn from(s: &'a str) -> Self {
        Self::bytes(s.as_bytes())
    }
}

impl From<String> for Key<'static> {
    fn from(s: String) -> Self {
        Key(Repr::Owned(s.into_bytes().into_boxed_slice()))
    }
}

impl From<Vec<u8>> for Key<'static> {
    fn from(b: Vec<u8>) -> Self {
        Key(Repr::Owned(b.into_boxed_slice()))
    }
}

impl From<IpAddr> for Key<'static> {
    fn from(ip: IpAddr) -> Self {
        Key::ip(ip)
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids and IPs are not secrets, but keys from user functions may be: show the size.
        write!(f, "Key({} bytes)", self.as_bytes().len())
    }
}

/// Derives the rate-limit [`Key`] of a request; `None` when the request has none (what happens
/// then is the layer's [`OnMissingKey`]).
///
/// Implemented by the extractors of this module and by closures
/// `Fn(&RequestHead<'_>) -> Option<Key<'static>>`:
///
/// ```
/// use tollgate::rate_limit::{Key, KeyExtractor, RequestHead};
///
/// // One bucket per tenant header (an owned key: the closure allocates).
/// let by_tenant = |request: &RequestHead<'_>| {
///     let tenant = request.headers().get("x-tenant")?.to_str().ok()?;
///     Some(Key::from(tenant.to_owned()))
/// };
/// # fn assert_extractor(_: impl KeyExtractor) {}
/// assert_extractor(by_tenant);
/// ```
///
/// Two extractors in a tuple make a composite key (`(AppId, Route)`: one bucket per app and
/// route); the request has a key only when both parts do. [`AppUser`] is such a pair.
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key of `request`, borrowed from it where possible.
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>>;
}

impl<F> KeyExtractor for F
where
    F: Fn(&RequestHead<'_>) -> Option<Key<'static>> + Send + Sync + 'static,
{
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        self(request)
    }
}

impl<A: KeyExtractor, B: KeyExtractor> KeyExtractor for (A, B) {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        let a = self.0.extract(request)?;
        let b = self.1.extract(request)?;
        Some(pair(a.as_bytes(), b.as_bytes()))
    }
}

/// The composite key of two parts (one allocation: the parts are not contiguous).
fn pair(a: &[u8], b: &[u8]) -> Key<'static> {
    // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
    let mut bytes = Vec::with_capacity(1 + 8 + a.len() + b.len());
    bytes.push(PAIR_TAG);
    bytes.extend_from_slice(&(a.len() as u64).to_be_bytes());
    bytes.extend_from_slice(a);
    bytes.extend_from_slice(b);
    Key::from(bytes)
}

/// The key id of the authenticated API key ([`AppIdentity::key_id`]): the default key, one
/// bucket per key as in seed 000. Needs `ApiKeyLayer` (or anything inserting an
/// [`AppIdentity`]) outside the rate-limit layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppKeyId;

impl KeyExtractor for AppKeyId {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        let app = request.extensions().get::<AppIdentity>()?;
        Some(Key::from(app.key_id()))
    }
}

/// The application id ([`AppIdentity::app_id`]): one bucket shared by all keys of an app (its
/// primary and secondary keys count together).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppId;

impl KeyExtractor for AppId {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        let app = request.extensions().get::<AppIdentity>()?;
        Some(Key::from(app.app_id()))
    }
}

/// The subject (`sub`) of the bearer token ([`UserIdentity::subject`]): one bucket per user,
/// whichever app they come through. Needs `JwtLayer` (or anything inserting a
/// [`UserIdentity`]) outside the rate-limit layer; a token without a `sub` has no key.
///
/// ```
/// use tollgate::identity::UserIdentity;
/// use tollgate::rate_limit::{Key, KeyExtractor, RequestHead, UserSubject};
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(UserIdentity::new(Some("user-42".into()), ["orders:read"]));
/// assert_eq!(UserSubject.extract(&RequestHead::of(&request)), Some(Key::from("user-42")));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UserSubject;

impl KeyExtractor for UserSubject {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        let user = request.extensions().get::<UserIdentity>()?;
        user.subject().map(Key::from)
    }
}

/// The app and the user together: one bucket per user *per app* (seed 001's token exchange: an
/// app acting for a user), from the [`AppIdentity`] of `ApiKeyLayer` and the [`UserIdentity`]
/// of `JwtLayer`. A request lacking either (or a token without `sub`) has no key.
///
/// [`AppUser::new`] pairs the API key's id with the subject (each key of an app counts apart);
/// [`AppUser::by_app_id`] pairs the application id (an app's primary and secondary keys share
/// the user's bucket). The key is the same as the tuple `(AppKeyId, UserSubject)` (or
/// `(AppId, UserSubject)`) makes; building it allocates once, as every composite key does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppUser {
    by_app_id: bool,
}

impl AppUser {
    /// API key id + user subject.
    pub fn new() -> Self {
        Self { by_app_id: false }
    }

    /// Application id + user subject.
    pub fn by_app_id() -> Self {
        Self { by_app_id: true }
    }
}

impl KeyExtractor for AppUser {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        let extensions = request.extensions();
        let app = extensions.get::<AppIdentity>()?;
        let subject = extensions.get::<UserIdentity>()?.subject()?;
        let app = if self.by_app_id {
            app.app_id()
        } else {
            app.key_id()
        };
        Some(pair(app.as_bytes(), subject.as_bytes()))
    }
}

/// The request path: one bucket per route (e.g. a global cap on `/login`). Combine with another
/// extractor in a tuple for "per key and route".
///
/// The key is the literal path, so `/users/1` and `/users/2` are different buckets; key by an
/// axum `MatchedPath` with a closure if templates should share one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Route;

impl KeyExtractor for Route {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        Some(Key::from(request.uri().path()))
    }
}

type PeerFn = Arc<dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync>;

/// The client's IP address: the peer of the connection, or, only behind proxies you list, the
/// right-most address in `X-Forwarded-For` that is not one of them. IPv6 clients are counted
/// per /64 network by default ([`ipv6_prefix`](ClientIp::ipv6_prefix)), IPv4 clients per
/// address ([`ipv4_prefix`](ClientIp::ipv4_prefix)).
///
/// # Where the peer address comes from
///
/// By default from a `std::net::SocketAddr` (or `std::net::IpAddr`) in the request extensions.
/// Servers put connection info there under their own types, so tell the extractor where to look:
///
/// - **axum**: serve with `into_make_service_with_connect_info::<SocketAddr>()`; axum inserts
///   `axum::extract::ConnectInfo<SocketAddr>`, read with
///   `ClientIp::peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))`.
/// - **tonic**: `ClientIp::peer_from(|ext| ext.get::<TcpConnectInfo>()?.remote_addr().map(|a| a.ip()))`.
/// - **hyper**: insert the accepted socket's `SocketAddr` into each request.
///
/// (tollgate does not depend on axum or tonic, hence the function.)
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
            None => extensions
                .get::<SocketAddr>()
                .map(SocketAddr::ip)
                .or_else(|| extensions.get::<IpAddr>().copied()),
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

/// What the layer does with a request its [`KeyExtractor`] finds no key in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnMissingKey {
    /// Refuse with 401 / gRPC `UNAUTHENTICATED` (`missing_credential`): the default, since the
    /// default key is the API key and a request without one was not authenticated.
    #[default]
    Reject,
    /// Let the request through without counting it.
    Pass,
    /// Count it under the client's IP address (the layer's [`ClientIp`]); refused as with
    /// `Reject` if there is no address either.
    FallbackToIp,
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn request(peer: &str, xff: &[&str]) -> Request<()> {
        let mut builder = Request::builder();
        for value in xff {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut request = builder.body(()).unwrap();
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn client_ip_table() {
        let untrusting = ClientIp::peer();
        let proxies = ClientIp::peer()
            .trust_proxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])
            .unwrap();
        let cases: &[(&str, &ClientIp, &str, &[&str], Option<IpAddr>)] = &[
            (
                "no proxies: header ignored",
                &untrusting,
                "198.51.100.9:1",
                &["1.1.1.1"],
                ip("198.51.100.9"),
            ),
            (
                "peer not a proxy: header ignored",
                &proxies,
                "198.51.100.9:1",
                &["10.0.0.1"],
                ip("198.51.100.9"),
            ),
            (
                "one proxy: client is the right-most hop",
                &proxies,
                "10.0.0.2:1",
                &["203.0.113.7"],
                ip("203.0.113.7"),
            ),
            (
                "spoofed left part never reached",
                &proxies,
                "10.0.0.2:1",
                &["6.6.6.6, 203.0.113.7"],
                ip("203.0.113.7"),
            ),
            (
                "trusted hops skipped",
                &proxies,
                "10.0.0.2:1",
                &["6.6.6.6, 203.0.113.7, 192.0.2.1, 10.9.9.9"],
                ip("203.0.113.7"),
            ),
            (
                "several header lines, last is right-most",
                &proxies,
                "10.0.0.2:1",
                &["6.6.6.6", "203.0.113.7"],
                ip("203.0.113.7"),
            ),
            (
                "client spoofing a trusted proxy address stops at it",
                &proxies,
                "10.0.0.2:1",
                &["10.1.1.1, 203.0.113.7"],
                ip("203.0.113.7"),
            ),
            (
                "garbage hop: nearest trusted hop",
                &proxies,
                "10.0.0.2:1",
                &["6.6.6.6, nonsense"],
                ip("10.0.0.2"),
            ),
            (
                "no header behind a proxy: the proxy",
                &proxies,
                "10.0.0.2:1",
                &[],
                ip("10.0.0.2"),
            ),
            (
                "hop with a port",
                &proxies,
                "10.0.0.2:1",
                &["203.0.113.7:5555"],
                ip("203.0.113.7"),
            ),
            (
                "v6 proxy, v4-mapped client",
                &proxies,
                "[fd00::1]:1",
                &["::ffff:203.0.113.7"],
                ip("203.0.113.7"),
            ),
            (
                "v4-mapped peer is a v4 proxy",
                &proxies,
                "[::ffff:10.0.0.2]:1",
                &["203.0.113.8"],
                ip("203.0.113.8"),
            ),
        ];
        for (name, extractor, peer, xff, expected) in cases {
            let request = request(peer, xff);
            assert_eq!(
                extractor.resolve(&RequestHead::of(&request)),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn bad_proxy_entries_fail_at_build_time() {
        for bad in ["10.0.0.0/33", "nonsense", "::/129", ""] {
            assert!(ClientIp::peer().trust_proxies([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_of_different_kinds_do_not_collide() {
        let v4 = Key::ip("1.2.3.4".parse().unwrap());
        assert_eq!(v4.as_bytes(), &[0xFF, 1, 2, 3, 4]);
        assert_eq!(Key::ip("::ffff:1.2.3.4".parse().unwrap()), v4);
        assert_ne!(Key::from("\u{ff}"), v4);
        let request = Request::builder().uri("/ab").body(()).unwrap();
        let view = RequestHead::of(&request);
        let pair = (Route, |_: &RequestHead<'_>| Some(Key::from("c"))).extract(&view);
        let other = (
            |_: &RequestHead<'_>| Some(Key::from("/a")),
            |_: &RequestHead<'_>| Some(Key::from("bc")),
        )
            .extract(&view);
        assert_ne!(pair, other);
    }
}
