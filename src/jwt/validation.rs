//! The claim checks: issuer, audience, `exp`/`nbf`/`iat` with leeway, required claims,
//! maximum lifetime, `typ`.

use std::time::Duration;

use super::claims::Registered;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// A registered claim that can be made mandatory with `require`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredClaim {
    /// `exp` (required by default).
    Exp,
    /// `nbf`.
    Nbf,
    /// `iat`.
    Iat,
    /// `iss`.
    Iss,
    /// `aud`.
    Aud,
    /// `sub`.
    Sub,
    /// `jti`.
    Jti,
}

impl RequiredClaim {
    const fn bit(self) -> u8 {
        match self {
            Self::Exp => 1,
            Self::Nbf => 2,
            Self::Iat => 4,
            Self::Iss => 8,
            Self::Aud => 16,
            Self::Sub => 32,
            Self::Jti => 64,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Validation {
    pub(crate) issuers: Vec<Box<str>>,
    pub(crate) audiences: Vec<Box<str>>,
    /// Accept a token with an `aud` when no audience is configured.
    pub(crate) ignore_unexpected_audience: bool,
    pub(crate) leeway: u64,
    pub(crate) required: u8,
    pub(crate) max_lifetime: Option<u64>,
    pub(crate) require_at_jwt: bool,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            ignore_unexpected_audience: false,
            leeway: 60,
            required: RequiredClaim::Exp.bit(),
            max_lifetime: None,
            require_at_jwt: false,
        }
    }
}

impl Validation {
    pub(crate) fn require(&mut self, claim: RequiredClaim, on: bool) {
        if on {
            self.required |= claim.bit();
        } else {
            self.required &= !claim.bit();
        }
    }

    pub(crate) fn set_max_lifetime(&mut self, max: Option<Duration>) {
        self.max_lifetime = max.map(|d| d.as_secs());
    }

    fn requires(&self, claim: RequiredClaim) -> bool {
        self.required & claim.bit() != 0
    }

    /// Checks `typ` (RFC 9068 §2.1: `at+jwt`, or `application/at+jwt`, case-insensitive).
    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), Refusal> {
        if !self.require_at_jwt {
            return Ok(());
        }
        let typ = typ.unwrap_or("");
        let typ = match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        };
        if typ.eq_ignore_ascii_case("at+jwt") {
            Ok(())
        } else {
            Err(invalid("The token is not an access token (typ)."))
        }
    }

    /// Checks everything but the time-dependent claims that a cached token re-checks.
    pub(crate) fn check_static(&self, claims: &Registered<'_>) -> Result<(), Refusal> {
        let present = [
            (RequiredClaim::Exp, claims.exp.is_some()),
            (RequiredClaim::Nbf, claims.nbf.is_some()),
            (RequiredClaim::Iat, claims.iat.is_some()),
            (RequiredClaim::Iss, claims.iss.is_some()),
            (RequiredClaim::Aud, claims.aud.is_some()),
            (RequiredClaim::Sub, claims.sub.is_some()),
            (RequiredClaim::Jti, claims.jti.is_some()),
        ];
        for (claim, is_present) in present {
            if !is_present && self.requires(claim) {
                return Err(invalid(match claim {
                    RequiredClaim::Exp => "The token has no expiry (exp).",
                    _ => "The token lacks a required claim.",
                }));
            }
        }
        if !self.issuers.is_empty() {
            match &claims.iss {
                Some(iss) if self.issuers.iter().any(|i| **i == **iss) => {}
                _ => return Err(invalid("The token was not issued by a trusted issuer.")),
            }
        }
        match (&claims.aud, self.audiences.is_empty()) {
            (Some(aud), false)
                if aud
                    .0
                    .iter()
                    .any(|a| self.audiences.iter().any(|b| **b == **a)) => {}
            (_, false) => return Err(invalid("The token is not meant for this audience.")),
            (Some(_), true) if !self.ignore_unexpected_audience => {
                return Err(invalid(
                    "The token names an audience this server does not expect.",
                ));
            }
            _ => {}
        }
        if let Some(max) = self.max_lifetime {
            if let (Some(exp), Some(iat)) = (claims.exp, claims.iat) {
                if exp.saturating_sub(iat) > max {
                    return Err(invalid("The token lives longer than this server accepts."));
                }
            }
        }
        Ok(())
    }

    /// The checks that depend on the time, run on every request (cache hits too).
    #[inline]
    pub(crate) fn check_time(
        &self,
        now: u64,
        exp: Option<u64>,
        nbf: Option<u64>,
        iat: Option<u64>,
    ) -> Result<(), Refusal> {
        if let Some(exp) = exp {
            if now >= exp.saturating_add(self.leeway) {
                return Err(Refusal::new(
                    RejectionKind::ExpiredCredential,
                    "The token has expired.",
                ));
            }
            if let Some(max) = self.max_lifetime {
                if exp > now.saturating_add(max).saturating_add(self.leeway) {
                    return Err(invalid("The token lives longer than this server accepts."));
                }
            }
        }
        if let Some(nbf) = nbf {
            if nbf > now.saturating_add(self.leeway) {
                return Err(invalid("The token is not valid yet (nbf)."));
            }
        }
        if let Some(iat) = iat {
            if iat > now.saturating_add(self.leeway) {
                return Err(invalid("The token was issued in the future (iat)."));
            }
        }
        Ok(())
    }
}

