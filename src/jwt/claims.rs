//! Claims: the default [`StandardClaims`], the [`Claims`] extension newtype, and the
//! registered claims the layer checks itself (parsed without allocating, borrowed from the
//! decoded payload).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// The validated claims of a token, as the JWT layer hands them downstream.
///
/// `C` is the claims type the layer was built with ([`StandardClaims`] by default). Cloning
/// is cheap (one `Arc`); it dereferences to `C`. Read it in axum with
/// `Extension<Claims<MyClaims>>`, in tonic with `request.extensions().get::<Claims<MyClaims>>()`.
pub struct Claims<C>(Arc<C>);

impl<C> Claims<C> {
    pub(crate) fn new(claims: C) -> Self {
        Self(Arc::new(claims))
    }

    pub(crate) fn from_arc(claims: Arc<C>) -> Self {
        Self(claims)
    }

    /// The claims.
    pub fn get(&self) -> &C {
        &self.0
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&self.0).finish()
    }
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is one of the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// The scopes of a token: `scope` (space-delimited string, RFC 8693 §4.2) or `scp` (array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeClaim {
    /// Space-delimited scopes.
    Delimited(String),
    /// A list of scopes.
    List(Vec<String>),
}

/// A string or an array of strings, without serde's buffering `untagged` machinery.
struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Result<String, Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
        while let Some(item) = seq.next_element::<String>()? {
            out.push(item);
        }
        Ok(Err(out))
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match deserializer.deserialize_any(OneOrMany)? {
            Ok(one) => Self::One(one),
            Err(many) => Self::Many(many),
        })
    }
}

impl<'de> Deserialize<'de> for ScopeClaim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match deserializer.deserialize_any(OneOrMany)? {
            Ok(one) => Self::Delimited(one),
            Err(many) => Self::List(many),
        })
    }
}

/// The default claims type: the registered claims plus the common ones from OpenID Connect,
/// RFC 8693 and RFC 9068.
///
/// Unknown members are ignored. Use your own `serde::Deserialize` type as the layer's claims
/// parameter to read others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct StandardClaims {
    /// Subject (`sub`).
    pub sub: Option<String>,
    /// Issuer (`iss`).
    pub iss: Option<String>,
    /// Audience (`aud`).
    pub aud: Option<Audience>,
    /// Expiry, seconds since the epoch (`exp`).
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub exp: Option<u64>,
    /// Not before, seconds since the epoch (`nbf`).
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch (`iat`).
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub iat: Option<u64>,
    /// Token id (`jti`).
    pub jti: Option<String>,
    /// Space-delimited scopes (`scope`).
    pub scope: Option<String>,
    /// Scopes as a list (`scp`).
    pub scp: Option<ScopeClaim>,
    /// E-mail address (`email`).
    pub email: Option<String>,
    /// Display name (`name`).
    pub name: Option<String>,
    /// Roles (`roles`).
    pub roles: Option<Vec<String>>,
    /// Permissions (`permissions`).
    pub permissions: Option<Vec<String>>,
    /// Actor (`act`, RFC 8693 §4.1): who acts on the subject's behalf.
    pub act: Option<serde_json::Value>,
    /// Authorized party (`azp`).
    pub azp: Option<String>,
    /// OAuth client id (`client_id`, RFC 9068).
    pub client_id: Option<String>,
}

/// The claims the layer checks, borrowed from the decoded payload. Duplicate members and
/// wrong types are errors (serde's derive rejects duplicated known fields).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Registered<'a> {
    #[serde(borrow, default)]
    pub(crate) iss: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) sub: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) aud: Option<Audiences<'a>>,
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date_opt")]
    pub(crate) iat: Option<u64>,
    #[serde(borrow, default)]
    pub(crate) jti: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) scope: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) scp: Option<Scopes<'a>>,
    #[serde(borrow, default)]
    pub(crate) azp: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) act: Option<Actor>,
}

/// `act` (RFC 8693 §4.1), read as [`StandardClaims::act`] reads it (any JSON value): the
/// acting party's `sub`, when `act` is an object with a string `sub`. Only delegated tokens
/// carry it, so the value it allocates costs nothing to others.
#[derive(Debug, Default)]
pub(crate) struct Actor(pub(crate) Option<String>);

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Object(mut members) => match members.remove("sub") {
                Some(serde_json::Value::String(sub)) => Some(sub),
                _ => None,
            },
            _ => None,
        }))
    }
}

