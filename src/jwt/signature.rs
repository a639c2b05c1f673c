//! Decoding a token's parts and checking its signature.

use super::base64url;

use super::keys::JwtKey;
use super::validation::{Refusal, invalid, malformed};

/// Verifies `signature_b64` over `message` with `key`, with the backend chosen by this crate's
/// features (aws-lc-rs when both are enabled), used directly so that jsonwebtoken's
/// process-wide default provider does not matter.
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
pub(crate) fn verify_signature(
    signature_b64: &[u8],
    message: &[u8],
    key: &JwtKey,
) -> Result<(), Refusal> {
    if let Some(verified) = verify_hmac(signature_b64, message, key) {
        return verified;
    }
    #[cfg(feature = "aws-lc-rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;

    VERIFIERS.with_borrow_mut(|(verifiers, signature)| {
        // The decoded signature goes into this thread's buffer, kept between requests (the
        // verifiers take a `Vec`): no allocation per request.
        b64(signature_b64, signature)?;
        if signature.is_empty() {
            return Err(BAD_SIGNATURE);
        }
        // jsonwebtoken's verifiers are neither `Send` nor `Sync`, so they cannot live in the
        // shared key set; each thread keeps the few it uses, keyed by the key's unique id,
        // so a request does not pay for key setup (HMAC pads, key copies) every time.
        let index = match verifiers.iter().position(|(id, _)| *id == key.id()) {
            Some(index) => index,
            None => {
                let verifier = (provider.verifier_factory)(&key.algorithm(), key.decoding_key())
                    .map_err(|_| BAD_SIGNATURE)?;
                if verifiers.len() == MAX_VERIFIERS_PER_THREAD {
                    verifiers.remove(0);
                }
                verifiers.push((key.id(), verifier));
                verifiers.len() - 1
            }
        };
        verifiers[index]
            .1
            .verify(message, signature)
            .map_err(|_| BAD_SIGNATURE)
    })
}

#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
const MAX_VERIFIERS_PER_THREAD: usize = 16;

#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
thread_local! {
    static VERIFIERS: std::cell::RefCell<(Vec<(u64, Box<dyn jsonwebtoken::crypto::JwtVerifier>)>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Without a backend feature (`jwt-base` alone), the provider the application installed with
/// `jsonwebtoken::crypto::CryptoProvider::install_default` verifies.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
pub(crate) fn verify_signature(
    signature_b64: &[u8],
    message: &[u8],
    key: &JwtKey,
) -> Result<(), Refusal> {
    if let Some(verified) = verify_hmac(signature_b64, message, key) {
        return verified;
    }
    // A b64token is ASCII.
    let Ok(signature_b64) = std::str::from_utf8(signature_b64) else {
        return Err(malformed());
    };
    if signature_b64.is_empty() {
        return Err(BAD_SIGNATURE);
    }
    match jsonwebtoken::crypto::verify(signature_b64, message, key.decoding_key(), key.algorithm())
    {
        Ok(true) => Ok(()),
        _ => Err(BAD_SIGNATURE),
    }
}

/// An `HS*` signature of the key's tag length, verified with the key's prepared HMAC (decoded
/// on the stack). `None` for other keys and other lengths, which the general path answers
/// (a signature of the wrong length is refused there, as any other wrong signature).
fn verify_hmac(signature_b64: &[u8], message: &[u8], key: &JwtKey) -> Option<Result<(), Refusal>> {
    let hmac = key.hmac_key()?;
    let tag_len = hmac.tag_len();
    // Base64url without padding: 4 characters per 3 bytes, the last group shortened.
    if signature_b64.len() != (tag_len * 4).div_ceil(3) {
        return None;
    }
    let mut tag = [0u8; 64];
    Some(match base64url::decode(signature_b64, &mut tag) {
        Some(len) if hmac.verify(message, &tag[..len]) => Ok(()),
        Some(_) => Err(BAD_SIGNATURE),
        None => Err(malformed()),
    })
}

const BAD_SIGNATURE: Refusal = invalid("The token signature is not valid.");

/// Decodes base64url without padding, into `buf` (emptied first; a buffer grown past 4 KiB
/// by an oversized signature is given back).
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
fn b64(input: &[u8], buf: &mut Vec<u8>) -> Result<(), Refusal> {
    if buf.capacity() > 4096 {
        *buf = Vec::new();
    }
    base64url::decode_vec(input, buf).ok_or_else(malformed)
}

/// Decodes base64url without padding into `stack` when it fits, else into `heap`.
pub(crate) fn b64_into<'b, const N: usize>(
    input: &[u8],
    stack: &'b mut [u8; N],
    heap: &'b mut Vec<u8>,
) -> Result<&'b [u8], Refusal> {
    let len = base64url::decoded_len(input.len()).ok_or_else(malformed)?;
    let out = if len <= N {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    base64url::decode(input, out).ok_or_else(malformed)?;
    Ok(out)
}

/// `json` if it is valid UTF-8. The header and the payload must be UTF-8 JSON (RFC 7515
/// §5.2, RFC 7519 §7.2), but a JSON parser skips members nobody reads without looking at
/// their bytes, so the whole text is checked here, once. Claims are nearly always ASCII,
/// which a word-at-a-time scan confirms several times faster than a full validation; only
/// other text is validated in full.
#[inline]
pub(crate) fn utf8(json: &[u8]) -> Result<&[u8], Refusal> {
    if json.is_ascii() || std::str::from_utf8(json).is_ok() {
        Ok(json)
    } else {
        Err(malformed())
    }
}
