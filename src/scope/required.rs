//! [`RequiredScopes`]: alternatives of all-of scope sets, checked without allocating.

use std::fmt;
use std::sync::Arc;

use super::Authorize;
use crate::principal::{EffectiveScopes, PrincipalRef};
use crate::rejection::{Challenge, Rejection, RejectionKind, RequestHead};

/// The scopes a route requires: one or more alternatives, each a set of scopes that must all
/// be granted. `(a and b) or c` is `RequiredScopes::all(["a", "b"])?.or(RequiredScopes::all(["c"])?)`.
///
/// Matching is exact and case-sensitive: `orders:read` is not satisfied by `orders:readall`,
/// `orders` or `Orders:read`. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct RequiredScopes {
    inner: Arc<Inner>,
    effective: Option<EffectiveScopes>,
}

struct Inner {
    alternatives: Vec<Box<[Box<str>]>>,
    /// The RFC 6750 `scope` parameter of a 403: the first alternative, space-delimited.
    hint: Box<str>,
}

impl RequiredScopes {
    /// Every one of `scopes` is required.
    ///
    /// # Errors
    ///
    /// [`ScopeError::Empty`] for no scopes, [`ScopeError::Invalid`] for a scope that is empty
    /// or holds a character RFC 6749 §3.3 does not allow (spaces, quotes, backslashes,
    /// controls, non-ASCII).
    pub fn all<I, T>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Ok(Self::from_alternatives(vec![set(scopes)?]))
    }

    /// Any one of `scopes` suffices.
    ///
    /// # Errors
    ///
    /// As for [`all`](Self::all).
    pub fn any<I, T>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let alternatives = scopes
            .into_iter()
            .map(|s| set([s]))
            .collect::<Result<Vec<_>, _>>()?;
        if alternatives.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(Self::from_alternatives(alternatives))
    }

    /// `self` or `other`: the request passes if either is satisfied.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        let mut alternatives = self.inner.alternatives.clone();
        match Arc::try_unwrap(other.inner) {
            Ok(other) => alternatives.extend(other.alternatives),
            Err(shared) => alternatives.extend(shared.alternatives.iter().cloned()),
        }
        Self {
            effective: self.effective.or(other.effective),
            ..Self::from_alternatives(alternatives)
        }
    }

    /// Checks against `effective` instead of the [`EffectiveScopes`] in the request
    /// extensions.
    #[must_use]
    pub fn effective_scopes(mut self, effective: EffectiveScopes) -> Self {
        self.effective = Some(effective);
        self
    }

    /// Whether a caller granted exactly the scopes for which `has` is true satisfies this
    /// requirement.
    pub fn is_satisfied_by(&self, has: impl Fn(&str) -> bool) -> bool {
        self.inner
            .alternatives
            .iter()
            .any(|set| set.iter().all(|scope| has(scope)))
    }

    /// The alternatives, each a set of scopes that must all be granted.
    pub fn alternatives(&self) -> impl Iterator<Item = impl Iterator<Item = &str>> {
        self.inner
            .alternatives
            .iter()
            .map(|set| set.iter().map(|s| &**s))
    }

    fn from_alternatives(alternatives: Vec<Box<[Box<str>]>>) -> Self {
        let hint = alternatives[0].join(" ").into_boxed_str();
        Self {
            inner: Arc::new(Inner { alternatives, hint }),
            effective: None,
        }
    }
}

fn set<I, T>(scopes: I) -> Result<Box<[Box<str>]>, ScopeError>
where
    I: IntoIterator<Item = T>,
    T: AsRef<str>,
{
    let mut out: Vec<Box<str>> = Vec::new();
    for scope in scopes {
        let scope = scope.as_ref();
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(ScopeError::Invalid {
                scope: scope.to_owned(),
            });
        }
        if !out.iter().any(|s| **s == *scope) {
            out.push(scope.into());
        }
    }
    if out.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(out.into_boxed_slice())
}

