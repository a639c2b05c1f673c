//! The JWT authenticator: extraction, key choice, signature, claims, revocation, cache.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::cache::{Entry, TokenCache};
use super::claims::{Claims, Header, Registered, StandardClaims, from_object};
use super::extract::{self, Found, Sources};
use super::key_set::Source;
use super::keys::JwtKey;
use super::provider::{KeyFailure, Provider, Providers};
use super::revocation::Revocation;
use super::signature::{b64_into, utf8};
use super::validation::{Refusal, invalid, malformed};
use super::verified::VerifiedToken;
use crate::auth::{Authenticator, Outcome};
use crate::clock::SharedClock;
use crate::identity::UserIdentity;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// Validates bearer JWTs. Built by [`JwtLayer`](super::JwtLayer)'s constructors; see the
/// [module docs](super).
pub struct JwtAuthenticator<C = StandardClaims> {
    inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C> {
    pub(crate) providers: Providers,
    pub(crate) sources: Sources,
    pub(crate) max_len: usize,
    pub(crate) clock: SharedClock,
    pub(crate) revocation: Option<Arc<dyn Revocation>>,
    pub(crate) cache: Option<TokenCache<C>>,
    pub(crate) _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for JwtAuthenticator<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for JwtAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("providers", &self.inner.providers)
            .field("max_len", &self.inner.max_len)
            .field("cache", &self.inner.cache.is_some())
            .field("revocation", &self.inner.revocation.is_some())
            .finish_non_exhaustive()
    }
}

/// Why verification stopped.
enum Failure {
    Rejected(Refusal),
    /// No key for the token's `kid` with the provider at this index.
    UnknownKid(usize),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Rejected(refusal)
    }
}

