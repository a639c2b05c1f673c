//! API keys (the store, preloaded keys, the demo key) and the JWT verification layer.

use tollgate::api_key::{ApiKey, ApiKeys, KeyDigest, KeyStore, NewKey};
use tollgate::jwt::{Algorithm, JwtKey, JwtLayer, KeySet, KeySource, Provider, Revocation};
use tollgate::oidc::{Discovery, HttpClient};

use crate::config::{Config, Credential, Oidc, VerifyKeys};

/// The demo application: the key printed at start-up belongs to it.
pub(crate) const DEMO_APP: &str = "demo-app";
/// What the demo key may do, including exchanging itself for a user's token.
pub(crate) const DEMO_SCOPES: [&str; 4] = [
    "orders:read",
    "orders:write",
    "notifications:read",
    "token:exchange",
];

/// Stores the keys of `TOLLGATE_API_KEYS`, then the demo key (given or generated), and
/// returns the demo key: the one plaintext this process may print.
pub(crate) async fn preload<K: KeyStore>(
    keys: &ApiKeys<K>,
    config: &Config,
) -> Result<ApiKey, String> {
    for (i, entry) in config.preload.iter().enumerate() {
        let mut new = NewKey::new(&entry.app_id, &entry.app_name)
            .slot(entry.slot)
            .scopes(&entry.scopes);
        if let Some(at) = entry.expires_at {
            new = new.expires_at(at);
        }
        if let Some(quota) = entry.quota {
            new = new.quota(quota);
        }
        if !entry.active {
            // Stored inactive: refused with `inactive_credential` until activated.
            new = new.inactive();
        }
        let record = match &entry.credential {
            Credential::Plaintext(key) => {
                let key = ApiKey::from_plaintext(key.0.clone());
                if !keys.format().is_well_formed(key.expose().as_bytes()) {
                    return Err(format!(
                        "TOLLGATE_API_KEYS entry {}: key= is not a well-formed tg_ key",
                        i + 1
                    ));
                }
                keys.import(&key, new).await
            }
            Credential::Digest(hex) => {
                let digest = KeyDigest::from_hex(hex).ok_or_else(|| {
                    format!(
                        "TOLLGATE_API_KEYS entry {}: digest= is not 64 hex digits",
                        i + 1
                    )
                })?;
                keys.import_digest(digest, format!("sha256:{}…", &hex[..8]), new)
                    .await
            }
        }
        .map_err(|e| format!("storing TOLLGATE_API_KEYS entry {}: {e}", i + 1))?;
        tracing::info!(app = %record.app_id(), key = %record.hint(), active = entry.active, "preloaded API key");
    }

    let demo = NewKey::new(DEMO_APP, "Demo app").scopes(DEMO_SCOPES);
    match &config.demo_key {
        Some(plaintext) => {
            let key = ApiKey::from_plaintext(plaintext.0.clone());
            if !keys.format().is_well_formed(key.expose().as_bytes()) {
                return Err("TOLLGATE_DEMO_KEY is not a well-formed tg_ key".to_owned());
            }
            // A restart with the same key against a shared store finds it there already.
            let known = keys.verify(key.expose()).await.is_ok();
            if !known {
                keys.import(&key, demo)
                    .await
                    .map_err(|e| format!("storing the demo key: {e}"))?;
            }
            Ok(key)
        }
        None => Ok(keys
            .generate(demo)
            .await
            .map_err(|e| format!("generating the demo key: {e}"))?
            .key()
            .clone()),
    }
}

/// The bearer-token layer: the configured issuer, audience and leeway; the keys of
/// `TOLLGATE_JWKS_URL`, or `own` (this service's issuer keys, if it mints) plus the one
/// configured static key; tokens on `denylist` refused.
pub(crate) async fn jwt_layer(
    config: &Config,
    own: KeySet,
    denylist: impl Revocation,
) -> Result<JwtLayer, String> {
    let source = key_source(&config.verify, own).await?;
    let mut builder = JwtLayer::builder(source)
        .issuer(&config.issuer)
        .audience(&config.audience)
        .leeway(config.leeway)
        .revocation(denylist);
    for provider in external_providers(&config.oidc, &config.audience).await? {
        builder = builder.provider(provider.leeway(config.leeway));
    }
    builder.build().map_err(|e| format!("JWT settings: {e}"))
}