impl<'a> Registered<'a> {
    /// The registered claims of already parsed standard claims, borrowed.
    pub(crate) fn of(claims: &'a StandardClaims) -> Self {
        fn strs<'s>(one: Option<&'s str>, many: Option<&'s [String]>) -> Vec<Cow<'s, str>> {
            one.into_iter()
                .chain(many.into_iter().flatten().map(String::as_str))
                .map(Cow::Borrowed)
                .collect()
        }
        Self {
            iss: claims.iss.as_deref().map(Cow::Borrowed),
            sub: claims.sub.as_deref().map(Cow::Borrowed),
            aud: claims.aud.as_ref().map(|aud| match aud {
                Audience::One(one) => Audiences(strs(Some(one), None)),
                Audience::Many(many) => Audiences(strs(None, Some(many))),
            }),
            exp: claims.exp,
            nbf: claims.nbf,
            iat: claims.iat,
            jti: claims.jti.as_deref().map(Cow::Borrowed),
            scope: claims.scope.as_deref().map(Cow::Borrowed),
            scp: claims.scp.as_ref().map(|scp| match scp {
                ScopeClaim::Delimited(one) => Scopes(strs(Some(one), None)),
                ScopeClaim::List(many) => Scopes(strs(None, Some(many))),
            }),
            azp: claims.azp.as_deref().map(Cow::Borrowed),
            act: claims.act.as_ref().map(|act| {
                Actor(
                    act.get("sub")
                        .and_then(|sub| sub.as_str())
                        .map(str::to_owned),
                )
            }),
        }
    }
}

/// `aud` as a string or an array of strings, borrowed.
#[derive(Debug)]
pub(crate) struct Audiences<'a>(pub(crate) Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Audiences<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrOrSeq(std::marker::PhantomData))
            .map(Audiences)
    }
}

/// `scp` as an array of strings (or a space-delimited string), borrowed.
#[derive(Debug)]
pub(crate) struct Scopes<'a>(pub(crate) Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scopes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrOrSeq(std::marker::PhantomData))
            .map(Scopes)
    }
}

struct StrOrSeq<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for StrOrSeq<'a> {
    type Value = Vec<Cow<'a, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(vec![Cow::Borrowed(v)])
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![Cow::Owned(v.to_owned())])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
        while let Some(item) = seq.next_element::<Cow<'a, str>>()? {
            out.push(item);
        }
        Ok(out)
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number of seconds. Fractions are
/// truncated; negative, non-finite or absurdly large values (past year 9999) are errors.
fn numeric_date_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct NumericDate;

    /// 9999-12-31T23:59:59Z.
    const MAX: u64 = 253_402_300_799;

    impl Visitor<'_> for NumericDate {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate (seconds since the epoch)")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            if v <= MAX {
                Ok(v)
            } else {
                Err(E::custom("NumericDate out of range"))
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom("negative NumericDate"))
                .and_then(|v| self.visit_u64(v))
        }

        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() && (0.0..=MAX as f64).contains(&v) {
                Ok(v.trunc() as u64)
            } else {
                Err(E::custom("NumericDate out of range"))
            }
        }
    }

    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(NumericDate).map(Some)
        }
    }

    deserializer.deserialize_option(Optional)
}

/// Splits space-delimited scope strings (RFC 6749 §3.3); runs of spaces and empty strings
/// yield nothing.
pub(crate) fn split_scopes<'s>(items: impl Iterator<Item = &'s str>) -> Vec<String> {
    items
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a JSON object (RFC 7519 §7.2: header and claims are objects). serde's derive
/// would also accept an array as a struct, positionally; that is refused here.
pub(crate) fn from_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// The JOSE header members the layer reads. `jku`, `x5u`, `x5c` and `jwk` are deliberately
/// absent: the layer never follows or trusts them.
#[derive(Debug, Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) typ: Option<Cow<'a, str>>,
    /// Any `crit` member is refused: the layer understands no extension (RFC 7515 §4.1.11).
    #[serde(default)]
    pub(crate) crit: Option<IgnoredAny>,
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: &str) -> Result<Registered<'_>, ()> {
        from_object(json.as_bytes()).ok_or(())
    }

    #[test]
    fn registered_claims_parse_strictly() {
        let ok = registered(r#"{"iss":"a","aud":["x","y"],"exp":10,"nbf":1.5,"scp":["b","a"]}"#)
            .unwrap();
        assert_eq!(ok.exp, Some(10));
        assert_eq!(ok.nbf, Some(1));
        assert_eq!(ok.aud.unwrap().0, ["x", "y"]);
        assert_eq!(registered(r#"{"aud":"x"}"#).unwrap().aud.unwrap().0, ["x"]);

        for bad in [
            r#"{"exp":1,"exp":2}"#,
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"exp":"10"}"#,
            r#"{"exp":-1}"#,
            r#"{"exp":1e300}"#,
            r#"{"exp":184467440737095516160}"#,
            r#"{"aud":5}"#,
            r#"{"aud":[1]}"#,
            r#"{"iss":["a"]}"#,
            r#"[]"#,
            r#"[null,null,null,99999999999]"#,
            r#"  ["a"]"#,
            r#"{"exp":1"#,
        ] {
            assert!(registered(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn header_refuses_duplicates_and_wrong_types() {
        assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":"HS256","alg":"none"}"#).is_err());
        assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":1}"#).is_err());
        assert!(serde_json::from_str::<Header<'_>>(r#"{"kid":"a"}"#).is_err());
        let h: Header<'_> = serde_json::from_str(r#"{"alg":"HS256","crit":["b64"]}"#).unwrap();
        assert!(h.crit.is_some());
    }
}