impl Authorize for RequiredScopes {
    fn authorize(&self, request: &RequestHead<'_>) -> Result<(), Rejection> {
        let Some(principal) = PrincipalRef::from_extensions(request.extensions(), self.effective)
        else {
            return Err(Rejection::new(RejectionKind::MissingCredential));
        };
        if self.is_satisfied_by(|scope| principal.has_scope(scope)) {
            return Ok(());
        }
        // The challenge names the credential that lacks the scope.
        let lacks = |has: &dyn Fn(&str) -> bool| !self.is_satisfied_by(has);
        let app = principal
            .app
            .is_some_and(|app| lacks(&|scope| app.has_scope(scope)));
        let user = principal
            .user
            .is_some_and(|user| lacks(&|scope| user.has_scope(scope)));
        let api_key = || Challenge::api_key(http::HeaderName::from_static("x-api-key"));
        let challenge = match (app, user) {
            (true, false) => api_key(),
            (false, true) => Challenge::bearer(),
            _ => api_key().and(Challenge::bearer()),
        };
        Err(Rejection::new(RejectionKind::InsufficientScope)
            .with_scope(String::from(&*self.inner.hint))
            .with_challenge(challenge))
    }
}

impl fmt::Debug for RequiredScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredScopes")
            .field("alternatives", &self.inner.alternatives)
            .field("effective", &self.effective)
            .finish()
    }
}

/// A scope requirement that cannot work, caught when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeError {
    /// No scope was given: the requirement would be meaningless.
    Empty,
    /// A scope that is empty or holds a character outside RFC 6749 §3.3's `scope-token`.
    Invalid {
        /// The scope that was given.
        scope: String,
    },
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a scope requirement needs at least one scope"),
            Self::Invalid { scope } => write!(
                f,
                "invalid scope {scope:?}: use visible ASCII without spaces, quotes or backslashes"
            ),
        }
    }
}

impl std::error::Error for ScopeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(scopes: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |s| scopes.contains(&s)
    }

    #[test]
    fn all_any_and_alternatives() {
        let all = RequiredScopes::all(["a", "b"]).unwrap();
        let any = RequiredScopes::any(["a", "b"]).unwrap();
        let alt = RequiredScopes::all(["a", "b"])
            .unwrap()
            .or(RequiredScopes::all(["c"]).unwrap());
        let cases: [(&[&str], bool, bool, bool); 6] = [
            (&[], false, false, false),
            (&["a"], false, true, false),
            (&["a", "b"], true, true, true),
            (&["c"], false, false, true),
            (&["b", "c"], false, true, true),
            (&["A", "B", "ab", "a:b"], false, false, false),
        ];
        for (scopes, want_all, want_any, want_alt) in cases {
            let scopes: &'static [&'static str] = Box::leak(scopes.to_vec().into_boxed_slice());
            assert_eq!(all.is_satisfied_by(granted(scopes)), want_all, "{scopes:?}");
            assert_eq!(any.is_satisfied_by(granted(scopes)), want_any, "{scopes:?}");
            assert_eq!(alt.is_satisfied_by(granted(scopes)), want_alt, "{scopes:?}");
        }
        assert_eq!(alt.inner.hint.as_ref(), "a b");
    }

    #[test]
    fn invalid_requirements_fail_at_build_time() {
        assert_eq!(
            RequiredScopes::all(Vec::<&str>::new()).unwrap_err(),
            ScopeError::Empty
        );
        assert_eq!(
            RequiredScopes::any(Vec::<&str>::new()).unwrap_err(),
            ScopeError::Empty
        );
        for bad in ["", "a b", "a\"", "a\\b", "é", "a\n"] {
            assert!(
                matches!(RequiredScopes::all([bad]), Err(ScopeError::Invalid { .. })),
                "{bad:?}"
            );
        }
        let dup = RequiredScopes::all(["a", "a"]).unwrap();
        assert_eq!(dup.inner.hint.as_ref(), "a");
    }
}
