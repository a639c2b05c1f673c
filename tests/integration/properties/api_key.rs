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

/// The API-key layer in front of a service, over generated `x-api-key` lines and query
/// strings: 200 exactly when the request carries the key once (header value trimmed of
/// spaces, or the `api_key` parameter verbatim), 400 for two credentials, 401 otherwise;
/// never a panic, never a 500.
#[test]
fn the_layer_admits_exactly_one_copy_of_the_key() {
    use proptest::test_runner::TestRunner;
    use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
    use tower::{Layer as _, ServiceExt as _};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let key = runtime
        .block_on(keys.generate(NewKey::new("app-1", "A")))
        .unwrap()
        .key()
        .expose()
        .to_owned();
    let other = keys.format().generate().into_plaintext();
    let service = ApiKeyLayer::new(keys)
        .query_param("api_key")
        .layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }));

    let value = {
        let (key, other) = (key.clone(), other);
        prop_oneof![
            Just(key.clone()),
            Just(format!("  {key} ")),
            Just(other),
            "[ -~]{0,60}",
            (0..key.len(), "[ -~]").prop_map(move |(at, c)| {
                let mut typo = key.clone();
                typo.replace_range(at..=at, &c);
                typo
            }),
        ]
    };
    let strategy = (
        proptest::collection::vec(value.clone(), 0..3),
        proptest::collection::vec(
            prop_oneof![
                // Only characters a URI takes as they are (keys are alphanumeric and `_`).
                value.prop_map(|v| {
                    let v: String = v
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "_-.~".contains(*c))
                        .collect();
                    format!("api_key={v}")
                }),
                "[a-z_]{1,8}=[A-Za-z0-9]{0,8}",
            ],
            0..3,
        ),
    );
    let mut runner = TestRunner::new(config());
    runner
        .run(&strategy, |(lines, params)| {
            let mut request = http::Request::builder().uri(format!("/?{}", params.join("&")));
            for line in &lines {
                request = request.header("x-api-key", line.as_str());
            }
            let request = request.body(()).unwrap();
            let status = runtime
                .block_on(service.clone().oneshot(request))
                .unwrap()
                .status();
            let from_query: Vec<&str> = params
                .iter()
                .filter_map(|p| p.strip_prefix("api_key="))
                .collect();
            let credentials = lines.len() + from_query.len();
            let expected = match credentials {
                0 => 401,
                1 => {
                    let sent = match lines.first() {
                        Some(line) => line.trim_matches(' '),
                        None => from_query[0],
                    };
                    if sent == key { 200 } else { 401 }
                }
                _ => 400,
            };
            prop_assert_eq!(status.as_u16(), expected, "{:?} {:?}", lines, params);
            Ok(())
        })
        .unwrap();
}
