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
pub(crate) fn contains_scope(scopes: &[String], scope: &str) -> bool {
    scopes.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
}
