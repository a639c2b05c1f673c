//! Settings from environment variables (listed in `main.rs`'s header and the README).
//!
//! Every variable is optional: with none set, the service listens on 127.0.0.1:3000 with
//! in-memory stores and a fresh demo key. A bad value stops the start with a message naming
//! the variable, rather than running with a surprise default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::Quota;
use tollgate::identity::KeySlot;

/// Everything the service reads from its environment.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: Duration,
    pub(crate) verify: VerifyKeys,
    pub(crate) signing: Signing,
    /// The demo user store behind `POST /auth/login`.
    pub(crate) users: Vec<DemoUser>,
    /// Whether `users` are the built-in demo users (whose passwords the banner may print).
    pub(crate) demo_users: bool,
    /// A `tg_` key to preload as the demo app's key instead of generating one.
    pub(crate) demo_key: Option<Secret>,
    pub(crate) preload: Vec<PreloadKey>,
    /// The per-key limit on the API-key routes (seed 000: 1000 per hour).
    pub(crate) rate_limit: Quota,
    /// A per-client-IP limit in front of auth on every route, when set.
    pub(crate) ip_rate_limit: Option<Quota>,
    /// External identity providers accepted next to this service's own tokens.
    pub(crate) oidc: Oidc,
    /// `TOLLGATE_USAGE_FLUSH_SECS`: how often per-key usage reaches the key store.
    pub(crate) usage_flush: std::time::Duration,
    /// URLs may carry a password: `Secret`, so `Debug` never shows them.
    pub(crate) postgres_url: Option<Secret>,
    pub(crate) redis_url: Option<Secret>,
    /// `TOLLGATE_REDIS_CLUSTER`: a Redis Cluster's seed nodes, comma-separated (instead of
    /// `TOLLGATE_REDIS_URL`).
    pub(crate) redis_cluster: Option<Secret>,
    /// `TOLLGATE_RATE_LIMIT_LEASED=1`: the shared per-key limit leases budget from Redis.
    pub(crate) leased: bool,
}

/// Where the keys that verify bearer tokens from other issuers come from: one static key or
/// a JWKS URL.
#[derive(Debug, Default)]
pub(crate) struct VerifyKeys {
    /// `TOLLGATE_JWT_HMAC_SECRET`, used with HS256. Never printed.
    pub(crate) hmac_secret: Option<Secret>,
    /// `TOLLGATE_JWT_RSA_PEM`: a public key file, with `TOLLGATE_JWT_RSA_ALG` (RS256 default).
    pub(crate) rsa_pem: Option<PathBuf>,
    pub(crate) rsa_alg: String,
    /// `TOLLGATE_JWT_EC_PEM`: a public key file, with `TOLLGATE_JWT_EC_ALG` (ES256 default).
    pub(crate) ec_pem: Option<PathBuf>,
    pub(crate) ec_alg: String,
    /// `TOLLGATE_JWT_ED25519_PEM`: a public key file (EdDSA).
    pub(crate) ed25519_pem: Option<PathBuf>,
    /// `TOLLGATE_JWKS_URL`: an `http://` JWKS endpoint (instead of the static keys).
    pub(crate) jwks_url: Option<String>,
    /// `TOLLGATE_JWT_KID`: the `kid` of the static key, for tokens that name one.
    pub(crate) kid: Option<String>,
}

impl VerifyKeys {
    /// How many static keys are configured (at most one is allowed).
    pub(crate) fn static_keys(&self) -> usize {
        usize::from(self.hmac_secret.is_some())
            + usize::from(self.rsa_pem.is_some())
            + usize::from(self.ec_pem.is_some())
            + usize::from(self.ed25519_pem.is_some())
    }
}

/// External OpenID providers, discovered at start-up.
#[derive(Debug, Default)]
pub(crate) struct Oidc {
    /// `TOLLGATE_OIDC_ISSUER`: issuer URLs, comma-separated.
    pub(crate) issuers: Vec<String>,
    /// `TOLLGATE_OIDC_AUDIENCE`: the audience their tokens must carry (default: this API's).
    pub(crate) audience: Option<String>,
    /// `TOLLGATE_OIDC_CA`: a PEM file of extra CA certificates (a private PKI).
    pub(crate) ca: Option<PathBuf>,
}

/// The key `/auth/login` signs access tokens with.
#[derive(Debug)]
pub(crate) struct Signing {
    /// `TOLLGATE_SIGNING_KEY_PEM`: a private key file; without it an Ed25519 key is generated
    /// at start-up (its tokens die with the process).
    pub(crate) pem: Option<PathBuf>,
    /// `TOLLGATE_SIGNING_ALG`: `EdDSA` (default), `RS256`…, `ES256`/`ES384`.
    pub(crate) alg: String,
    /// `TOLLGATE_SIGNING_KID`: the `kid` of the key (default `demo-1`).
    pub(crate) kid: String,
}

/// A user of the demo store: name, password, scopes.
#[derive(Debug)]
pub(crate) struct DemoUser {
    pub(crate) name: String,
    pub(crate) password: Secret,
    pub(crate) scopes: Vec<String>,
}

