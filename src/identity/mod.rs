//! Who is calling: the identities authentication layers put into request extensions.
//!
//! - [`AppIdentity`]: the application behind an API key (inserted by `ApiKeyLayer`).
//! - [`UserIdentity`]: the user a bearer token speaks for (inserted by `JwtLayer`).
//!
//! Handlers read them from the extensions: in axum with `Extension<AppIdentity>` (or, with the
//! `axum` feature, `AppIdentity` / `Option<AppIdentity>` directly as extractors), in tonic with
//! `request.extensions().get::<AppIdentity>()`. [`Principal`](crate::principal::Principal)
//! views both at once, with the effective scopes.

mod app;
mod user;

pub use self::app::{AppIdentity, AppIdentityBuilder, KeySlot};
pub use self::user::UserIdentity;

/// Sorts and deduplicates scopes, the form every identity keeps them in so that
/// [`has_scope`](contains_scope) is a binary search.
pub(crate) fn normalize_scopes(scopes: &mut Vec<String>) {
    scopes.sort_unstable();
    scopes.dedup();
}

/// Whether normalized `scopes` hold `scope` (exact, case-sensitive).
///
/// Most identities hold a handful of scopes: a linear scan that compares lengths first skips
/// the byte comparison for nearly every non-match, where a binary search compares bytes at
/// every step. Longer lists are searched.
#[inline]
pub(crate) fn contains_scope(scopes: &[String], scope: &str) -> bool {
    if scopes.len() <= 8 {
        scopes
            .iter()
            .any(|s| s.len() == scope.len() && same_bytes(s.as_bytes(), scope.as_bytes()))
    } else {
        scopes.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }
}

/// `a == b` for slices of equal length. Scopes such as `orders:read` are 8 to 16 bytes: two
/// overlapping 8-byte words compare them without a call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_ne_bytes)
    };
    let n = a.len();
    if (8..=16).contains(&n) {
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_matching_is_exact_at_every_length_and_position() {
        for len in 0..=24 {
            let scope: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut short = vec![scope.clone()];
            assert!(contains_scope(&short, &scope), "{scope:?}");
            // One byte changed anywhere is another scope.
            for at in 0..len {
                let mut other = scope.clone().into_bytes();
                other[at] = b'Z';
                let other = String::from_utf8(other).unwrap();
                assert!(!contains_scope(&short, &other), "{scope:?} vs {other:?}");
            }
            // Prefixes and superstrings are other scopes.
            assert!(!contains_scope(&short, &format!("{scope}x")));
            if len > 0 {
                assert!(!contains_scope(&short, &scope[..len - 1]));
            }
            // The binary-search path for long lists agrees.
            short.extend((0..10).map(|i| format!("filler:{i}")));
            normalize_scopes(&mut short);
            assert!(contains_scope(&short, &scope));
            assert!(!contains_scope(&short, &format!("{scope}x")));
        }
    }
}
