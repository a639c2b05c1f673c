//! Generated pub/sub messages and stored values (`<exp>:<jti>`): never a panic, and what
//! `revoke` writes parses back.

use proptest::prelude::*;

use super::load::escape_glob;
use super::*;
use crate::proptests::config;

proptest! {
    #![proptest_config(config())]

    /// Any payload a publisher (or a stray writer) sends: parsed or ignored, never a panic.
    #[test]
    fn any_payload_is_parsed_or_ignored(payload in proptest::collection::vec(any::<u8>(), 0..48)) {
        let _ = parse_message(&payload);
    }

    /// Digits, a colon, anything: the expiry is whatever the digits say (when it is a time at
    /// all), the jti is the rest.
    #[test]
    fn any_number_before_the_colon_is_parsed_or_ignored(exp in any::<u64>(), jti in ".{0,24}") {
        let message = format!("{exp}:{jti}");
        let (parsed_jti, at) = parse_message(message.as_bytes()).unwrap();
        prop_assert_eq!(parsed_jti, jti.as_str());
        let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        prop_assert_eq!(secs, exp.min(253_402_300_799));
    }

    /// What `revoke` publishes (an expiry up to year 9999, any jti) round-trips.
    #[test]
    fn revoke_messages_round_trip(exp in 0u64..=253_402_300_799, jti in ".{0,24}") {
        let message = format!("{exp}:{jti}");
        let (parsed_jti, at) = parse_message(message.as_bytes()).unwrap();
        prop_assert_eq!(parsed_jti, jti.as_str());
        prop_assert_eq!(at, UNIX_EPOCH + Duration::from_secs(exp));
    }

    /// Glob escaping: unescaping gives the prefix back and no glob character stays bare.
    #[test]
    fn escaped_prefixes_unescape_to_themselves(prefix in ".{0,24}") {
        let escaped = escape_glob(&prefix);
        let mut unescaped = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next();
                prop_assert!(next.is_some_and(|n| "*?[]\\".contains(n)));
                unescaped.extend(next);
            } else {
                prop_assert!(!"*?[]".contains(c));
                unescaped.push(c);
            }
        }
        prop_assert_eq!(unescaped, prefix);
    }
}

/// Found by `any_number_before_the_colon_is_parsed_or_ignored`: an expiry past what
/// `SystemTime` holds (here 2^63 s) panicked with "overflow when adding duration to instant",
/// ending the subscription task (one message stopped every later revocation from arriving).
/// It now means "revoked until the last NumericDate a token may carry" (year 9999).
#[test]
fn an_expiry_past_the_clock_is_clamped_not_a_panic() {
    for exp in ["9223372036854775808", "18446744073709551615"] {
        let message = format!("{exp}:j");
        let (jti, at) = parse_message(message.as_bytes()).unwrap();
        assert_eq!(jti, "j");
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(253_402_300_799));
    }
}
