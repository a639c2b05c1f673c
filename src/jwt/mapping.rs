//! Claim mapping: where a provider puts the scopes and roles that become the identity's
//! scopes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::claims::{Registered, Scopes, split_scopes};

/// A claim inside the token's claims object: a top-level name (`"permissions"`,
/// `"cognito:groups"`) or a path of object members (`["realm_access", "roles"]`). Names are
/// matched exactly; a dot is part of a name, never a separator (Auth0's namespaced claims
/// are URLs).
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimPath(Box<[Box<str>]>);

impl ClaimPath {
    /// The path's member names, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.segments()).finish()
    }
}

impl From<&str> for ClaimPath {
    fn from(name: &str) -> Self {
        Self(Box::new([name.into()]))
    }
}

impl From<String> for ClaimPath {
    fn from(name: String) -> Self {
        Self(Box::new([name.into()]))
    }
}

impl<const N: usize> From<[&str; N]> for ClaimPath {
    fn from(path: [&str; N]) -> Self {
        Self(path.iter().map(|s| Box::from(*s)).collect())
    }
}

impl From<&[&str]> for ClaimPath {
    fn from(path: &[&str]) -> Self {
        Self(path.iter().map(|s| Box::from(*s)).collect())
    }
}

/// Where the identity's scopes come from. The values of every listed claim are gathered
/// (each a space-delimited string or an array of strings), sorted and deduplicated, so
/// [`RequireScopesLayer`](crate::scope::RequireScopesLayer) and
/// [`Principal`](crate::principal::Principal) work on them unchanged.
///
/// | preset | claims read |
/// |---|---|
/// | [`standard`](Self::standard) (the default) | `scope` (RFC 9068), else `scp` |
/// | [`auth0`](Self::auth0) | the standard ones and `permissions` (RBAC) |
/// | [`entra`](Self::entra) | the standard ones and `roles` (app roles) |
/// | [`keycloak`](Self::keycloak) | the standard ones, `realm_access.roles` and `resource_access.<client>.roles` |
/// | [`cognito`](Self::cognito) | the standard ones and `cognito:groups` |
///
/// A listed claim the token lacks adds nothing; one of another type (a number, an object
/// where a list is expected) refuses the token.
///
/// ```
/// use tollgate::jwt::ClaimMapping;
///
/// let mapping = ClaimMapping::keycloak("orders-api").and(["https://example.com/claims", "teams"]);
/// # let _ = mapping;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ClaimMapping {
    standard: bool,
    paths: Vec<ClaimPath>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self::standard()
    }
}

impl ClaimMapping {
    /// `scope` (a space-delimited string), else `scp` (a string or an array).
    pub fn standard() -> Self {
        Self {
            standard: true,
            paths: Vec::new(),
        }
    }

    /// Only `claim`: `scope` and `scp` are not read.
    pub fn only(claim: impl Into<ClaimPath>) -> Self {
        Self {
            standard: false,
            paths: vec![claim.into()],
        }
    }

    /// Also reads `claim`.
    pub fn and(mut self, claim: impl Into<ClaimPath>) -> Self {
        self.paths.push(claim.into());
        self
    }

    /// Auth0: the standard claims and `permissions` (RBAC with "Add Permissions in the
    /// Access Token").
    pub fn auth0() -> Self {
        Self::standard().and("permissions")
    }

    /// Microsoft Entra ID: the standard claims (`scp`, delegated) and `roles` (app roles).
    pub fn entra() -> Self {
        Self::standard().and("roles")
    }

    /// Keycloak: the standard claims, realm roles (`realm_access.roles`) and the roles of
    /// `client` (`resource_access.<client>.roles`).
    pub fn keycloak(client: impl AsRef<str>) -> Self {
        Self::standard().and(["realm_access", "roles"]).and([
            "resource_access",
            client.as_ref(),
            "roles",
        ])
    }

    /// Amazon Cognito: the standard claims and the user's groups (`cognito:groups`).
    pub fn cognito() -> Self {
        Self::standard().and("cognito:groups")
    }

