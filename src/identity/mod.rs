//! Who is calling: the identities authentication layers put into request extensions.
//!
//! - [`AppIdentity`]: the application behind an API key (inserted by `ApiKeyLayer`).
//! - [`UserIdentity`]: the user a bearer token speaks for (inserted by `JwtLayer`).
//!
//! Handlers read them from the extensions: in axum with `Extension<AppIdentity>`, in tonic
//! with `request.extensions().get::<AppIdentity>()`.

mod app;
mod user;

pub use self::app::{AppIdentity, AppIdentityBuilder, KeySlot};
pub use self::user::UserIdentity;
