//! Who is calling and with what scopes: one view over the identities the authentication
//! layers put into the request extensions.
//!
//! The API-key layer inserts an [`AppIdentity`] (the *application*), the JWT layer a
//! [`UserIdentity`] (the *user*); the combined [`app_user`](crate::app_user) layer may insert
//! both. A [`Principal`] answers "who, and may they do X" without the caller caring which
//! layers ran.
//!
//! Read it in axum handlers as an extractor (`principal: Principal`, or `Option<Principal>`
//! behind optional authentication; feature `axum`), and in tonic handlers with
//! `Principal::from_extensions(request.extensions())`.
//!
//! # Effective scopes
//!
//! With only an app or only a user present, the effective scopes are that identity's scopes.
//! With both present they are, by default, the **intersection**: an application acts for a
//! user only within what both were granted, so neither a broad key nor a broad token widens
//! the other. [`EffectiveScopes`] makes that a visible choice:
//!
//! | [`EffectiveScopes`] | app and user both present |
//! |---|---|
//! | [`Intersection`](EffectiveScopes::Intersection) (default) | a scope must be granted to both |
//! | [`User`](EffectiveScopes::User) | the user's scopes decide (the key only says which app) |
//! | [`App`](EffectiveScopes::App) | the app's scopes decide (the token only says which user) |
//!
//! The choice is read from the request extensions, where the combined layer
//! ([`AppUser::effective_scopes`](crate::app_user::AppUser::effective_scopes)) puts it; a
//! [`RequireScopesLayer`](crate::scope::RequireScopesLayer) can also fix it for its routes.
//!
//! ```
//! use tollgate::identity::{AppIdentity, UserIdentity};
//! use tollgate::principal::{EffectiveScopes, Principal};
//!
//! let mut extensions = http::Extensions::new();
//! extensions.insert(AppIdentity::builder("key-1", "app-1").scopes(["orders:read", "orders:write"]).build());
//! extensions.insert(UserIdentity::new(Some("alice".into()), ["orders:read"]));
//!
//! let principal = Principal::from_extensions(&extensions).unwrap();
//! assert!(principal.has_scope("orders:read"));
//! assert!(!principal.has_scope("orders:write")); // the user lacks it
//!
//! let principal = principal.with_effective_scopes(EffectiveScopes::App);
//! assert!(principal.has_scope("orders:write"));
//! ```

use crate::identity::{AppIdentity, UserIdentity};

/// Which scopes count when an app and a user are both present. See the [module docs](self).
///
/// Put into the request extensions by the combined layer; a request without one uses the
/// default, [`Intersection`](Self::Intersection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EffectiveScopes {
    /// A scope counts only if both the app and the user were granted it.
    #[default]
    Intersection,
    /// The user's scopes count; the app's are ignored.
    User,
    /// The app's scopes count; the user's are ignored.
    App,
}

/// Who is calling: an application, a user, or an application acting for a user, with the
/// effective scopes. See the [module docs](self).
///
/// Cloning is cheap (two `Arc`s at most).
#[derive(Debug, Clone)]
pub struct Principal {
    app: Option<AppIdentity>,
    user: Option<UserIdentity>,
    effective: EffectiveScopes,
}

impl Principal {
    /// The principal the authentication layers left in `extensions`, or `None` when no
    /// identity is there. The [`EffectiveScopes`] in `extensions` applies (default:
    /// intersection).
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        let view = PrincipalRef::from_extensions(extensions, None)?;
        Some(Self {
            app: view.app.cloned(),
            user: view.user.cloned(),
            effective: view.effective.resolve(),
        })
    }

    /// A principal from identities at hand (tests, custom authenticators).
    ///
    /// Returns `None` when both are `None`.
    pub fn new(app: Option<AppIdentity>, user: Option<UserIdentity>) -> Option<Self> {
        (app.is_some() || user.is_some()).then_some(Self {
            app,
            user,
            effective: EffectiveScopes::default(),
        })
    }

    /// The same principal with another [`EffectiveScopes`].
    #[must_use]
    pub fn with_effective_scopes(mut self, effective: EffectiveScopes) -> Self {
        self.effective = effective;
        self
    }

    /// The application, when an API key was presented.
    pub fn app(&self) -> Option<&AppIdentity> {
        self.app.as_ref()
    }

    /// The user, when a bearer token was presented.
    pub fn user(&self) -> Option<&UserIdentity> {
        self.user.as_ref()
    }

    /// How scopes combine when both are present.
    pub fn effective_scopes(&self) -> EffectiveScopes {
        self.effective
    }

    /// Whether the effective scopes include `scope` (exact, case-sensitive).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.as_ref().has_scope(scope)
    }

    /// The effective scopes, sorted and without duplicates.
    pub fn scopes(&self) -> Vec<&str> {
        let view = self.as_ref();
        let (first, second) = match (view.app, view.user) {
            (Some(app), Some(user)) => match self.effective {
                EffectiveScopes::Intersection => (app.scopes(), Some(user)),
                EffectiveScopes::User => (user.scopes(), None),
                EffectiveScopes::App => (app.scopes(), None),
            },
            (Some(app), None) => (app.scopes(), None),
            (None, Some(user)) => (user.scopes(), None),
            (None, None) => (&[][..], None),
        };
        first
            .iter()
            .map(String::as_str)
            .filter(|s| second.is_none_or(|user| user.has_scope(s)))
            .collect()
    }

    fn as_ref(&self) -> PrincipalRef<'_> {
        PrincipalRef {
            app: self.app.as_ref(),
            user: self.user.as_ref(),
            effective: Effective::Known(self.effective),
        }
    }
}