    /// The claims read besides `scope`/`scp`.
    pub fn claims(&self) -> &[ClaimPath] {
        &self.paths
    }

    /// Whether an empty name makes the mapping unusable.
    pub(crate) fn has_empty_name(&self) -> bool {
        self.paths
            .iter()
            .any(|path| path.0.is_empty() || path.0.iter().any(|s| s.is_empty()))
    }

    /// The scopes of a token whose claims are `payload`, with its registered claims parsed.
    /// `None` when a listed claim has the wrong type.
    pub(crate) fn scopes(
        &self,
        payload: &[u8],
        registered: &Registered<'_>,
    ) -> Option<Vec<String>> {
        let mut out = if self.standard {
            match (&registered.scope, &registered.scp) {
                (Some(scope), _) => split_scopes(std::iter::once(&**scope)),
                (None, Some(scp)) => split_scopes(scp.0.iter().map(|s| &**s)),
                (None, None) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        for path in &self.paths {
            out.extend(at_path(payload, &path.0)?);
        }
        Some(out)
    }
}

/// The scopes at `path` in the claims object `json`: an absent member is no scopes. `None`
/// for a payload that is not an object, a duplicated member on the path, or a value of
/// another type.
pub(crate) fn at_path(json: &[u8], path: &[Box<str>]) -> Option<Vec<String>> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let scopes = Walk(path).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(scopes)
}

/// Walks one member per step; at the end reads a string or an array of strings.
struct Walk<'p>(&'p [Box<str>]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            let Scopes(items) = serde::Deserialize::deserialize(deserializer)?;
            Ok(split_scopes(items.iter().map(|s| &**s)))
        } else {
            deserializer.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (name, rest) = self
            .0
            .split_first()
            .expect("walked only with a member left");
        let mut found: Option<Vec<String>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if *key != **name {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if found.is_some() {
                return Err(de::Error::custom("duplicate member"));
            }
            found = Some(map.next_value_seed(Walk(rest))?);
        }
        Ok(found.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<Box<str>> {
        p.iter().map(|s| Box::from(*s)).collect()
    }

    #[test]
    fn a_named_claim_reads_strings_and_arrays() {
        let cases: [(&str, Option<&[&str]>); 9] = [
            (
                r#"{"permissions":["orders:read","orders:write"]}"#,
                Some(&["orders:read", "orders:write"]),
            ),
            (r#"{"permissions":"  a   b "}"#, Some(&["a", "b"])),
            (r#"{"permissions":""}"#, Some(&[])),
            (r#"{"permissions":[]}"#, Some(&[])),
            (r#"{"sub":"x","scope":"a"}"#, Some(&[])),
            (r#"{"permissions":["a b"]}"#, Some(&["a", "b"])),
            (r#"{"permissions":5}"#, None),
            (r#"{"permissions":["a"],"permissions":["b"]}"#, None),
            (r#"["permissions"]"#, None),
        ];
        for (json, want) in cases {
            let got = at_path(json.as_bytes(), &path(&["permissions"]));
            let want = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want, "{json}");
        }
    }

    #[test]
    fn nested_paths_reach_keycloak_roles() {
        let json = br#"{"realm_access":{"roles":["admin","user"]},"resource_access":{"orders-api":{"roles":["reader"]},"other":{"roles":["x"]}},"x.y":["dotted"]}"#;
        let roles = |p: &[&str]| at_path(json, &path(p));
        assert_eq!(
            roles(&["realm_access", "roles"]).unwrap(),
            ["admin", "user"]
        );
        assert_eq!(
            roles(&["resource_access", "orders-api", "roles"]).unwrap(),
            ["reader"]
        );
        assert_eq!(
            roles(&["resource_access", "missing", "roles"]).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            roles(&["x.y"]).unwrap(),
            ["dotted"],
            "a dot is part of the name"
        );
        assert!(
            roles(&["realm_access"]).is_none(),
            "an object is not a list"
        );
        assert!(at_path(br#"{"realm_access":5}"#, &path(&["realm_access", "roles"])).is_none());
    }
}