/// The providers of `TOLLGATE_OIDC_ISSUER`, discovered now: a provider that cannot be
/// discovered stops the start-up with the reason.
async fn external_providers(oidc: &Oidc, own_audience: &str) -> Result<Vec<Provider>, String> {
    if oidc.issuers.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = HttpClient::builder();
    if let Some(path) = &oidc.ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("TOLLGATE_OIDC_CA {}: {e}", path.display()))?;
        client = client
            .add_root_pem(pem)
            .map_err(|e| format!("TOLLGATE_OIDC_CA {}: {e}", path.display()))?;
    }
    let client = client
        .build()
        .map_err(|e| format!("TOLLGATE_OIDC_CA: {e}"))?;
    let audience = oidc.audience.as_deref().unwrap_or(own_audience);
    let mut out = Vec::new();
    for issuer in &oidc.issuers {
        let provider = Discovery::new(issuer)
            .client(client.clone())
            .discover()
            .await
            .map_err(|e| format!("TOLLGATE_OIDC_ISSUER {issuer}: {e}"))?
            .audience(audience);
        tracing::info!(%issuer, "accepting tokens of an external provider");
        out.push(provider);
    }
    Ok(out)
}

async fn key_source(verify: &VerifyKeys, mut set: KeySet) -> Result<KeySource, String> {
    if let Some(url) = &verify.jwks_url {
        return jwks(url).await;
    }
    if let Some(key) = static_key(verify)? {
        set.insert(match &verify.kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        })
        .map_err(|e| format!("TOLLGATE_JWT_*: {e}"))?;
    }
    if set.is_empty() {
        // Nothing to verify with: refuse every token with a secret nobody holds rather than
        // accept any. (A fresh API key is 256 bits from the OS generator.)
        let secret = tollgate::api_key::KeyFormat::default().generate();
        set.insert(JwtKey::hmac(secret.expose(), Algorithm::HS256).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(set.into())
}

/// The one static verification key configured, if any.
fn static_key(verify: &VerifyKeys) -> Result<Option<JwtKey>, String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let alg = |name: &str, var: &str| -> Result<Algorithm, String> {
        name.parse()
            .map_err(|_| format!("{var}={name:?} is not a JWS algorithm"))
    };
    let key = if let Some(secret) = &verify.hmac_secret {
        JwtKey::hmac(secret.0.as_bytes(), Algorithm::HS256)
            .map_err(|e| format!("TOLLGATE_JWT_HMAC_SECRET: {e}"))?
    } else if let Some(path) = &verify.rsa_pem {
        let alg = alg(&verify.rsa_alg, "TOLLGATE_JWT_RSA_ALG")?;
        JwtKey::rsa_pem(read(path)?, alg).map_err(|e| format!("TOLLGATE_JWT_RSA_PEM: {e}"))?
    } else if let Some(path) = &verify.ec_pem {
        let alg = alg(&verify.ec_alg, "TOLLGATE_JWT_EC_ALG")?;
        JwtKey::ec_pem(read(path)?, alg).map_err(|e| format!("TOLLGATE_JWT_EC_PEM: {e}"))?
    } else if let Some(path) = &verify.ed25519_pem {
        JwtKey::ed_pem(read(path)?).map_err(|e| format!("TOLLGATE_JWT_ED25519_PEM: {e}"))?
    } else {
        return Ok(None);
    };
    Ok(Some(key))
}

#[cfg(feature = "jwks-hyper")]
async fn jwks(url: &str) -> Result<KeySource, String> {
    use tollgate::jwt::JwksSource;
    use tollgate::jwt::jwks::HyperJwksFetcher;

    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("TOLLGATE_JWKS_URL={url:?}: {e}"))?;
    let source = JwksSource::builder(HyperJwksFetcher::http(uri)).build();
    // Start with the keys in hand; the background task keeps them fresh.
    let next = source
        .refresh()
        .await
        .map_err(|e| format!("fetching TOLLGATE_JWKS_URL: {e}"))?;
    source.spawn_refresh_after(next);
    Ok(source.into())
}

#[cfg(not(feature = "jwks-hyper"))]
async fn jwks(_url: &str) -> Result<KeySource, String> {
    Err("TOLLGATE_JWKS_URL needs the `jwks-hyper` feature".to_owned())
}
