//! Base64url without padding (RFC 4648 §5), as JWS uses it (RFC 7515 §2), decoded strictly:
//! only the URL-safe alphabet, no `=`, no length that leaves a lone character, and the unused
//! low bits of the last character zero (one encoding per byte string).
//!
//! Four characters at a time through a 256-entry table, invalid input noticed once per call
//! rather than per character: a token's header and payload are decoded on every uncached
//! request. The `base64` crate decides the same (a property test holds them together).

/// 0-63 for the alphabet, `INVALID` for every other byte.
const DECODE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Has its high bit set, which no value of the alphabet has.
const INVALID: u8 = 0xff;

/// The decoded length of `len` characters, or `None` for a length no encoding has.
pub(crate) const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        rem => Some(len / 4 * 3 + rem.saturating_sub(1)),
    }
}

/// Decodes `input` into the start of `out`; returns the decoded length, or `None` if `input`
/// is not strict base64url or `out` is shorter than [`decoded_len`].
pub(crate) fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    let mut bad = 0u8;
    // Eight characters (six bytes) a step, then at most one group of four.
    let whole = input.len() / 8 * 8;
    let (eights, rest) = input.split_at(whole);
    let (out_eights, out_rest) = out.split_at_mut(whole / 8 * 6);
    for (chunk, dst) in eights.chunks_exact(8).zip(out_eights.chunks_exact_mut(6)) {
        let mut n = 0u64;
        for &c in chunk {
            let v = DECODE[usize::from(c)];
            bad |= v;
            n = n << 6 | u64::from(v);
        }
        dst.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    let mut chunks = rest.chunks_exact(4);
    let mut written = out_rest.chunks_exact_mut(3);
    for (chunk, dst) in (&mut chunks).zip(&mut written) {
        let [a, b, c, d] = [chunk[0], chunk[1], chunk[2], chunk[3]].map(|x| DECODE[x as usize]);
        bad |= a | b | c | d;
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        dst.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    let tail = written.into_remainder();
    match *chunks.remainder() {
        [] => {}
        [a, b] => {
            let [a, b] = [a, b].map(|x| DECODE[x as usize]);
            // 12 bits for one byte: the last 4 must be zero.
            bad |= a | b | u8::from(b & 0x0f != 0) << 7;
            tail[0] = a << 2 | b >> 4;
        }
        [a, b, c] => {
            let [a, b, c] = [a, b, c].map(|x| DECODE[x as usize]);
            // 18 bits for two bytes: the last 2 must be zero.
            bad |= a | b | c | u8::from(c & 0x03 != 0) << 7;
            tail[0] = a << 2 | b >> 4;
            tail[1] = b << 4 | c >> 2;
        }
        _ => unreachable!("decoded_len refused a lone character"),
    }
    (bad & 0x80 == 0).then_some(len)
}

/// Decodes `input` into `out` (emptied first).
#[cfg_attr(
    not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
    allow(dead_code) // the signature buffer of the backends' verifiers; tests use it too
)]
pub(crate) fn decode_vec(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    out.resize(decoded_len(input.len())?, 0);
    decode(input, out)?;
    Some(())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    use super::*;

    fn ours(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode_vec(input, &mut out).map(|()| out)
    }

    fn theirs(input: &[u8]) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(input).ok()
    }

    #[test]
    fn known_answers_and_refusals() {
        assert_eq!(ours(b""), Some(vec![]));
        assert_eq!(ours(b"Zg"), Some(b"f".to_vec()));
        assert_eq!(ours(b"Zm8"), Some(b"fo".to_vec()));
        assert_eq!(ours(b"Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(ours(b"Zm9vYmFy"), Some(b"foobar".to_vec()));
        assert_eq!(ours(b"-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
        for bad in [
            &b"Z"[..],
            b"Zm9vY",
            b"Zh",   // spare bits set
            b"Zm9",  // spare bits set
            b"Zg==", // padding
            b"Zm+v", // standard alphabet
            b"Zm/v",
            b"Zm.v",
            b"Zm9v\n",
            b"\xffm9v",
        ] {
            assert_eq!(ours(bad), None, "{bad:?}");
            assert_eq!(theirs(bad), None, "{bad:?}");
        }
        // Too small a buffer is a refusal, not a panic.
        assert_eq!(decode(b"Zm9v", &mut [0; 2]), None);
    }

    proptest! {
        #![proptest_config(crate::proptests::config())]

        /// Any bytes: the same answer as the `base64` crate's strict decoder.
        #[test]
        fn agrees_with_the_base64_crate_on_any_input(
            input in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                "[A-Za-z0-9_=+/.-]{0,40}".prop_map(String::into_bytes),
            ]
        ) {
            prop_assert_eq!(ours(&input), theirs(&input));
        }

        /// Every encoding decodes to what was encoded.
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(ours(encoded.as_bytes()), Some(bytes));
        }
    }
}
