use std::convert::Infallible;
use std::future::{Ready, ready};

use http::{HeaderName, Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};

use super::*;
use crate::auth::{Authenticator, Identity, Outcome};
use crate::principal::EffectiveScopes;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// Accepts `<header>: good`, rejects other values; `slow` answers through `Pending`.
#[derive(Clone)]
struct Header {
    name: &'static str,
    slow: bool,
}

#[derive(Clone, Debug)]
struct Who(&'static str);

impl Identity for Who {
    fn insert_into(self, extensions: &mut http::Extensions) {
        let mut seen: Vec<&'static str> = extensions.remove().unwrap_or_default();
        seen.push(self.0);
        extensions.insert(seen);
    }
}

impl Authenticator for Header {
    type Identity = Who;
    type Future = Ready<Result<Option<Who>, Rejection>>;

    fn authenticate<B>(&self, request: &Request<B>) -> Outcome<Who, Self::Future> {
        let decided =
            match request.headers().get(self.name) {
                None => Ok(None),
                Some(v) if v == "good" => Ok(Some(Who(self.name))),
                Some(_) => Err(Rejection::new(RejectionKind::InvalidCredential)
                    .with_challenge(self.challenge())),
            };
        match (self.slow, decided) {
            (true, decided) => Outcome::Pending(ready(decided)),
            (false, Ok(Some(who))) => Outcome::Authenticated(who),
            (false, Ok(None)) => Outcome::NoCredential,
            (false, Err(rejection)) => Outcome::Rejected(rejection),
        }
    }

    fn challenge(&self) -> Challenge {
        Challenge::api_key(HeaderName::from_static(self.name))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cred {
    Absent,
    Valid,
    Invalid,
}

fn expected(policy: Policy, app: Cred, user: Cred) -> StatusCode {
    use Cred::*;
    if app == Invalid || user == Invalid {
        return StatusCode::UNAUTHORIZED;
    }
    let pass = match policy {
        Policy::AppAndUser => app == Valid && user == Valid,
        Policy::AppOrUser => app == Valid || user == Valid,
        Policy::AppOnly => app == Valid,
        Policy::UserOnly => user == Valid,
    };
    if pass {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::test]
async fn every_policy_with_every_combination_sync_and_pending() {
    use Cred::*;
    for (app_slow, user_slow) in [(false, false), (true, false), (false, true), (true, true)] {
        for policy in [
            Policy::AppAndUser,
            Policy::AppOrUser,
            Policy::AppOnly,
            Policy::UserOnly,
        ] {
            let layer = AppUserLayer::new(
                Header {
                    name: "x-app",
                    slow: app_slow,
                },
                Header {
                    name: "x-user",
                    slow: user_slow,
                },
                policy,
            );
            let service = ServiceBuilder::new().layer(layer).service_fn(
                |request: Request<String>| async move {
                    let seen: Vec<&str> = request.extensions().get().cloned().unwrap_or_default();
                    assert!(request.extensions().get::<EffectiveScopes>().is_some());
                    Ok::<_, Infallible>(Response::new(seen.join("+")))
                },
            );
            for app in [Absent, Valid, Invalid] {
                for user in [Absent, Valid, Invalid] {
                    let mut builder = Request::builder();
                    for (name, cred) in [("x-app", app), ("x-user", user)] {
                        match cred {
                            Absent => {}
                            Valid => builder = builder.header(name, "good"),
                            Invalid => builder = builder.header(name, "bad"),
                        }
                    }
                    let response = service
                        .clone()
                        .oneshot(builder.body(String::new()).unwrap())
                        .await
                        .unwrap();
                    let case =
                        format!("{policy:?} app={app:?} user={user:?} slow={app_slow},{user_slow}");
                    assert_eq!(response.status(), expected(policy, app, user), "{case}");
                    if response.status() == StatusCode::UNAUTHORIZED {
                        let www: Vec<_> = response
                            .headers()
                            .get_all("www-authenticate")
                            .iter()
                            .map(|v| v.to_str().unwrap().to_owned())
                            .collect();
                        assert!(!www.is_empty(), "{case}");
                        // The challenge names the credential that is bad or missing.
                        // With both bad, either refusal will do (the first one known wins).
                        match (app, user) {
                            (Invalid, Invalid) => {}
                            (Invalid, _) => {
                                assert!(www[0].contains("x-app"), "{case}: {www:?}");
                            }
                            (_, Invalid) | (Valid, _) => {
                                assert!(
                                    www.iter().all(|w| w.contains("x-user")),
                                    "{case}: {www:?}"
                                );
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn handler_sees_both_identities() {
    let layer = AppUserLayer::new(
        Header {
            name: "x-app",
            slow: true,
        },
        Header {
            name: "x-user",
            slow: false,
        },
        Policy::AppOrUser,
    );
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: Request<String>| async move {
                let seen: Vec<&str> = request.extensions().get().cloned().unwrap_or_default();
                Ok::<_, Infallible>(Response::new(seen.join("+")))
            });
    let request = Request::builder()
        .header("x-app", "good")
        .header("x-user", "good")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "x-app+x-user");
}

#[test]
fn layer_and_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<AppUserLayer<Header, Header>>();
    send::<JointFuture<Header, Header>>();
}
