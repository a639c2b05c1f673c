use std::fmt;
use std::sync::Arc;

/// The user a bearer token speaks for, as the JWT layer hands it downstream.
///
/// Holds the token's subject (`sub`), issuer (`iss`), scopes (from `scope`, space-delimited,
/// or `scp`, an array) and, for a delegated token, the acting application (`act.sub`) and the
/// authorized party (`azp`); never the token. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct UserIdentity(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    subject: Option<String>,
    issuer: Option<String>,
    scopes: Vec<String>,
    actor: Option<String>,
    authorized_party: Option<String>,
    provider: Option<Arc<str>>,
}

impl UserIdentity {
    /// An identity for `subject` with `scopes` (sorted and deduplicated here).
    pub fn new<I, T>(subject: Option<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self::with_issuer(subject, None, scopes)
    }

    /// An identity for `subject` issued by `issuer` with `scopes`.
    pub fn with_issuer<I, T>(subject: Option<String>, issuer: Option<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        super::normalize_scopes(&mut scopes);
        Self(Arc::new(Inner {
            subject,
            issuer,
            scopes,
            actor: None,
            authorized_party: None,
            provider: None,
        }))
    }

    /// The same identity, delegated to the application `actor` (a token's `act.sub`).
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.0).actor = Some(actor.into());
        self
    }

    /// The same identity, with the authorized party `azp` (the client the token was issued to).
    #[must_use]
    pub fn with_authorized_party(mut self, azp: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.0).authorized_party = Some(azp.into());
        self
    }

    /// The same identity, accepted by the provider `name` (see
    /// [`jwt::Provider`](crate::jwt::Provider)).
    #[must_use]
    pub fn with_provider(self, name: impl AsRef<str>) -> Self {
        self.with_provider_name(Arc::from(name.as_ref()))
    }

    #[must_use]
    pub(crate) fn with_provider_name(mut self, name: Arc<str>) -> Self {
        Arc::make_mut(&mut self.0).provider = Some(name);
        self
    }

    /// The name of the provider that accepted the token, when the layer's provider has one
    /// ([`jwt::Provider::named`](crate::jwt::Provider::named); a provider's name defaults to
    /// its issuer).
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The application acting for the user (`act.sub`, RFC 8693 §4.1), when the token was
    /// delegated to one, as token exchange does. `None` for the user's own token.
    pub fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }

    /// The authorized party (`azp`): the client the token was issued to, if it says.
    pub fn authorized_party(&self) -> Option<&str> {
        self.0.authorized_party.as_deref()
    }

    /// The subject (`sub`), if the token named one.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// The issuer (`iss`), if the token named one.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// The granted scopes, sorted and without duplicates.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether the token grants `scope` (exact, case-sensitive match).
    #[inline]
    pub fn has_scope(&self, scope: &str) -> bool {
        super::contains_scope(&self.0.scopes, scope)
    }
}

impl fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserIdentity")
            .field("subject", &self.0.subject)
            .field("issuer", &self.0.issuer)
            .field("scopes", &self.0.scopes)
            .field("actor", &self.0.actor)
            .field("authorized_party", &self.0.authorized_party)
            .field("provider", &self.0.provider)
            .finish()
    }
}

impl crate::auth::Identity for UserIdentity {
    fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self);
    }

    fn actor(&self) -> Option<&str> {
        UserIdentity::actor(self)
    }

    fn subject(&self) -> Option<&str> {
        UserIdentity::subject(self)
    }

    fn issuer(&self) -> Option<&str> {
        UserIdentity::issuer(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_sorted_deduplicated_and_searchable() {
        let user = UserIdentity::new(Some("u1".into()), ["write", "read", "write"]);
        assert_eq!(user.scopes(), ["read", "write"]);
        assert!(user.has_scope("read"));
        assert!(!user.has_scope("Read"));
        assert!(!user.has_scope("admin"));
        assert_eq!(user.subject(), Some("u1"));
    }
}
