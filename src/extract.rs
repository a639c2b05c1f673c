//! axum extractors (feature `axum`): identities and the principal straight from the request
//! extensions, and [`Rejection`] as an axum response.
//!
//! A required extractor (`AppIdentity`, `UserIdentity`, `Claims<C>`, `Principal`) whose value
//! is missing answers 401 `missing_credential`, rendered like every tollgate rejection
//! (problem+json, `WWW-Authenticate`). That happens when the route is not behind the
//! authentication layer, or behind it in optional mode; use `Option<…>` there.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::HeaderName;
use http::request::Parts;

use crate::identity::{AppIdentity, UserIdentity};
use crate::principal::Principal;
use crate::rejection::{Challenge, Rejection, RejectionKind, render};

/// Renders the rejection in the HTTP form of the
/// [`DefaultResponder`](crate::rejection::DefaultResponder) (problem+json, challenges), with
/// the kind and the rejection in the response extensions.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = render::http(&self, None);
        response.extensions_mut().insert(self.kind());
        response.extensions_mut().insert(self);
        response.map(axum_core::body::Body::from)
    }
}

fn missing(challenge: Challenge) -> Rejection {
    Rejection::new(RejectionKind::MissingCredential).with_challenge(challenge)
}

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Implements both extractor traits for a type read from the extensions.
macro_rules! from_extensions {
    ($ty:ty, $read:expr, $challenge:expr) => {
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = Rejection;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
                ($read)(&parts.extensions).ok_or_else(|| missing($challenge))
            }
        }

        impl<S: Send + Sync> OptionalFromRequestParts<S> for $ty {
            type Rejection = Rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _: &S,
            ) -> Result<Option<Self>, Rejection> {
                Ok(($read)(&parts.extensions))
            }
        }
    };
}

from_extensions!(
    AppIdentity,
    |e: &http::Extensions| e.get::<AppIdentity>().cloned(),
    Challenge::api_key(API_KEY_HEADER)
);
from_extensions!(
    UserIdentity,
    |e: &http::Extensions| e.get::<UserIdentity>().cloned(),
    Challenge::bearer()
);
from_extensions!(
    Principal,
    Principal::from_extensions,
    Challenge::api_key(API_KEY_HEADER).and(Challenge::bearer())
);

#[cfg(feature = "jwt-base")]
impl<S, C> FromRequestParts<S> for crate::jwt::Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| missing(Challenge::bearer()))
    }
}

#[cfg(feature = "jwt-base")]
impl<S, C> OptionalFromRequestParts<S> for crate::jwt::Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Rejection> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn who(app: AppIdentity, principal: Principal) -> String {
        format!("{}|{}", app.app_id(), principal.scopes().join(","))
    }

    async fn maybe(user: Option<UserIdentity>) -> String {
        user.and_then(|u| u.subject().map(str::to_owned))
            .unwrap_or_else(|| "anonymous".into())
    }

    #[tokio::test]
    async fn required_and_optional_extractors() {
        let router = Router::new()
            .route("/who", get(who))
            .route("/maybe", get(maybe));
        let with_app = |path: &str| {
            let mut request = http::Request::get(path).body(Body::empty()).unwrap();
            request.extensions_mut().insert(
                AppIdentity::builder("k", "app-1")
                    .scopes(["a", "b"])
                    .build(),
            );
            request
        };
        let ok = router.clone().oneshot(with_app("/who")).await.unwrap();
        assert_eq!(ok.status(), 200);
        let body = http_body_util::BodyExt::collect(ok.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, "app-1|a,b");

        let missing = router
            .clone()
            .oneshot(http::Request::get("/who").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(missing.status(), 401);
        assert_eq!(
            missing.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(
            missing.headers()["www-authenticate"],
            r#"ApiKey header="x-api-key""#
        );

        let anonymous = router.oneshot(with_app("/maybe")).await.unwrap();
        assert_eq!(anonymous.status(), 200);
        let body = http_body_util::BodyExt::collect(anonymous.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, "anonymous");
    }
}
