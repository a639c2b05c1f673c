use super::*;

#[test]
fn the_keyed_checksum_is_hmac_sha256() {
    // RFC 4231, test case 2.
    let mac = Hmac::new(b"Jefe").mac(b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 4231, test case 6: a key longer than the block is hashed first.
    let mac =
        Hmac::new(&[0xaa; 131]).mac(b"Test Using Larger Than Block-Size Key - Hash Key First");
    assert_eq!(mac[..4], [0x60, 0xe4, 0x31, 0x59]);
}

#[test]
fn keyed_keys_are_well_formed_only_under_their_secret_and_debug_shows_no_secret() {
    let keyed = KeyFormat::default()
        .with_checksum_secret([9u8; 32])
        .unwrap();
    let key = keyed.generate();
    assert!(keyed.is_well_formed(key.expose().as_bytes()));
    assert!(!KeyFormat::default().is_well_formed(key.expose().as_bytes()));
    let other = KeyFormat::default()
        .with_checksum_secret([8u8; 32])
        .unwrap();
    assert!(!other.is_well_formed(key.expose().as_bytes()));
    // The digest (what the store keeps) does not depend on the secret.
    assert_eq!(keyed.check(key.expose().as_bytes()), Some(key.digest()));
    assert!(!format!("{keyed:?}").contains("9, 9"));
    assert!(matches!(
        KeyFormat::default().with_checksum_secret([1u8; 31]),
        Err(ConfigError::WeakChecksumSecret { length: 31 })
    ));
    assert_eq!(
        KeyFormat::default().accept_unkeyed_checksums(true),
        Err(ConfigError::NoChecksumSecret)
    );
}

#[test]
fn base62_is_fixed_width_and_round_trips_u32() {
    assert_eq!(base62_fixed(&[0, 0, 0, 0], 6), "000000");
    assert_eq!(base62_fixed(&u32::MAX.to_be_bytes(), 6), "4gfFC3");
    assert_eq!(base62_decode_u32(b"4gfFC3"), Some(u32::MAX));
    assert_eq!(base62_fixed(&[0xFF; 32], 43).len(), 43);
    assert_eq!(base62_decode_u32(b"zzzzzz"), None, "overflows u32");
}

#[test]
fn generated_keys_are_well_formed_and_distinct() {
    let format = KeyFormat::new("sk_live").unwrap();
    let a = format.generate();
    let b = format.generate();
    assert_ne!(a, b);
    assert!(a.expose().starts_with("sk_live_"));
    assert_eq!(a.expose().len(), "sk_live_".len() + 49);
    assert_eq!(format.check(a.expose().as_bytes()), Some(a.digest()));
    assert!(!KeyFormat::default().is_well_formed(a.expose().as_bytes()));
}

#[test]
fn every_single_character_typo_is_caught() {
    let format = KeyFormat::default();
    let key = format.generate().into_plaintext();
    let mut caught = 0;
    let mut total = 0;
    for i in 0..key.len() {
        for &replacement in ALPHABET.iter().chain(b"_-+/ ") {
            let mut typo = key.clone().into_bytes();
            if typo[i] == replacement {
                continue;
            }
            typo[i] = replacement;
            total += 1;
            caught += usize::from(!format.is_well_formed(&typo));
        }
    }
    // A 32-bit checksum lets a random typo through with probability 2^-32; none of these
    // few thousand may pass.
    assert_eq!(caught, total);
}

#[test]
fn malformed_candidates_are_refused() {
    let format = KeyFormat::default();
    let key = format.generate().into_plaintext();
    let cases: [(&str, Vec<u8>); 6] = [
        ("empty", Vec::new()),
        ("truncated", key.as_bytes()[..key.len() - 1].to_vec()),
        ("extended", format!("{key}a").into_bytes()),
        ("no separator", key.replacen('_', "x", 1).into_bytes()),
        ("non-UTF-8", {
            let mut k = key.clone().into_bytes();
            k[10] = 0xFF;
            k
        }),
        ("swapped halves", {
            let (a, b) = key.split_at(20);
            format!("{b}{a}").into_bytes()
        }),
    ];
    for (name, candidate) in cases {
        assert!(!format.is_well_formed(&candidate), "{name}");
    }
}

#[test]
fn prefixes_are_validated() {
    for bad in [
        "",
        "Tg",
        "1tg",
        "tg-live",
        "a_very_long_prefix_x",
        "tg live",
    ] {
        assert!(KeyFormat::new(bad).is_err(), "{bad:?}");
    }
    for good in ["tg", "sk_live", "a1"] {
        assert!(KeyFormat::new(good).is_ok(), "{good:?}");
    }
}

#[test]
fn secrets_never_show_in_debug_or_display() {
    let key = KeyFormat::default().generate();
    let secret_part = &key.expose()[3..40];
    for shown in [format!("{key:?}"), format!("{key}"), key.masked()] {
        assert!(!shown.contains(secret_part), "{shown}");
        assert!(shown.starts_with("ApiKey(tg_…") || shown.starts_with("tg_…"));
    }
    let digest = key.digest();
    assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
    assert!(!format!("{digest:?}").contains(&digest.to_hex()));
}

#[test]
fn the_digest_is_the_sha256_of_the_whole_key_as_sha256sum_prints_it() {
    let key = ApiKey::from_plaintext("tg_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghij");
    // printf %s tg_0123456789abcdefghijABCDEFGHIJ0123456789abcdefghij | sha256sum
    assert_eq!(
        key.digest().to_hex(),
        "c7c66a0f355a78f73c46e9682ef5d40a5e155de529964b105c2d5024dbd2c7b3"
    );
    // Two keys differing only in their last six characters (where the checksum sits in the
    // crate's format) have different digests; 0.1 digests collided there.
    let other = ApiKey::from_plaintext("tg_0123456789abcdefghijABCDEFGHIJ0123456789abcdXXXXXX");
    assert_ne!(key.digest(), other.digest());
    assert_eq!(
        key.legacy_digest(),
        other.legacy_digest(),
        "the 0.1 digest collided"
    );
}

#[test]
fn foreign_formats_and_environments_are_told_apart() {
    let acme = ForeignKeyFormat::new("acme_live_", ForeignKeyFormat::BASE62, 32..=32).unwrap();
    let body = "0123456789abcdefghijABCDEFGHIJkl";
    assert!(acme.matches(format!("acme_live_{body}").as_bytes()));
    assert!(
        !acme.matches(format!("acme_live_{}", &body[1..]).as_bytes()),
        "too short"
    );
    assert!(
        !acme.matches(format!("acme_live_{body}-").as_bytes()),
        "too long"
    );
    assert!(
        !acme.matches(format!("acme_live_{}!", &body[1..]).as_bytes()),
        "not base62"
    );
    assert!(ForeignKeyFormat::new("", ForeignKeyFormat::HEX, 32..=32).is_err());
    assert!(ForeignKeyFormat::new("x_", ForeignKeyFormat::HEX, 8..=8).is_err());

    let live = KeyFormat::default().with_environment("live").unwrap();
    let test = KeyFormat::default().with_environment("test").unwrap();
    let key = live.generate();
    assert!(key.expose().starts_with("tg_live_"));
    assert!(live.is_well_formed(key.expose().as_bytes()));
    assert!(!test.is_well_formed(key.expose().as_bytes()));
    assert!(!test.is_well_formed(test.generate().expose().replace("test", "live").as_bytes()));
    assert_eq!(key.masked()[..8], *"tg_live_");
}
