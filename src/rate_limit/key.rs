//! Key extractors: which bucket a request is counted in.

use std::fmt;
use std::net::IpAddr;

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
/// route); the request has a key only when both parts do. [`AppAndUser`] is such a pair.
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
/// [`AppAndUser::new`] pairs the API key's id with the subject (each key of an app counts apart);
/// [`AppAndUser::by_app_id`] pairs the application id (an app's primary and secondary keys share
/// the user's bucket). The key is the same as the tuple `(AppKeyId, UserSubject)` (or
/// `(AppId, UserSubject)`) makes; building it allocates once, as every composite key does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppAndUser {
    by_app_id: bool,
}

/// The old name of [`AppAndUser`], which read like `app_user::AppUser` (an authenticator).
#[deprecated(since = "0.2.0", note = "renamed `AppAndUser`")]
pub type AppUser = AppAndUser;

impl AppAndUser {
    /// API key id + user subject.
    pub fn new() -> Self {
        Self { by_app_id: false }
    }

    /// Application id + user subject.
    pub fn by_app_id() -> Self {
        Self { by_app_id: true }
    }
}

impl KeyExtractor for AppAndUser {
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

mod client_ip;

pub use self::client_ip::ClientIp;

#[cfg(test)]
mod tests;
