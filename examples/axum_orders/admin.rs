//! Key management (seed 001): `POST /admin/api-keys` generates an application's primary or
//! secondary key, `GET /admin/api-keys` lists them masked with their usage, and
//! `PUT /admin/apps/{appId}` disables an application or sets its plan. Guarded by a user token with the
//! `keys:admin` scope (the routes set that up); this file only talks to `ApiKeys`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate::api_key::{ApiKeys, Application, KeyStore, NewKey};
use tollgate::identity::{KeySlot, UserIdentity};

use crate::keys::DEMO_APP;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Generate {
    /// `primary` or `secondary`.
    #[serde(rename = "type")]
    slot: String,
    app_id: Option<String>,
    /// How long the replaced key keeps working (seed 001: it stops at once, the default).
    #[serde(default)]
    grace_seconds: u64,
}

/// The longest grace an admin may give a replaced key: 30 days.
const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

/// `POST /admin/api-keys`: a new key in the slot; the old one in that slot is retired after
/// the grace period. The plaintext is in this answer and nowhere else.
pub(crate) async fn generate<K: KeyStore>(
    State(keys): State<ApiKeys<K>>,
    admin: UserIdentity,
    Json(request): Json<Generate>,
) -> Response {
    let Ok(slot) = request.slot.parse::<KeySlot>() else {
        return bad_request("type is primary or secondary");
    };
    if request.grace_seconds > MAX_GRACE_SECONDS {
        return bad_request("graceSeconds is at most 2592000 (30 days)");
    }
    let app_id = request.app_id.unwrap_or_else(|| DEMO_APP.to_owned());
    // The new key inherits the app's name and scopes from its newest key.
    let existing = match keys.list(&app_id).await {
        Ok(records) => records.into_iter().next(),
        Err(e) => return unavailable(&e),
    };
    let Some(existing) = existing else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "unknown appId" })),
        )
            .into_response();
    };
    let new = NewKey::new(&app_id, existing.app_name())
        .slot(slot)
        .scopes(existing.scopes());
    let rotation = match keys
        .rotate(new, Duration::from_secs(request.grace_seconds))
        .await
    {
        Ok(rotation) => rotation,
        Err(e) => return unavailable(&e),
    };
    let generated = rotation.generated();
    tracing::info!(
        admin = admin.subject().unwrap_or(""),
        app_id = ?app_id,
        slot = slot.as_str(),
        key = generated.record().hint(),
        retired = rotation.retired().len(),
        "API key generated"
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "apiKey": generated.key().expose(),
            "id": generated.record().id(),
            "type": slot.as_str(),
            "appId": app_id,
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    app_id: Option<String>,
}

/// `GET /admin/api-keys?appId=…`: the app's keys, masked (`tg_…a1B2`), never the keys.
pub(crate) async fn list<K: KeyStore>(
    State(keys): State<ApiKeys<K>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let app_id = query.app_id.unwrap_or_else(|| DEMO_APP.to_owned());
    let records = match keys.list(&app_id).await {
        Ok(records) => records,
        Err(e) => return unavailable(&e),
    };
    let now = SystemTime::now();
    let current = |slot: KeySlot| {
        records
            .iter()
            .find(|r| r.slot() == slot && r.is_usable_at(now))
            .map(|r| r.hint().to_owned())
    };
    let listed: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "type": r.slot().as_str(),
                "key": r.hint(),
                "scopes": r.scopes(),
                "usable": r.is_usable_at(now),
                "expiresAt": r.expires_at().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                "lastUsedAt": r.usage().last_used_at.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                "usage": {
                    "authenticated": r.usage().counts.authenticated,
                    "refused": r.usage().counts.refused(),
                    "rateLimited": r.usage().counts.rate_limited,
                },
            })
        })
        .collect();
    let app = keys.app(&app_id).await.ok().flatten();
    Json(json!({
        "appId": app_id,
        "enabled": app.as_ref().is_none_or(Application::is_enabled),
        "primaryApiKey": current(KeySlot::Primary),
        "secondaryApiKey": current(KeySlot::Secondary),
        "keys": listed,
    }))
    .into_response()
}

/// `PUT /admin/apps/{appId}` with `{"enabled": false}` and/or `{"plan": "100/hour"}` (or
/// `"plan": null`): disables or re-enables an application (every key of it, at once) and sets
/// its plan quota.
pub(crate) async fn put_app<K: KeyStore>(
    State(keys): State<ApiKeys<K>>,
    Path(app_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut app = match keys.app(&app_id).await {
        Ok(Some(app)) => app,
        Ok(None) => Application::new(&app_id, &app_id, SystemTime::now()),
        Err(e) => return unavailable(&e),
    };
    if let Some(enabled) = body.get("enabled") {
        let Some(enabled) = enabled.as_bool() else {
            return bad_request("enabled must be true or false");
        };
        app = app.with_enabled(enabled);
    }
    match body.get("plan") {
        None => {}
        Some(Value::Null) => app = app.with_quota(None),
        Some(Value::String(plan)) => match crate::config::parse_quota(plan) {
            Ok(quota) => app = app.with_quota(Some(quota)),
            Err(e) => return bad_request(&format!("plan: {e}")),
        },
        Some(_) => return bad_request("plan must be like \"100/hour\" or null"),
    }
    if let Err(e) = keys.put_app(app.clone()).await {
        return unavailable(&e);
    }
    Json(json!({
        "appId": app.id(),
        "enabled": app.is_enabled(),
        "plan": app.quota().map(|q| format!("{}/{}s", q.limit(), q.window().as_secs())),
    }))
    .into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn unavailable(error: &tollgate::api_key::StoreError) -> Response {
    tracing::warn!(%error, "key store failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "the key store is unavailable" })),
    )
        .into_response()
}