/// A secret string whose `Debug` never shows it.
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One entry of `TOLLGATE_API_KEYS`.
#[derive(Debug)]
pub(crate) struct PreloadKey {
    pub(crate) app_id: String,
    pub(crate) app_name: String,
    pub(crate) credential: Credential,
    pub(crate) scopes: Vec<String>,
    pub(crate) slot: KeySlot,
    pub(crate) active: bool,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) quota: Option<Quota>,
}

/// A preloaded key is given either as the key itself or as the hex SHA-256 of it.
#[derive(Debug)]
pub(crate) enum Credential {
    Plaintext(Secret),
    Digest(String),
}

impl Config {
    /// Reads the process environment; `default_addr` is the listen address without
    /// `TOLLGATE_ADDR`.
    pub(crate) fn from_env(default_addr: &str) -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let addr = var("TOLLGATE_ADDR").unwrap_or_else(|| default_addr.to_owned());
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("TOLLGATE_ADDR={addr:?}: {e}"))?;
        let leeway = match var("TOLLGATE_LEEWAY_SECS") {
            Some(s) => Duration::from_secs(
                s.parse()
                    .map_err(|e| format!("TOLLGATE_LEEWAY_SECS={s:?}: {e}"))?,
            ),
            None => Duration::from_secs(60),
        };
        let verify = VerifyKeys {
            hmac_secret: var("TOLLGATE_JWT_HMAC_SECRET").map(Secret),
            rsa_pem: var("TOLLGATE_JWT_RSA_PEM").map(PathBuf::from),
            rsa_alg: var("TOLLGATE_JWT_RSA_ALG").unwrap_or_else(|| "RS256".to_owned()),
            ec_pem: var("TOLLGATE_JWT_EC_PEM").map(PathBuf::from),
            ec_alg: var("TOLLGATE_JWT_EC_ALG").unwrap_or_else(|| "ES256".to_owned()),
            ed25519_pem: var("TOLLGATE_JWT_ED25519_PEM").map(PathBuf::from),
            jwks_url: var("TOLLGATE_JWKS_URL"),
            kid: var("TOLLGATE_JWT_KID"),
        };
        if verify.static_keys() > 1 {
            return Err("TOLLGATE_JWT_HMAC_SECRET, TOLLGATE_JWT_RSA_PEM, TOLLGATE_JWT_EC_PEM and TOLLGATE_JWT_ED25519_PEM: set one at most".to_owned());
        }
        if verify.jwks_url.is_some() && verify.static_keys() > 0 {
            return Err("TOLLGATE_JWKS_URL cannot be combined with static JWT keys".to_owned());
        }
        let signing = Signing {
            pem: var("TOLLGATE_SIGNING_KEY_PEM").map(PathBuf::from),
            alg: var("TOLLGATE_SIGNING_ALG").unwrap_or_else(|| "EdDSA".to_owned()),
            kid: var("TOLLGATE_SIGNING_KID").unwrap_or_else(|| "demo-1".to_owned()),
        };
        let users_var = var("TOLLGATE_USERS");
        let demo_users = users_var.is_none();
        let users = parse_users(users_var.as_deref().unwrap_or(DEMO_USERS))?;
        let rate_limit = match var("TOLLGATE_RATE_LIMIT") {
            Some(s) => parse_quota(&s).map_err(|e| format!("TOLLGATE_RATE_LIMIT={s:?}: {e}"))?,
            None => Quota::per_hour(1000),
        };
        let ip_rate_limit = match var("TOLLGATE_IP_RATE_LIMIT") {
            Some(s) => {
                Some(parse_quota(&s).map_err(|e| format!("TOLLGATE_IP_RATE_LIMIT={s:?}: {e}"))?)
            }
            None => None,
        };
        let preload = match var("TOLLGATE_API_KEYS") {
            Some(s) => parse_keys(&s).map_err(|e| format!("TOLLGATE_API_KEYS: {e}"))?,
            None => Vec::new(),
        };
        Ok(Self {
            addr,
            issuer: var("TOLLGATE_ISSUER").unwrap_or_else(|| format!("http://{addr}")),
            audience: var("TOLLGATE_AUDIENCE").unwrap_or_else(|| "orders-api".to_owned()),
            leeway,
            verify,
            signing,
            users,
            demo_users,
            demo_key: var("TOLLGATE_DEMO_KEY").map(Secret),
            preload,
            rate_limit,
            ip_rate_limit,
            usage_flush: match var("TOLLGATE_USAGE_FLUSH_SECS") {
                Some(s) => match s.parse::<u64>() {
                    Ok(secs) if secs > 0 => std::time::Duration::from_secs(secs),
                    _ => {
                        return Err(format!(
                            "TOLLGATE_USAGE_FLUSH_SECS={s:?}: a positive number of seconds"
                        ));
                    }
                },
                None => std::time::Duration::from_secs(60),
            },
            oidc: Oidc {
                issuers: var("TOLLGATE_OIDC_ISSUER")
                    .map(|s| {
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                audience: var("TOLLGATE_OIDC_AUDIENCE"),
                ca: var("TOLLGATE_OIDC_CA").map(PathBuf::from),
            },
            postgres_url: var("TOLLGATE_POSTGRES_URL").map(Secret),
            redis_url: var("TOLLGATE_REDIS_URL").map(Secret),
            redis_cluster: var("TOLLGATE_REDIS_CLUSTER").map(Secret),
            leased: match var("TOLLGATE_RATE_LIMIT_LEASED").as_deref() {
                None | Some("0" | "false") => false,
                Some("1" | "true") => true,
                Some(_) => return Err("TOLLGATE_RATE_LIMIT_LEASED: 1 or 0".to_owned()),
            },
        })
    }
}

