//! API keys: the prefix rule, generated keys always well-formed, any one-character change
//! refused, any bytes a decision, digests round-trip through hex.

use proptest::prelude::*;
use tollgate::api_key::{ApiKey, KeyDigest, KeyFormat};
use tollgate::identity::KeySlot;

use super::config;

/// A valid prefix: a lower-case letter, then up to 15 of `a-z`, `0-9`, `_`.
fn prefix() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,15}"
}

proptest! {
    #![proptest_config(config())]

    /// `KeyFormat::new` takes exactly the documented prefixes.
    #[test]
    fn prefixes_follow_the_documented_rule(prefix in prop_oneof![".{0,20}", "[a-zA-Z0-9_ -]{0,20}", prefix()]) {
        let bytes = prefix.as_bytes();
        let valid = (1..=16).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        prop_assert_eq!(KeyFormat::new(prefix.clone()).is_ok(), valid);
    }

    /// A generated key is well-formed (its digest is the one it is stored under), and
    /// changing any one byte of it, cutting it or extending it makes it refused.
    #[test]
    fn generated_keys_are_well_formed_and_one_change_is_refused(
        prefix in prefix(),
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        extra in any::<u8>(),
    ) {
        let format = KeyFormat::new(prefix.clone()).unwrap();
        let key = format.generate();
        let text = key.expose().as_bytes();
        let expected_start = format!("{prefix}_");
        prop_assert!(text.starts_with(expected_start.as_bytes()));
        prop_assert_eq!(text.len(), prefix.len() + 1 + 49);
        prop_assert_eq!(format.check(text), Some(key.digest()));

        let at = position.index(text.len());
        let mut typo = text.to_vec();
        typo[at] = if replacement == typo[at] { replacement ^ 1 } else { replacement };
        prop_assert!(!format.is_well_formed(&typo));
        prop_assert!(!format.is_well_formed(&text[..cut.index(text.len())]));
        let mut longer = text.to_vec();
        longer.push(extra);
        prop_assert!(!format.is_well_formed(&longer));
    }

    /// Any bytes: a decision, never a panic; accepted bytes have the key's shape.
    #[test]
    fn any_bytes_are_a_decision(
        prefix in prefix(),
        candidate in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            "[a-z0-9_]{1,16}_[A-Za-z0-9]{49}".prop_map(String::into_bytes),
        ],
    ) {
        let format = KeyFormat::new(prefix.clone()).unwrap();
        if let Some(digest) = format.check(&candidate) {
            prop_assert_eq!(candidate.len(), prefix.len() + 50);
            prop_assert!(candidate.starts_with(prefix.as_bytes()));
            prop_assert!(candidate[prefix.len() + 1..].iter().all(u8::is_ascii_alphanumeric));
            let text = String::from_utf8(candidate).unwrap();
            prop_assert_eq!(ApiKey::from_plaintext(text).digest(), digest);
        }
    }

    /// Masking any string never panics and, for a real key, never shows its secret part.
    #[test]
    fn masking_never_panics_nor_shows_the_secret(text in ".{0,80}", prefix in prefix()) {
        let any = ApiKey::from_plaintext(text);
        let _ = (any.masked(), format!("{any}"), format!("{any:?}"));
        let key = KeyFormat::new(prefix.clone()).unwrap().generate();
        let secret = &key.expose()[prefix.len() + 1..prefix.len() + 46];
        for shown in [key.masked(), format!("{key}"), format!("{key:?}")] {
            prop_assert!(!shown.contains(secret), "{}", shown);
        }
    }

    /// Digests round-trip through hex; any string is parsed or refused, and a parsed one is
    /// its lower-case hex.
    #[test]
    fn digests_round_trip_through_hex(
        bytes in any::<[u8; 32]>(),
        text in prop_oneof![".{0,70}", "[0-9a-fA-F]{64}"],
    ) {
        let digest = KeyDigest::from_bytes(bytes);
        prop_assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
        if let Some(parsed) = KeyDigest::from_hex(&text) {
            prop_assert_eq!(parsed.to_hex(), text.to_ascii_lowercase());
        }
    }

    /// Key slots round-trip through `as_str`/`FromStr`; nothing else parses.
    #[test]
    fn key_slots_round_trip(text in prop_oneof![".{0,12}", Just("primary".to_owned()), Just("secondary".to_owned())]) {
        match text.parse::<KeySlot>() {
            Ok(slot) => prop_assert_eq!(slot.as_str(), text.as_str()),
            Err(_) => prop_assert!(text != "primary" && text != "secondary"),
        }
    }
}