fn now_secs(clock: &SharedClock) -> u64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn from_inner(inner: Inner<C>) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Validates `token` (the bare JWT, without `Bearer`), with the same checks as the layer.
    ///
    /// # Errors
    ///
    /// The rejection the layer would answer with. A token naming an unknown `kid` is
    /// rejected here without a JWKS re-fetch.
    #[allow(clippy::result_large_err)] // the crate-wide rejection type
    pub fn validate(&self, token: &str) -> Result<VerifiedToken<C>, Rejection> {
        if token.len() > self.inner.max_len {
            return Err(malformed().into());
        }
        match self.check(token.as_bytes()) {
            Ok(verified) => Ok(verified),
            Err(Failure::Rejected(refusal)) => Err(refusal.into()),
            Err(Failure::UnknownKid(_)) => Err(unknown_kid().into()),
        }
    }

    /// The decision for one token: cache, then full verification. `raw` is the credential
    /// as sent: a cache hit needs nothing more, since only tokens that passed every check are
    /// cached under their exact bytes.
    fn check(&self, raw: &[u8]) -> Result<VerifiedToken<C>, Failure> {
        let inner = &*self.inner;
        let now = now_secs(&inner.clock);
        if let Some(cache) = &inner.cache {
            if let Some(entry) = cache.get(raw) {
                let provider = inner.providers.get(entry.provider);
                if provider.holds(&entry.key) {
                    provider
                        .validation
                        .check_time(now, entry.exp, entry.nbf, None)?;
                    self.check_revoked(entry.jti.as_deref())?;
                    return Ok(VerifiedToken {
                        user: entry.user.clone(),
                        claims: entry.claims.clone(),
                    });
                }
                // The key that verified it is gone: verify afresh.
                cache.remove(raw);
            }
        }
        let token = extract::token(raw)?;
        self.verify(token, now)
    }

    fn check_revoked(&self, jti: Option<&str>) -> Result<(), Refusal> {
        match (&self.inner.revocation, jti) {
            (Some(list), Some(jti)) if list.is_revoked(jti) => Err(REVOKED),
            _ => Ok(()),
        }
    }

    /// Full verification: split, header, claims parse, provider by `iss`, key, signature,
    /// claim checks. Header and payload are each decoded and parsed once.
    fn verify(&self, token: &[u8], now: u64) -> Result<VerifiedToken<C>, Failure> {
        let inner = &*self.inner;
        // Three parts: the header up to the first dot, the signature after the last, both
        // short, so only they are scanned. A dot inside the payload is not base64url: its
        // decoding refuses a token of four parts or more.
        let (Some(first), Some(last)) = (
            token.iter().position(|&b| b == b'.'),
            token.iter().rposition(|&b| b == b'.'),
        ) else {
            return Err(malformed().into());
        };
        if first == last {
            return Err(malformed().into());
        }
        let (header_b64, payload_b64) = (&token[..first], &token[first + 1..last]);
        let signed = Signed {
            message: &token[..last],
            signature_b64: &token[last + 1..],
        };

        let (mut header_stack, mut header_heap) = ([0; 256], Vec::new());
        let header_json = utf8(b64_into(header_b64, &mut header_stack, &mut header_heap)?)?;
        let header: Header<'_> = from_object(header_json).ok_or_else(malformed)?;
        if header.crit.is_some() {
            return Err(invalid(
                "The token requires an extension this server does not support (crit).",
            )
            .into());
        }

        let (mut payload_stack, mut payload_heap) = ([0; 1024], Vec::new());
        let payload = utf8(b64_into(
            payload_b64,
            &mut payload_stack,
            &mut payload_heap,
        )?)?;
        // Parse the claims once. With the default claims type, the registered claims are read
        // from the parsed `StandardClaims`; with the user's own type, a borrowing pass reads
        // them (no allocation) and the user's type is parsed once the signature holds.
        let (claims, accepted) = if TypeId::of::<C>() == TypeId::of::<StandardClaims>() {
            let standard: StandardClaims = from_object(payload).ok_or_else(malformed)?;
            let accepted =
                self.accept(&header, &signed, payload, &Registered::of(&standard), now)?;
            // `C` is `StandardClaims`: its `Arc` changes type through `Any`, so the claims are
            // moved once, into the allocation they stay in.
            let any: Arc<dyn Any + Send + Sync> = Arc::new(standard);
            let claims = any
                .downcast::<C>()
                .unwrap_or_else(|_| unreachable!("C is StandardClaims"));
            (Claims::from_arc(claims), accepted)
        } else {
            let registered: Registered<'_> = from_object(payload).ok_or_else(malformed)?;
            let accepted = self.accept(&header, &signed, payload, &registered, now)?;
            let claims: C = serde_json::from_slice(payload).map_err(|_| malformed())?;
            (Claims::new(claims), accepted)
        };
        let Accepted {
            facts:
                Facts {
                    user,
                    exp,
                    nbf,
                    jti,
                },
            provider,
            key,
        } = accepted;
        let verified = VerifiedToken { user, claims };
        if let (Some(cache), Some(key)) = (&inner.cache, key) {
            let leeway = inner.providers.get(provider).validation.leeway;
            let ttl = match exp {
                Some(exp) => Duration::from_secs(exp.saturating_add(leeway).saturating_sub(now)),
                None => Duration::from_secs(300),
            };
            cache.insert(
                token,
                Entry {
                    user: verified.user.clone(),
                    claims: verified.claims.clone(),
                    exp,
                    nbf,
                    jti,
                    provider,
                    key,
                    ttl,
                },
            );
        }
        Ok(verified)
    }

    /// Chooses the provider by `iss`, verifies the signature with its keys, then runs its
    /// claim checks.
    fn accept(
        &self,
        header: &Header<'_>,
        signed: &Signed<'_>,
        payload: &[u8],
        registered: &Registered<'_>,
        now: u64,
    ) -> Result<Accepted, Failure> {
        let (index, provider) = self
            .inner
            .providers
            .choose(registered.iss.as_deref())
            .ok_or(UNKNOWN_ISSUER)?;
        provider.validation.check_typ(header.typ.as_deref())?;
        let key = provider
            .verify(
                header.kid.as_deref(),
                &header.alg,
                signed.message,
                signed.signature_b64,
                self.inner.cache.is_some(),
            )
            .map_err(|failure| match failure {
                KeyFailure::Unknown => Failure::UnknownKid(index),
                KeyFailure::Refused(refusal) => Failure::Rejected(refusal),
            })?;
        let scopes = provider
            .mapping
            .scopes(payload, registered)
            .ok_or_else(malformed)?;
        let facts = self.decide(provider, registered, now, scopes)?;
        Ok(Accepted {
            facts,
            provider: index,
            key,
        })
    }
}

/// The signed part of a token and its signature.
struct Signed<'t> {
    message: &'t [u8],
    signature_b64: &'t [u8],
}

/// A token whose signature and claims held.
struct Accepted {
    facts: Facts,
    provider: usize,
    /// The key that verified it, kept for the cache entry (`None` without a cache).
    key: Option<Arc<JwtKey>>,
}

