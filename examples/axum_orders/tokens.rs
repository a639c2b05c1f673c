//! The token side of seed 000/001: the demo user store, `POST /auth/login`, refresh with
//! rotation (`POST /auth/token`), token exchange for an API-key app
//! (`POST /auth/token-exchange`) and the public keys (`GET /.well-known/jwks.json`).
//! tollgate's `issuer` module does the minting, rotating and checking; this file only wires
//! it to HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use tollgate::api_key::KeyDigest;
use tollgate::identity::AppIdentity;
use tollgate::issuer::{
    DirectoryUser, ErrorCode, OAuthError, RefreshTokenStore, SigningKey, TokenExchange,
    TokenIssuer, TokenResponse, TokenService,
};
use tollgate::jwt::{Algorithm, Revoker};

use crate::config::{Config, DemoUser, Signing};

/// What the token routes share.
pub(crate) struct Tokens<S> {
    pub(crate) issuer: TokenIssuer,
    pub(crate) service: TokenService<S>,
    /// The user store is the exchange's directory: an app gets a token only for a user it
    /// knows, and only with scopes both hold.
    pub(crate) exchange: TokenExchange<HashMap<String, DirectoryUser>>,
    users: Vec<DemoUser>,
}

impl<S: RefreshTokenStore> Tokens<S> {
    /// The issuer with the configured (or a fresh) signing key; refresh tokens in `store`;
    /// access tokens of a reused refresh chain go on `denylist`.
    pub(crate) fn new(
        config: &Config,
        users: Vec<DemoUser>,
        store: S,
        denylist: impl Revoker,
    ) -> Result<Self, String> {
        let issuer = TokenIssuer::builder(&config.issuer, signing_key(&config.signing)?)
            .audience(&config.audience)
            .build()
            .map_err(|e| format!("token issuer settings: {e}"))?;
        let service = TokenService::builder(issuer.clone(), store)
            .denylist(denylist)
            .build();
        let directory = users
            .iter()
            .map(|user| {
                (
                    user.name.clone(),
                    DirectoryUser::active(user.scopes.clone()),
                )
            })
            .collect();
        Ok(Self {
            exchange: TokenExchange::new(issuer.clone(), directory),
            issuer,
            service,
            users,
        })
    }
}

fn signing_key(signing: &Signing) -> Result<SigningKey, String> {
    let Some(path) = &signing.pem else {
        return ephemeral_ed25519(&signing.kid);
    };
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let alg: Algorithm = signing.alg.parse().map_err(|_| {
        format!(
            "TOLLGATE_SIGNING_ALG={:?} is not a JWS algorithm",
            signing.alg
        )
    })?;
    let kid = signing.kid.as_str();
    let key = match alg {
        Algorithm::EdDSA => SigningKey::ed_pem(kid, pem),
        Algorithm::ES256 | Algorithm::ES384 => SigningKey::ec_pem(kid, pem, alg),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Err(
                "TOLLGATE_SIGNING_ALG: use a private key (RS*, PS*, ES*, EdDSA)".to_owned(),
            );
        }
        _ => SigningKey::rsa_pem(kid, pem, alg),
    };
    key.map_err(|e| format!("TOLLGATE_SIGNING_KEY_PEM: {e}"))
}

/// A new Ed25519 key for this process only, so the demo runs with no setup and its JWKS
/// document holds a real public key.
fn ephemeral_ed25519(kid: &str) -> Result<SigningKey, String> {
    use aws_lc_rs::signature::Ed25519KeyPair;
    use base64::Engine;

    let der = Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| "generating a signing key failed".to_owned())?;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
    SigningKey::ed_pem(kid, pem).map_err(|e| format!("the generated signing key: {e}"))
}

#[derive(Deserialize)]
pub(crate) struct Login {
    username: String,
    password: String,
}

/// `POST /auth/login`: the demo user store's check, then an access and a refresh token.
pub(crate) async fn login<S: RefreshTokenStore>(
    State(tokens): State<Arc<Tokens<S>>>,
    Json(login): Json<Login>,
) -> Response {
    // Compare digests so the time taken says nothing about the password; a real store keeps
    // a slow password hash (argon2, scrypt) instead of the password.
    let offered = KeyDigest::of(login.password.as_bytes());
    let user = tokens
        .users
        .iter()
        .find(|u| u.name == login.username && KeyDigest::of(u.password.0.as_bytes()) == offered);
    let Some(user) = user else {
        tracing::info!(username = %login.username, "login refused");
        return oauth_error(&OAuthError::invalid_grant(
            "The username or password is wrong.",
        ));
    };
    tracing::info!(user = %user.name, "logged in");
    answer(tokens.service.issue(&user.name, &user.scopes).await)
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// `POST /auth/token` (form data, seed 001): `grant_type=refresh_token&refresh_token=…`,
/// optionally `&scope=…` for an access token with less than the session was granted.
/// Every use rotates the refresh token; a used one presented again revokes the session.
pub(crate) async fn token<S: RefreshTokenStore>(
    State(tokens): State<Arc<Tokens<S>>>,
    Form(form): Form<TokenForm>,
) -> Response {
    match form.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(_) => {
            return oauth_error(&OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "Only grant_type=refresh_token is supported here.",
            ));
        }
        None => {
            return oauth_error(&OAuthError::new(
                ErrorCode::InvalidRequest,
                "grant_type is missing.",
            ));
        }
    }
    let Some(refresh_token) = form.refresh_token else {
        return oauth_error(&OAuthError::new(
            ErrorCode::InvalidRequest,
            "refresh_token is missing.",
        ));
    };
    let refreshed = match form.scope {
        Some(scope) => {
            let scopes = scope.split_whitespace();
            tokens
                .service
                .refresh_with_scopes(&refresh_token, scopes)
                .await
        }
        None => tokens.service.refresh(&refresh_token).await,
    };
    answer(refreshed)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Exchange {
    user_id: String,
    scope: Option<String>,
}

/// `POST /auth/token-exchange` (seed 001): an app, known by its API key, gets a short-lived
/// token for one of the users, within what the key and the user both hold.
pub(crate) async fn token_exchange<S: RefreshTokenStore>(
    State(tokens): State<Arc<Tokens<S>>>,
    Extension(app): Extension<AppIdentity>,
    Json(request): Json<Exchange>,
) -> Response {
    let result = tokens
        .exchange
        .exchange(&app, &request.user_id, request.scope.as_deref())
        .await;
    if result.is_ok() {
        tracing::info!(app_id = app.app_id(), user_id = ?request.user_id, "token exchanged");
    }
    answer(result)
}

/// `GET /.well-known/jwks.json`: the public keys, for verifiers in other processes.
pub(crate) async fn jwks<S: RefreshTokenStore>(State(tokens): State<Arc<Tokens<S>>>) -> Response {
    let mut response = tokens.issuer.jwks().to_json().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

/// RFC 6749 §5.1: token responses are never cached.
fn answer(result: Result<TokenResponse, OAuthError>) -> Response {
    match result {
        Ok(tokens) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(tokens),
        )
            .into_response(),
        Err(error) => oauth_error(&error),
    }
}

/// RFC 6749 §5.2: `{"error": "...", "error_description": "..."}` with its status.
fn oauth_error(error: &OAuthError) -> Response {
    (
        error.status(),
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        error.to_json(),
    )
        .into_response()
}