/// The demo store without `TOLLGATE_USERS`: alice may read and place orders, bob only see
/// his profile, carol manage API keys.
const DEMO_USERS: &str = "alice:alice-demo-password:orders:read orders:write profile;\
                          bob:bob-demo-password:profile;\
                          carol:carol-demo-password:keys:admin profile";

/// `name:password:scope scope…` entries separated by `;`.
fn parse_users(s: &str) -> Result<Vec<DemoUser>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| {
            let mut parts = entry.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(name), Some(password), scopes)
                    if !name.is_empty() && !password.is_empty() =>
                {
                    Ok(DemoUser {
                        name: name.to_owned(),
                        password: Secret(password.to_owned()),
                        scopes: scopes
                            .unwrap_or("")
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect(),
                    })
                }
                _ => Err(format!(
                    "TOLLGATE_USERS entry {}: use name:password:scope scope…",
                    i + 1
                )),
            }
        })
        .collect()
}

/// `1000/hour`, `10/second`, `50/minute`, `10000/day`.
pub(crate) fn parse_quota(s: &str) -> Result<Quota, String> {
    let (count, unit) = s
        .split_once('/')
        .ok_or("expected COUNT/UNIT, such as 1000/hour")?;
    let count: u64 = count.trim().parse().map_err(|_| "COUNT is not a number")?;
    let window = match unit.trim() {
        "second" | "s" => 1,
        "minute" | "min" => 60,
        "hour" | "h" => 3600,
        "day" | "d" => 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} (second, minute, hour, day)"
            ));
        }
    };
    // A count read from configuration may be 0: `Quota::new` answers `None` then.
    Quota::new(count, std::time::Duration::from_secs(window))
        .ok_or_else(|| "the count must be at least 1".to_owned())
}

/// Entries separated by `;`, fields by `,`, each field `name=value`:
/// `app=billing,name=Billing,key=tg_…,scopes=orders:read orders:write,slot=primary,active=true,expires=2027-01-01T00:00:00Z,quota=100/hour`.
/// Give `key=` (the plaintext) or `digest=` (its hex SHA-256), not both.
fn parse_keys(s: &str) -> Result<Vec<PreloadKey>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| parse_key(entry).map_err(|e| format!("entry {}: {e}", i + 1)))
        .collect()
}

fn parse_key(entry: &str) -> Result<PreloadKey, String> {
    let (mut app_id, mut app_name, mut key, mut digest) = (None, None, None, None);
    let mut out = PreloadKey {
        app_id: String::new(),
        app_name: String::new(),
        credential: Credential::Digest(String::new()),
        scopes: Vec::new(),
        slot: KeySlot::Primary,
        active: true,
        expires_at: None,
        quota: None,
    };
    for field in entry.split(',') {
        let (name, value) = field
            .split_once('=')
            // Not echoed: a field without `=` may be a bare key pasted in.
            .ok_or("a field is not name=value")?;
        let value = value.trim();
        match name.trim() {
            "app" => app_id = Some(value.to_owned()),
            "name" => app_name = Some(value.to_owned()),
            "key" => key = Some(Secret(value.to_owned())),
            "digest" => digest = Some(value.to_owned()),
            "scopes" => out.scopes = value.split_whitespace().map(str::to_owned).collect(),
            "slot" => out.slot = value.parse().map_err(|_| "slot is primary or secondary")?,
            "active" => out.active = value.parse().map_err(|_| "active is true or false")?,
            "expires" => out.expires_at = Some(parse_time(value)?),
            "quota" => out.quota = Some(parse_quota(value)?),
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    out.app_id = app_id.ok_or("app= is required")?;
    out.app_name = app_name.unwrap_or_else(|| out.app_id.clone());
    out.credential = match (key, digest) {
        (Some(key), None) => Credential::Plaintext(key),
        (None, Some(digest)) => Credential::Digest(digest),
        _ => return Err("give exactly one of key= and digest=".to_owned()),
    };
    Ok(out)
}

/// Unix seconds (`1798761600`) or a UTC date-time (`2027-01-01T00:00:00Z`).
fn parse_time(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("expires={s:?}: use unix seconds or YYYY-MM-DDTHH:MM:SSZ");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let s2 = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = s2.split_once('T').ok_or_else(bad)?;
    let num = |part: Option<&str>| part.and_then(|p| p.parse::<i64>().ok()).ok_or_else(bad);
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut t = time.split(':');
    let (hh, mm, ss) = (num(t.next())?, num(t.next())?, num(t.next())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
        .map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