/// A borrowed principal: what the scope and predicate layers check on the hot path without
/// touching a reference count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrincipalRef<'a> {
    pub(crate) app: Option<&'a AppIdentity>,
    pub(crate) user: Option<&'a UserIdentity>,
    effective: Effective<'a>,
}

/// The [`EffectiveScopes`] mode, or where to find it: looked up only when an app and a user
/// disagree on a scope, the one case where the mode changes the answer.
#[derive(Debug, Clone, Copy)]
enum Effective<'a> {
    Known(EffectiveScopes),
    InExtensions(&'a http::Extensions),
}

impl Effective<'_> {
    fn resolve(self) -> EffectiveScopes {
        match self {
            Self::Known(effective) => effective,
            Self::InExtensions(extensions) => extensions
                .get::<EffectiveScopes>()
                .copied()
                .unwrap_or_default(),
        }
    }
}

impl<'a> PrincipalRef<'a> {
    /// Borrows the identities in `extensions`; `effective` overrides the one stored there.
    pub(crate) fn from_extensions(
        extensions: &'a http::Extensions,
        effective: Option<EffectiveScopes>,
    ) -> Option<Self> {
        let app = extensions.get::<AppIdentity>();
        let user = extensions.get::<UserIdentity>();
        if app.is_none() && user.is_none() {
            return None;
        }
        let effective = match effective {
            Some(effective) => Effective::Known(effective),
            None => Effective::InExtensions(extensions),
        };
        Some(Self {
            app,
            user,
            effective,
        })
    }

    #[inline]
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        match (self.app, self.user) {
            (Some(app), Some(user)) => {
                let (by_app, by_user) = (app.has_scope(scope), user.has_scope(scope));
                // Every mode agrees when both grant it or neither does.
                if by_app == by_user {
                    return by_app;
                }
                match self.effective.resolve() {
                    EffectiveScopes::Intersection => false,
                    EffectiveScopes::User => by_user,
                    EffectiveScopes::App => by_app,
                }
            }
            (Some(app), None) => app.has_scope(scope),
            (None, Some(user)) => user.has_scope(scope),
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(scopes: &[&str]) -> AppIdentity {
        AppIdentity::builder("k", "a")
            .scopes(scopes.iter().copied())
            .build()
    }

    fn user(scopes: &[&str]) -> UserIdentity {
        UserIdentity::new(Some("u".into()), scopes.iter().copied())
    }

    #[test]
    fn effective_scopes_per_mode() {
        let both = Principal::new(Some(app(&["a", "b"])), Some(user(&["b", "c"]))).unwrap();
        let cases = [
            (EffectiveScopes::Intersection, vec!["b"]),
            (EffectiveScopes::User, vec!["b", "c"]),
            (EffectiveScopes::App, vec!["a", "b"]),
        ];
        for (mode, want) in cases {
            let p = both.clone().with_effective_scopes(mode);
            assert_eq!(p.scopes(), want, "{mode:?}");
            for s in ["a", "b", "c", "d"] {
                assert_eq!(p.has_scope(s), want.contains(&s), "{mode:?} {s}");
            }
        }
        let app_only = Principal::new(Some(app(&["a"])), None).unwrap();
        assert_eq!(app_only.scopes(), ["a"]);
        let user_only = Principal::new(None, Some(user(&["c"])))
            .unwrap()
            .with_effective_scopes(EffectiveScopes::App);
        assert!(user_only.has_scope("c"), "one identity: its scopes count");
        assert!(Principal::new(None, None).is_none());
    }

    #[test]
    fn reads_mode_from_extensions() {
        let mut ext = http::Extensions::new();
        assert!(Principal::from_extensions(&ext).is_none());
        ext.insert(app(&["a"]));
        ext.insert(user(&["b"]));
        assert!(!Principal::from_extensions(&ext).unwrap().has_scope("a"));
        ext.insert(EffectiveScopes::App);
        assert!(Principal::from_extensions(&ext).unwrap().has_scope("a"));
    }
}
