//! Generated claim values against the checks, each compared with the rule written out in
//! wide arithmetic (no saturation to get wrong).

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::jwt::claims::Audiences;
use crate::proptests::config;

/// Times up to 2^62, so that sums in the oracle stay far from `u64::MAX`.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1 << 62, 999_000u64..1_001_000]
}

proptest! {
    #![proptest_config(config())]

    /// `check_time` refuses exactly when RFC 7519 §4.1.4-6 (with leeway and an optional
    /// maximum lifetime) says so, and an expiry is reported as `expired_credential`.
    #[test]
    fn time_checks_follow_the_rules(
        now in time(),
        exp in proptest::option::of(time()),
        nbf in proptest::option::of(time()),
        iat in proptest::option::of(time()),
        leeway in prop_oneof![Just(0u64), 0u64..1_000, Just(u64::MAX)],
        max_lifetime in proptest::option::of(0u64..100_000),
    ) {
        let v = Validation { leeway, max_lifetime, ..Validation::default() };
        let (now_w, leeway_w) = (u128::from(now), u128::from(leeway));
        let expired = exp.is_some_and(|exp| u128::from(exp) + leeway_w <= now_w);
        let too_long = exp.is_some_and(|exp| {
            max_lifetime.is_some_and(|max| u128::from(exp) > now_w + u128::from(max) + leeway_w)
        });
        let early = |t: Option<u64>| t.is_some_and(|t| u128::from(t) > now_w + leeway_w);
        let got = v.check_time(now, exp, nbf, iat).map_err(|r| r.kind);
        let expected = if expired {
            Err(RejectionKind::ExpiredCredential)
        } else if too_long || early(nbf) || early(iat) {
            Err(RejectionKind::InvalidCredential)
        } else {
            Ok(())
        };
        prop_assert_eq!(got, expected);
    }

    /// `typ`, with RFC 9068 required: accepted exactly when it is `at+jwt`, with or without
    /// `application/`, in any case; any string is a decision. Not required: always accepted.
    #[test]
    fn typ_is_at_jwt_in_any_case(typ in proptest::option::of(prop_oneof![
        ".{0,24}",
        "(application/)?[aA][tT]\\+[jJ][wW][tT]",
        "[aA][pP]{2}[lL][iI][cC][aA][tT][iI][oO][nN]/at\\+jwt.?",
    ])) {
        let mut v = Validation::default();
        prop_assert!(v.check_typ(typ.as_deref()).is_ok());
        v.require_at_jwt = true;
        let lower = typ.as_deref().unwrap_or("").to_ascii_lowercase();
        let expected = lower == "at+jwt" || lower == "application/at+jwt";
        prop_assert_eq!(v.check_typ(typ.as_deref()).is_ok(), expected);
    }

    /// Issuer and audience: a token passes exactly when its `iss` is one of the trusted
    /// issuers (if any are set) and one of its audiences is expected (if any are set; with
    /// none set, a token naming one is refused).
    #[test]
    fn issuer_and_audience_follow_the_configuration(
        issuers in proptest::collection::vec("[ab]{1,2}", 0..3),
        audiences in proptest::collection::vec("[xy]{1,2}", 0..3),
        iss in proptest::option::of("[ab]{1,2}"),
        aud in proptest::option::of(proptest::collection::vec("[xy]{1,2}", 0..3)),
    ) {
        let v = Validation {
            issuers: issuers.iter().map(|s| Box::from(s.as_str())).collect(),
            audiences: audiences.iter().map(|s| Box::from(s.as_str())).collect(),
            required: 0,
            ..Validation::default()
        };
        let claims = Registered {
            iss: iss.as_deref().map(Cow::Borrowed),
            aud: aud.as_ref().map(|a| {
                Audiences(a.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
            }),
            ..Registered::default()
        };
        let iss_ok = issuers.is_empty() || iss.as_ref().is_some_and(|i| issuers.contains(i));
        let aud_ok = match &aud {
            None => audiences.is_empty(),
            // Not ignoring unexpected audiences: a token naming one is refused.
            Some(_) if audiences.is_empty() => false,
            Some(aud) => aud.iter().any(|a| audiences.contains(a)),
        };
        prop_assert_eq!(v.check_static(&claims).is_ok(), iss_ok && aud_ok);
    }
}