/// A refusal on the request path: a kind and a fixed sentence, two words wide, turned into a
/// [`Rejection`] (with a `Bearer` challenge) only when a request is actually refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) kind: RejectionKind,
    pub(crate) detail: &'static str,
}

impl Refusal {
    pub(crate) const fn new(kind: RejectionKind, detail: &'static str) -> Self {
        Self { kind, detail }
    }

    #[cfg(test)]
    pub(crate) fn kind(self) -> RejectionKind {
        self.kind
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Rejection::new(refusal.kind)
            .with_challenge(Challenge::bearer())
            .with_detail(refusal.detail)
    }
}

pub(crate) const fn invalid(detail: &'static str) -> Refusal {
    Refusal::new(RejectionKind::InvalidCredential, detail)
}

pub(crate) const fn malformed() -> Refusal {
    Refusal::new(
        RejectionKind::MalformedCredential,
        "The token is not a well-formed JWT.",
    )
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Registered<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn time_checks() {
        let v = Validation::default();
        let cases = [
            ("valid", Some(1_100), None, None, None),
            (
                "expired long ago",
                Some(900),
                None,
                None,
                Some(RejectionKind::ExpiredCredential),
            ),
            ("expired within leeway", Some(950), None, None, None),
            (
                "expired exactly at leeway",
                Some(940),
                None,
                None,
                Some(RejectionKind::ExpiredCredential),
            ),
            (
                "nbf in the future",
                Some(2_000),
                Some(1_100),
                None,
                Some(RejectionKind::InvalidCredential),
            ),
            ("nbf within leeway", Some(2_000), Some(1_050), None, None),
            (
                "iat in the future",
                Some(2_000),
                None,
                Some(1_100),
                Some(RejectionKind::InvalidCredential),
            ),
        ];
        for (name, exp, nbf, iat, expected) in cases {
            let got = v.check_time(1_000, exp, nbf, iat).err().map(|r| r.kind());
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn static_checks() {
        let mut v = Validation::default();
        assert!(v.check_static(&claims(r#"{"exp":1}"#)).is_ok());
        assert!(
            v.check_static(&claims(r#"{}"#)).is_err(),
            "exp is required by default"
        );
        assert!(
            v.check_static(&claims(r#"{"exp":1,"aud":"x"}"#)).is_err(),
            "unexpected aud"
        );
        v.issuers = vec!["https://a".into()];
        v.audiences = vec!["api".into(), "other".into()];
        assert!(
            v.check_static(&claims(
                r#"{"exp":1,"iss":"https://a","aud":["x","other"]}"#
            ))
            .is_ok()
        );
        assert!(
            v.check_static(&claims(r#"{"exp":1,"iss":"https://b","aud":"api"}"#))
                .is_err()
        );
        assert!(
            v.check_static(&claims(r#"{"exp":1,"aud":"api"}"#)).is_err(),
            "missing iss"
        );
        assert!(
            v.check_static(&claims(r#"{"exp":1,"iss":"https://a"}"#))
                .is_err(),
            "missing aud"
        );
        assert!(
            v.check_static(&claims(r#"{"exp":1,"iss":"https://a","aud":"nope"}"#))
                .is_err()
        );
        v.require(RequiredClaim::Jti, true);
        assert!(
            v.check_static(&claims(r#"{"exp":1,"iss":"https://a","aud":"api"}"#))
                .is_err()
        );
        v.require(RequiredClaim::Exp, false);
        assert!(
            v.check_static(&claims(r#"{"jti":"j","iss":"https://a","aud":"api"}"#))
                .is_ok()
        );
        v.set_max_lifetime(Some(Duration::from_secs(900)));
        assert!(
            v.check_static(&claims(
                r#"{"jti":"j","iss":"https://a","aud":"api","iat":0,"exp":901}"#
            ))
            .is_err()
        );
    }

    #[test]
    fn typ_check() {
        let mut v = Validation::default();
        assert!(v.check_typ(None).is_ok());
        v.require_at_jwt = true;
        assert!(v.check_typ(Some("at+jwt")).is_ok());
        assert!(v.check_typ(Some("application/AT+JWT")).is_ok());
        assert!(v.check_typ(Some("JWT")).is_err());
        assert!(v.check_typ(None).is_err());
    }
}
