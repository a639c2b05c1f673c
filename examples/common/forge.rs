//! A forged API key, as an outsider makes one: shared by `examples/forged_key_flood.rs` and
//! the integration tests (`tests/integration/forged_keys.rs`).

use tollgate::api_key::KeyDigest;

/// `tg_` + 43 pseudo-random base62 digits (from `i`) + the public checksum: the first 32 bits
/// of the SHA-256 of the rest, in 6 base62 digits. Well-formed for the default format, and
/// in no store.
pub(crate) fn forge(i: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut key = String::from("tg_");
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..43 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        key.push(char::from(DIGITS[(x % 62) as usize]));
    }
    let digest = KeyDigest::of(key.as_bytes());
    let d = digest.as_bytes();
    let mut n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let mut checksum = [b'0'; 6];
    for slot in checksum.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    key.push_str(std::str::from_utf8(&checksum).expect("base62 digits are ASCII"));
    key
}
