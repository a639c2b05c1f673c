//! Who is calling: the identities authentication layers put into request extensions.
//!
//! - [`AppIdentity`]: the application behind an API key (inserted by `ApiKeyLayer`).
//!
//! Handlers read them from the extensions: in axum with `Extension<AppIdentity>`, in tonic
//! with `request.extensions().get::<AppIdentity>()`.

mod app;

pub use self::app::{AppIdentity, AppIdentityBuilder, KeySlot};