impl<C> JwtAuthenticator<C> {
    /// Runs the claim checks and builds the user identity and the facts a cache entry keeps.
    /// `custom_scopes` are the scopes read from a configured scope claim, if any.
    fn decide(
        &self,
        provider: &Provider,
        registered: &Registered<'_>,
        now: u64,
        scopes: Vec<String>,
    ) -> Result<Facts, Refusal> {
        let inner = &*self.inner;
        provider.validation.check_static(registered)?;
        provider
            .validation
            .check_time(now, registered.exp, registered.nbf, registered.iat)?;
        if let (Some(list), Some(jti)) = (&inner.revocation, registered.jti.as_deref()) {
            if list.is_revoked(jti) {
                return Err(REVOKED);
            }
        }
        let mut user = UserIdentity::with_issuer(
            registered.sub.as_deref().map(str::to_owned),
            registered.iss.as_deref().map(str::to_owned),
            scopes,
        );
        if let Some(actor) = registered.act.as_ref().and_then(|act| act.0.as_deref()) {
            user = user.with_actor(actor);
        }
        if let Some(azp) = registered.azp.as_deref() {
            user = user.with_authorized_party(azp);
        }
        if let Some(name) = &provider.name {
            user = user.with_provider_name(Arc::clone(name));
        }
        Ok(Facts {
            user,
            exp: registered.exp,
            nbf: registered.nbf,
            jti: if inner.cache.is_some() {
                registered.jti.as_deref().map(Box::from)
            } else {
                None
            },
        })
    }
}

/// What the claim checks hand on: the identity, and what a cache entry re-checks.
struct Facts {
    user: UserIdentity,
    exp: Option<u64>,
    nbf: Option<u64>,
    jti: Option<Box<str>>,
}

const REVOKED: Refusal = Refusal::new(
    RejectionKind::RevokedCredential,
    "The token has been revoked.",
);

const UNKNOWN_ISSUER: Refusal = invalid("The token's issuer is not accepted here.");

const fn unknown_kid() -> Refusal {
    invalid("The token was signed with an unknown key.")
}

impl<C> Authenticator for JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Identity = VerifiedToken<C>;
    type Future = KeyFetch<C>;

    fn authenticate<B>(
        &self,
        request: &http::Request<B>,
    ) -> Outcome<VerifiedToken<C>, KeyFetch<C>> {
        let inner = &*self.inner;
        let token = match extract::find(
            request.headers(),
            request.uri(),
            &inner.sources,
            inner.max_len,
        ) {
            Ok(Found::Token(token)) => token,
            Ok(Found::None) => return Outcome::NoCredential,
            Err(refusal) => return Outcome::Rejected(refusal.into()),
        };
        let index = match self.check(token) {
            Ok(verified) => return Outcome::Authenticated(verified),
            Err(Failure::Rejected(refusal)) => return Outcome::Rejected(refusal.into()),
            Err(Failure::UnknownKid(index)) => index,
        };
        // An unknown kid: the provider's JWKS sources re-fetch (single-flight, at most one
        // per cooldown), and the token is checked once more.
        let refetches: Vec<_> = inner
            .providers
            .get(index)
            .keys
            .iter()
            .filter_map(|source| match source {
                Source::Jwks(jwks) => jwks.refetch_for_unknown_kid(),
                Source::Static(_) => None,
            })
            .collect();
        if refetches.is_empty() {
            return Outcome::Rejected(unknown_kid().into());
        }
        let this = self.clone();
        let token = token.to_vec();
        Outcome::Pending(KeyFetch {
            future: Box::pin(async move {
                futures_util::future::join_all(refetches).await;
                match this.check(&token) {
                    Ok(verified) => Ok(Some(verified)),
                    Err(Failure::UnknownKid(_)) => Err(unknown_kid().into()),
                    Err(Failure::Rejected(refusal)) => Err(refusal.into()),
                }
            }),
        })
    }

    fn name(&self) -> &'static str {
        "jwt"
    }

    fn challenge(&self) -> Challenge {
        Challenge::bearer()
    }
}

/// The slow path of [`JwtAuthenticator`]: waiting for a JWKS re-fetch after a token named
/// an unknown `kid`. Boxed; only this path allocates it.
#[must_use = "futures do nothing unless polled"]
pub struct KeyFetch<C> {
    future: Pin<Box<dyn Future<Output = Result<Option<VerifiedToken<C>>, Rejection>> + Send>>,
}

impl<C> Future for KeyFetch<C> {
    type Output = Result<Option<VerifiedToken<C>>, Rejection>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<C> fmt::Debug for KeyFetch<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFetch").finish_non_exhaustive()
    }
}
